//! The throwaway MariaDB the tests share, and the conformance harness on it.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use distlock_conformance::{Faults, Harness};
use distlock_core::{DistributedLock, LockError, LockGuard, Result};
use distlock_mysql::{server_key, Mode, MySqlConfig, MySqlLock};
use distlock_testkit::mariadb::{MariaDbServer, GET_LOCK_DATABASE, ROW_LOCK_DATABASE};
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Executor};

/// Child processes of the cross-process cases reach the parent's server through this.
pub const URL_VAR: &str = "DISTLOCK_TEST_MYSQL_URL";

/// How often the tests probe held connections.
pub const PROBE: Duration = Duration::from_millis(200);

/// How long a probe may go unanswered before the hold counts as lost.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// The server every test of this binary shares; `None` in a child process, which uses
/// its parent's.
pub fn shared_server() -> Option<&'static MariaDbServer> {
    static SERVER: OnceLock<Option<MariaDbServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if std::env::var(URL_VAR).is_ok() {
                return None;
            }
            Some(MariaDbServer::start().expect("start a throwaway MariaDB"))
        })
        .as_ref()
}

/// The shared server's URL (or the parent's, in a child process).
pub fn shared_url() -> String {
    match shared_server() {
        Some(server) => format!("mysql://root@127.0.0.1:{}/", server.port()),
        None => std::env::var(URL_VAR).expect("the parent's server URL"),
    }
}

/// `base` (`mysql://…/`, no database) in `mode` with the test probe, on the database the
/// testkit made for that mode (the modes refuse to share one).
pub fn url(base: &str, mode: Mode) -> String {
    let (mode, database) = match mode {
        Mode::GetLock => ("get_lock", GET_LOCK_DATABASE),
        Mode::RowLock => ("row_lock", ROW_LOCK_DATABASE),
    };
    format!(
        "{base}{database}?mode={mode}&probe_interval={}ms&probe_timeout={}ms",
        PROBE.as_millis(),
        PROBE_TIMEOUT.as_millis()
    )
}

pub fn client(base: &str, mode: Mode) -> MySqlLock {
    MySqlLock::new(MySqlConfig::from_url(&url(base, mode)).expect("config"))
}

/// A plain admin connection to the server at `base`.
pub async fn admin(base: &str) -> MySqlConnection {
    let options: sqlx::mysql::MySqlConnectOptions = base.parse().expect("url");
    MySqlConnection::connect_with(&options)
        .await
        .expect("admin connection")
}

/// The session id holding `guard`'s lock, found the way an operator would.
pub async fn holder_session(base: &str, mode: Mode, guard: &LockGuard) -> Option<u64> {
    let key = server_key(guard.name());
    let mut conn = admin(base).await;
    let id: Option<i64> = match mode {
        Mode::GetLock => sqlx::query_scalar("SELECT CAST(IS_USED_LOCK(?) AS SIGNED)")
            .bind(&key)
            .fetch_one(&mut conn)
            .await
            .expect("IS_USED_LOCK"),
        Mode::RowLock => {
            // The holder records itself inside its open transaction.
            conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
                .await
                .expect("isolation");
            // The row-lock mode's own database (see `url`).
            sqlx::query_scalar(
                "SELECT CAST(holder AS SIGNED) FROM distlock_row_lock.distlock_locks WHERE name = ?",
            )
            .bind(key.as_bytes())
            .fetch_optional(&mut conn)
            .await
            .expect("holder")
            .flatten()
        }
    };
    let _ = conn.close().await;
    id.and_then(|i| u64::try_from(i).ok())
}

/// `KILL`s the session holding `guard`'s lock.
pub async fn kill_holder(base: &str, mode: Mode, guard: &LockGuard) -> Result<()> {
    let id = holder_session(base, mode, guard)
        .await
        .ok_or_else(|| LockError::backend("no session holds the lock"))?;
    let mut conn = admin(base).await;
    sqlx::query("KILL ?")
        .bind(id)
        .execute(&mut conn)
        .await
        .map_err(|e| LockError::backend(format!("KILL: {e}")))?;
    let _ = conn.close().await;
    Ok(())
}

/// The conformance harness: clients in one mode on the shared server. The suite runs the
/// store-disturbing cases (restart, pause) alone, so they may use the shared server too.
pub struct MySqlHarness {
    mode: Mode,
    base: String,
}

impl MySqlHarness {
    pub fn new(mode: Mode) -> Self {
        MySqlHarness {
            mode,
            base: shared_url(),
        }
    }
}

#[async_trait]
impl Harness for MySqlHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(client(&self.base, self.mode)))
    }
    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
    fn child_env(&self) -> Vec<(String, String)> {
        vec![(URL_VAR.to_string(), self.base.clone())]
    }
    fn backstop(&self) -> Duration {
        // A dead holder's connection closes with its process and the server frees the lock
        // at once; a frozen server is noticed within a probe interval plus its timeout.
        PROBE + PROBE_TIMEOUT + Duration::from_millis(800)
    }
}

fn server() -> Result<&'static MariaDbServer> {
    shared_server().ok_or_else(|| LockError::unsupported("faults from a child process"))
}

#[async_trait]
impl Faults for MySqlHarness {
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        kill_holder(&self.base, self.mode, guard).await
    }
    async fn restart_server(&self) -> Result<()> {
        let server = server()?;
        tokio::task::spawn_blocking(move || server.restart())
            .await
            .map_err(|e| LockError::backend(e.to_string()))?
            .map_err(|e| LockError::backend(format!("restart: {e}")))
    }
    async fn pause_server(&self) -> Result<()> {
        server()?.pause();
        Ok(())
    }
    async fn resume_server(&self) -> Result<()> {
        server()?.resume();
        Ok(())
    }
}
