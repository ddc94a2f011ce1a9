//! The hidden `distlock check-worker`: one OS process that takes the lock over and over,
//! writes through the fenced register while holding it, and logs every step.

use std::process::ExitCode;
use std::time::Duration;

use distlock::{AcquireOptions, DistributedLock, ErrorKind, LockExt, LockGuard};
use rand::Rng;
use tokio::signal::unix::{signal, SignalKind};

use super::args::WorkerArgs;
use super::history::{mono_ns, wall_ns, Log, Release, WorkerEvent};
use super::register::Register;

/// How long one acquire may wait before the worker logs a timeout and tries again.
const ACQUIRE_WAIT: Duration = Duration::from_secs(2);
/// A hard bound on any one call, so a hung store cannot hang the worker forever.
const CALL_LIMIT: Duration = Duration::from_secs(15);

/// Runs until SIGTERM (finishing the current hold first) or until its parent is gone.
///
/// # Cancel safety
/// Not meant to be cancelled: it is a process's whole life.
pub async fn worker(args: WorkerArgs) -> Result<ExitCode, distlock::LockError> {
    let io = |e: std::io::Error| distlock::LockError::config("check worker").with_source(e);
    let url = std::env::var(super::args::WORKER_URL_ENV).map_err(|_| {
        distlock::LockError::config(format!(
            "check-worker is started by `distlock check`, which sets {}",
            super::args::WORKER_URL_ENV
        ))
    })?;
    let mut log = Log::open(&args.history).map_err(io)?;
    let register = Register::open(&args.register).map_err(io)?;
    let parent = std::os::unix::process::parent_id();
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let _ = log.append(&WorkerEvent::Start {
        mono: mono_ns(),
        wall: wall_ns(),
        pid: std::process::id(),
    });
    let mut lock: Option<Box<dyn DistributedLock>> = None;
    let options = AcquireOptions::wait_up_to(ACQUIRE_WAIT).with_ttl(args.ttl);
    loop {
        if std::os::unix::process::parent_id() != parent {
            break; // orphaned: the campaign is gone
        }
        let client = match &lock {
            Some(client) => client,
            None => match tokio::time::timeout(CALL_LIMIT, distlock::connect(&url)).await {
                Ok(Ok(client)) => lock.insert(client),
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "connect timed out".to_string(),
                    };
                    let _ = log.append(&WorkerEvent::AcquireFailed {
                        mono: mono_ns(),
                        error,
                    });
                    if pause_or_stop(&mut term, Duration::from_millis(200)).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let called = mono_ns();
        let acquired = tokio::select! {
            _ = term.recv() => break,
            r = tokio::time::timeout(CALL_LIMIT, client.acquire_opts(&args.name, &options)) => r,
        };
        let failure = match acquired {
            Ok(Ok(Some(guard))) => {
                if hold(&args, &mut log, &register, (called, guard), &mut term).await {
                    break;
                }
                None
            }
            Ok(Err(e)) if e.kind() == ErrorKind::Timeout => Some("timeout".to_string()),
            Ok(Err(e)) => Some(e.to_string()),
            Ok(Ok(None)) => Some("no hold".to_string()),
            Err(_) => Some("acquire call timed out".to_string()),
        };
        match failure {
            Some(error) => {
                let _ = log.append(&WorkerEvent::AcquireFailed {
                    mono: mono_ns(),
                    error,
                });
                if pause_or_stop(&mut term, Duration::from_millis(20)).await {
                    break;
                }
            }
            None => {
                let gap = rand::rng().random_range(0..10);
                if pause_or_stop(&mut term, Duration::from_millis(gap)).await {
                    break;
                }
            }
        }
    }
    let _ = log.append(&WorkerEvent::Exit { mono: mono_ns() });
    Ok(ExitCode::SUCCESS)
}

/// One hold: log it, write at its start and end, watch for its loss, release. Returns
/// whether SIGTERM arrived meanwhile (the hold is finished and released first).
async fn hold(
    args: &WorkerArgs,
    log: &mut Log,
    register: &Register,
    (called, guard): (u64, LockGuard),
    term: &mut tokio::signal::unix::Signal,
) -> bool {
    let token = guard.fencing_token();
    let _ = log.append(&WorkerEvent::Acquired {
        called,
        mono: mono_ns(),
        wall: wall_ns(),
        token,
    });
    let write = |log: &mut Log| {
        if let Some(token) = token {
            let accepted = register.write(&args.id, token).unwrap_or(false);
            let _ = log.append(&WorkerEvent::Write {
                mono: mono_ns(),
                token,
                accepted,
            });
        }
    };
    write(log);
    let work = Duration::from_millis(rand::rng().random_range(5..40));
    let mut stop = false;
    let lost = tokio::select! {
        e = guard.lost() => Some(e.to_string()),
        _ = tokio::time::sleep(work) => None,
        _ = term.recv() => { stop = true; None }
    };
    let lost = lost.or_else(|| (!guard.is_held()).then(|| "is_held() is false".to_string()));
    match &lost {
        Some(reason) => {
            let _ = log.append(&WorkerEvent::Lost {
                mono: mono_ns(),
                wall: wall_ns(),
                reason: reason.clone(),
            });
        }
        // The closing write: a holder frozen past its lease makes it late, and only the
        // fence stops it.
        None => write(log),
    }
    let called = mono_ns();
    let (result, detail) = match tokio::time::timeout(CALL_LIMIT, guard.release()).await {
        Ok(Ok(())) => (Release::Ok, String::new()),
        Ok(Err(e)) => (
            match e.kind() {
                ErrorKind::NotHeld => Release::NotHeld,
                ErrorKind::Lost => Release::Lost,
                _ => Release::Error,
            },
            e.to_string(),
        ),
        Err(_) => (Release::Error, "release call timed out".to_string()),
    };
    let _ = log.append(&WorkerEvent::Released {
        called,
        mono: mono_ns(),
        wall: wall_ns(),
        result,
        detail,
    });
    stop
}

/// Sleeps `d`; true when SIGTERM came instead.
async fn pause_or_stop(term: &mut tokio::signal::unix::Signal, d: Duration) -> bool {
    tokio::select! {
        _ = term.recv() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
