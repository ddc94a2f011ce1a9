//! `#[distlock::locked]`: the lock's name (module path prefix, absolute names, several
//! arguments), the wait and lease arguments, clients from expressions and the default,
//! reentrancy, and the error conversion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use distlock::memory::MemoryLock;
use distlock::{DistributedLock, ErrorKind, LockError, LockExt};

const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum AppError {
    Lock(LockError),
    Declined,
}

impl From<LockError> for AppError {
    fn from(e: LockError) -> Self {
        AppError::Lock(e)
    }
}

fn lock_kind<T: std::fmt::Debug>(r: Result<T, AppError>) -> ErrorKind {
    match r {
        Err(AppError::Lock(e)) => e.kind(),
        other => panic!("expected a lock error, got {other:?}"),
    }
}

/// Which of `names` are locked in the store, seen from inside the body.
fn locked_names(locks: &MemoryLock, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| locks.store().is_locked(n))
        .map(|n| n.to_string())
        .collect()
}

#[distlock::locked(name = "order:{order_id}", locks = locks)]
async fn relative(locks: &MemoryLock, order_id: u64) -> Result<Vec<String>, LockError> {
    Ok(locked_names(
        locks,
        &["locked_macro::order:42", "order:42", "order:{order_id}"],
    ))
}

#[distlock::locked(name = "/order:{order_id}", locks = locks)]
async fn absolute(locks: &MemoryLock, order_id: u64) -> Result<Vec<String>, LockError> {
    Ok(locked_names(locks, &["locked_macro::order:42", "order:42"]))
}

#[distlock::locked(name = "/{region}/{{literal}}/{order_id:05}-{region}", locks = locks)]
async fn several(
    locks: &MemoryLock,
    region: &str,
    order_id: u64,
) -> Result<Vec<String>, LockError> {
    Ok(locked_names(locks, &["eu/{literal}/00042-eu"]))
}

#[distlock::locked(locks = locks)]
async fn nightly_report(locks: &MemoryLock) -> Result<Vec<String>, LockError> {
    Ok(locked_names(locks, &["locked_macro::nightly_report"]))
}

mod shop {
    use super::*;

    #[distlock::locked(name = "cart:{user}", locks = locks)]
    pub async fn checkout(locks: &MemoryLock, user: String) -> Result<Vec<String>, LockError> {
        Ok(locked_names(locks, &["locked_macro::shop::cart:ann"]))
    }
}

#[tokio::test]
async fn names_are_prefixed_absolute_or_per_function() {
    let locks = MemoryLock::new();
    assert_eq!(
        relative(&locks, 42).await.unwrap(),
        ["locked_macro::order:42"]
    );
    assert_eq!(absolute(&locks, 42).await.unwrap(), ["order:42"]);
    assert_eq!(
        several(&locks, "eu", 42).await.unwrap(),
        ["eu/{literal}/00042-eu"]
    );
    assert_eq!(
        nightly_report(&locks).await.unwrap(),
        ["locked_macro::nightly_report"]
    );
    assert_eq!(
        shop::checkout(&locks, "ann".into()).await.unwrap(),
        ["locked_macro::shop::cart:ann"]
    );
    assert!(
        !locks.store().is_locked("order:42"),
        "a call left its lock held"
    );
}

#[distlock::locked(name = "/order:{order_id}", wait = "0s", locks = locks)]
async fn try_once(locks: &dyn DistributedLock, order_id: u64) -> Result<(), AppError> {
    Ok(())
}

#[distlock::locked(name = "/order:{order_id}", wait = "150ms", locks = locks)]
async fn wait_a_little(locks: &dyn DistributedLock, order_id: u64) -> Result<(), AppError> {
    Ok(())
}

#[tokio::test]
async fn a_lock_held_for_the_whole_wait_is_a_timeout_in_the_callers_error() {
    let locks = MemoryLock::new();
    let other = locks.store().client();
    let held = other.acquire("order:7").await.unwrap();
    assert_eq!(lock_kind(try_once(&locks, 7).await), ErrorKind::Timeout);
    let started = tokio::time::Instant::now();
    assert_eq!(
        lock_kind(wait_a_little(&locks, 7).await),
        ErrorKind::Timeout
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(3),
        "waited {waited:?} for a 150ms limit"
    );
    held.release().await.unwrap();
    try_once(&locks, 7).await.unwrap();
}

