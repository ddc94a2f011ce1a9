//! Fenced writes reject a holder whose hold was lost, after another holder wrote: on a
//! file, a Redis key and a MariaDB row, with the loss injected for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use distlock::memory::MemoryStore;
use distlock::{fence, ErrorKind, LockExt};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn file_late_write_of_an_expired_holder_is_rejected() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stock");
    let store = MemoryStore::new();
    let a = store.client().acquire("sale").await.unwrap();
    assert!(store.expire("sale"), "A held the lock");
    tokio::time::timeout(LIMIT, a.lost())
        .await
        .expect("A sees its loss");
    let b = store.client().acquire_timeout("sale", LIMIT).await.unwrap();

    fence::file::write(&path, "sold to B", b.fencing_token())
        .await
        .unwrap();
    // The same hold may write again.
    fence::file::write(&path, "sold to B!", b.fencing_token())
        .await
        .unwrap();
    let late = fence::file::write(&path, "sold to A", a.fencing_token())
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Fenced, "{late}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "sold to B!");
    assert_eq!(
        fence::file::newest_token(&path).await.unwrap(),
        b.fencing_token()
    );

    let none = fence::file::write(&path, "x", None).await.unwrap_err();
    assert_eq!(none.kind(), ErrorKind::Unsupported);
    fence::file::forget(&path).await.unwrap();
    assert_eq!(fence::file::newest_token(&path).await.unwrap(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn file_concurrent_writers_keep_the_newest_token_and_its_data() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fence-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("value");
    let writers: Vec<_> = (1..=32u64)
        .map(|t| {
            let path = path.clone();
            tokio::spawn(async move { fence::file::write(&path, t.to_string(), Some(t)).await })
        })
        .collect();
    for w in writers {
        match w.await.unwrap() {
            Ok(()) => {}
            Err(e) => assert_eq!(e.kind(), ErrorKind::Fenced, "{e}"),
        }
    }
    // Whoever wrote last held the newest token: token 32 always wins, and its data stays.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "32");
    assert_eq!(fence::file::newest_token(&path).await.unwrap(), Some(32));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_late_write_of_an_expired_holder_is_rejected() {
    use distlock::AcquireOptions;
    let server = distlock_testkit::redis::RedisServer::start().unwrap();
    let url = server.url();
    let a_locks = distlock::connect(&url).await.unwrap();
    let b_locks = distlock::connect(&url).await.unwrap();
    // A short lease without renewal: A's hold ends by itself, as if A were paused.
    let short = AcquireOptions::try_once()
        .with_ttl(Duration::from_millis(300))
        .with_renewal(false);
    let a = a_locks.acquire_opts("sale", &short).await.unwrap().unwrap();
    tokio::time::timeout(LIMIT, a.lost())
        .await
        .expect("A's lease runs out");
    let b = b_locks.acquire_timeout("sale", LIMIT).await.unwrap();
    assert!(b.fencing_token() > a.fencing_token());

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = "{sale}:stock";
    fence::redis::set(&mut conn, key, "sold to B", b.fencing_token())
        .await
        .unwrap();
    let late = fence::redis::set(&mut conn, key, "sold to A", a.fencing_token())
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Fenced, "{late}");
    let value: String = redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "sold to B");
    assert_eq!(
        fence::redis::newest_token(&mut conn, key).await.unwrap(),
        b.fencing_token()
    );
    let none = fence::redis::set(&mut conn, key, "x", None)
        .await
        .unwrap_err();
    assert_eq!(none.kind(), ErrorKind::Unsupported);
    // Tokens compare exactly across digit counts and up to u64::MAX.
    fence::redis::set(&mut conn, "big", "1", Some(9))
        .await
        .unwrap();
    fence::redis::set(&mut conn, "big", "2", Some(10))
        .await
        .unwrap();
    fence::redis::set(&mut conn, "big", "3", Some(u64::MAX))
        .await
        .unwrap();
    let e = fence::redis::set(&mut conn, "big", "4", Some(u64::MAX - 1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Fenced);
    // A value that is several Redis arguments would shift the token out of its place in
    // the script (its second part read as the token): refused, and nothing written.
    let shifted = fence::redis::set(
        &mut conn,
        key,
        vec!["sold to A", "18446744073709551615"],
        a.fencing_token(),
    )
    .await
    .unwrap_err();
    assert_eq!(shifted.kind(), ErrorKind::Config, "{shifted}");
    assert_eq!(
        fence::redis::newest_token(&mut conn, key).await.unwrap(),
        b.fencing_token()
    );
    b.release().await.unwrap();
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_late_write_of_a_killed_holder_is_rejected() {
    use sqlx::{Connection, MySqlConnection};
    let server = distlock_testkit::mariadb::MariaDbServer::start().unwrap();
    let url = server.url();
    let a_locks = distlock::connect(&url).await.unwrap();
    let b_locks = distlock::connect(&url).await.unwrap();
    let a = a_locks.acquire_timeout("sale", LIMIT).await.unwrap();

    let mut admin = MySqlConnection::connect(&url).await.unwrap();
    let holder: Option<i64> = sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
        .bind(distlock_mysql::server_key(a.name()))
        .fetch_one(&mut admin)
        .await
        .unwrap();
    sqlx::query("KILL ?")
        .bind(holder.expect("A's session holds the lock"))
        .execute(&mut admin)
        .await
        .unwrap();
    let b = b_locks.acquire_timeout("sale", LIMIT).await.unwrap();
    assert!(b.fencing_token() > a.fencing_token());

    let mut db = MySqlConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE DATABASE shop")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("USE shop").execute(&mut db).await.unwrap();
    // Before the schema exists the call says what to do.
    let mut tx = db.begin().await.unwrap();
    let missing = fence::sql::check_and_bump(&mut tx, "sale/1", b.fencing_token())
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config, "{missing}");
    assert!(missing.to_string().contains("ensure_schema"), "{missing}");
    drop(tx);
    fence::sql::ensure_schema(&mut db).await.unwrap();
    sqlx::query("CREATE TABLE sale (id INT PRIMARY KEY, buyer VARCHAR(10))")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO sale VALUES (1, 'nobody')")
        .execute(&mut db)
        .await
        .unwrap();

    let mut tx = db.begin().await.unwrap();
    fence::sql::check_and_bump(&mut tx, "sale/1", b.fencing_token())
        .await
        .unwrap();
    sqlx::query("UPDATE sale SET buyer = 'B' WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A, paused until now, wakes up and writes: refused before its UPDATE.
    let mut tx = db.begin().await.unwrap();
    let late = fence::sql::check_and_bump(&mut tx, "sale/1", a.fencing_token())
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Fenced, "{late}");
    tx.rollback().await.unwrap();
    let buyer: String = sqlx::query_scalar("SELECT buyer FROM sale WHERE id = 1")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(buyer, "B");
    assert_eq!(
        fence::sql::newest_token(&mut db, "sale/1").await.unwrap(),
        b.fencing_token()
    );
    let none = fence::sql::check_and_bump(&mut db, "sale/1", None)
        .await
        .unwrap_err();
    assert_eq!(none.kind(), ErrorKind::Unsupported);
    // Outside a transaction the check would commit on its own, apart from the write it
    // guards: refused, and nothing stored.
    let bare = fence::sql::check_and_bump(&mut db, "sale/1", b.fencing_token().map(|t| t + 1))
        .await
        .unwrap_err();
    assert_eq!(bare.kind(), ErrorKind::Config, "{bare}");
    assert!(bare.to_string().contains("transaction"), "{bare}");
    assert_eq!(
        fence::sql::newest_token(&mut db, "sale/1").await.unwrap(),
        b.fencing_token()
    );
    fence::sql::forget(&mut db, "sale/1").await.unwrap();
    assert_eq!(
        fence::sql::newest_token(&mut db, "sale/1").await.unwrap(),
        None
    );
    b.release().await.unwrap();
    let _ = a.release().await;
}
