//! `with_lock`: release on every exit path, cancellation of the body on loss, and task-scoped
//! reentrancy (nested scopes share a hold, sibling tasks and other clients do not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock_core::memory::{MemoryLock, MemoryStore};
use distlock_core::{AcquireOptions, DistributedLock, ErrorKind, LockError, LockExt, ScopedLock};
use tokio::sync::oneshot;

/// Every test is bounded: a hang is a failure, not a stuck CI run.
const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum AppError {
    Lock(LockError),
    OutOfStock,
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

fn forever() -> AcquireOptions {
    AcquireOptions::wait_forever()
}

fn try_once() -> AcquireOptions {
    AcquireOptions::try_once()
}

/// Sets a flag when dropped: proves a body future was dropped (cancelled).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn ok_body_returns_its_value_and_releases() {
    let locks = MemoryLock::new();
    let (token, held_inside) = tokio::time::timeout(
        BOUND,
        locks.with_lock("order:42", &forever(), |guard| async move {
            Ok::<_, LockError>((guard.fencing_token(), guard.is_held()))
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(token.is_some());
    assert!(held_inside);
    assert!(
        !locks.store().is_locked("order:42"),
        "Ok exit left the lock held"
    );
}

async fn sell(stock: u32) -> Result<u32, AppError> {
    if stock == 0 {
        return Err(AppError::OutOfStock);
    }
    Ok(stock - 1)
}

#[tokio::test]
async fn error_through_question_mark_passes_through_and_releases() {
    let locks = MemoryLock::new();
    let result: Result<u32, AppError> = locks
        .with_lock("order:42", &forever(), |_guard| async move {
            let left = sell(0).await?;
            Ok(left)
        })
        .await;
    assert!(matches!(result, Err(AppError::OutOfStock)), "{result:?}");
    assert!(
        !locks.store().is_locked("order:42"),
        "Err exit left the lock held"
    );
}

#[tokio::test]
async fn panic_in_the_body_releases_then_resumes() {
    let store = MemoryStore::new();
    let locks = store.client();
    let task = tokio::spawn(async move {
        locks
            .with_lock("order:42", &forever(), |_guard| async move {
                if std::hint::black_box(true) {
                    panic!("body exploded");
                }
                Ok::<(), LockError>(())
            })
            .await
    });
    let err = tokio::time::timeout(BOUND, task)
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_panic(), "the panic must resume in the caller");
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"body exploded"));
    assert!(
        !store.is_locked("order:42"),
        "a panicking body left the lock held"
    );
}

#[tokio::test]
async fn dropping_the_call_drops_the_body_and_releases() {
    let locks = MemoryLock::new();
    let dropped = Arc::new(AtomicBool::new(false));
    let (entered_tx, entered_rx) = oneshot::channel();
    let flag = DropFlag(dropped.clone());
    let opts = forever();
    let call = locks.with_lock("order:42", &opts, move |_guard| async move {
        let _flag = flag;
        let _ = entered_tx.send(());
        std::future::pending::<Result<(), LockError>>().await
    });
    tokio::select! {
        _ = call => panic!("the body never ends by itself"),
        entered = entered_rx => entered.unwrap(),
    }
    // `call` is dropped here: the outer future was cancelled.
    assert!(
        dropped.load(Ordering::SeqCst),
        "the body outlived its scope"
    );
    assert!(
        !locks.store().is_locked("order:42"),
        "a cancelled scope left the lock held"
    );
}

