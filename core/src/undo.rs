//! The arm/disarm guard that undoes a half-done acquire.
//!
//! An acquire sends something to the store (a `SET NX`, a contender node, a session that may
//! be granted a lock) before it knows whether the caller will ever own the result. Until it
//! hands a guard to the caller, an [`Armed`] holds what is needed to undo that; if the
//! acquire fails or its future is dropped, the undo runs in the background (see
//! [`spawn_background`](crate::backend::spawn_background)), and without a runtime the store's
//! backstop frees it.

use std::fmt;
use std::future::Future;

use crate::background::spawn_background;

/// What a backend does to undo a half-done acquire. The work must be idempotent and must
/// only ever remove this acquire's own traces (match the owner token), because it may land
/// after the store already forgot them.
pub trait Undo: Send + 'static {
    /// The undo, run in the background; called at most once, from `Drop`, so it may take
    /// (`std::mem::take`) what it needs out of `self`.
    fn undo(&mut self) -> impl Future<Output = ()> + Send + 'static;
}

/// Holds an [`Undo`] and runs it on drop while armed.
///
/// Arm it before sending a request that may take the lock; disarm it once the outcome is
/// known and owned (a guard was built, or the store said no). Backends keep the undo's state
/// in it and update it as the acquire learns more (for example, the node's path).
pub struct Armed<U: Undo> {
    undo: U,
    armed: bool,
}

impl<U: Undo> Armed<U> {
    /// Armed from the start.
    pub fn new(undo: U) -> Self {
        Armed { undo, armed: true }
    }

    /// Disarmed until [`Armed::arm`].
    pub fn disarmed(undo: U) -> Self {
        Armed { undo, armed: false }
    }

    /// A request that may take the lock is about to be sent.
    pub fn arm(&mut self) {
        self.armed = true;
    }

    /// The outcome is known and owned: nothing to undo on drop.
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// Whether a drop would run the undo.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// The undo's state.
    pub fn state(&self) -> &U {
        &self.undo
    }

    /// The undo's state, to record what the acquire learned.
    pub fn state_mut(&mut self) -> &mut U {
        &mut self.undo
    }
}

impl<U: Undo> Drop for Armed<U> {
    fn drop(&mut self) {
        if self.armed {
            spawn_background(self.undo.undo());
        }
    }
}

impl<U: Undo> fmt::Debug for Armed<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Armed")
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Signal(tokio::sync::mpsc::UnboundedSender<u32>, u32);

    impl Undo for Signal {
        fn undo(&mut self) -> impl Future<Output = ()> + Send + 'static {
            let (tx, n) = (self.0.clone(), self.1);
            async move {
                let _ = tx.send(n);
            }
        }
    }

    #[tokio::test]
    async fn runs_only_when_dropped_armed() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        drop(Armed::new(Signal(tx.clone(), 1)));
        let mut disarmed = Armed::new(Signal(tx.clone(), 2));
        disarmed.disarm();
        drop(disarmed);
        let mut rearmed = Armed::disarmed(Signal(tx.clone(), 3));
        rearmed.arm();
        rearmed.state_mut().1 = 4;
        drop(rearmed);
        drop(tx);
        let mut seen = Vec::new();
        while let Some(n) = rx.recv().await {
            seen.push(n);
        }
        assert_eq!(seen, vec![1, 4]);
    }
}
