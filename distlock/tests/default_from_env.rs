//! `#[distlock::locked]` without `locks = …` and without `set_default` takes its client from
//! `DISTLOCK_URL` (its own test binary: the default client is process-wide).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use distlock::{ErrorKind, LockError, LockExt};

#[distlock::locked(name = "/env-default:{id}", wait = "0s")]
async fn locked_by_default(id: u32) -> Result<u32, LockError> {
    Ok(id)
}

#[tokio::test]
async fn the_default_client_comes_from_distlock_url_when_none_was_set() {
    std::env::remove_var("DISTLOCK_URL");
    let e = distlock::default_client().await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("DISTLOCK_URL"), "{e}");

    std::env::set_var("DISTLOCK_URL", "memory://env-default");
    assert_eq!(locked_by_default(7).await.unwrap(), 7);

    // The same store as DISTLOCK_URL names: a holder there makes the function time out.
    let other = distlock::connect("memory://env-default").await.unwrap();
    let guard = other.acquire("env-default:7").await.unwrap();
    let e = locked_by_default(7).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    guard.release().await.unwrap();

    // Made once, then kept, and set_default can no longer replace it.
    let a = distlock::default_client().await.unwrap();
    let b = distlock::default_client().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(distlock::set_default(distlock::memory::MemoryLock::new()).is_err());
}
