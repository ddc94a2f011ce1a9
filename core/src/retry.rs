//! The one retry policy for connection failures during a wait.
//!
//! A try reports a connection failure at once. A waiting acquire rides out an outage (a
//! restart, a leader election, a failover) the way Curator's `ExponentialBackoffRetry`
//! does: it pauses with jittered, doubling backoff and tries again, until its deadline, but
//! gives up with the last error after a run of failures lasting
//! [`RetryPolicy::give_up_after`], even when it waits forever, so that a store that is gone
//! surfaces as an error instead of a silent hang.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::error::{ErrorKind, Result};

/// How a waiting acquire treats connection failures (error kind
/// [`Connection`](crate::ErrorKind::Connection)). Part of
/// [`AcquireOptions`](crate::AcquireOptions); every backend applies it.
///
/// The default pauses 50 ms after the first failure, doubling up to 1 s, each pause drawn
/// at random from its upper half (so clients cut off together do not come back in
/// lockstep), and gives up after 15 s of failures in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause after the first failure of a run.
    pub first_pause: Duration,
    /// The longest pause.
    pub max_pause: Duration,
    /// How long a run of failures may last before the acquire returns the last one. Zero
    /// turns retrying off: a waiting acquire then fails on its first connection failure.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_pause: Duration::from_millis(50),
            max_pause: Duration::from_secs(1),
            give_up_after: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// No retries: a connection failure ends every acquire at once.
    pub fn never() -> Self {
        RetryPolicy {
            give_up_after: Duration::ZERO,
            ..Self::default()
        }
    }

    /// Sets how long a run of failures may last.
    pub fn with_give_up_after(mut self, limit: Duration) -> Self {
        self.give_up_after = limit;
        self
    }
}

/// The pauses of a [`RetryPolicy`]: from `first_pause`, doubling up to `max_pause`, each
/// drawn at random from its upper half so clients cut off together do not come back in
/// lockstep. For every loop that pauses between tries (an acquire's retries, a reconnecting
/// subscriber, a background clean-up), so that backoff is defined once.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `policy.first_pause`.
    pub fn new(policy: &RetryPolicy) -> Self {
        Backoff {
            first: policy.first_pause,
            max: policy.max_pause,
            next: policy.first_pause,
        }
    }

    /// The next pause (jittered), doubling the one after it.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next.mul_f64(rand::random_range(0.5..=1.0));
        self.next = self.next.saturating_mul(2).min(self.max);
        pause
    }

    /// Back to the first pause, after a success.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The state of one acquire's retries: when its current run of failures began and the next
/// pause. Backends with a loop of their own call [`ConnectionRetry::after_failure`] on each
/// connection failure; the others use [`retry_connection_failures`].
#[derive(Debug)]
pub struct ConnectionRetry {
    policy: RetryPolicy,
    first_failure: Option<Instant>,
    last_failure: Option<Instant>,
    backoff: Backoff,
}

impl ConnectionRetry {
    /// A fresh run.
    pub fn new(policy: RetryPolicy) -> Self {
        ConnectionRetry {
            policy,
            first_failure: None,
            last_failure: None,
            backoff: Backoff::new(&policy),
        }
    }

    /// An attempt reached the store: the next failure starts a new run.
    pub fn progressed(&mut self) {
        self.first_failure = None;
        self.last_failure = None;
        self.backoff.reset();
    }

    /// After a connection failure: how long to pause before the next attempt, or `None` to
    /// give up (a try, the run lasted too long, or the pause would reach the deadline).
    pub fn after_failure(&mut self, deadline: &Deadline) -> Option<Duration> {
        if deadline.is_try() {
            return None;
        }
        let now = Instant::now();
        // An attempt that failed longer than the whole allowance after the previous
        // failure must have reached the store and waited there: a new run.
        if self
            .last_failure
            .is_some_and(|last| now.duration_since(last) > self.policy.give_up_after)
        {
            self.progressed();
        }
        self.last_failure = Some(now);
        let first = *self.first_failure.get_or_insert(now);
        let pause = self.backoff.next_pause();
        let resume_at = now + pause;
        let within_run = resume_at.duration_since(first) < self.policy.give_up_after;
        let within_wait = deadline.at().is_none_or(|at| resume_at < at);
        (within_run && within_wait).then_some(pause)
    }
}

