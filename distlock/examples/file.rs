//! Lock files: one host, many processes, no server. Run it twice at once and watch the
//! second wait for the first:
//!
//! ```sh
//! cargo run -p distlock --example file
//! ```

use std::time::Duration;

use distlock::{AcquireOptions, LockError, LockExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> distlock::Result<()> {
    let dir = std::env::temp_dir().join("distlock-example");
    let url = format!("file://{}", dir.display());
    let locks = distlock::connect(&url).await?;

    let opts = AcquireOptions::wait_up_to(Duration::from_secs(10));
    let token = locks
        .with_lock("nightly-report", &opts, |guard| async move {
            // The critical section: hand the fencing token to whatever you write.
            println!(
                "holding nightly-report, fencing token {:?}",
                guard.fencing_token()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, LockError>(guard.fencing_token())
        })
        .await?;
    println!("released (token was {token:?})");
    Ok(())
}
