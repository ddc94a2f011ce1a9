//! Whether a hold is still held, and the lost signal built on it.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::error::LockError;
use crate::observe::{HoldObserver, LossReason};

#[derive(Clone, Debug)]
enum State {
    Held,
    Released,
    Lost(LockError),
}

/// The shared state of one hold. Backends keep a clone wherever they can notice the hold
/// being lost (a session watcher, a connection prober) and call [`HoldStatus::mark_lost`].
///
/// The state moves once, from held to released or from held to lost; later calls change
/// nothing, so a loss noticed after a normal release never fires.
#[derive(Clone, Debug)]
pub struct HoldStatus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: watch::Sender<State>,
    /// Set once the guard knows its backend and span (see [`crate::observe`]).
    observer: OnceLock<HoldObserver>,
}

impl Default for HoldStatus {
    fn default() -> Self {
        Self::new()
    }
}

impl HoldStatus {
    /// A new status in the held state.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(State::Held);
        HoldStatus {
            inner: Arc::new(Inner {
                tx,
                observer: OnceLock::new(),
            }),
        }
    }

    /// Records that the hold is lost, for a reason this status cannot tell better than
    /// [`LossReason::Backend`]. Returns whether this call changed the state.
    pub fn mark_lost(&self, error: LockError) -> bool {
        self.mark_lost_because(LossReason::Backend, error)
    }

    /// Records that the hold is lost for `reason` (the `reason` of the loss metric and
    /// event, see [`crate::observe`]). Returns whether this call changed the state.
    pub fn mark_lost_because(&self, reason: LossReason, error: LockError) -> bool {
        let event = self.observer().map(|o| (o, error.clone()));
        let changed = self.inner.tx.send_if_modified(|state| match state {
            State::Held => {
                *state = State::Lost(error);
                true
            }
            _ => false,
        });
        match (changed, event) {
            (true, Some((observer, error))) => observer.lost(reason, &error),
            (true, None) => {
                if let State::Lost(error) = &*self.inner.tx.borrow() {
                    crate::observe::unobserved_loss(reason, error);
                }
            }
            _ => {}
        }
        changed
    }

    /// Records a normal release. Returns whether this call changed the state.
    pub fn mark_released(&self) -> bool {
        let changed = self.inner.tx.send_if_modified(|state| match state {
            State::Held => {
                *state = State::Released;
                true
            }
            _ => false,
        });
        if changed {
            if let Some(observer) = self.observer() {
                observer.released();
            }
        }
        changed
    }

    pub(crate) fn observer(&self) -> Option<&HoldObserver> {
        self.inner.observer.get()
    }

    pub(crate) fn set_observer(&self, observer: HoldObserver) {
        let _ = self.inner.observer.set(observer);
    }

    /// Whether the hold is neither released nor lost.
    pub fn is_held(&self) -> bool {
        matches!(*self.inner.tx.borrow(), State::Held)
    }

    /// The loss, if the hold was lost.
    pub fn lost_error(&self) -> Option<LockError> {
        match &*self.inner.tx.borrow() {
            State::Lost(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// A signal that resolves when the hold ends.
    pub fn signal(&self) -> LostSignal {
        LostSignal {
            rx: self.inner.tx.subscribe(),
        }
    }

    /// Resolves as soon as the hold is released or lost. Background tasks of a hold
    /// (renewal, probing) select on this to stop.
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes state.
    pub async fn ended(&self) {
        let mut rx = self.inner.tx.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we borrow it.
        let _ = rx.wait_for(|s| !matches!(s, State::Held)).await;
    }
}

/// A detachable view of a guard's lost signal, for use in another task.
#[derive(Clone, Debug)]
pub struct LostSignal {
    rx: watch::Receiver<State>,
}

impl LostSignal {
    /// Whether the hold has been lost (not merely released).
    pub fn is_lost(&self) -> bool {
        matches!(*self.rx.borrow(), State::Lost(_))
    }

    /// Resolves when the hold ends: `Some(error)` of kind [`Lost`](crate::ErrorKind::Lost)
    /// when it was lost, `None` when it was released normally (or its guard leaked).
    /// A normal release therefore never yields a loss.
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes state.
    pub async fn wait(&mut self) -> Option<LockError> {
        match self.rx.wait_for(|s| !matches!(s, State::Held)).await {
            Ok(state) => match &*state {
                State::Lost(e) => Some(e.clone()),
                _ => None,
            },
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loss_after_release_never_fires() {
        let status = HoldStatus::new();
        let mut signal = status.signal();
        assert!(status.mark_released());
        assert!(!status.mark_lost(LockError::lost("late")));
        assert!(signal.wait().await.is_none());
        assert!(!signal.is_lost());
    }

    #[tokio::test]
    async fn loss_reaches_every_signal_once() {
        let status = HoldStatus::new();
        let mut a = status.signal();
        let mut b = a.clone();
        assert!(status.mark_lost(LockError::lost("gone")));
        assert!(!status.mark_lost(LockError::lost("again")));
        assert_eq!(a.wait().await.unwrap().message(), "gone");
        assert_eq!(b.wait().await.unwrap().message(), "gone");
        assert!(!status.mark_released());
        assert!(!status.is_held());
    }
}
