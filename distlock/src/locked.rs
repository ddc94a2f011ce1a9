//! What `#[distlock::locked]` expands to call. Not a public API: names may change.

use std::future::Future;

use distlock_core::{scope, AcquireOptions, DistributedLock, LockError, ScopedLock};

/// The return types a `#[distlock::locked]` function may have.
#[diagnostic::on_unimplemented(
    message = "#[distlock::locked] functions must return `Result<T, E>` where `E: From<distlock::LockError>`, not `{Self}`",
    label = "the return type of a #[distlock::locked] fn",
    note = "a lock that stays held elsewhere for the whole wait, or is lost, is returned as `E::from(LockError)`"
)]
pub trait LockedReturn: Sized {
    /// The success type.
    type Ok;
    /// The error type, which takes distlock's errors.
    type Err: From<LockError>;
    /// Splits the value into a `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
    /// Builds the value back.
    fn from_result(result: Result<Self::Ok, Self::Err>) -> Self;
}

impl<T, E: From<LockError>> LockedReturn for Result<T, E> {
    type Ok = T;
    type Err = E;

    fn into_result(self) -> Self {
        self
    }

    fn from_result(result: Self) -> Self {
        result
    }
}

/// Runs the body of a `#[locked]` fn under `name` on `client`.
///
/// # Cancel safety
/// As [`scope::with_lock`].
pub async fn locked<L, F, Fut, R>(client: &L, name: String, options: AcquireOptions, body: F) -> R
where
    L: DistributedLock + ?Sized,
    F: FnOnce(ScopedLock) -> Fut,
    Fut: Future<Output = R>,
    R: LockedReturn,
{
    R::from_result(
        scope::with_lock(client, &name, &options, |guard| async move {
            body(guard).await.into_result()
        })
        .await,
    )
}

/// Runs the body of a `#[locked]` fn on the process-wide default client.
///
/// # Cancel safety
/// As [`scope::with_lock`].
pub async fn locked_default<F, Fut, R>(name: String, options: AcquireOptions, body: F) -> R
where
    F: FnOnce(ScopedLock) -> Fut,
    Fut: Future<Output = R>,
    R: LockedReturn,
{
    match crate::default_client().await {
        Ok(client) => locked(&client, name, options, body).await,
        Err(e) => R::from_result(Err(e.into())),
    }
}
