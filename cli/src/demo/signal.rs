//! Pausing and resuming a buyer process, as a long GC pause or a frozen VM would.

use distlock::{LockError, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Stops process `pid` (SIGSTOP): it runs no code, renews no lease, answers no heartbeat.
pub(crate) fn pause(pid: u32) -> Result<()> {
    send(pid, Signal::SIGSTOP)
}

/// Lets a paused process go on (SIGCONT).
pub(crate) fn resume(pid: u32) -> Result<()> {
    send(pid, Signal::SIGCONT)
}

fn send(pid: u32, signal: Signal) -> Result<()> {
    let pid = i32::try_from(pid).map_err(|_| LockError::backend("a process id out of range"))?;
    kill(Pid::from_raw(pid), signal)
        .map_err(|e| LockError::backend(format!("sending {signal} to buyer {pid}: {e}")))
}
