//! The nemesis: injects one kind of fault at a time, over and over, for a phase, and logs
//! each fault's start and end.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::args::Fault;
use super::history::{mono_ns, wall_ns, Log, NemesisEvent};
use super::proxy::Proxy;
use super::target::Target;
use super::workers::Workers;

/// The fault injector of one campaign.
#[derive(Debug)]
pub struct Nemesis<'a> {
    /// The backend (its backstop sets fault lengths; its server takes server faults).
    pub target: &'a Target,
    /// The proxy the workers connect through, if any.
    pub proxy: Option<&'a Proxy>,
    /// The workers (holder faults).
    pub workers: &'a mut Workers,
    /// The nemesis' history.
    pub log: Log,
}

impl Nemesis<'_> {
    /// How long a freeze lasts: well past the backstop, so it bites.
    fn freeze_length(&self) -> Duration {
        (self.target.backstop * 2).max(Duration::from_millis(700)) + Duration::from_millis(300)
    }

    /// Runs one phase of `fault` for `length`: a short quiet time, a fault, then quiet time
    /// past the backstop before each further fault. Every phase but `none` injects at
    /// least one fault, so a phase may run past `length` (by one fault and its recovery).
    ///
    /// # Cancel safety
    /// Not cancel safe: a dropped phase may leave a worker or the server frozen.
    pub async fn phase(&mut self, fault: Fault, length: Duration) -> std::io::Result<()> {
        let until = Instant::now() + length;
        self.log.append(&NemesisEvent::Phase {
            fault,
            mono: mono_ns(),
            wall: wall_ns(),
        })?;
        if fault == Fault::None {
            tokio::time::sleep_until(until).await;
            return Ok(());
        }
        let jitter = || Duration::from_millis(rand::rng().random_range(0..400));
        tokio::time::sleep(Duration::from_millis(300) + jitter()).await;
        loop {
            self.inject(fault).await?;
            // Recovery: the backstop passes, holds resume.
            let quiet = self.target.backstop.max(Duration::from_millis(400)) + jitter();
            let next = Instant::now() + quiet;
            if next + self.fault_length(fault) > until {
                break;
            }
            tokio::time::sleep_until(next).await;
        }
        tokio::time::sleep_until(until.max(Instant::now() + self.target.backstop)).await;
        Ok(())
    }

    fn fault_length(&self, fault: Fault) -> Duration {
        match fault {
            Fault::HolderStop | Fault::ConnFreeze | Fault::ServerPause => self.freeze_length(),
            _ => Duration::from_millis(100),
        }
    }

    async fn inject(&mut self, fault: Fault) -> std::io::Result<()> {
        let mut start = mono_ns();
        let mut end = None;
        let mut target = None;
        let detail = match fault {
            Fault::None => String::new(),
            Fault::HolderStop => {
                let slot = self.workers.holder().await;
                target = Some(self.workers.id(slot));
                start = mono_ns();
                self.workers.stop(slot, true);
                tokio::time::sleep(self.freeze_length()).await;
                self.workers.stop(slot, false);
                format!("SIGSTOP for {:?}", self.freeze_length())
            }
            Fault::HolderKill => {
                let slot = self.workers.holder().await;
                target = Some(self.workers.id(slot));
                // The worker acts no more once SIGKILL is sent; the fault ends when it is
                // reaped, before its successor starts.
                start = mono_ns();
                end = Some(self.workers.kill_and_respawn(slot).await?);
                "SIGKILL, respawned".to_string()
            }
            Fault::ConnCut => {
                if let Some(proxy) = self.proxy {
                    proxy.cut_all();
                }
                "every connection closed".to_string()
            }
            Fault::ConnFreeze => {
                if let Some(proxy) = self.proxy {
                    proxy.freeze(true);
                    tokio::time::sleep(self.freeze_length()).await;
                    proxy.freeze(false);
                }
                format!("no forwarding for {:?}", self.freeze_length())
            }
            Fault::ServerPause => {
                if let Some(server) = &self.target.server {
                    server.pause();
                    tokio::time::sleep(self.freeze_length()).await;
                    server.resume();
                }
                format!("server SIGSTOP for {:?}", self.freeze_length())
            }
            Fault::ServerRestart => match &self.target.server {
                Some(server) => {
                    tokio::task::block_in_place(|| server.restart())?;
                    "server SIGKILL and restart".to_string()
                }
                None => String::new(),
            },
            Fault::SessionKill => match &self.target.server {
                Some(server) => tokio::task::block_in_place(|| server.kill_sessions())
                    .unwrap_or_else(|e| format!("failed: {e}")),
                None => String::new(),
            },
        };
        self.log.append(&NemesisEvent::Fault {
            fault,
            start,
            end: end.unwrap_or_else(mono_ns),
            target,
            detail,
        })
    }
}
