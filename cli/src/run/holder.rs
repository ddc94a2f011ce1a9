//! The lock holder: the process that takes the lock, runs the command, and releases the
//! lock only once the command's whole process group is gone (see `run`'s module docs).

use std::process::ExitCode;
use std::time::Duration;

use distlock::{AcquireOptions, DistributedLock, ErrorKind, LockError, LockExt, LockGuard};
use rustix::process::{set_child_subreaper, Pid, Signal};
use tokio::signal::unix::{signal, SignalKind};

use super::args::Plan;
use super::group::Job;
use super::parent::ParentWatch;
use super::signals::{Signals, ESCALATE};
use super::ENV_MARKER;
use crate::diag::error;
use crate::exit;

/// How long background clean-up (a cancelled acquire's queue node, a closing session) may
/// take before the holder exits anyway; the store's backstop covers the rest.
const CLEAN_UP_LIMIT: Duration = Duration::from_secs(3);

/// Runs the plan as the lock holder started by the `distlock` process `parent`.
///
/// # Cancel safety
/// Not cancel safe: dropped, it leaves the command running unsupervised. Await it.
pub(crate) async fn hold(plan: Plan, parent: Pid) -> ExitCode {
    let parent = match ParentWatch::open(parent) {
        Ok(Some(watch)) => watch,
        // distlock died before we could watch it (or DISTLOCK_RUN_HOLDER_FOR was set by
        // someone else): start nothing.
        Ok(None) => {
            error(format_args!(
                "the distlock process that started this lock holder is gone; nothing was run"
            ));
            return ExitCode::from(exit::LOST);
        }
        Err(e) => return os_error("cannot watch the distlock process", e),
    };
    // Processes that leave the command's group are re-parented to us, not to init, so
    // that they can be found and stopped.
    if let Err(e) = set_child_subreaper(Some(rustix::process::getpid())) {
        return os_error("cannot become a child subreaper", e.into());
    }
    let mut signals = match Signals::install_with_escalation() {
        Ok(signals) => signals,
        Err(e) => return os_error("cannot catch signals", e),
    };
    let code = {
        let taken = tokio::select! {
            taken = take(&plan) => taken,
            signo = signals.next() => {
                tracing::info!(signo, "signal while waiting for the lock: cancelled");
                Err(Stop::Code(exit::signalled(signo)))
            }
            () = parent.died() => Err(Stop::Code(exit::LOST)),
        };
        match taken {
            Ok((locks, guard)) => {
                let code = supervise(&plan, &guard, &mut signals, &parent).await;
                let code = finish(guard, code).await;
                drop(locks);
                code
            }
            Err(Stop::Code(code)) => code,
            Err(Stop::Error(e)) => {
                error(&e);
                exit::for_error(&e)
            }
        }
    };
    // A cancelled acquire cleans up in background tasks (ZooKeeper deletes its queue
    // node, a dropped session closes): let them finish, or the next contender waits for
    // the store's backstop.
    settle().await;
    ExitCode::from(code)
}

/// Why the holder stops before running the command.
enum Stop {
    Code(u8),
    Error(LockError),
}

/// Connects and acquires as planned.
///
/// # Cancel safety
/// Cancel safe: the library's acquire is, and nothing else holds anything.
async fn take(plan: &Plan) -> Result<(Box<dyn DistributedLock>, LockGuard), Stop> {
    let locks = crate::store::connect(&plan.url)
        .await
        .map_err(Stop::Error)?;
    tracing::debug!(lock = %plan.name, wait = ?plan.wait, "connected; acquiring");
    let mut options = AcquireOptions::default().with_wait(plan.wait);
    if let Some(ttl) = plan.ttl {
        options = options.with_ttl(ttl);
    }
    match locks.acquire_opts(&plan.name, &options).await {
        Ok(Some(guard)) => {
            tracing::info!(
                lock = %plan.name,
                fencing_token = ?guard.fencing_token(),
                "acquired; starting the command"
            );
            Ok((locks, guard))
        }
        Ok(None) => Err(not_acquired(plan)),
        Err(e) if e.kind() == ErrorKind::Timeout => Err(not_acquired(plan)),
        Err(e) => Err(Stop::Error(e)),
    }
}

fn not_acquired(plan: &Plan) -> Stop {
    error(format_args!("lock {:?} is held elsewhere", plan.name));
    Stop::Code(plan.conflict_exit_code)
}

