//! The in-process `memory://` backend: what unit tests use. Two clients of one URL contend
//! like two connections to a server; a forced expiry shows the lost signal.
//!
//! ```sh
//! cargo run -p distlock --example memory
//! ```

use std::time::Duration;

use distlock::{LockError, LockExt, LockName};

#[tokio::main(flavor = "current_thread")]
async fn main() -> distlock::Result<()> {
    let (a, b) = (
        distlock::connect("memory://example").await?,
        distlock::connect("memory://example").await?,
    );
    let guard = a.acquire("job").await?;
    assert!(
        b.try_acquire("job").await?.is_none(),
        "b must see the lock held"
    );
    println!(
        "a holds job (token {:?}); b was turned away",
        guard.fencing_token()
    );

    // An operator breaks the hold: a's lost signal fires, and b gets a larger token.
    let ops = b
        .inspect()
        .ok_or_else(|| LockError::unsupported("memory:// offers Inspect"))?;
    ops.break_lock(&LockName::new("job")?).await?;
    let lost = guard.lost().await;
    println!("a was told: {lost}");
    let next = b.acquire_timeout("job", Duration::from_secs(1)).await?;
    assert!(next.fencing_token() > guard.fencing_token());
    println!("b holds job with token {:?}", next.fencing_token());
    next.release().await
}
