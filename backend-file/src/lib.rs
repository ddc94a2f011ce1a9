//! Lock files in a directory (`flock(2)` through `std::fs::File::try_lock`): one host, many
//! processes, no server. The embedded default of distlock.
//!
//! - **Exclusion** comes from the kernel: each acquire opens its own file description, so
//!   two clients conflict even inside one process. A killed holder's lock is freed by the
//!   kernel the moment its process dies: that is the backstop.
//! - **Fencing**: a counter in the lock file's first 8 bytes is incremented while the lock
//!   is held.
//! - **Waiting** sleeps until a release and then tries `try_lock` again. Releases in the
//!   same process wake waiters directly; on Linux, each client also watches the directory
//!   with inotify (one watcher thread per client, started on its first wait), and a
//!   holder's close of its lock file (a release, or the kernel closing a dead holder's
//!   files) wakes the waiters of every process within microseconds. Waiters keep their
//!   file open between tries, so they never wake each other. A backstop retry runs at
//!   least every 250 ms; without a watcher (other systems, inotify limits reached:
//!   Linux allows 128 inotify instances per user by default, `fs.inotify.max_user_instances`,
//!   and each waiting client uses one) waiters poll with back-off up to 25 ms. A blocking `flock` cannot be cancelled or
//!   bounded without a thread that would later grab the lock behind the caller's back, so
//!   it is not used. Woken waiters race for the lock: no FIFO order.
//! - **Not provided**: leases (a hold lasts until release or process exit), lost detection
//!   (a flock is not lost while its process lives), FIFO, reentrancy (a second acquire of
//!   a held name by the same client is an ordinary contender). Lock files are never
//!   deleted: deleting a lock file while another process opens it would let two holders in.
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
