//! Supervision: no server outlives the test process. Every spawn happens on one thread
//! that lives as long as the process (so the parent-death signal fires only when the
//! process dies), live servers are registered so an exit hook kills them, and a panic
//! prints their log tails.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::{Mutex, Once, OnceLock};
use std::thread;

use super::log::tail;

pub(super) struct Live {
    pub(super) pid: u32,
    pub(super) label: String,
    pub(super) log: PathBuf,
}

fn live() -> &'static Mutex<HashMap<u64, Live>> {
    static LIVE: OnceLock<Mutex<HashMap<u64, Live>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

pub(super) fn lock_live() -> std::sync::MutexGuard<'static, HashMap<u64, Live>> {
    live().lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(super) type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Children get PR_SET_PDEATHSIG, which fires when the *thread* that forked them exits, so
/// every spawn happens on this one thread that lives until the process ends.
pub(super) fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the testkit spawner thread");
        Mutex::new(tx)
    })
}

#[allow(unsafe_code)]
pub(super) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The test process died between fork and prctl: the signal will never come.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::other("the test process is gone"));
            }
            Ok(())
        });
    }
}

extern "C" fn kill_all_at_exit() {
    // try_lock: a thread still inside `spawn`/`kill` at exit must not hang the exit; the
    // parent-death signal covers those servers anyway.
    let live = match live().try_lock() {
        Ok(live) => live,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for live in live.values() {
        signal(live.pid, libc::SIGCONT);
        signal(live.pid, libc::SIGKILL);
    }
}

#[allow(unsafe_code)]
pub(super) fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) with a pid we spawned; no memory is shared.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

pub(super) fn install_hooks() {
    static HOOKS: Once = Once::new();
    HOOKS.call_once(|| {
        #[allow(unsafe_code)]
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(kill_all_at_exit);
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            dump_live_logs();
        }));
    });
}

/// Prints the last lines of every live server's log to stderr.
pub fn dump_live_logs() {
    let entries: Vec<(String, u32, PathBuf)> = lock_live()
        .values()
        .map(|l| (l.label.clone(), l.pid, l.log.clone()))
        .collect();
    for (label, pid, log) in entries {
        eprintln!(
            "---- testkit: last lines of {label} (pid {pid}) log {} ----\n{}",
            log.display(),
            tail(&log, 40)
        );
    }
}
