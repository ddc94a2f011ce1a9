//! Fault tests in both modes: a killed session, a restarted server, a killed holder
//! process, cancelled acquires, and the connection-pool pitfall.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use distlock_core::{AcquireOptions, ErrorKind, LockExt, LockName, RetryPolicy};
use distlock_mysql::{server_key, Mode};
use distlock_testkit::mariadb::MariaDbServer;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};

use common::{admin, client, holder_session, kill_holder, shared_url, PROBE};

/// Slack on top of a bound, for a shared, noisy machine.
const SLACK: Duration = Duration::from_millis(1000);

fn unique(label: &str) -> String {
    format!("faults/{label}/{}/{:?}", std::process::id(), Instant::now())
}

fn base_of(server: &MariaDbServer) -> String {
    format!("mysql://root@127.0.0.1:{}/", server.port())
}

/// Expands one async test body `fn(Mode)` into a test per mode.
macro_rules! both_modes {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn get_lock() {
                tokio::time::timeout(Duration::from_secs(90), super::$name(Mode::GetLock))
                    .await
                    .expect("test took too long");
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn row_lock() {
                tokio::time::timeout(Duration::from_secs(90), super::$name(Mode::RowLock))
                    .await
                    .expect("test took too long");
            }
        }
    };
}

async fn killed_session_fires_lost_and_frees_the_lock(mode: Mode) {
    let base = shared_url();
    let name = unique("kill");
    let (a, b) = (client(&base, mode), client(&base, mode));
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let mut lost = g.lost_signal();
    let killed = Instant::now();
    kill_holder(&base, mode, &g).await.unwrap();
    let e = tokio::time::timeout(PROBE + SLACK, lost.wait())
        .await
        .expect("no lost signal within the probe interval + slack")
        .expect("the signal ended without a loss");
    assert_eq!(e.kind(), ErrorKind::Lost);
    assert!(killed.elapsed() <= PROBE + SLACK);
    assert!(!g.is_held());
    let next = b
        .acquire_timeout(&name, SLACK)
        .await
        .expect("another client takes the lock after the KILL");
    let e = g.release().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotHeld, "{e}");
    assert!(next.is_held());
    next.release().await.unwrap();
}
both_modes!(killed_session_fires_lost_and_frees_the_lock);

async fn restarted_server_loses_holds_and_later_acquires_work(mode: Mode) {
    let server = MariaDbServer::start().unwrap();
    let base = base_of(&server);
    let name = unique("restart");
    let a = client(&base, mode);
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let first = g.fencing_token().unwrap();
    let mut lost = g.lost_signal();
    let server = tokio::task::spawn_blocking(move || {
        server.restart().unwrap();
        server
    })
    .await
    .unwrap();
    let e = tokio::time::timeout(PROBE + SLACK * 5, lost.wait())
        .await
        .expect("no lost signal after the restart")
        .expect("a loss");
    assert_eq!(e.kind(), ErrorKind::Lost);
    // The same client works again (retryable errors allowed for a short while).
    let start = Instant::now();
    let g2 = loop {
        match a.acquire_timeout(&name, Duration::from_secs(2)).await {
            Ok(g) => break g,
            Err(e) if e.is_retryable() && start.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("no acquire after the restart: {e}"),
        }
    };
    assert!(
        g2.fencing_token().unwrap() > first,
        "fencing survives a restart"
    );
    g2.release().await.unwrap();
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::NotHeld);
    drop(server);
}
both_modes!(restarted_server_loses_holds_and_later_acquires_work);

