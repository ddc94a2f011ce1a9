//! Scoped locking: run a body while a lock is held, release on every exit path, cancel the
//! body when the hold is lost, and let nested scopes of the same task reuse the hold.
//!
//! The entry point is [`with_lock`] (also [`LockExt::with_lock`](crate::LockExt::with_lock)
//! on every client). Its exact contract:
//!
//! ```text
//! async fn with_lock<L, F, Fut, T, E>(client: &L, name: &str, options: &AcquireOptions, body: F)
//!     -> Result<T, E>
//! where L: DistributedLock + ?Sized,
//!       F: FnOnce(ScopedLock) -> Fut,
//!       Fut: Future<Output = Result<T, E>>,
//!       E: From<LockError>,
//! ```
//!
//! - **Acquire** as `options.wait` says. A lock that stays held elsewhere — for the whole
//!   [`Wait::Up`] limit, or at the single attempt of [`Wait::Try`] — yields error kind
//!   [`Timeout`](crate::ErrorKind::Timeout) and the body never runs (like Redisson's
//!   `tryLock` returning `false`; check `kind() == Timeout` to treat it as "busy").
//! - **Release** when the body returns (`Ok`, or `Err` through `?`), when it panics (the lock
//!   is released, then the panic resumes), and when the `with_lock` future itself is dropped
//!   (the guard is released in the background, as any dropped [`LockGuard`]).
//! - **Loss**: if the hold is lost while the body runs, the body is dropped at its next
//!   await point and the call returns error kind [`Lost`](crate::ErrorKind::Lost). A loss
//!   noticed when the body has just finished (or when the release finds the hold gone) also
//!   yields `Lost` and discards the body's value: the section may not have been exclusive.
//!   Other release failures (the store unreachable) are logged and the body's value is
//!   returned — the body did run under the hold, and the store's backstop frees it —
//!   unless the hold had been signalled lost by then: that is still `Lost`.
//! - **Task-scoped reentrancy**: inside a scope, a nested `with_lock` on the same name and
//!   the same client ([`DistributedLock::client_id`]), polled by the same task, reuses the
//!   outer hold without touching the store (its options are ignored); the lock is released
//!   when the outermost scope ends. A loss cancels every level. Futures spawned with
//!   `tokio::spawn` run in other tasks and contend normally; futures joined *inside* a
//!   scope's body (`join!`, `select!`) are part of the scope and share its hold, while
//!   futures joined *beside* it (siblings of the scope's own future) contend like any other
//!   caller. A nested scope still running when the outermost one ends (its future was
//!   carried out of the body) is stopped with `Lost`. Plain
//!   [`acquire`](crate::LockExt::acquire)/[`try_acquire`](crate::LockExt::try_acquire) are
//!   never reentrant, inside a scope or not.
//!
//! # Cancel safety
//! [`with_lock`] is cancel safe: dropping it while it waits leaves no hold behind, and
//! dropping it while the body runs drops the body and releases the lock in the background.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::watch;

use crate::client_id::ClientId;
use crate::error::{ErrorKind, LockError, Result};
use crate::guard::LockGuard;
use crate::lock::DistributedLock;
use crate::name::LockName;
use crate::options::{AcquireOptions, Wait};
use crate::status::LostSignal;

tokio::task_local! {
    // The holds of the scopes enclosing the code being polled. Each scope's body is polled
    // with its enclosing scopes' holds plus its own, so only code inside a body sees its
    // hold: a future joined *beside* a scope (a sibling in `join!`) does not, and a spawned
    // task starts without any.
    static OPEN_SCOPES: Arc<OpenScopes>;
}

#[derive(Default)]
struct OpenScopes {
    holds: Vec<Arc<SharedHold>>,
}

impl OpenScopes {
    fn find(&self, client: ClientId, name: &LockName) -> Option<Arc<SharedHold>> {
        self.holds
            .iter()
            .find(|h| h.client == client && &h.name == name && *h.open.borrow())
            .cloned()
    }

    /// These holds and `hold`: what the body of `hold`'s scope sees.
    fn with(&self, hold: Arc<SharedHold>) -> Self {
        let mut holds = self.holds.clone();
        holds.push(hold);
        OpenScopes { holds }
    }
}

/// Marks the outermost scope's hold closed when the scope ends, however it ends (also
/// when its future is dropped).
struct Registration(Arc<SharedHold>);

impl Drop for Registration {
    fn drop(&mut self) {
        self.0.open.send_replace(false);
    }
}