#[distlock::locked(name = "/lease", ttl = "100ms", renew = false, locks = locks)]
async fn outlives_its_lease(locks: &MemoryLock) -> Result<(), AppError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn ttl_and_renew_reach_the_acquire_and_a_loss_cancels_the_body() {
    let locks = MemoryLock::new();
    let r = tokio::time::timeout(BOUND, outlives_its_lease(&locks))
        .await
        .expect("the body outlived its unrenewed 100ms lease");
    assert_eq!(lock_kind(r), ErrorKind::Lost);
}

struct Shop {
    locks: Box<dyn DistributedLock>,
}

impl Shop {
    #[distlock::locked(name = "/stock:{sku}", wait = "try", locks = self.locks)]
    async fn buy(&self, sku: &str, qty: u32) -> Result<u32, AppError> {
        if qty == 0 {
            return Err(AppError::Declined);
        }
        // Nested call on the same name and client in this task: reuses the hold even with
        // a single try (a non-reentrant lock would find itself busy).
        self.reserve(sku, qty).await
    }

    #[distlock::locked(name = "/stock:{sku}", wait = "try", locks = self.locks)]
    async fn reserve(&self, sku: &str, qty: u32) -> Result<u32, AppError> {
        Ok(qty)
    }
}

#[tokio::test]
async fn methods_take_the_client_from_self_and_nest_reentrantly() {
    let shop = Shop {
        locks: Box::new(MemoryLock::new()),
    };
    let bought = tokio::time::timeout(BOUND, shop.buy("sku-7", 3))
        .await
        .unwrap();
    assert_eq!(bought.unwrap(), 3);
    assert!(matches!(
        shop.buy("sku-7", 0).await,
        Err(AppError::Declined)
    ));
    // Not reentrant outside a scope: a plain holder makes the method's one try fail.
    let g = shop.locks.acquire("stock:sku-7").await.unwrap();
    assert_eq!(
        lock_kind(shop.reserve("sku-7", 1).await),
        ErrorKind::Timeout
    );
    g.release().await.unwrap();
}

#[distlock::locked(name = "/default-client:{n}", wait = "try")]
async fn on_the_default(n: u32) -> distlock::Result<u32> {
    Ok(n)
}

/// The only test of this binary that touches the process-wide default.
#[tokio::test]
async fn the_default_client_is_a_config_error_until_set_once() {
    let err = on_the_default(1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("set_default"), "{err}");
    let store = distlock::memory::MemoryStore::new();
    distlock::set_default(store.client()).unwrap();
    assert_eq!(on_the_default(2).await.unwrap(), 2);
    let held = store.client().acquire("default-client:3").await.unwrap();
    assert_eq!(
        on_the_default(3).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    held.release().await.unwrap();
    let again = distlock::set_default(MemoryLock::new()).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Config);
}

#[distlock::locked(name = "/order:{order_id}", guard = lock, locks = locks)]
async fn fenced(locks: &MemoryLock, order_id: u64) -> Result<(String, Option<u64>), AppError> {
    if order_id == 0 {
        return Err(AppError::Declined);
    }
    Ok((lock.name().to_string(), lock.fencing_token()))
}

/// Recursion on one name: each level reuses the hold (one try would fail otherwise).
#[distlock::locked(name = "/countdown", wait = "try", guard = lock, locks = locks)]
async fn countdown(locks: &MemoryLock, n: u32) -> Result<Vec<(usize, Option<u64>)>, AppError> {
    let mut levels = vec![(lock.depth(), lock.fencing_token())];
    if n > 0 {
        levels.extend(Box::pin(countdown(locks, n - 1)).await?);
    }
    Ok(levels)
}

#[tokio::test]
async fn the_guard_argument_hands_the_body_its_fencing_token() {
    let locks = MemoryLock::new();
    let (name, first) = fenced(&locks, 2).await.unwrap();
    assert_eq!(name, "order:2");
    let (_, second) = fenced(&locks, 2).await.unwrap();
    assert!(
        second.unwrap() > first.unwrap(),
        "fencing tokens must increase"
    );
    assert!(matches!(fenced(&locks, 0).await, Err(AppError::Declined)));
    let levels = tokio::time::timeout(BOUND, countdown(&locks, 2))
        .await
        .unwrap()
        .unwrap();
    let token = levels[0].1;
    assert!(token.is_some());
    assert_eq!(levels, [(1, token), (2, token), (3, token)]);
    assert!(!locks.store().is_locked("order:2") && !locks.store().is_locked("countdown"));
}