async fn frozen_server_bounds_acquires_and_fires_lost(mode: Mode) {
    let server = MariaDbServer::start().unwrap();
    let base = base_of(&server);
    let name = unique("frozen");
    let (a, b) = (client(&base, mode), client(&base, mode));
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    // `b` has made its tables already, so what follows is only the acquire itself.
    let warm = b
        .try_acquire(&unique("warm"))
        .await
        .unwrap()
        .expect("free lock");
    warm.release().await.unwrap();
    let mut lost = g.lost_signal();
    server.pause();
    let paused = Instant::now();
    let limit = Duration::from_millis(500);
    let r = b.acquire_timeout(&name, limit).await;
    let took = paused.elapsed();
    let bound = limit + common::PROBE_TIMEOUT + SLACK;
    assert!(
        took <= bound,
        "a limited acquire on a frozen server took {took:?}, over {bound:?}"
    );
    let e = r.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection),
        "{e}"
    );
    let e = tokio::time::timeout(PROBE + common::PROBE_TIMEOUT + SLACK, lost.wait())
        .await
        .expect("no lost signal while the server was frozen")
        .expect("a loss");
    assert_eq!(e.kind(), ErrorKind::Lost);
    server.resume();
    let next = b
        .acquire_timeout(&name, Duration::from_secs(5))
        .await
        .expect("the lost hold's session ends after the thaw");
    assert!(g.release().await.is_err());
    next.release().await.unwrap();
}
both_modes!(frozen_server_bounds_acquires_and_fires_lost);

async fn wait_forever_is_a_loop_of_bounded_server_waits(mode: Mode) {
    let base = shared_url();
    let name = unique("forever");
    let config = |step| {
        distlock_mysql::MySqlConfig::from_url(&common::url(&base, mode))
            .unwrap()
            .with_wait_step(step)
    };
    let a = distlock_mysql::MySqlLock::new(config(Duration::from_secs(60)));
    let step = Duration::from_millis(if mode == Mode::RowLock { 1000 } else { 200 });
    let b = distlock_mysql::MySqlLock::new(config(step));
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    let waiter = {
        let name = name.clone();
        tokio::spawn(async move { (b.acquire(&name).await, Instant::now()) })
    };
    // Several server-side waits run out while the lock stays held.
    tokio::time::sleep(step * 2 + step / 2).await;
    assert!(!waiter.is_finished(), "the waiter got a held lock");
    g.release().await.unwrap();
    let released = Instant::now();
    let (got, at) = tokio::time::timeout(step + SLACK, waiter)
        .await
        .expect("the waiter did not get the lock after the release")
        .unwrap();
    let took = at.saturating_duration_since(released);
    assert!(took <= SLACK, "the waiter took {took:?} after the release");
    got.unwrap().release().await.unwrap();
}
both_modes!(wait_forever_is_a_loop_of_bounded_server_waits);

const CHILD_ROLE: &str = "DISTLOCK_MYSQL_FAULTS_CHILD";
const CHILD_NAME: &str = "DISTLOCK_MYSQL_FAULTS_NAME";

/// The child side of the killed-holder test: takes the lock, says so, and waits to die.
async fn child_holder() {
    let mode = match std::env::var(CHILD_ROLE).unwrap().as_str() {
        "row_lock" => Mode::RowLock,
        _ => Mode::GetLock,
    };
    let name = std::env::var(CHILD_NAME).unwrap();
    let c = client(&shared_url(), mode);
    let g = c.try_acquire(&name).await.unwrap().expect("free lock");
    // libtest may have printed part of a line already.
    println!("\ndistlock-mysql-child: held");
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(g);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_holder_process_hands_the_lock_to_a_waiter_at_once() {
    if std::env::var(CHILD_ROLE).is_ok() {
        child_holder().await;
        return;
    }
    let base = shared_url();
    for mode in [Mode::GetLock, Mode::RowLock] {
        let name = unique("sigkill");
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "killed_holder_process_hands_the_lock_to_a_waiter_at_once",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(common::URL_VAR, &base)
            .env(
                CHILD_ROLE,
                if mode == Mode::RowLock {
                    "row_lock"
                } else {
                    "get_lock"
                },
            )
            .env(CHILD_NAME, &name)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let held = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("distlock-mysql-child: held") {
                    return true;
                }
            }
            false
        })
        .await
        .expect("the child did not report");
        assert!(held, "the child did not take the lock");

        let waiter_client = client(&base, mode);
        let waiter = {
            let name = name.clone();
            tokio::spawn(async move {
                let g = waiter_client
                    .acquire_timeout(&name, Duration::from_secs(30))
                    .await;
                (g, Instant::now(), waiter_client)
            })
        };
        // The waiter must be waiting on the server before the holder dies, or the time
        // measured below includes its connecting (slow on a loaded machine).
        let mut watch = admin(&base).await;
        let waiting = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let n: i64 = sqlx::query_scalar(
                    "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST \
                     WHERE STATE = 'User lock' OR INFO LIKE '%distlock_locks%FOR UPDATE'",
                )
                .fetch_one(&mut watch)
                .await
                .unwrap();
                if n > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waiting.is_ok(),
            "{mode:?}: the waiter never waited on the server"
        );
        let _ = watch.close().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "the waiter got a held lock");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let killed = Instant::now();
        let (g, at, _c) = tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("waiter")
            .unwrap();
        let g = g.expect("the waiter gets the lock");
        let took = at.saturating_duration_since(killed);
        assert!(
            took <= Duration::from_millis(500),
            "{mode:?}: the waiter got the lock {took:?} after the holder died (expected at once)"
        );
        g.release().await.unwrap();
    }
}