#[tokio::test]
async fn a_lost_hold_cancels_the_body_with_lost() {
    let locks = MemoryLock::new();
    let store = locks.store().clone();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let (entered_tx, entered_rx) = oneshot::channel();
    let expirer = tokio::spawn(async move {
        entered_rx.await.unwrap();
        assert!(store.expire("order:42"));
    });
    let result = tokio::time::timeout(
        BOUND,
        locks.with_lock("order:42", &forever(), move |guard| async move {
            let _flag = flag;
            let _ = entered_tx.send(());
            let lost = guard.lost().await; // the body itself may watch, too
            assert_eq!(lost.kind(), ErrorKind::Lost);
            std::future::pending::<Result<(), AppError>>().await
        }),
    )
    .await
    .expect("the body was not cancelled on loss");
    expirer.await.unwrap();
    assert_eq!(lock_kind(result), ErrorKind::Lost);
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_busy_lock_is_a_timeout_and_the_body_never_runs() {
    let store = MemoryStore::new();
    let (a, b) = (store.client(), store.client());
    let held = a.acquire("order:42").await.unwrap();
    let ran = AtomicBool::new(false);
    let r = b
        .with_lock("order:42", &try_once(), |_| async {
            ran.store(true, Ordering::SeqCst);
            Ok::<(), AppError>(())
        })
        .await;
    assert_eq!(lock_kind(r), ErrorKind::Timeout);
    let waited = AcquireOptions::wait_up_to(Duration::from_millis(30));
    let r = b
        .with_lock("order:42", &waited, |_| async {
            ran.store(true, Ordering::SeqCst);
            Ok::<(), AppError>(())
        })
        .await;
    assert_eq!(lock_kind(r), ErrorKind::Timeout);
    assert!(!ran.load(Ordering::SeqCst));
    held.release().await.unwrap();
}

#[tokio::test]
async fn nested_scopes_of_one_task_reuse_the_hold() {
    let store = MemoryStore::new();
    let client: Arc<dyn DistributedLock> = Arc::new(store.client());
    let same_client = client.clone();
    let outer = tokio::time::timeout(
        BOUND,
        client.with_lock("order:42", &forever(), |outer| async move {
            let outer_token = outer.fencing_token();
            // Another name in between: scopes of several names nest too.
            let inner = same_client
                .with_lock("audit", &forever(), |_| async {
                    // Try-once on a name this task holds: must reuse, not contend.
                    same_client
                        .with_lock("order:42", &try_once(), |inner| async move {
                            assert_eq!(inner.depth(), 2);
                            assert_eq!(inner.fencing_token(), outer_token);
                            Ok::<ScopedLock, LockError>(inner)
                        })
                        .await
                })
                .await?;
            assert!(
                store.is_locked("order:42"),
                "the nested scope released the outer hold"
            );
            assert!(inner.is_held(), "the hold ended with the nested scope");
            // Plain acquire stays non-reentrant inside a scope.
            assert!(same_client.try_acquire("order:42").await?.is_none());
            Ok::<_, LockError>((outer, inner))
        }),
    )
    .await
    .expect("a nested scope deadlocked on its own hold");
    let (outer, inner) = outer.unwrap();
    assert_eq!(outer.depth(), 1);
    assert!(!inner.is_held() && !outer.is_held());
    assert!(client.try_acquire("order:42").await.unwrap().is_some());
}

#[tokio::test]
async fn another_client_of_the_same_store_does_not_share_the_hold() {
    let store = MemoryStore::new();
    let (a, b) = (store.client(), store.client());
    let boxed: Box<dyn DistributedLock> = Box::new(store.client());
    let r = a
        .with_lock("order:42", &forever(), |_| async {
            let other = b
                .with_lock("order:42", &try_once(), |_| async { Ok(()) })
                .await;
            let third = boxed
                .with_lock("order:42", &try_once(), |_| async { Ok(()) })
                .await;
            Ok::<_, AppError>((lock_kind(other), lock_kind(third)))
        })
        .await
        .unwrap();
    assert_eq!(r, (ErrorKind::Timeout, ErrorKind::Timeout));
}

#[tokio::test]
async fn sibling_tasks_contend_instead_of_sharing() {
    let locks = Arc::new(MemoryLock::new());
    let order = Arc::new(Mutex::new(Vec::new()));
    let spawned = locks.clone();
    let (log, outer_log) = (order.clone(), order.clone());
    let outcome = tokio::time::timeout(
        BOUND,
        locks.with_lock("order:42", &forever(), |_| async move {
            // Same client, same name, another task: one try must find the lock busy…
            let probe = spawned.clone();
            let tried = tokio::spawn(async move {
                probe
                    .with_lock("order:42", &try_once(), |_| async { Ok(()) })
                    .await
            });
            let tried: Result<(), AppError> = tried.await.unwrap();
            // …and a waiting one must get it only after this scope ends.
            let (waiting_tx, waiting_rx) = oneshot::channel();
            let later = tokio::spawn(async move {
                let _ = waiting_tx.send(());
                spawned
                    .with_lock("order:42", &forever(), |_| async move {
                        log.lock().unwrap().push("sibling");
                        Ok::<(), LockError>(())
                    })
                    .await
            });
            waiting_rx.await.unwrap();
            tokio::task::yield_now().await;
            outer_log.lock().unwrap().push("outer");
            Ok::<_, LockError>((lock_kind(tried), later))
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(outcome.0, ErrorKind::Timeout);
    tokio::time::timeout(BOUND, outcome.1)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(*order.lock().unwrap(), ["outer", "sibling"]);
}

#[tokio::test]
async fn a_loss_is_seen_by_every_nesting_level() {
    let locks = MemoryLock::new();
    let store = locks.store().clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (entered_tx, entered_rx) = oneshot::channel();
    let expirer = tokio::spawn(async move {
        entered_rx.await.unwrap();
        assert!(store.expire("order:42"));
    });
    let (l1, l2, s1, s2) = (locks.clone(), locks.clone(), seen.clone(), seen.clone());
    let outer: Result<(), AppError> = tokio::time::timeout(
        BOUND,
        locks.with_lock("order:42", &forever(), move |_| async move {
            let middle: Result<(), AppError> = l1
                .with_lock("order:42", &forever(), move |_| async move {
                    let inner: Result<(), AppError> = l2
                        .with_lock("order:42", &forever(), move |guard| async move {
                            assert_eq!(guard.depth(), 3);
                            let _ = entered_tx.send(());
                            std::future::pending().await
                        })
                        .await;
                    s2.lock().unwrap().push(("inner", lock_kind(inner)));
                    // A nested scope opened after the loss fails at once.
                    let late: Result<(), AppError> = l2
                        .with_lock("order:42", &forever(), |_| async { Ok(()) })
                        .await;
                    s2.lock().unwrap().push(("late", lock_kind(late)));
                    std::future::pending().await
                })
                .await;
            s1.lock().unwrap().push(("middle", lock_kind(middle)));
            std::future::pending().await
        }),
    )
    .await
    .expect("a level kept running after the loss");
    expirer.await.unwrap();
    seen.lock().unwrap().push(("outer", lock_kind(outer)));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("inner", ErrorKind::Lost),
            ("late", ErrorKind::Lost),
            ("middle", ErrorKind::Lost),
            ("outer", ErrorKind::Lost)
        ]
    );
}

#[tokio::test]
async fn a_boxed_client_runs_scopes_in_spawned_tasks() {
    let locks: Arc<Box<dyn DistributedLock>> = Arc::new(Box::new(MemoryLock::new()));
    let mut tasks = Vec::new();
    let counter = Arc::new(Mutex::new(0u32));
    for _ in 0..8 {
        let (locks, counter) = (locks.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            locks
                .with_lock("counter", &AcquireOptions::wait_forever(), |_| async move {
                    // Unsynchronised read-modify-write across an await: only exclusion
                    // keeps every increment.
                    let seen = *counter.lock().unwrap();
                    tokio::task::yield_now().await;
                    *counter.lock().unwrap() = seen + 1;
                    Ok::<(), LockError>(())
                })
                .await
        }));
    }
    for t in tasks {
        tokio::time::timeout(BOUND, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    assert_eq!(*counter.lock().unwrap(), 8);
}

#[tokio::test]
async fn a_nested_scope_cannot_outlive_the_outer_release() {
    // A nested scope's future, polled inside the outer scope (so it reuses the outer
    // hold) and then carried out of it, must not keep running its body after the
    // outermost scope has released the lock.
    let store = MemoryStore::new();
    let client: Arc<dyn DistributedLock> = Arc::new(store.client());
    let body_dropped = Arc::new(AtomicBool::new(false));
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let flag = body_dropped.clone();
    let inner_client = client.clone();
    let mut escaped = tokio::time::timeout(
        BOUND,
        client.with_lock("order:42", &forever(), |_| async move {
            let (started_tx, started_rx) = oneshot::channel::<()>();
            let mut nested = Box::pin(async move {
                inner_client
                    .with_lock("order:42", &try_once(), |inner| async move {
                        let _flag = DropFlag(flag);
                        started_tx.send(()).unwrap();
                        go_rx.await.unwrap();
                        Ok::<bool, LockError>(inner.is_held())
                    })
                    .await
            });
            tokio::select! {
                _ = &mut nested => panic!("the nested body was to wait for go"),
                _ = started_rx => {}
            }
            Ok::<_, LockError>(nested)
        }),
    )
    .await
    .unwrap()
    .unwrap();
    // The outer scope ended: the lock is free, another holder may take it.
    let other = store.client();
    let newcomer = other.try_acquire("order:42").await.unwrap();
    assert!(newcomer.is_some(), "the outer scope did not release");
    let _ = go_tx.send(());
    let late = tokio::time::timeout(BOUND, &mut escaped).await.unwrap();
    assert_eq!(
        late.as_ref().map_err(LockError::kind).err(),
        Some(ErrorKind::Lost),
        "the nested body ran on after the outer release: {late:?}"
    );
    assert!(body_dropped.load(Ordering::SeqCst));
}

/// A backend whose holds cannot be released (the store is unreachable) and whose loss the
/// test signals by hand, as a renewal that failed on a dead connection would.
#[derive(Debug, Default)]
struct Unreachable {
    status: Mutex<Option<distlock_core::backend::HoldStatus>>,
}

#[derive(Debug)]
struct UnreachableHold;

#[async_trait::async_trait]
impl distlock_core::backend::Hold for UnreachableHold {
    async fn release(&self) -> distlock_core::Result<()> {
        Err(LockError::connection("the store is unreachable"))
    }
}

#[async_trait::async_trait]
impl DistributedLock for Unreachable {
    async fn acquire_with(
        &self,
        name: &distlock_core::LockName,
        _: &AcquireOptions,
    ) -> distlock_core::Result<Option<distlock_core::LockGuard>> {
        let status = distlock_core::backend::HoldStatus::new();
        *self.status.lock().unwrap() = Some(status.clone());
        Ok(Some(distlock_core::LockGuard::new(
            distlock_core::backend::GuardParts {
                name: name.clone(),
                owner_token: distlock_core::backend::new_owner_token(),
                fencing_token: Some(1),
                hold: Arc::new(UnreachableHold),
                status,
                lease: None,
            },
        )))
    }

    fn capabilities(&self) -> distlock_core::Capabilities {
        distlock_core::Capabilities::none().with_lost_detection(true)
    }
}

#[tokio::test]
async fn a_loss_is_not_swallowed_when_the_release_fails_too() {
    // The hold is lost (say the connection died) just as the body ends, so the body wins
    // the race and the release then fails on the dead connection: the caller must still
    // hear of the loss, not get the body's value as if it had run under the lock.
    let locks = Unreachable::default();
    let result = tokio::time::timeout(
        BOUND,
        locks.with_lock("order:42", &forever(), |_| async {
            let status = locks.status.lock().unwrap().clone().unwrap();
            status.mark_lost(LockError::lost("renewal failed: connection reset"));
            Ok::<_, AppError>("sold")
        }),
    )
    .await
    .unwrap();
    assert_eq!(lock_kind(result), ErrorKind::Lost);
}

#[tokio::test]
async fn joined_siblings_contend_even_inside_an_unrelated_scope() {
    // Two futures joined in one task, each taking "stock" on its own, are siblings, not
    // nested: they must exclude each other — with or without an unrelated scope around
    // them (here "audit"), which must not turn the first one's hold into a shared one.
    let locks = MemoryLock::new();
    let outcome = tokio::time::timeout(
        BOUND,
        locks.with_lock("audit", &forever(), |_| async {
            let (started_tx, started_rx) = oneshot::channel::<()>();
            let (done_tx, done_rx) = oneshot::channel::<()>();
            let wait = forever();
            let first = locks.with_lock("stock", &wait, |_| async move {
                started_tx.send(()).unwrap();
                done_rx.await.unwrap();
                Ok::<_, LockError>(())
            });
            let second = async {
                started_rx.await.unwrap();
                let r = locks
                    .with_lock("stock", &try_once(), |_| async { Ok::<_, LockError>(()) })
                    .await;
                done_tx.send(()).unwrap();
                r
            };
            let (first, second) = tokio::join!(first, second);
            first?;
            Ok::<_, LockError>(second.map_err(|e| e.kind()))
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        outcome,
        Err(ErrorKind::Timeout),
        "the sibling shared the first one's hold"
    );
}
