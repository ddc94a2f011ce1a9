//! Raw MySQL/MariaDB on one connection per contender: `GET_LOCK`/`RELEASE_LOCK` for the
//! get_lock mode; `BEGIN; SELECT … FOR UPDATE; COMMIT` on a row for the row_lock mode.

use std::time::Duration;

use async_trait::async_trait;
use distlock::{LockError, Result};
use sqlx::{Connection, MySqlConnection};

use crate::bench::subject::{Contender, Subject};
use crate::bench::target::Target;

/// The raw row-lock table: one row per bench lock name, deleted by the clean-up.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS distlock_bench_raw (
    name VARCHAR(190) NOT NULL PRIMARY KEY
) ENGINE=InnoDB";

pub(crate) struct RawMySql {
    url: String,
    run: String,
    row_lock: bool,
}

impl RawMySql {
    pub(crate) fn new(target: &Target, row_lock: bool) -> Self {
        RawMySql {
            url: target.url.clone(),
            run: target.run.clone(),
            row_lock,
        }
    }
}

pub(crate) fn fail(e: sqlx::Error) -> LockError {
    LockError::connection("raw mysql").with_source(e)
}

/// A plain connection to the URL's database, through the backend's own URL parsing so
/// both runs connect the same way.
pub(crate) async fn connect(url: &str) -> Result<MySqlConnection> {
    let config = distlock::mysql::MySqlConfig::from_url(url)?;
    MySqlConnection::connect_with(config.connect_options())
        .await
        .map_err(fail)
}

#[async_trait]
impl Subject for RawMySql {
    fn label(&self) -> &'static str {
        "raw"
    }

    fn describe(&self) -> String {
        if self.row_lock {
            "BEGIN; SELECT … FOR UPDATE [NOWAIT]; COMMIT on one connection".into()
        } else {
            "GET_LOCK(name, wait) + RELEASE_LOCK on one connection".into()
        }
    }

    async fn contender(&self, name: &str) -> Result<Box<dyn Contender>> {
        let mut conn = connect(&self.url).await?;
        let key = format!("distlock-bench-{}/{}", self.run, super::flat(name));
        if self.row_lock {
            sqlx::query(CREATE).execute(&mut conn).await.map_err(fail)?;
            sqlx::query("INSERT IGNORE INTO distlock_bench_raw (name) VALUES (?)")
                .bind(&key)
                .execute(&mut conn)
                .await
                .map_err(fail)?;
        }
        Ok(Box::new(MySqlContender {
            conn,
            key,
            row_lock: self.row_lock,
        }))
    }
}

struct MySqlContender {
    conn: MySqlConnection,
    key: String,
    row_lock: bool,
}

impl MySqlContender {
    async fn take(&mut self, wait: Option<Duration>) -> Result<bool> {
        if self.row_lock {
            return self.take_row(wait).await;
        }
        let seconds = wait.map_or(0.0, |w| w.as_secs_f64());
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&self.key)
            .bind(seconds)
            .fetch_one(&mut self.conn)
            .await
            .map_err(fail)?;
        Ok(got == Some(1))
    }

    async fn take_row(&mut self, wait: Option<Duration>) -> Result<bool> {
        if let Some(wait) = wait {
            sqlx::query("SET SESSION innodb_lock_wait_timeout = ?")
                .bind(wait.as_secs().max(1))
                .execute(&mut self.conn)
                .await
                .map_err(fail)?;
        }
        sqlx::raw_sql("BEGIN")
            .execute(&mut self.conn)
            .await
            .map_err(fail)?;
        let select = if wait.is_some() {
            "SELECT 1 FROM distlock_bench_raw WHERE name = ? FOR UPDATE"
        } else {
            "SELECT 1 FROM distlock_bench_raw WHERE name = ? FOR UPDATE NOWAIT"
        };
        match sqlx::query(select)
            .bind(&self.key)
            .fetch_optional(&mut self.conn)
            .await
        {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e))
                // 3572: NOWAIT found it locked; 1205: lock wait timeout.
                if matches!(e.code().as_deref(), Some("HY000") | Some("40001"))
                    || e.message().contains("lock") =>
            {
                self.end().await?;
                Ok(false)
            }
            Err(e) => Err(fail(e)),
        }
    }

    async fn end(&mut self) -> Result<()> {
        sqlx::raw_sql("COMMIT")
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(fail)
    }
}

#[async_trait]
impl Contender for MySqlContender {
    async fn acquire(&mut self, limit: Duration) -> Result<()> {
        if self.take(Some(limit)).await? {
            Ok(())
        } else {
            Err(LockError::timeout("the raw MySQL lock stayed held"))
        }
    }

    async fn try_acquire(&mut self) -> Result<bool> {
        self.take(None).await
    }

    async fn release(&mut self) -> Result<()> {
        if self.row_lock {
            return self.end().await;
        }
        let freed: Option<i64> = sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
            .bind(&self.key)
            .fetch_one(&mut self.conn)
            .await
            .map_err(fail)?;
        if freed == Some(1) {
            Ok(())
        } else {
            Err(LockError::not_held("the raw GET_LOCK was not ours"))
        }
    }
}