async fn cancelled_acquire_leaves_no_lock_and_no_session(mode: Mode) {
    // A server of its own, so the global views (PROCESSLIST, innodb_trx) see only this test.
    let server = MariaDbServer::start().unwrap();
    let base = base_of(&server);
    let name = unique("cancel");
    let key = server_key(&LockName::new(name.clone()).unwrap());
    let (a, b) = (client(&base, mode), client(&base, mode));
    let holder = a.try_acquire(&name).await.unwrap().expect("free lock");
    let holder_id = holder_session(&base, mode, &holder).await.unwrap();

    // Waiters cancelled mid-wait.
    for _ in 0..5 {
        let r = tokio::time::timeout(Duration::from_millis(150), b.acquire(&name)).await;
        assert!(r.is_err(), "a waiter got a held lock");
    }
    // Acquires of a free name cancelled at points spread over the round trip.
    let free = unique("cancel-free");
    let free_key = server_key(&LockName::new(free.clone()).unwrap());
    for i in 0..20u64 {
        let cut = Duration::from_micros(200 * i);
        if let Ok(got) = tokio::time::timeout(cut, b.acquire(&free)).await {
            got.unwrap().release().await.unwrap();
        }
    }

    // Within a bound, nothing but the holder's session is left behind on the server.
    let mut conn = admin(&base).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let used: Option<i64> = sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
            .bind(&free_key)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let waiting: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST \
             WHERE ID <> CONNECTION_ID() AND (STATE = 'User lock' OR INFO LIKE '%FOR UPDATE%')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let trx: Vec<i64> = sqlx::query_scalar(
            "SELECT CAST(trx_mysql_thread_id AS SIGNED) FROM information_schema.innodb_trx",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let others: Vec<&i64> = trx
            .iter()
            .filter(|id| u64::try_from(**id).ok() != Some(holder_id))
            .collect();
        if used.is_none() && waiting == 0 && others.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: free lock used by {used:?}, {waiting} waiting sessions, transactions of {others:?}"
        );
        // innodb_trx is a cache that InnoDB refreshes only after 100 ms without reads:
        // polling faster would keep reading the first snapshot.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let used: Option<i64> = sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
        .bind(&key)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if mode == Mode::GetLock {
        assert_eq!(used.and_then(|u| u64::try_from(u).ok()), Some(holder_id));
    }
    assert_eq!(holder_session(&base, mode, &holder).await, Some(holder_id));
    holder.release().await.unwrap();
    let g = b
        .try_acquire(&name)
        .await
        .unwrap()
        .expect("free after the holder's release");
    g.release().await.unwrap();
    let _ = conn.close().await;
}
both_modes!(cancelled_acquire_leaves_no_lock_and_no_session);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_pitfall_reproduced_with_plain_sqlx_and_the_backend_is_immune() {
    let base = shared_url();
    let name = unique("pitfall");
    let key = server_key(&LockName::new(name.clone()).unwrap());

    // Plain sqlx: a lock taken on a pooled connection survives its return to the pool, and
    // the next task that gets that connection "acquires" it again.
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap();
    let take = |pool: sqlx::MySqlPool, key: String| async move {
        let mut conn = pool.acquire().await.unwrap();
        let got: Option<i64> = sqlx::query_scalar("SELECT CAST(GET_LOCK(?, 0) AS SIGNED)")
            .bind(&key)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        got == Some(1)
        // `conn` goes back to the pool here, still holding the lock.
    };
    let first = tokio::spawn(take(pool.clone(), key.clone())).await.unwrap();
    let second = tokio::spawn(take(pool.clone(), key.clone())).await.unwrap();
    assert!(
        first && second,
        "the pitfall: both tasks believe they hold the lock"
    );
    pool.close().await;

    // The backend: one client, two tasks; the second is refused while the first holds.
    for mode in [Mode::GetLock, Mode::RowLock] {
        let name = format!("{name}/{mode:?}");
        let c = client(&base, mode);
        let g1 = c.try_acquire(&name).await.unwrap().expect("free lock");
        let c2 = c.clone();
        let n2 = name.clone();
        let second = tokio::spawn(async move { c2.try_acquire(&n2).await.unwrap() })
            .await
            .unwrap();
        assert!(second.is_none(), "{mode:?}: two holders through one client");
        // Guards released or dropped in turn never leave a lock on a reused session.
        g1.release().await.unwrap();
        for round in 0..5 {
            let g = c.try_acquire(&name).await.unwrap().expect("free lock");
            if round % 2 == 0 {
                g.release().await.unwrap();
            } else {
                drop(g);
            }
            let other = client(&base, mode);
            let g = other
                .acquire_timeout(&name, Duration::from_secs(3))
                .await
                .expect("freed for another client");
            g.release().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_show_in_debug_or_errors() {
    let (port, conn) = shared_server_with_user("locker", "Sup3rSecretPw").await;
    let good =
        format!("mysql://locker:Sup3rSecretPw@127.0.0.1:{port}/distlock?probe_interval=200ms");
    let c = distlock_mysql::MySqlLock::connect(&good).await.unwrap();
    assert!(!format!("{c:?}").contains("Sup3rSecretPw"));
    let g = c.try_acquire("creds").await.unwrap().expect("free lock");
    assert!(!format!("{g:?}").contains("Sup3rSecretPw"));
    g.release().await.unwrap();

    let bad = format!("mysql://locker:WrongSecretPw@127.0.0.1:{port}/distlock");
    let e = distlock_mysql::MySqlLock::connect(&bad).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("WrongSecretPw"), "{shown}");
    let c = distlock_mysql::MySqlLock::new(distlock_mysql::MySqlConfig::from_url(&bad).unwrap());
    assert!(!format!("{c:?}").contains("WrongSecretPw"));
    let e = c.try_acquire("creds").await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("WrongSecretPw"), "{shown}");
    let _ = conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_reach_sqlx() {
    let base = shared_url();
    // The throwaway server has no certificate: `disabled` connects, `required` must not
    // silently fall back to plain text.
    let plain = distlock_mysql::MySqlLock::connect(&format!("{base}distlock?ssl-mode=disabled"))
        .await
        .unwrap();
    let g = plain.try_acquire("tls/plain").await.unwrap().expect("free");
    g.release().await.unwrap();
    let e = distlock_mysql::MySqlLock::connect(&format!("{base}distlock?ssl-mode=required"))
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Connection | ErrorKind::Config),
        "{e}"
    );
    assert!(e.to_string().to_lowercase().contains("tls"), "{e}");
}