/// Runs `attempt` until it succeeds or fails with anything but a connection failure,
/// retrying connection failures as `policy` says within `deadline`. Each attempt gets the
/// time left (see [`Deadline::remaining_wait`]); the last error is returned on giving up.
///
/// # Cancel safety
/// As cancel safe as `attempt`: dropping this drops the running attempt.
pub async fn retry_connection_failures<T, F, Fut>(
    deadline: &Deadline,
    policy: &RetryPolicy,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut retry = ConnectionRetry::new(*policy);
    loop {
        match attempt().await {
            Err(e) if e.kind() == ErrorKind::Connection => match retry.after_failure(deadline) {
                Some(pause) => {
                    tracing::debug!(error = %e, ?pause, "store unreachable; retrying the acquire");
                    tokio::time::sleep(pause).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LockError;
    use crate::options::Wait;

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_its_run_and_starts_over_after_progress() {
        let policy = RetryPolicy::default().with_give_up_after(Duration::from_secs(4));
        let forever = Deadline::start(Wait::Forever);
        let mut retry = ConnectionRetry::new(policy);
        let (mut failing, mut pauses) = (Duration::ZERO, Vec::new());
        while let Some(pause) = retry.after_failure(&forever) {
            assert!(pause <= policy.max_pause);
            pauses.push(pause);
            tokio::time::advance(pause).await;
            failing += pause;
        }
        assert!(failing < Duration::from_secs(4), "{failing:?}");
        assert!(failing > Duration::from_secs(2), "{failing:?}");
        // Doubling from 50 ms (jittered into the upper half), capped at 1 s.
        assert!(pauses[0] >= Duration::from_millis(25) && pauses[0] <= policy.first_pause);
        assert!(pauses[1] >= Duration::from_millis(50) && pauses[1] <= Duration::from_millis(100));
        assert!(pauses.iter().any(|p| *p >= Duration::from_millis(500)));

        // Progress starts a new run; so does an attempt that failed long after the last one.
        retry.progressed();
        assert!(retry
            .after_failure(&forever)
            .is_some_and(|p| p <= policy.first_pause));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(retry
            .after_failure(&forever)
            .is_some_and(|p| p <= policy.first_pause));
    }

    #[tokio::test(start_paused = true)]
    async fn a_try_never_retries_and_a_deadline_cuts_the_run() {
        let mut retry = ConnectionRetry::new(RetryPolicy::default());
        assert_eq!(retry.after_failure(&Deadline::start(Wait::Try)), None);
        let soon = Deadline::start(Wait::Up(Duration::from_millis(10)));
        assert_eq!(retry.after_failure(&soon), None);
        let mut never = ConnectionRetry::new(RetryPolicy::never());
        assert_eq!(never.after_failure(&Deadline::start(Wait::Forever)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_driver_rides_out_an_outage_and_returns_other_errors_at_once() {
        let deadline = Deadline::start(Wait::Up(Duration::from_secs(30)));
        let policy = RetryPolicy::default();
        let start = Instant::now();
        let mut calls = 0;
        let got = retry_connection_failures(&deadline, &policy, || {
            calls += 1;
            let down = start.elapsed() < Duration::from_secs(5);
            async move {
                if down {
                    Err(LockError::connection("refused"))
                } else {
                    Ok(calls)
                }
            }
        })
        .await;
        assert!(got.is_ok(), "{got:?}");
        assert!(
            start.elapsed() < Duration::from_secs(7),
            "{:?}",
            start.elapsed()
        );

        let mut calls = 0;
        let err = retry_connection_failures(&deadline, &policy, || {
            calls += 1;
            async { Err::<(), _>(LockError::config("bad")) }
        })
        .await
        .unwrap_err();
        assert_eq!((err.kind(), calls), (ErrorKind::Config, 1));

        // An outage longer than the run gives up with the connection error.
        let start = Instant::now();
        let err = retry_connection_failures(&Deadline::start(Wait::Forever), &policy, || async {
            Err::<(), _>(LockError::connection("refused"))
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection);
        let took = start.elapsed();
        assert!(
            took < policy.give_up_after && took > policy.give_up_after - policy.max_pause * 2,
            "{took:?}"
        );
    }
}
