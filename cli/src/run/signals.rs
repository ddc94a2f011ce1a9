//! The signals that normally stop `distlock` (SIGINT, SIGTERM, SIGHUP), caught from the
//! start so that none of them kills distlock while it waits for or holds a lock.
//!
//! The lock holder also catches [`ESCALATE`]: the front sends it, instead of passing on a
//! second stopping signal, to ask for SIGKILL. The holder cannot count stopping signals
//! itself: under a service manager that signals every process of the service (systemd's
//! `KillMode=control-group`), the holder gets the manager's SIGTERM *and* the one the front
//! passes on, and two of them must not cut the command's grace period short.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The signal the front sends the holder to have the command killed at once.
pub(crate) const ESCALATE: i32 = libc::SIGUSR2;

/// The caught signals.
#[derive(Debug)]
pub(crate) struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    escalate: Option<Signal>,
}

impl Signals {
    /// Catches SIGINT, SIGTERM and SIGHUP from now on.
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            escalate: None,
        })
    }

    /// Catches [`ESCALATE`] as well (the lock holder).
    pub(crate) fn install_with_escalation() -> std::io::Result<Self> {
        let mut signals = Signals::install()?;
        signals.escalate = Some(signal(SignalKind::from_raw(ESCALATE))?);
        Ok(signals)
    }

    /// The number of the next signal received.
    ///
    /// # Cancel safety
    /// Cancel safe: a signal that arrives meanwhile is kept for the next call.
    pub(crate) async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.int.recv() => libc::SIGINT,
            _ = self.hup.recv() => libc::SIGHUP,
            Some(()) = async {
                match self.escalate.as_mut() {
                    Some(escalate) => escalate.recv().await,
                    None => std::future::pending().await,
                }
            } => ESCALATE,
        }
    }
}