/// The fencing token must be drawn while the lock is held: an acquire whose session dies
/// before its token is drawn must not hand out a guard (its token could exceed the real
/// next holder's, and the resource would then refuse the real holder). The fence row is
/// held by an outside transaction so the acquire stops right at the fencing step, and its
/// session is killed there.
async fn no_guard_when_the_session_dies_before_the_token_is_drawn(mode: Mode) {
    let server = MariaDbServer::start().unwrap();
    let base = base_of(&server);
    let name = unique("fence-kill");
    let key = server_key(&LockName::new(name.clone()).unwrap());
    // A long statement limit, so the fencing step waits for the fence row instead of
    // failing on its own.
    let config = distlock_mysql::MySqlConfig::from_url(&common::url(&base, mode))
        .unwrap()
        .with_probe_timeout(Duration::from_secs(20));
    let a = distlock_mysql::MySqlLock::new(config);
    let first = a.try_acquire(&name).await.unwrap().expect("free lock");
    let first_token = first.fencing_token().unwrap();
    first.release().await.unwrap();

    let mut blocker = admin(&base).await;
    let blocker_id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut blocker)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut blocker).await.unwrap();
    // The mode's own database (see `common::url`).
    let fence = match mode {
        Mode::GetLock => "SELECT token FROM distlock.distlock_fence WHERE name = ? FOR UPDATE",
        Mode::RowLock => {
            "SELECT token FROM distlock_row_lock.distlock_fence WHERE name = ? FOR UPDATE"
        }
    };
    sqlx::query(fence)
        .bind(key.as_bytes())
        .execute(&mut blocker)
        .await
        .unwrap();

    let acquiring = {
        let name = name.clone();
        // One attempt's outcome is under test: with retries (the default), the acquire
        // would start again on a new session and rightly take the lock once it is free.
        let options =
            AcquireOptions::wait_up_to(Duration::from_secs(30)).with_retry(RetryPolicy::never());
        tokio::spawn(async move { a.acquire_opts(&name, &options).await })
    };
    // Wait until the acquire holds the lock and its fencing statement waits for the row.
    let mut watch = admin(&base).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let holder = loop {
        assert!(
            Instant::now() < deadline,
            "the acquire never reached fencing"
        );
        let waiting: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.innodb_trx \
             WHERE trx_state = 'LOCK WAIT'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        let holder: Option<i64> = match mode {
            Mode::GetLock => sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
                .bind(&key)
                .fetch_one(&mut watch)
                .await
                .unwrap(),
            Mode::RowLock => sqlx::query_scalar(
                "SELECT CAST(trx_mysql_thread_id AS SIGNED) FROM information_schema.innodb_trx \
                 WHERE trx_state = 'RUNNING' AND trx_mysql_thread_id <> ?",
            )
            .bind(blocker_id)
            .fetch_optional(&mut watch)
            .await
            .unwrap(),
        };
        match holder {
            Some(id) if waiting > 0 => break id,
            // innodb_trx is a cache that InnoDB refreshes only after 100 ms without reads.
            _ => tokio::time::sleep(Duration::from_millis(150)).await,
        }
    };
    sqlx::query("KILL ?")
        .bind(holder)
        .execute(&mut watch)
        .await
        .unwrap();
    // The lock is free now; let the fencing statement go on.
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), acquiring)
        .await
        .expect("the acquire did not end")
        .unwrap();
    if let Ok(Some(g)) = &got {
        panic!(
            "{mode:?}: a guard (token {:?}) although its session was killed before the token \
             was drawn",
            g.fencing_token()
        );
    }
    let b = client(&base, mode);
    let next = b
        .acquire_timeout(&name, Duration::from_secs(5))
        .await
        .expect("the lock is free");
    assert!(next.fencing_token().unwrap() > first_token);
    next.release().await.unwrap();
    let _ = (blocker.close().await, watch.close().await);
}
both_modes!(no_guard_when_the_session_dies_before_the_token_is_drawn);

