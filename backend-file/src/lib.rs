//! Lock files in a directory (`flock(2)` through `std::fs::File::try_lock`): one host, many
//! processes, no server. The embedded default of distlock.
//!
//! - **Exclusion** comes from the kernel: each acquire opens its own file description, so
//!   two clients conflict even inside one process. A killed holder's lock is freed by the
//!   kernel the moment its process dies: that is the backstop.
//! - **Fencing**: a counter in the lock file's first 8 bytes is incremented while the lock
//!   is held.
//! - **Waiting** is FIFO: a waiter takes a ticket in the lock's queue (`<lock file>.q/`,
//!   one file per waiter, held by the waiter's own `flock`, so a killed waiter's ticket is
//!   seen as dead and removed by whoever finds it) and tries the lock only when its ticket
//!   is the first live one. An acquire tries at once only when no live ticket is queued,
//!   and a try (`wait` zero) fails while one is: nobody barges, not even the process that
//!   just released. A cancelled or timed-out waiter unlinks its ticket. Waiters sleep until
//!   a release: releases in the same process wake them directly; on Linux, each client
//!   also watches the directory with inotify (one watcher thread per client, started on
//!   its first wait), and a holder's close of its lock file (a release, or the kernel
//!   closing a dead holder's files) wakes the waiters of every process within
//!   microseconds. Waiters keep their file open between tries, so they never wake each
//!   other; a waiter that gives up (or dies) closes its lock file after its ticket is
//!   gone, which wakes the next one. A backstop retry runs at least every 250 ms; without
//!   a watcher (other systems, inotify limits reached: Linux allows 128 inotify instances
//!   per user by default, `fs.inotify.max_user_instances`, and each waiting client uses
//!   one) waiters poll with back-off up to 25 ms. A blocking `flock` cannot be cancelled
//!   or bounded without a thread that would later grab the lock behind the caller's back,
//!   so it is not used. Processes that lock the files without distlock (`flock(1)`) are
//!   not queued: they contend as before.
//! - **Not provided**: leases (a hold lasts until release or process exit), lost detection
//!   (a flock is not lost while its process lives), reentrancy (a second acquire of a held
//!   name by the same client is an ordinary contender). Lock files are never deleted:
//!   deleting a lock file while another process opens it would let two holders in. Queue
//!   directories stay too (empty when nobody waits).
//! - Only for one host: `flock` over NFS or other network filesystems is not reliable.
//! - `extend` (no lease) only checks the hold is still this guard's: `Ok(())` until it is
//!   released. The owner token is local: the open file is what holds the lock.
#![warn(missing_docs)]

mod fence;
mod hold;
mod inspect;
mod lock;
mod path;
mod queue;
mod url;
mod wake;

pub use lock::FileLock;
pub use url::SCHEMES;
