//! How long to wait for a lock and how long a hold lasts.

use std::time::Duration;

use tokio::time::Instant;

use crate::lease::saturating_add;
use crate::retry::RetryPolicy;

/// The default lease of backends whose holds expire (Redis): 30 s, renewed every 10 s.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// How an acquire waits when the lock is held elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// One attempt; contention yields `Ok(None)`.
    Try,
    /// Wait up to this long; running out yields `Ok(None)` from the trait method and
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) from the convenience methods.
    Up(Duration),
    /// Wait until the lock is taken (or an error occurs).
    Forever,
}

impl Wait {
    /// When a wait that starts at `start` must give up (backends use
    /// [`Deadline::start`](crate::backend::Deadline::start), which builds on this): `None` for [`Wait::Try`] and
    /// [`Wait::Forever`]. Saturates instead of overflowing, so `Wait::Up(Duration::MAX)`
    /// is a very long wait rather than a panic.
    pub fn deadline_from(self, start: Instant) -> Option<Instant> {
        match self {
            Wait::Up(limit) => Some(saturating_add(start, limit)),
            Wait::Try | Wait::Forever => None,
        }
    }
}

/// Options for one acquire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcquireOptions {
    /// How to wait.
    pub wait: Wait,
    /// Lease length for backends whose holds expire; `None` means the backend's default
    /// ([`DEFAULT_LEASE_TTL`]). Ignored by backends without leases.
    pub ttl: Option<Duration>,
    /// Whether the guard renews the lease in the background (every TTL/3). With renewal off
    /// the hold ends when its lease runs out and the guard reports it lost at that moment.
    pub renew: bool,
    /// How a waiting acquire treats connection failures: retried with backoff, within the
    /// wait, for a bounded run (see [`RetryPolicy`]). A try never retries.
    pub retry: RetryPolicy,
}

impl Default for AcquireOptions {
    fn default() -> Self {
        AcquireOptions {
            wait: Wait::Forever,
            ttl: None,
            renew: true,
            retry: RetryPolicy::default(),
        }
    }
}

impl AcquireOptions {
    /// One attempt, no waiting.
    pub fn try_once() -> Self {
        Self::default().with_wait(Wait::Try)
    }

    /// Wait up to `limit`.
    pub fn wait_up_to(limit: Duration) -> Self {
        Self::default().with_wait(Wait::Up(limit))
    }

    /// Wait until acquired.
    pub fn wait_forever() -> Self {
        Self::default()
    }

    /// Sets how to wait.
    pub fn with_wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// Sets the lease length.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Turns background renewal on or off.
    pub fn with_renewal(mut self, renew: bool) -> Self {
        self.renew = renew;
        self
    }

    /// Sets the retry policy for connection failures during a wait.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The lease length to use: the option or [`DEFAULT_LEASE_TTL`].
    pub fn ttl_or_default(&self) -> Duration {
        self.ttl.unwrap_or(DEFAULT_LEASE_TTL)
    }
}