/// Connection ids start again from 1 after a server restart, so a `KILL` of a dead hold's
/// old id may hit an unrelated session that now has that id. A release after a restart
/// must leave such a session alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_kill_after_a_restart_spares_a_session_that_reuses_the_id() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let server = MariaDbServer::start().unwrap();
        let base = base_of(&server);
        // Push the ids up so the hold's id is reached again after the restart.
        for _ in 0..30 {
            admin(&base).await.close().await.unwrap();
        }
        let config = distlock_mysql::MySqlConfig::from_url(&common::url(&base, Mode::GetLock))
            .unwrap()
            .with_probe_interval(Duration::from_secs(600));
        let a = distlock_mysql::MySqlLock::new(config);
        let name = unique("reused-id");
        let g = a.try_acquire(&name).await.unwrap().expect("free lock");
        let id = holder_session(&base, Mode::GetLock, &g).await.unwrap();
        let server = tokio::task::spawn_blocking(move || {
            server.restart().unwrap();
            server
        })
        .await
        .unwrap();
        // Open sessions on the new server until one has the hold's old id.
        let mut others = Vec::new();
        let bystander = loop {
            let mut conn = admin(&base).await;
            let got: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let got = u64::try_from(got).unwrap();
            assert!(got <= id, "ids after the restart passed {id} (at {got})");
            if got == id {
                break conn;
            }
            others.push(conn);
        };
        let mut bystander = bystander;
        // The hold's connection is dead: the release cannot be confirmed and cleans up.
        let e = g.release().await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::NotHeld | ErrorKind::Connection),
            "{e}"
        );
        let alive = sqlx::query_scalar::<_, i64>("SELECT CAST(1 AS SIGNED)")
            .fetch_one(&mut bystander)
            .await;
        assert!(
            alive.is_ok(),
            "the cleanup KILLed an unrelated session that reused id {id}: {alive:?}"
        );
        drop(others);
        drop(server);
    })
    .await
    .expect("test took too long");
}

