//! [`Inspect`] for MySQL/MariaDB.
//!
//! * `GET_LOCK` mode: the names are the fencing table's rows (one per lock ever taken);
//!   `IS_USED_LOCK` gives each held one's connection id. No age: the server keeps none.
//! * Row-lock mode: the locks table's `holder` column (written, uncommitted, inside the
//!   holder's transaction, so read with `READ UNCOMMITTED`) joined with
//!   `information_schema.INNODB_TRX` (open transactions, needs the `PROCESS` privilege),
//!   whose `trx_started` gives the age.
//!
//! The holder metadata is what the server knows of the holding connection: its client host
//! (`PROCESSLIST.HOST`) and connection id (the `session`); the owner token is not stored.
//! Names are the server-side keys ([`server_key`](crate::server_key)): lower-cased and
//! hashed, so `PREFIX` matches the key's readable part, lower-cased.
//!
//! Breaking a hold `KILL`s the holding connection: the holder's prober notices within its
//! probe interval and signals the loss, and the fencing counter has moved on.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use distlock_core::{Finding, Holder, Inspect, LockError, LockName, Result};

use crate::config::Mode;
use crate::error;
use crate::{server_key, MySqlLock};

/// What [`Inspect::holders`] reads in one row: key, connection id, fencing token, age (µs).
type Row = (Vec<u8>, i64, Option<i64>, Option<i64>, Option<String>);

const GET_LOCK_HOLDERS: &str = "SELECT f.name, CAST(IS_USED_LOCK(f.name) AS SIGNED) AS id, \
     CAST(f.token AS SIGNED), CAST(NULL AS SIGNED), \
     (SELECT p.HOST FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(f.name)) \
     FROM distlock_fence f HAVING id IS NOT NULL";

const ROW_LOCK_HOLDERS: &str = "SELECT l.name, CAST(l.holder AS SIGNED), \
     (SELECT CAST(f.token AS SIGNED) FROM distlock_fence f WHERE f.name = l.name), \
     CAST(TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) AS SIGNED), \
     (SELECT p.HOST FROM information_schema.PROCESSLIST p WHERE p.ID = l.holder) \
     FROM distlock_locks l JOIN information_schema.INNODB_TRX t \
     ON t.trx_mysql_thread_id = l.holder";

/// How the readable part of a server key starts for names starting with `prefix`.
fn key_prefix(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl MySqlLock {
    async fn rows(&self) -> Result<Vec<Row>> {
        let shared = self.shared();
        shared.ensure_schema().await?;
        let mut conn = shared
            .pool()
            .acquire()
            .await
            .map_err(|e| error::map("connecting to MySQL", e))?;
        let rows = match shared.config.mode {
            Mode::GetLock => sqlx::query_as::<_, Row>(GET_LOCK_HOLDERS)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| error::map("listing GET_LOCK holders", e))?,
            Mode::RowLock => {
                // Only for the next statement, on this helper connection.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| error::map("reading uncommitted holders", e))?;
                sqlx::query_as::<_, Row>(ROW_LOCK_HOLDERS)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|e| error::map("listing row-lock holders (needs PROCESS)", e))?
            }
        };
        Ok(rows)
    }
}

fn holder_of(row: Row) -> Holder {
    let (key, id, token, age_us, host) = row;
    let mut holder = Holder::new(String::from_utf8_lossy(&key).into_owned());
    holder.fencing_token = token.and_then(|t| u64::try_from(t).ok());
    holder.age = age_us
        .and_then(|us| u64::try_from(us).ok())
        .map(Duration::from_micros);
    holder.meta.host = host.map(|h| h.rsplit_once(':').map_or(h.clone(), |(h, _)| h.to_string()));
    holder.session = Some(format!("connection {id}"));
    holder
}

#[async_trait]
impl Inspect for MySqlLock {
    async fn holders(&self, prefix: &str) -> Result<Vec<Holder>> {
        let wanted = key_prefix(prefix);
        Ok(self
            .rows()
            .await?
            .into_iter()
            .filter(|(key, ..)| key.starts_with(wanted.as_bytes()))
            .map(holder_of)
            .collect())
    }

    async fn break_lock(&self, name: &LockName) -> Result<Option<Holder>> {
        let key = server_key(name);
        let Some(row) = self
            .rows()
            .await?
            .into_iter()
            .find(|(k, ..)| k.as_slice() == key.as_bytes())
        else {
            return Ok(None);
        };
        let id = u64::try_from(row.1)
            .map_err(|_| LockError::backend("the server reported a negative connection id"))?;
        sqlx::query("KILL CONNECTION ?")
            .bind(id)
            .execute(self.shared().pool())
            .await
            .map_err(|e| {
                error::map(
                    "KILL of the holding connection (another user's needs CONNECTION ADMIN or SUPER)",
                    e,
                )
            })?;
        distlock_core::observe::forced_release("mysql", name);
        Ok(Some(holder_of(row)))
    }

    async fn doctor(&self) -> Result<Vec<Finding>> {
        let shared = self.shared();
        let pool = shared.pool();
        let fail = |what: &'static str| move |e| error::map(what, e);
        let mut findings = Vec::new();

        let wsrep: Option<(String, String)> =
            sqlx::query_as("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
                .fetch_optional(pool)
                .await
                .map_err(fail("reading wsrep_on"))?;
        findings.push(match wsrep {
            Some((_, on)) if on.eq_ignore_ascii_case("ON") => Finding::fail(
                "galera (wsrep_on)",
                "this is a Galera node: GET_LOCK is local to one node and row locks are \
                 only certified at commit, so two nodes can grant the same lock",
                "point distlock at one fixed node (not a load balancer over the cluster), \
                 or use another backend",
            ),
            _ => Finding::pass("galera (wsrep_on)", "not a Galera node"),
        });

        let wait_timeout: i64 = sqlx::query_scalar("SELECT CAST(@@SESSION.wait_timeout AS SIGNED)")
            .fetch_one(pool)
            .await
            .map_err(fail("reading wait_timeout"))?;
        let probe = shared.config.probe_interval;
        let idle = Duration::from_secs(u64::try_from(wait_timeout).unwrap_or(0));
        findings.push(if idle <= probe {
            Finding::warn(
                "wait_timeout",
                format!(
                    "wait_timeout {wait_timeout} s is not longer than the probe interval \
                     {probe:?}: the server drops idle holders' connections, and their locks, \
                     between probes"
                ),
                format!(
                    "raise wait_timeout well above {probe:?} (`SET GLOBAL wait_timeout = 28800`), \
                     or lower probe_interval in the URL"
                ),
            )
        } else {
            Finding::pass(
                "wait_timeout",
                format!("{wait_timeout} s, longer than the probe interval {probe:?}"),
            )
        });

        findings.push(match self.rows().await {
            Ok(_) => Finding::pass(
                "privileges",
                "the lock tables and views distlock reads are readable",
            ),
            Err(e) => Finding::warn(
                "privileges",
                format!("`distlock holders` cannot read what it needs: {e}"),
                "GRANT SELECT, INSERT, UPDATE, CREATE on the lock database, and PROCESS for \
                 row-lock holders, to the lock user",
            ),
        });

        let before = SystemTime::now();
        let server_us: i64 =
            sqlx::query_scalar("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)")
                .fetch_one(pool)
                .await
                .map_err(fail("reading NOW()"))?;
        let server = Duration::from_micros(u64::try_from(server_us).unwrap_or(0));
        findings.push(distlock_core::inspect::clock_skew(
            before,
            server,
            SystemTime::now(),
        ));
        Ok(findings)
    }
}
