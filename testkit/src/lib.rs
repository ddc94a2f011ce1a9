//! Throwaway servers for distlock's tests and benchmarks: `redis-server`, ZooKeeper (one node
//! or a three-node ensemble) and MariaDB, each on free loopback ports with data under
//! `target/testkit/`, with fault injection (pause/resume, kill, restart on the same port).
//!
//! No server outlives the test process: every server is started with a parent-death signal
//! from a thread that lives as long as the process, is killed when its handle drops, and
//! is killed by an exit hook. When a test panics, the tail of every live server's log is
//! printed. A missing server binary is an error that says how to install it.
#![warn(missing_docs)]

pub mod dirs;
pub mod mariadb;
pub mod ports;
pub mod process;
pub mod redis;
pub mod url_fuzz;
pub mod zookeeper;

pub use process::{free_port, scratch_dir, ServerProcess, Spec};

/// The message every missing-binary error carries.
pub fn install_hint(package: &str) -> String {
    format!(
        "`{package}` is not installed. Install the test servers with \
         `sudo apt-get install -y redis-server mariadb-server zookeeper` \
         (or run ./scripts/test.sh as root, which installs them)"
    )
}
