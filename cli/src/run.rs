//! `distlock run`: a command under a lock, like `flock(1)` across machines.
//!
//! The command must never run without the lock: it is killed when the hold is lost, it gets
//! the signal that stops `distlock` (SIGTERM, SIGINT, SIGHUP are forwarded and waited for
//! before the lock is released), and it dies with `distlock` if `distlock` itself is
//! killed outright (SIGKILL, OOM killer), since the lock's backstop then frees the lock.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use distlock::{AcquireOptions, ErrorKind, LockError, LockExt, LockGuard, Wait};
use tokio::process::Child;
use tokio::signal::unix::{signal, SignalKind};

/// sysexits' EX_TEMPFAIL: the lock was not available (or was lost); try again later.
const NOT_ACQUIRED: u8 = 75;

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Lock URL (file:///dir, redis://…, zk://…, mysql://…).
    #[arg(long, default_value_t = crate::default_url())]
    url: String,
    /// Lock name.
    #[arg(long)]
    name: String,
    /// Seconds to wait for the lock; 0 means one attempt; omitted means wait forever.
    #[arg(long)]
    wait: Option<f64>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// How `--wait` waits; a NaN, infinite or out-of-range number is a configuration error.
fn wait_from(seconds: Option<f64>) -> distlock::Result<Wait> {
    match seconds {
        None => Ok(Wait::Forever),
        Some(s) if s <= 0.0 => Ok(Wait::Try),
        Some(s) => Duration::try_from_secs_f64(s)
            .map(Wait::Up)
            .map_err(|e| LockError::config(format!("invalid --wait {s}")).with_source(e)),
    }
}

pub(crate) async fn run(args: RunArgs) -> distlock::Result<ExitCode> {
    let wait = wait_from(args.wait)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| LockError::config("no command given"))?;
    let locks = distlock::connect(&args.url).await?;
    let guard = match locks
        .acquire_opts(&args.name, &AcquireOptions::default().with_wait(wait))
        .await
    {
        Ok(Some(g)) => g,
        Ok(None) => return Ok(not_acquired(&args.name)),
        Err(e) if e.kind() == ErrorKind::Timeout => return Ok(not_acquired(&args.name)),
        Err(e) => return Err(e),
    };
    let signals =
        Signals::new().map_err(|e| LockError::config("cannot watch for signals").with_source(e))?;
    let mut command = tokio::process::Command::new(program);
    command.args(rest);
    if let Some(token) = guard.fencing_token() {
        command.env("DISTLOCK_FENCING_TOKEN", token.to_string());
    }
    die_with_parent(&mut command);
    let child = command
        .spawn()
        .map_err(|e| LockError::config(format!("cannot run {program:?}")).with_source(e))?;
    supervise(child, program, guard, signals).await
}

/// Waits for the command while holding the lock; see the module docs.
async fn supervise(
    mut child: Child,
    program: &str,
    guard: LockGuard,
    mut signals: Signals,
) -> distlock::Result<ExitCode> {
    let mut stopped_by = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            lost = guard.lost() => {
                eprintln!("distlock: {lost}; stopping {program:?}");
                let _ = child.kill().await;
                let _ = guard.release().await;
                return Ok(ExitCode::from(NOT_ACQUIRED));
            }
            signo = signals.next(), if stopped_by.is_none() => {
                // Forward it and keep holding the lock until the command has exited.
                if let Some(pid) = child.id() {
                    send_signal(pid, signo);
                }
                stopped_by = Some(signo);
            }
        }
    };
    guard.release().await?;
    if let Some(signo) = stopped_by {
        return Ok(ExitCode::from(128u8.saturating_add(signo as u8)));
    }
    let status =
        status.map_err(|e| LockError::backend("waiting for the command failed").with_source(e))?;
    let code = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => code,
        // Killed by a signal: the shell convention.
        (None, Some(signo)) => 128 + signo,
        (None, None) => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// The signals that normally stop `distlock`, caught while the command runs.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal received.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.int.recv() => libc::SIGINT,
            _ = self.hup.recv() => libc::SIGHUP,
        }
    }
}

#[allow(unsafe_code)]
fn send_signal(pid: u32, signo: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) on our own, not yet reaped child; no memory is shared.
    unsafe {
        libc::kill(pid, signo);
    }
}

/// The command gets SIGKILL when `distlock` dies, whatever kills it: the lock is freed by its
/// backstop then, and the command must not go on unprotected. PR_SET_PDEATHSIG fires when the
/// forking thread exits; the command is spawned from the main thread (the future
/// `#[tokio::main]` blocks on), which lives as long as the process.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the prctl: do not start the command at all.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::other(
                    "distlock exited before the command started",
                ));
            }
            Ok(())
        });
    }
}

fn not_acquired(name: &str) -> ExitCode {
    eprintln!("distlock: lock {name:?} is held elsewhere");
    ExitCode::from(NOT_ACQUIRED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_accepts_seconds_and_rejects_nonsense() {
        assert_eq!(wait_from(None).unwrap(), Wait::Forever);
        assert_eq!(wait_from(Some(0.0)).unwrap(), Wait::Try);
        assert_eq!(
            wait_from(Some(1.5)).unwrap(),
            Wait::Up(Duration::from_millis(1500))
        );
        for bad in [f64::NAN, f64::INFINITY, 1e30] {
            assert_eq!(wait_from(Some(bad)).unwrap_err().kind(), ErrorKind::Config);
        }
    }
}