/// Dropped clients close their connections (no helper connection outlives its client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_clients_leave_no_connections() {
    let (port, mut conn) = shared_server_with_user("leakcheck", "leakpw").await;
    for mode in ["get_lock", "row_lock"] {
        let url = format!(
            "mysql://leakcheck:leakpw@127.0.0.1:{port}/{}?mode={mode}",
            if mode == "get_lock" {
                "distlock"
            } else {
                "distlock_row_lock"
            }
        );
        for i in 0..5 {
            let c = distlock_mysql::MySqlLock::connect(&url).await.unwrap();
            let g = c
                .try_acquire(&format!("leak/{mode}/{i}"))
                .await
                .unwrap()
                .expect("free lock");
            if i % 2 == 0 {
                g.release().await.unwrap();
            } else {
                drop(g);
            }
            drop(c);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST \
             WHERE USER = 'leakcheck'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} connections of dropped clients are still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = conn.close().await;
}

/// Building a client is synchronous and must not need a runtime (nor panic without one).
#[test]
fn a_client_can_be_built_outside_a_runtime() {
    let config =
        distlock_mysql::MySqlConfig::from_url("mysql://root@127.0.0.1:9/distlock").unwrap();
    let c = distlock_mysql::MySqlLock::new(config);
    drop(c.clone());
    // And it works once inside one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = shared_url();
    let c = client(&base, Mode::GetLock);
    rt.block_on(async {
        let g = c
            .try_acquire("outside-runtime")
            .await
            .unwrap()
            .expect("free");
        g.release().await.unwrap();
    });
}

/// With `innodb_rollback_on_timeout` (a server option), a lock wait timeout — and
/// MariaDB's `NOWAIT` refusal, which is one — rolls back the whole transaction. A waiter
/// that then retried `SELECT … FOR UPDATE` would run it in autocommit mode: the row lock
/// would end with the statement, and the waiter would believe it holds a free lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_lock_waiter_holds_even_when_timeouts_roll_back_the_transaction() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let server = MariaDbServer::start_with(&["--innodb-rollback-on-timeout"]).unwrap();
        let base = base_of(&server);
        let name = unique("rollback-on-timeout");
        let (a, b, c) = (
            client(&base, Mode::RowLock),
            client(&base, Mode::RowLock),
            client(&base, Mode::RowLock),
        );
        let g = a.try_acquire(&name).await.unwrap().expect("free lock");
        let waiter = {
            let name = name.clone();
            tokio::spawn(async move { b.acquire_timeout(&name, Duration::from_secs(5)).await })
        };
        // The waiter's NOWAIT attempt is refused and it waits on the server.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiter.is_finished(), "the waiter got a held lock");
        g.release().await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter did not end")
            .unwrap()
            .expect("the waiter gets the released lock");
        let other = c.try_acquire(&name).await.unwrap();
        assert!(
            other.is_none(),
            "two holders: the waiter's row lock ended with its statement"
        );
        got.release().await.unwrap();
        drop(server);
    })
    .await
    .expect("test took too long");
}