/// What every nesting level of one hold shares.
struct SharedHold {
    client: ClientId,
    name: LockName,
    fencing_token: Option<u64>,
    lost: LostSignal,
    /// `true` while the outermost scope runs; set to `false` before it releases, so that a
    /// nested scope carried out of it (returned, or spawned) stops instead of running on.
    open: watch::Sender<bool>,
    levels: AtomicUsize,
}

/// The body's view of the hold its scope runs under: owned and cheap to clone (an `Arc`),
/// so it can move into the body's `async move` block or into spawned tasks.
///
/// It cannot release the lock — the scope does that when the body ends.
#[derive(Clone)]
pub struct ScopedLock {
    hold: Arc<SharedHold>,
    depth: usize,
}

impl ScopedLock {
    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.hold.name
    }

    /// The hold's fencing token (the same at every nesting level); `None` when the backend
    /// does not claim fencing. Hand it to the resource the lock protects.
    pub fn fencing_token(&self) -> Option<u64> {
        self.hold.fencing_token
    }

    /// Whether the hold is still held: its scope is open and the hold was not lost.
    pub fn is_held(&self) -> bool {
        *self.hold.open.borrow() && !self.hold.lost.is_lost()
    }

    /// How deep this scope is nested in scopes of the same hold: 1 for the scope that
    /// acquired the lock, 2 for a scope nested in it, and so on.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// A cloneable signal of the hold's loss, e.g. for a spawned task.
    pub fn lost_signal(&self) -> LostSignal {
        self.hold.lost.clone()
    }

    /// Resolves with an error of kind [`Lost`](crate::ErrorKind::Lost) once the hold is lost;
    /// pending otherwise (also after a normal release).
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes state.
    pub async fn lost(&self) -> LockError {
        match self.hold.lost.clone().wait().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }
}

impl fmt::Debug for ScopedLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedLock")
            .field("name", &self.hold.name)
            .field("fencing_token", &self.hold.fencing_token)
            .field("depth", &self.depth)
            .field("held", &self.is_held())
            .finish()
    }
}

/// Acquires `name` on `client`, runs `body` while it is held, and releases it on every exit
/// path; see the [module docs](self) for the whole contract (busy lock → `Timeout`, loss →
/// `Lost`, panics, nesting). The body's own errors pass through unchanged; distlock's errors
/// reach the caller as `E::from(LockError)`.
///
/// This free function adds no `Send` bounds: its future is `Send` exactly when the body's
/// is. [`LockExt::with_lock`](crate::LockExt::with_lock) is the same call as a method.
///
/// # Cancel safety
/// Cancel safe: dropped while waiting, no hold is left behind; dropped while the body runs,
/// the body is dropped and the lock released in the background.
pub async fn with_lock<L, F, Fut, T, E>(
    client: &L,
    name: &str,
    options: &AcquireOptions,
    body: F,
) -> Result<T, E>
where
    L: DistributedLock + ?Sized,
    F: FnOnce(ScopedLock) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<LockError>,
{
    let name = LockName::new(name)?;
    let client_id = client.client_id();
    let scopes = OPEN_SCOPES.try_with(Arc::clone).ok();
    if let Some(outer) = scopes.as_ref().and_then(|s| s.find(client_id, &name)) {
        return nested(outer, body).await;
    }

    let guard = acquire(client, &name, options).await?;
    let hold = Arc::new(SharedHold {
        client: client_id,
        name,
        fencing_token: guard.fencing_token(),
        lost: guard.lost_signal(),
        open: watch::Sender::new(true),
        levels: AtomicUsize::new(1),
    });
    let inner = Arc::new(match &scopes {
        Some(scopes) => scopes.with(hold.clone()),
        None => OpenScopes::default().with(hold.clone()),
    });
    let outcome = {
        let _registration = Registration(hold.clone());
        OPEN_SCOPES.scope(inner, run_body(&hold, 1, body)).await
    };
    finish_outermost(guard, outcome).await
}

/// Takes the lock; contention that outlasts the wait (or the one try) is a `Timeout`.
async fn acquire<L: DistributedLock + ?Sized>(
    client: &L,
    name: &LockName,
    options: &AcquireOptions,
) -> Result<LockGuard> {
    match crate::observe::acquire(client, name, options).await? {
        Some(guard) => Ok(guard),
        None => Err(match options.wait {
            Wait::Try => LockError::timeout(format!("lock {name:?} is held elsewhere (one try)")),
            Wait::Up(limit) => LockError::timeout(format!(
                "lock {name:?} still held elsewhere after {limit:?}"
            )),
            Wait::Forever => LockError::backend("a wait-forever acquire returned without a hold"),
        }),
    }
}

