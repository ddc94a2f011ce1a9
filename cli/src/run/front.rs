//! The `distlock run` process the user started: it starts the lock holder, forwards the
//! stopping signals to it, and exits with its status.

use std::process::ExitCode;

use rustix::process::{getpid, kill_process, set_child_subreaper, Pid, Signal};

use super::group::kill_orphans;
use super::signals::{Signals, ESCALATE};
use super::ENV_MARKER;
use crate::diag::error;
use crate::exit;

/// Starts the lock holder (this program again, with the same arguments) and waits for it.
///
/// # Cancel safety
/// Not cancel safe: dropped, it stops forwarding signals to a holder that keeps running.
pub(crate) async fn front() -> ExitCode {
    // Should the holder die, its command is re-parented to us and stopped here.
    if let Err(e) = set_child_subreaper(Some(getpid())) {
        tracing::debug!(error = %e, "cannot become a child subreaper");
    }
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => return os_error("cannot catch signals", e),
    };
    let mut command = tokio::process::Command::new("/proc/self/exe");
    command
        // What `ps` shows: the holder is told apart from the front by its name.
        .arg0("distlock-holder")
        .args(std::env::args_os().skip(1))
        .env(ENV_MARKER, getpid().as_raw_nonzero().to_string())
        // Its own group: a Ctrl-C reaches it once, through us, not twice.
        .process_group(0)
        .kill_on_drop(false);
    let mut holder = match command.spawn() {
        Ok(holder) => holder,
        Err(e) => return os_error("cannot start the lock holder", e),
    };
    let holder_pid = holder
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let mut forwarded = None;
    let mut escalated = false;
    let status = loop {
        tokio::select! {
            status = holder.wait() => break status,
            signo = signals.next() => {
                // The first signal is passed on; later ones ask the holder for SIGKILL.
                let pass_on = match forwarded {
                    None => signo,
                    Some(_) => ESCALATE,
                };
                if let (Some(pid), Some(sig)) = (holder_pid, Signal::from_named_raw(pass_on)) {
                    let _ = kill_process(pid, sig);
                }
                forwarded.get_or_insert(signo);
                escalated |= pass_on == ESCALATE;
            }
        }
    };
    let status = match status {
        Ok(status) => status,
        Err(e) => return os_error("waiting for the lock holder failed", e),
    };
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX));
    }
    // The holder was killed: whatever it ran is ours now, and the lock is gone with it.
    kill_orphans().await;
    let signo = std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0);
    if forwarded == Some(signo) || (escalated && signo == ESCALATE) {
        // It died of the signal we passed on before it could catch it: nothing ran.
        return ExitCode::from(exit::signalled(forwarded.unwrap_or(signo)));
    }
    error(format_args!(
        "the lock holder process died (signal {signo}); the command was killed"
    ));
    ExitCode::from(exit::LOST)
}

fn os_error(what: &str, e: std::io::Error) -> ExitCode {
    error(format_args!("{what}: {e}"));
    ExitCode::from(exit::OS_ERROR)
}
