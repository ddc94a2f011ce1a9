//! Passwords reach the server but never a `Debug`, `Display` or error text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use distlock_core::{ErrorKind, LockExt};
use distlock_redis::{RedisConfig, RedisLock};
use distlock_testkit::redis::{raw_command, RedisServer};

const PASSWORD: &str = "s3cret-pw";
const ALICE: &str = "al1ce-pw";
const WRONG: &str = "wr0ng-pw";

fn protected_server() -> RedisServer {
    let server = RedisServer::start().unwrap();
    let port = server.port();
    let r = raw_command(port, &format!("ACL SETUSER alice on >{ALICE} ~* &* +@all")).unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    let r = raw_command(port, &format!("CONFIG SET requirepass {PASSWORD}")).unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    server
}

fn assert_hidden(text: &str) {
    for secret in [PASSWORD, ALICE, WRONG] {
        assert!(!text.contains(secret), "a password leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_authenticate_and_never_show() {
    let server = protected_server();
    let port = server.port();

    let lock = RedisLock::connect(&format!("redis://:{PASSWORD}@127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert_hidden(&format!("{lock:?}"));
    assert!(format!("{lock:?}").contains("***"));
    let g = lock.try_acquire("pw").await.unwrap().unwrap();
    assert_hidden(&format!("{g:?}"));
    g.release().await.unwrap();

    // user:password form, and a database number.
    let lock = RedisLock::connect(&format!("redis://alice:{ALICE}@127.0.0.1:{port}/3"))
        .await
        .unwrap();
    assert_hidden(&format!("{lock:?} {:?}", lock.config()));
    let g = lock.try_acquire("in-db-3").await.unwrap().unwrap();
    let mut side = redis::Client::open(format!("redis://alice:{ALICE}@127.0.0.1:{port}/3"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("distlock:{{{}}}:lock", g.name().escaped());
    let owner: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut side)
        .await
        .unwrap();
    assert_eq!(
        owner.as_deref(),
        Some(g.owner_token()),
        "the key is not in db 3"
    );
    g.release().await.unwrap();

    // A wrong password: the error says so without quoting it.
    let e = RedisLock::connect(&format!("redis://alice:{WRONG}@127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert_hidden(&format!("{e} {e:?}"));
    assert!(e.to_string().contains("***"), "{e}");
    // Retrying will not fix a wrong password: not a (retryable) connection error.
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(!e.is_retryable());

    // Nobody listening: a connection error, still without the password.
    drop(server);
    let e = RedisLock::connect(&format!("redis://alice:{WRONG}@127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
    assert_hidden(&format!("{e} {e:?}"));
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        assert_hidden(&format!("{s} {s:?}"));
        source = s.source();
    }

    let b = RedisConfig::builder([format!("redis://alice:{WRONG}@127.0.0.1:{port}/")]);
    assert_hidden(&format!("{b:?}"));
}

/// A side connection as the (unrestricted) default user, for reading server statistics
/// (a raw socket read could cut a long `INFO` reply short).
async fn side(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The number after `field` in `INFO section`.
async fn info_number(
    side: &mut redis::aio::MultiplexedConnection,
    section: &str,
    field: &str,
) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(side)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(field))
        .map_or(0, |rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
}

/// A user that may use the keys but no pub/sub channel (Redis 7's default for new ACL users):
/// release still succeeds (it freed the lock), waiting falls back to re-checks, and the
/// subscriber does not reconnect in a tight loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_channel_permissions_still_locks() {
    let server = RedisServer::start().unwrap();
    let port = server.port();
    let r = raw_command(
        port,
        &format!("ACL SETUSER bob on >{ALICE} ~* resetchannels +@all"),
    )
    .unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    let url = format!("redis://bob:{ALICE}@127.0.0.1:{port}/");
    let a = RedisLock::connect(&url).await.unwrap();
    let b = RedisLock::connect(&url).await.unwrap();

    let g = a.try_acquire("no-channels").await.unwrap().unwrap();
    let e = b
        .acquire_timeout("no-channels", std::time::Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let mut stats = side(port).await;
    let before = info_number(&mut stats, "stats", "total_connections_received:").await;
    let e = b
        .acquire_timeout("no-channels", std::time::Duration::from_millis(1000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let dialled = info_number(&mut stats, "stats", "total_connections_received:").await - before;
    assert!(
        dialled <= 20,
        "{dialled} connections in one second of waiting"
    );
    g.release().await.expect("the release freed the lock");
    let g = b
        .acquire_timeout("no-channels", std::time::Duration::from_secs(2))
        .await
        .unwrap();
    g.release().await.unwrap();
}

/// When the wait for a subscription (never confirmed here: no channel permissions) uses up
/// the wait limit, no doomed attempt is sent at the deadline (it would be cancelled at once
/// and need undoing by a background release).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attempt_is_sent_once_the_limit_is_spent() {
    let server = RedisServer::start().unwrap();
    let port = server.port();
    let r = raw_command(
        port,
        &format!("ACL SETUSER bob on >{ALICE} ~* resetchannels +@all"),
    )
    .unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    let url = format!("redis://bob:{ALICE}@127.0.0.1:{port}/");
    let (a, b) = (
        RedisLock::connect(&url).await.unwrap(),
        RedisLock::connect(&url).await.unwrap(),
    );
    let g = a.try_acquire("spent").await.unwrap().unwrap();
    // Loads the script by which a waiter leaves the queue (a first EVALSHA of it fails with
    // NOSCRIPT and is counted too).
    let _ = b
        .acquire_timeout("spent", std::time::Duration::from_millis(1))
        .await;
    let mut stats = side(port).await;
    let before = info_number(&mut stats, "commandstats", "cmdstat_evalsha:calls=").await;
    let e = b
        .acquire_timeout("spent", std::time::Duration::from_millis(400))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let after = info_number(&mut stats, "commandstats", "cmdstat_evalsha:calls=").await;
    // One attempt (which queued the waiter) and the script by which it left the queue.
    assert_eq!(after - before, 2, "attempts after the limit");
    g.release().await.unwrap();
}

/// Issue 10: Redlock with a wrong password gave a retryable `Connection` error ("only 0
/// answered"); it is the configuration's, and says authentication failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_with_a_wrong_password_is_a_config_error_naming_authentication() {
    let servers: Vec<RedisServer> = (0..3).map(|_| protected_server()).collect();
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let url = format!("redis+redlock://alice:{WRONG}@{}/", hosts.join(","));
    let e = distlock_redis::connect(&url).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        e.to_string().to_lowercase().contains("authentication"),
        "{e}"
    );
    assert_hidden(&format!("{e} {e:?}"));
    let good = format!("redis+redlock://alice:{ALICE}@{}/", hosts.join(","));
    let locks = distlock_redis::connect(&good).await.unwrap();
    let g = locks.try_acquire("redlock/auth").await.unwrap().unwrap();
    g.release().await.unwrap();
}

/// A password holding URL delimiters, written unescaped, authenticates: the user
/// information ends at the last `@` (issue 10), on every URL form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_with_url_delimiters_authenticates_unescaped() {
    const ODD: &str = "p?ss@w/rd#1";
    let server = RedisServer::start().unwrap();
    let port = server.port();
    let r = raw_command(port, &format!("ACL SETUSER carol on >{ODD} ~* &* +@all")).unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    for url in [
        format!("redis://carol:{ODD}@127.0.0.1:{port}/"),
        format!("Redis://carol:{ODD}@127.0.0.1:{port}/2?prefix=odd:"),
    ] {
        let locks = distlock_redis::connect(&url).await.unwrap();
        assert!(!format!("{locks:?}").contains("ss@w"));
        let g = locks.try_acquire("odd-password").await.unwrap().unwrap();
        g.release().await.unwrap();
    }
}

/// A user without channel permissions: once its waits are over, the client stops dialling
/// (its wake channel, never confirmed, is let go like any idle channel) instead of
/// redialling and failing `SUBSCRIBE` about once a second for the rest of its life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_channel_permissions_an_idle_client_stops_redialling() {
    let server = RedisServer::start().unwrap();
    let port = server.port();
    let r = raw_command(
        port,
        &format!("ACL SETUSER bob on >{ALICE} ~* resetchannels +@all"),
    )
    .unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    let url = format!("redis://bob:{ALICE}@127.0.0.1:{port}/");
    let a = RedisLock::connect(&url).await.unwrap();
    let b = RedisLock::connect(&url).await.unwrap();
    let g = a.try_acquire("idle-no-channels").await.unwrap().unwrap();
    let e = b
        .acquire_timeout("idle-no-channels", std::time::Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let mut stats = side(port).await;
    // An observation, not a synchronisation: the client is idle; count its dials per window
    // until one window has none.
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let before = info_number(&mut stats, "stats", "total_connections_received:").await;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let dialled =
            info_number(&mut stats, "stats", "total_connections_received:").await - before;
        if dialled == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < limit,
            "an idle client still dials: {dialled} connections in 3 s"
        );
    }
    g.release().await.unwrap();
    drop(b);
}
