//! `distlock run`: a command under a lock, like `flock(1)` across machines. The command
//! never outlives the lock.
//!
//! # Two processes, and why
//!
//! ```text
//! distlock run …            the "front": the pid the user and their supervisor see
//! └─ distlock (holder)      takes the lock, runs the command, releases the lock
//!    └─ COMMAND             its own process group; descendants that leave the group
//!       └─ …                are re-parented to the holder (PR_SET_CHILD_SUBREAPER)
//! ```
//!
//! A process killed with SIGKILL runs no code, so the process that holds the lock cannot
//! be the one a `kill -9` aims at if the command is to be stopped *before* the lock is
//! free: with one process, the file backend's lock (and a quick Redis TTL) would be free at
//! once while the command still ran, and a second `distlock run` could start beside it.
//! So the front only forwards signals and exit statuses, and the holder watches it
//! through a pidfd (readable when the front dies, however it dies; no thread-exit
//! pitfalls like PR_SET_PDEATHSIG's). When the front dies, the holder stops the command's
//! group (SIGTERM, SIGKILL after `--kill-after`) and only then releases the lock.
//!
//! The holder is a child subreaper, so processes that left the group (`setsid`, double
//! forks) come to it when their parent dies and are stopped too; "gone" means no live
//! process in the group and none with the holder as parent. Should the holder itself be
//! killed, the lock goes with it (the store's backstop), and the front, a subreaper as
//! well, kills what the command left.
//!
//! The holder runs in its own process group, so a Ctrl-C at the terminal reaches it once,
//! through the front; the command's group is not the terminal's foreground group either,
//! so it can write to the terminal but not read from it (like `timeout` without
//! `--foreground`).
//!
//! Linux only, 5.3 or later (pidfd, PR_SET_CHILD_SUBREAPER, `/proc`).

mod args;
mod front;
mod group;
mod holder;
mod parent;
mod signals;

use std::process::ExitCode;

use rustix::process::Pid;

pub(crate) use args::RunArgs;

/// Set by the front for the holder it starts: the front's pid. Removed from the
/// command's environment.
const ENV_MARKER: &str = "DISTLOCK_RUN_HOLDER_FOR";

/// Runs `distlock run`: as the front, or as the holder the front started. `Err` is a
/// usage error's message.
///
/// # Cancel safety
/// Not cancel safe: await it to the end (see [`front::front`], [`holder::hold`]).
pub(crate) async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let plan = args.plan()?;
    let front_pid = std::env::var(ENV_MARKER)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
        .and_then(Pid::from_raw);
    Ok(match front_pid {
        Some(front_pid) => holder::hold(plan, front_pid).await,
        None => front::front().await,
    })
}
