//! Running clean-up work in the background, when there is a runtime to run it on.
//!
//! A guard dropped without `release`, or an acquire cancelled halfway, can only undo what
//! it did in the background: `Drop` cannot await. Without a Tokio runtime there is nothing
//! to run the work on, and the store's backstop (TTL, session, connection close) frees the
//! lock instead. Every backend goes through [`spawn_background`], so that rule lives here.

use std::future::Future;

/// Spawns `task` on the current Tokio runtime; returns `false`, dropping `task` unrun, when
/// the calling thread is not inside a runtime. Never blocks and never panics, so it is safe
/// in `Drop`.
pub fn spawn_background<F>(task: F) -> bool
where
    F: Future<Output = ()> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            drop(runtime.spawn(task));
            true
        }
        Err(_) => {
            tracing::debug!("no Tokio runtime: background work skipped, the backstop applies");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_runtime_nothing_runs_and_nothing_panics() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        assert!(!spawn_background(async move {
            flag.store(true, std::sync::atomic::Ordering::SeqCst)
        }));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn with_a_runtime_the_task_runs() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        assert!(spawn_background(async move {
            let _ = tx.send(());
        }));
        assert!(rx.await.is_ok());
    }
}
