//! Session reuse: a client serves acquire after acquire on one session, and a session goes
//! back to the idle set only once it holds nothing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use distlock_core::{DistributedLock, LockExt};
use distlock_mysql::Mode;
use distlock_testkit::mariadb::MariaDbServer;
use sqlx::mysql::MySqlConnection;

use common::{admin, client};

fn unique(label: &str) -> String {
    format!(
        "sessions/{label}/{}/{:?}",
        std::process::id(),
        Instant::now()
    )
}

/// One of the server's global counters (`SHOW GLOBAL STATUS`).
async fn status(conn: &mut MySqlConnection, name: &str) -> u64 {
    // SHOW cannot be prepared: the name is a constant of the test.
    let (_, value): (String, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SHOW GLOBAL STATUS LIKE '{name}'"
    )))
    .fetch_one(conn)
    .await
    .expect("SHOW GLOBAL STATUS");
    value.parse().expect("a number")
}

macro_rules! both_modes {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn get_lock() {
                tokio::time::timeout(Duration::from_secs(60), super::$name(Mode::GetLock))
                    .await
                    .expect("test took too long");
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn row_lock() {
                tokio::time::timeout(Duration::from_secs(60), super::$name(Mode::RowLock))
                    .await
                    .expect("test took too long");
            }
        }
    };
}

/// Sequential cycles on one client open no new connection after the first.
async fn sequential_cycles_reuse_one_session(mode: Mode) {
    // A server of its own, so the global counter counts only this test.
    let server = MariaDbServer::start().unwrap();
    let base = format!("mysql://root@127.0.0.1:{}/", server.port());
    let name = unique("reuse");
    let c = client(&base, mode);
    // Warm-up: the tables and the first session.
    c.try_acquire(&name)
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();
    let mut admin = admin(&base).await;
    let before = status(&mut admin, "Connections").await;
    for _ in 0..20 {
        let g = c.try_acquire(&name).await.unwrap().expect("free lock");
        g.release().await.unwrap();
    }
    let opened = status(&mut admin, "Connections").await - before;
    // Row-lock mode draws its token on the client's helper pool, whose connections go back
    // to the pool in the background: a cycle that comes before that may have the pool open
    // another (up to its 4). A session per acquire would open 20.
    let allowed = match mode {
        Mode::GetLock => 0,
        _ => 3,
    };
    assert!(
        opened <= allowed,
        "{mode:?}: 20 cycles opened {opened} connections"
    );
}
both_modes!(sequential_cycles_reuse_one_session);

/// A released session that goes back to the idle set holds nothing: another client can take
/// the name at once, and a reused session is an ordinary contender for a name its client
/// holds elsewhere (no `GET_LOCK` re-entrancy through reuse).
async fn a_reused_session_holds_nothing(mode: Mode) {
    let base = common::shared_url();
    let name = unique("clean");
    let (c, d) = (client(&base, mode), client(&base, mode));
    for _ in 0..3 {
        c.acquire_timeout(&name, Duration::from_secs(5))
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
        let other = d
            .try_acquire(&name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{mode:?}: the name is still held after a release"));
        other.release().await.unwrap();
    }
    // c's idle session takes the name; a second acquire by c runs on another session.
    let held = c.try_acquire(&name).await.unwrap().expect("free lock");
    assert!(
        c.try_acquire(&name).await.unwrap().is_none(),
        "{mode:?}: one client took a held name twice"
    );
    // The refused try's session went back idle; taking another name with it and giving
    // it back leaves the first hold alone.
    let g2 = c
        .try_acquire(&unique("other"))
        .await
        .unwrap()
        .expect("free");
    g2.release().await.unwrap();
    assert!(d.try_acquire(&name).await.unwrap().is_none());
    held.release().await.unwrap();
    d.try_acquire(&name)
        .await
        .unwrap()
        .expect("free after release")
        .release()
        .await
        .unwrap();
}
both_modes!(a_reused_session_holds_nothing);

/// `fencing=off`: no token, no fencing capability, and the counter row is not touched.
async fn fencing_off_draws_no_token(mode: Mode) {
    let base = common::shared_url();
    let name = unique("nofence");
    let url = format!("{}&fencing=off", common::url(&base, mode));
    let c = distlock_mysql::MySqlLock::connect(&url).await.unwrap();
    assert!(!c.capabilities().fencing);
    let g = c.try_acquire(&name).await.unwrap().expect("free lock");
    assert_eq!(g.fencing_token(), None);
    g.release().await.unwrap();
    let key = distlock_mysql::server_key(&distlock_core::LockName::new(name.clone()).unwrap());
    let mut admin = admin(&base).await;
    let database = common::url(&base, mode)
        .split('/')
        .nth(3)
        .and_then(|p| p.split('?').next())
        .unwrap()
        .to_owned();
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS SIGNED) FROM `{database}`.distlock_fence WHERE name = ?"
    )))
    .bind(key.as_bytes())
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(rows, 0, "{mode:?}: the fence counter was written");
    // The default still fences.
    let fenced = client(&base, mode);
    assert!(fenced.capabilities().fencing);
    let g = fenced.try_acquire(&name).await.unwrap().expect("free lock");
    assert!(g.fencing_token().is_some());
    g.release().await.unwrap();
}
both_modes!(fencing_off_draws_no_token);

/// A client's holds are probed by one task, not one task each (a spawn and a wake-up per
/// acquire and release), and that task ends once nothing is held.
async fn holds_share_one_probe_task(mode: Mode) {
    let base = common::shared_url();
    let locks = client(&base, mode);
    let prefix = unique("one-prober");
    // The first acquire creates the helper pool, whose upkeep is a task of its own.
    locks
        .acquire(&prefix)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    // Its probe task ends at its next tick, finding nothing held.
    tokio::time::sleep(common::PROBE * 2).await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    let mut guards = Vec::new();
    for i in 0..10 {
        guards.push(locks.acquire(&format!("{prefix}/{i}")).await.unwrap());
    }
    let during = tasks();
    assert!(
        during <= before + 1,
        "10 holds added {} tasks",
        during - before
    );
    // They are probed all the same: a killed session is noticed.
    common::kill_holder(&base, mode, &guards[3]).await.unwrap();
    tokio::time::timeout(common::PROBE * 4 + common::PROBE_TIMEOUT, guards[3].lost())
        .await
        .expect("the killed hold was noticed");
    assert!(guards[4].is_held());
    for guard in guards {
        let _ = guard.release().await;
    }
    let ended = async {
        while tasks() >= during {
            tokio::time::sleep(common::PROBE / 4).await;
        }
    };
    tokio::time::timeout(common::PROBE * 4, ended)
        .await
        .expect("the probe task ends once nothing is held");
}

both_modes!(holds_share_one_probe_task);

/// Once the client and its guards are gone, the probe task ends at once, not at its next
/// tick: `distlock run` waits for the background tasks of its holder before it exits.
async fn the_probe_task_ends_with_its_client(mode: Mode) {
    let base = common::shared_url();
    let url = common::url(&base, mode).replace(
        &format!("probe_interval={}ms", common::PROBE.as_millis()),
        "probe_interval=60s",
    );
    let locks =
        distlock_mysql::MySqlLock::new(distlock_mysql::MySqlConfig::from_url(&url).unwrap());
    let name = unique("prober-ends");
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let guard = locks.acquire(&name).await.unwrap();
    let during = tasks();
    guard.release().await.unwrap();
    drop(locks);
    let ended = async {
        while tasks() >= during {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .expect("the probe task ended with its client, not at its next tick (60 s)");
}

both_modes!(the_probe_task_ends_with_its_client);
