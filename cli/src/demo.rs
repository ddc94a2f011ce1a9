//! `distlock demo`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use distlock::LockExt;

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Lock URL (file:///dir, memory://, redis://…, zk://…, mysql://…).
    #[arg(long, default_value_t = crate::default_url())]
    url: String,
    /// Workers, each with its own client (its own connections).
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// Critical sections per worker.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Lock name.
    #[arg(long, default_value = "distlock-demo")]
    name: String,
}

/// Runs the demo; exit code 2 if two workers were ever inside at once.
pub(crate) async fn demo(args: DemoArgs) -> distlock::Result<ExitCode> {
    println!(
        "distlock demo: {} workers x {} rounds on lock {:?} ({})",
        args.workers,
        args.rounds,
        args.name,
        redact(&args.url)
    );
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for id in 0..args.workers {
        let locks = distlock::connect(&args.url).await?;
        let (name, inside, overlaps) = (args.name.clone(), inside.clone(), overlaps.clone());
        let rounds = args.rounds;
        workers.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let guard = locks
                    .acquire_timeout(&name, Duration::from_secs(30))
                    .await?;
                if inside.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                let token = guard
                    .fencing_token()
                    .map_or_else(|| "none".to_string(), |t| t.to_string());
                println!(
                    "{:>8.1?}  worker {id} holds the lock (fencing token {token})",
                    start.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(30)).await;
                inside.store(false, Ordering::SeqCst);
                guard.release().await?;
            }
            Ok::<(), distlock::LockError>(())
        }));
    }
    for worker in workers {
        worker
            .await
            .map_err(|e| distlock::LockError::backend(format!("a worker failed: {e}")))??;
    }
    let overlaps = overlaps.load(Ordering::SeqCst);
    println!(
        "{} critical sections in {:.1?}, {} overlapping",
        args.workers * args.rounds,
        start.elapsed(),
        overlaps
    );
    Ok(if overlaps == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The URL without its password, for printing.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            super::redact("mysql://app:s3cret@db:3306/x"),
            "mysql://app:***@db:3306/x"
        );
        assert_eq!(super::redact("file:///tmp/x"), "file:///tmp/x");
        assert_eq!(super::redact("mysql://root@db/x"), "mysql://root@db/x");
        assert_eq!(
            super::redact("redis+redlock://:pw@a:1,b:2/"),
            "redis+redlock://:***@a:1,b:2/"
        );
    }
}