/// The probes keep a hold's session from idling out: on a server with short
/// `wait_timeout` and `idle_transaction_timeout`, a hold outlives them.
async fn probes_keep_the_session_from_idling_out(mode: Mode) {
    let server =
        MariaDbServer::start_with(&["--wait-timeout=2", "--idle-transaction-timeout=2"]).unwrap();
    let base = base_of(&server);
    let name = unique("idle");
    let (a, b) = (client(&base, mode), client(&base, mode));
    let g = a.try_acquire(&name).await.unwrap().expect("free lock");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(
        g.is_held(),
        "the hold idled out: {:?}",
        g.lost_signal().wait().await
    );
    assert!(
        b.try_acquire(&name).await.unwrap().is_none(),
        "another client took a held lock"
    );
    g.release().await.unwrap();
    drop(server);
}
both_modes!(probes_keep_the_session_from_idling_out);

/// A waiting acquire dropped while its runtime shuts down cannot `KILL` its session (no
/// runtime to run the kill on): only its socket closes. Its session stays queued on the
/// server, and when the lock is released it must not keep it: another client gets it at
/// once.
#[test]
fn acquire_dropped_with_its_runtime_does_not_keep_the_lock() {
    let base = shared_url();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    for mode in [Mode::GetLock, Mode::RowLock] {
        let main = runtime();
        let name = unique("runtime-gone");
        let (a, c) = (client(&base, mode), client(&base, mode));
        let g = main
            .block_on(a.try_acquire(&name))
            .unwrap()
            .expect("free lock");
        let doomed = runtime();
        let b = client(&base, mode);
        {
            let name = name.clone();
            doomed.spawn(async move { b.acquire(&name).await });
        }
        // Let the waiter reach the server, then end its runtime with the acquire pending.
        doomed.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
        drop(doomed);
        main.block_on(async {
            g.release().await.unwrap();
            let got = c
                .acquire_timeout(&name, Duration::from_secs(3))
                .await
                .unwrap_or_else(|e| panic!("{mode:?}: the dropped waiter kept the lock: {e}"));
            got.release().await.unwrap();
        });
    }
}

/// Creates (if missing) a user with every privilege on the shared server; returns the
/// server's port and an admin connection.
async fn shared_server_with_user(user: &str, password: &str) -> (String, sqlx::MySqlConnection) {
    let base = shared_url();
    let port = base
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let mut conn = admin(&base).await;
    for statement in [
        format!("CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'"),
        format!("GRANT ALL ON *.* TO '{user}'@'127.0.0.1'"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    (port, conn)
}

/// A password holding URL delimiters, written unescaped, authenticates: the user
/// information ends at the last `@` (issue 10), and it never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_with_url_delimiters_authenticates_unescaped() {
    let (port, conn) = shared_server_with_user("oddpw", "Sup3r?S3c/r@t").await;
    let url = format!("MySQL://oddpw:Sup3r?S3c/r@t@127.0.0.1:{port}/distlock?probe_interval=1s");
    let locks = distlock_mysql::MySqlLock::connect(&url).await.unwrap();
    assert!(!format!("{locks:?}").contains("S3c"));
    let g = locks
        .try_acquire("odd-password")
        .await
        .unwrap()
        .expect("free");
    g.release().await.unwrap();
    let _ = conn.close().await;
}