/// A scope nested in an open scope of the same client and name: reuses its hold.
async fn nested<F, Fut, T, E>(hold: Arc<SharedHold>, body: F) -> Result<T, E>
where
    F: FnOnce(ScopedLock) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<LockError>,
{
    if let Some(e) = lost_error(&hold.lost) {
        return Err(e.into());
    }
    let depth = hold.levels.fetch_add(1, Ordering::SeqCst) + 1;
    let _level = Level(&hold);
    let mut open = hold.open.subscribe();
    // The outer scope's end first: once it has ended, the body must not be polled again
    // (whatever it did then would run after the release).
    let outcome = tokio::select! {
        biased;
        _ = open.wait_for(|open| !*open) => Outcome::Lost(outer_ended()),
        outcome = run_body(&hold, depth, body) => outcome,
    };
    match outcome {
        Outcome::Done(result) => match lost_error(&hold.lost) {
            Some(e) => Err(e.into()),
            None => result,
        },
        Outcome::Lost(e) => Err(e.into()),
        Outcome::Panicked(payload) => std::panic::resume_unwind(payload),
    }
}

/// A nested scope still running when its outermost scope ended (its future was carried
/// out of the outer body, e.g. returned or spawned): the lock is being released, so the
/// nested body is dropped as on a loss.
fn outer_ended() -> LockError {
    LockError::lost(
        "the outer scope holding this lock ended while a nested scope still ran; the nested \
         body was stopped",
    )
}

/// Counts a nesting level out, however it ends.
struct Level<'a>(&'a SharedHold);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.levels.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Outcome<R> {
    Done(R),
    Lost(LockError),
    Panicked(Box<dyn Any + Send>),
}

/// Runs the body until it ends or the hold is lost, whichever comes first; a panic in the
/// body is caught so the caller can release before resuming it.
async fn run_body<F, Fut, R>(hold: &Arc<SharedHold>, depth: usize, body: F) -> Outcome<R>
where
    F: FnOnce(ScopedLock) -> Fut,
    Fut: Future<Output = R>,
{
    let handle = ScopedLock {
        hold: hold.clone(),
        depth,
    };
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| body(handle))) {
        Ok(fut) => fut,
        Err(payload) => return Outcome::Panicked(payload),
    };
    let mut lost = hold.lost.clone();
    // Body first: when the body ends in the same poll that notices the loss, the caller
    // still sees the loss (it checks the signal afterwards), and nested levels get to
    // return `Lost` themselves before an outer level drops them.
    tokio::select! {
        biased;
        result = AssertUnwindSafe(fut).catch_unwind() => match result {
            Ok(value) => Outcome::Done(value),
            Err(payload) => Outcome::Panicked(payload),
        },
        Some(e) = lost.wait() => Outcome::Lost(e),
    }
}

/// Ends the outermost scope: releases the lock and picks what the caller gets.
async fn finish_outermost<T, E>(guard: LockGuard, outcome: Outcome<Result<T, E>>) -> Result<T, E>
where
    E: From<LockError>,
{
    let lost = guard.lost_signal();
    let released = guard.release().await;
    match outcome {
        Outcome::Panicked(payload) => std::panic::resume_unwind(payload),
        Outcome::Lost(e) => Err(e.into()),
        Outcome::Done(result) => match released {
            Ok(()) => result,
            Err(e) if matches!(e.kind(), ErrorKind::Lost) => Err(e.into()),
            Err(e) if matches!(e.kind(), ErrorKind::NotHeld) => Err(LockError::lost(
                "the hold was gone when the scope ended; the body may have run unprotected",
            )
            .with_source(e)
            .into()),
            // The release failed for another reason (the store unreachable), but the hold
            // was lost before: that loss is what the caller must hear of.
            Err(_) if lost.is_lost() => Err(lost_error(&lost)
                .unwrap_or_else(|| LockError::lost("the hold was lost before the scope ended"))
                .into()),
            Err(e) => {
                // The body ran under the hold; the store's backstop frees it. Failing the
                // call would invite a retry of work that already happened.
                tracing::warn!(error = %e, "releasing a scoped lock failed; the backstop frees it");
                result
            }
        },
    }
}

fn lost_error(signal: &LostSignal) -> Option<LockError> {
    if !signal.is_lost() {
        return None;
    }
    // Already lost: the wait resolves at once.
    futures::FutureExt::now_or_never(signal.clone().wait()).flatten()
}