/// Runs the command under the lock and stops it (its whole group) before returning.
///
/// # Cancel safety
/// Not cancel safe (see [`hold`]).
async fn supervise(
    plan: &Plan,
    guard: &LockGuard,
    signals: &mut Signals,
    parent: &ParentWatch,
) -> u8 {
    let Some((program, args)) = plan.argv.split_first() else {
        error("no command to run");
        return exit::USAGE;
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("DISTLOCK_LOCK_NAME", &plan.name)
        .env_remove(ENV_MARKER);
    match guard.fencing_token() {
        Some(token) => command.env("DISTLOCK_FENCING_TOKEN", token.to_string()),
        // An outer `distlock run`'s token must not pass for ours.
        None => command.env_remove("DISTLOCK_FENCING_TOKEN"),
    };
    let mut job = match Job::spawn(command) {
        Ok(job) => job,
        Err(e) => {
            error(format_args!("cannot run {program:?}: {e}"));
            return match e.kind() {
                std::io::ErrorKind::NotFound => exit::NOT_FOUND,
                _ => exit::NOT_EXECUTABLE,
            };
        }
    };
    let mut orphans = signal(SignalKind::child()).ok();
    let mut forwarded = false;
    let grace = plan.kill_after;
    loop {
        tokio::select! {
            status = job.wait_leader() => {
                // What it left behind must not outlive the lock either.
                job.stop(grace, hurry(signals, Some(parent), Some(guard))).await;
                return match status {
                    Ok(status) => status_code(status),
                    Err(e) => {
                        error(format_args!("waiting for the command failed: {e}"));
                        exit::OS_ERROR
                    }
                };
            }
            lost = guard.lost() => {
                error(format_args!("{lost}; stopping the command"));
                job.stop(grace, hurry(signals, Some(parent), None)).await;
                return exit::LOST;
            }
            () = parent.died() => {
                tracing::warn!("distlock died: stopping the command");
                job.stop(grace, hurry(signals, None, Some(guard))).await;
                return exit::LOST;
            }
            signo = signals.next() => {
                // The first stopping signal is the command's to handle; the front asks for
                // SIGKILL when it is told a second time. Further stopping signals here are
                // the same request arriving twice (see `signals`), not an insistence.
                if signo == ESCALATE {
                    job.signal(Signal::KILL);
                } else if !forwarded {
                    if let Some(signo) = Signal::from_named_raw(signo) {
                        job.signal(signo);
                        forwarded = true;
                    }
                }
            }
            Some(()) = async { orphans.as_mut()?.recv().await } => job.reap_orphans(),
        }
    }
}

/// Releases the lock after the command is gone. A lock found lost at release means the
/// command may have run unprotected: that is reported as a loss, whatever its status.
///
/// # Cancel safety
/// Cancel safe as the library's release is: a dropped release leaves the backstop.
async fn finish(guard: LockGuard, code: u8) -> u8 {
    let lost = guard.lost_signal();
    match guard.release().await {
        Ok(()) => {
            tracing::info!(status = code, "the command is gone; lock released");
            code
        }
        Err(e) if matches!(e.kind(), ErrorKind::NotHeld | ErrorKind::Lost) => {
            if code != exit::LOST {
                error(format_args!(
                    "the command ended (status {code}), but the lock was lost before: {e}"
                ));
            }
            exit::LOST
        }
        // The release failed for another reason (the store unreachable), but the loss was
        // signalled before: the command may have run unprotected.
        Err(e) if lost.is_lost() => {
            if code != exit::LOST {
                error(format_args!(
                    "the command ended (status {code}), but the lock was lost before; \
                     releasing it failed too: {e}"
                ));
            }
            exit::LOST
        }
        Err(e) => {
            // The backstop (lease, session, connection) frees it.
            tracing::warn!(error = %e, "releasing the lock failed");
            code
        }
    }
}

/// The shell's notion of a command's exit status.
fn status_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(u8::MAX),
        (None, Some(signo)) => exit::signalled(signo),
        (None, None) => exit::OS_ERROR,
    }
}

/// Resolves on the first reason to stop the job at once: a signal, or (where given)
/// distlock's death or the lock's loss.
///
/// # Cancel safety
/// Cancel safe: it only observes.
async fn hurry(signals: &mut Signals, parent: Option<&ParentWatch>, guard: Option<&LockGuard>) {
    tokio::select! {
        _ = signals.next() => {}
        () = async {
            match parent {
                Some(parent) => parent.died().await,
                None => std::future::pending().await,
            }
        } => {}
        () = async {
            match guard {
                Some(guard) => drop(guard.lost().await),
                None => std::future::pending().await,
            }
        } => {}
    }
}

/// Waits (bounded) until the runtime's background tasks have finished.
///
/// # Cancel safety
/// Cancel safe: it only waits.
async fn settle() {
    let runtime = tokio::runtime::Handle::current();
    let until = tokio::time::Instant::now() + CLEAN_UP_LIMIT;
    while runtime.metrics().num_alive_tasks() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn os_error(what: &str, e: std::io::Error) -> ExitCode {
    error(format_args!("{what}: {e}"));
    ExitCode::from(exit::OS_ERROR)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use distlock::backend::{GuardParts, Hold, HoldStatus};
    use distlock::{LockName, Result};

    use super::*;

    /// A hold whose store cannot be reached.
    #[derive(Debug)]
    struct Unreachable;

    impl Hold for Unreachable {
        // What `#[async_trait]` expands to (the CLI does not depend on that crate).
        fn release<'life0, 'async_trait>(
            &'life0 self,
        ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(LockError::connection("the store is unreachable")) })
        }
    }

    fn guard(status: &HoldStatus) -> LockGuard {
        LockGuard::new(GuardParts {
            name: LockName::new("job").unwrap(),
            owner_token: distlock::backend::new_owner_token(),
            fencing_token: None,
            hold: Arc::new(Unreachable),
            status: status.clone(),
            lease: None,
        })
    }

    #[tokio::test]
    async fn a_loss_before_a_failed_release_is_reported_as_lost() {
        let status = HoldStatus::new();
        let held = guard(&status);
        status.mark_lost(LockError::lost("renewal failed: connection reset"));
        assert_eq!(finish(held, 0).await, exit::LOST);
        // Without a loss, a failed release leaves the command's status alone.
        let status = HoldStatus::new();
        assert_eq!(finish(guard(&status), 7).await, 7);
    }
}
