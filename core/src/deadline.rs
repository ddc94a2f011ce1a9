//! The one way an acquire turns its [`Wait`] into a deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::options::Wait;

/// When a waiting acquire must give up, fixed when the acquire starts.
///
/// Built once per acquire with [`Deadline::start`], which also settles the edge cases every
/// backend must treat alike: a zero limit is a [`Wait::Try`] (one attempt, never an attempt
/// cut off before its reply), and a limit past the clock's range (`Duration::MAX`) is a very
/// long wait rather than an overflow panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    wait: Wait,
    at: Option<Instant>,
}

impl Deadline {
    /// The deadline of an acquire that starts now.
    pub fn start(wait: Wait) -> Self {
        let wait = match wait {
            Wait::Up(limit) if limit.is_zero() => Wait::Try,
            other => other,
        };
        // A try or an unbounded wait has no end to compute: no clock read (a measurable
        // share of an in-memory try_acquire).
        let at = match wait {
            Wait::Up(_) => wait.deadline_from(Instant::now()),
            Wait::Try | Wait::Forever => None,
        };
        Deadline { wait, at }
    }

    /// The wait, with a zero limit turned into [`Wait::Try`].
    pub fn wait(&self) -> Wait {
        self.wait
    }

    /// Whether this is a single attempt.
    pub fn is_try(&self) -> bool {
        self.wait == Wait::Try
    }

    /// The instant a limited wait ends; `None` for a try and for waiting forever.
    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    /// Whether a limited wait has run out.
    pub fn expired(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// The time left of a limited wait (zero once it ran out); `None` when unlimited.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The wait left, for a step that takes a [`Wait`]: the remaining time of a limited
    /// wait, otherwise the wait itself.
    pub fn remaining_wait(&self) -> Wait {
        match (self.wait, self.remaining()) {
            (Wait::Up(_), Some(left)) => Wait::Up(left),
            (other, _) => other,
        }
    }

    /// `pause`, cut to the time left.
    pub fn cap(&self, pause: Duration) -> Duration {
        self.remaining().map_or(pause, |left| pause.min(left))
    }

    /// Runs `work` until it finishes or the deadline passes (`None` then). Unlimited waits
    /// and tries run `work` to its end, bounded only by the backend's own timeouts.
    ///
    /// # Cancel safety
    /// As cancel safe as `work`: dropping this drops `work`.
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        match self.at {
            Some(at) => tokio::time::timeout_at(at, work).await.ok(),
            None => Some(work.await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_limited_wait_counts_down_and_cuts_work() {
        let deadline = Deadline::start(Wait::Up(Duration::from_secs(2)));
        assert!(!deadline.is_try() && !deadline.expired());
        assert_eq!(deadline.remaining(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(
            deadline.remaining_wait(),
            Wait::Up(Duration::from_millis(500))
        );
        assert_eq!(
            deadline.cap(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        let cut = deadline
            .run(tokio::time::sleep(Duration::from_secs(1)))
            .await;
        assert!(cut.is_none() && deadline.expired());
        assert_eq!(deadline.remaining(), Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn edge_cases_are_settled_once() {
        assert!(Deadline::start(Wait::Up(Duration::ZERO)).is_try());
        let huge = Deadline::start(Wait::Up(Duration::MAX));
        assert!(!huge.expired() && huge.remaining() > Some(Duration::from_secs(86_400)));
        let forever = Deadline::start(Wait::Forever);
        assert_eq!((forever.at(), forever.remaining()), (None, None));
        assert_eq!(forever.cap(Duration::from_secs(9)), Duration::from_secs(9));
        assert_eq!(forever.run(async { 7 }).await, Some(7));
        assert_eq!(Deadline::start(Wait::Try).remaining_wait(), Wait::Try);
    }
}
