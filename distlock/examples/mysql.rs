//! The mysql backend: acquire, react to a loss while working, release, and list the holders.
//! Takes the URL from `DISTLOCK_URL`:
//!
//! ```sh
//! DISTLOCK_URL=mysql://app@127.0.0.1:3306/locks cargo run -p distlock --features mysql --example mysql
//! ```

use std::time::Duration;

use distlock::{LockError, LockExt};

#[tokio::main]
async fn main() -> distlock::Result<()> {
    let url = std::env::var("DISTLOCK_URL").map_err(|_| {
        LockError::config("set DISTLOCK_URL, e.g. mysql://app@127.0.0.1:3306/locks")
    })?;
    let locks = distlock::connect(&url).await?;

    let guard = locks
        .acquire_timeout("example/invoice-run", Duration::from_secs(10))
        .await?;
    println!("holding, fencing token {:?}", guard.fencing_token());

    if let Some(ops) = locks.inspect() {
        for holder in ops.holders("example/").await? {
            println!(
                "held: {} by {:?} (pid {:?})",
                holder.name, holder.meta.host, holder.meta.pid
            );
        }
    }

    // Work until done, or stop at once if the lock is lost meanwhile.
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(200)) => println!("work done"),
        lost = guard.lost() => return Err(lost),
    }
    guard.release().await?;
    println!("released");
    Ok(())
}
