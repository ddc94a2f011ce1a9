//! Lock files in a directory (`flock(2)` through `std::fs::File::try_lock`): one host, many
//! processes, no server. The embedded default of distlock.
//!
//! - **Exclusion** comes from the kernel: each acquire opens its own file description, so
//!   two clients conflict even inside one process. A killed holder's lock is freed by the
//!   kernel the moment its process dies: that is the backstop.
//! - **Fencing**: a counter in the lock file's first 8 bytes is incremented while the lock
//!   is held.
//! - **Waiting** polls `try_lock` with jittered back-off up to 25 ms, woken at once by
//!   releases in the same process. A blocking `flock` cannot be cancelled or bounded
//!   without a thread that would later grab the lock behind the caller's back, so it is
//!   not used.
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
mod url;

pub use lock::FileLock;
pub use url::SCHEMES;
