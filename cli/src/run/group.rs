//! The job: the command's process group, plus every process of it that escaped the group
//! but was re-parented to us (we are a child subreaper, see the module docs of `run`).
//!
//! "Gone" means no live process is left in the group and no live process has us as its
//! parent. The kernel has no notification for an empty process group (short of cgroups),
//! so after the leader has exited, the survivors are looked up in `/proc` every few
//! milliseconds until none is left.

use std::future::Future;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{
    getpid, kill_process, kill_process_group, waitpid, Pid, Signal, WaitOptions,
};
use tokio::process::{Child, Command};

/// How often the survivors of a stopping job are looked up.
const SURVEY_EVERY: Duration = Duration::from_millis(10);

/// A running command in a process group of its own.
#[derive(Debug)]
pub(crate) struct Job {
    leader: Child,
    pgid: Pid,
    status: Option<ExitStatus>,
}

impl Job {
    /// Starts `command` as the leader of a new process group.
    pub(crate) fn spawn(mut command: Command) -> std::io::Result<Job> {
        command.process_group(0).kill_on_drop(false);
        let leader = command.spawn()?;
        let pgid = leader
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw)
            .ok_or_else(|| std::io::Error::other("the command has no process id"))?;
        Ok(Job {
            leader,
            pgid,
            status: None,
        })
    }

    /// Waits for the leader (the command itself) to exit; its status.
    ///
    /// # Cancel safety
    /// Cancel safe: the status is kept once collected.
    pub(crate) async fn wait_leader(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.leader.wait().await?;
        self.status = Some(status);
        Ok(status)
    }

    /// Sends `signo` to the group and to every escaped process re-parented to us.
    pub(crate) fn signal(&self, signo: Signal) {
        let _ = kill_process_group(self.pgid, signo);
        for pid in survivors(self.pgid) {
            let _ = kill_process(pid, signo);
        }
    }

    /// Collects the exit status of re-parented processes that died (never the leader's,
    /// which belongs to [`Job::wait_leader`]).
    pub(crate) fn reap_orphans(&self) {
        reap_orphans(self.leader_pid());
    }

    fn leader_pid(&self) -> Option<Pid> {
        match self.status {
            Some(_) => None,
            None => Some(self.pgid),
        }
    }

    /// Stops the job: SIGTERM, then SIGKILL after `grace` or as soon as `escalate`
    /// resolves, and returns once the leader and every other process of the job are gone.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped midway, the job may be left running. Await it to the end.
    pub(crate) async fn stop(&mut self, grace: Duration, escalate: impl Future<Output = ()>) {
        if self.gone_now() {
            return;
        }
        self.signal(Signal::TERM);
        tokio::select! {
            () = self.gone() => return,
            () = tokio::time::sleep(grace) => {
                tracing::info!(?grace, "the command outlived its grace period: SIGKILL");
            }
            () = escalate => tracing::info!("stopping the command at once: SIGKILL"),
        }
        self.signal(Signal::KILL);
        // Killed processes can still fork until the signal lands: every round kills again.
        loop {
            tokio::select! {
                () = self.gone() => return,
                () = tokio::time::sleep(SURVEY_EVERY * 5) => self.signal(Signal::KILL),
            }
        }
    }

    /// Whether the leader has exited and nothing else of the job is left, right now.
    fn gone_now(&mut self) -> bool {
        if self.status.is_none() {
            match self.leader.try_wait() {
                Ok(Some(status)) => self.status = Some(status),
                Ok(None) => return false,
                Err(_) => {}
            }
        }
        self.reap_orphans();
        survivors(self.pgid).is_empty()
    }

    /// Resolves once the leader has exited and nothing else of the job is left.
    ///
    /// # Cancel safety
    /// Cancel safe: it only waits and reaps.
    async fn gone(&mut self) {
        // An error means the leader cannot be waited for any more (already reaped).
        let _ = self.wait_leader().await;
        loop {
            if self.gone_now() {
                return;
            }
            tokio::time::sleep(SURVEY_EVERY).await;
        }
    }
}

/// Kills every process re-parented to us and its process group, and waits until none is
/// left: the last resort when the lock holder died and its command came to us.
pub(crate) async fn kill_orphans() {
    loop {
        reap_orphans(None);
        let left = children(getpid());
        if left.is_empty() {
            return;
        }
        for pid in left {
            let _ = kill_process_group(pid, Signal::KILL);
            let _ = kill_process(pid, Signal::KILL);
        }
        tokio::time::sleep(SURVEY_EVERY).await;
    }
}

/// Reaps dead children of ours other than `except` (a child whose status another owner
/// collects: the leader, waited for by tokio).
fn reap_orphans(except: Option<Pid>) {
    let me = getpid();
    for_each_process(|pid, state, ppid, _| {
        if state == 'Z' && ppid == me && Some(pid) != except {
            let _ = waitpid(Some(pid), WaitOptions::NOHANG);
        }
    });
}

/// The live processes of group `pgid` and the live children of ours.
fn survivors(pgid: Pid) -> Vec<Pid> {
    let me = getpid();
    let mut found = Vec::new();
    for_each_process(|pid, state, ppid, group| {
        if state != 'Z' && pid != me && (group == pgid || ppid == me) {
            found.push(pid);
        }
    });
    found
}

/// Our children, live or dead (not yet reaped).
fn children(parent: Pid) -> Vec<Pid> {
    let mut found = Vec::new();
    for_each_process(|pid, state, ppid, _| {
        if ppid == parent && state != 'Z' {
            found.push(pid);
        }
    });
    found
}

/// Calls `f(pid, state, ppid, pgid)` for every process in `/proc`.
fn for_each_process(mut f: impl FnMut(Pid, char, Pid, Pid)) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, ppid, pgid)) = parse_stat(&stat) {
            f(pid, state, ppid, pgid);
        }
    }
}

/// State, parent and process group from `/proc/PID/stat` (after the `(comm)` field, which
/// may itself hold spaces and parentheses).
fn parse_stat(stat: &str) -> Option<(char, Pid, Pid)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse::<i32>().ok()?;
    let pgid = fields.next()?.parse::<i32>().ok()?;
    // Pid 0 (no parent) becomes a pid no process has.
    let pid = |raw: i32| Pid::from_raw(raw).or(Pid::from_raw(i32::MAX));
    Some((state, pid(ppid)?, pid(pgid)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names() {
        let (state, ppid, pgid) = parse_stat("42 (a) b (c)) S 7 42 42 0 -1 4194560 ...").unwrap();
        assert_eq!(state, 'S');
        assert_eq!(ppid.as_raw_nonzero().get(), 7);
        assert_eq!(pgid.as_raw_nonzero().get(), 42);
        assert!(parse_stat("garbage").is_none());
    }
}
