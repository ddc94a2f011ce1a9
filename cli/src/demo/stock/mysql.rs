//! The stock in a MySQL/MariaDB row, written in a transaction with the fence check.
//!
//! The table `distlock_demo_stock` (and `distlock_fenced_writes` of the fence) live in the
//! URL's database (`distlock` when it names none, as for the locks); the demo deletes its
//! rows afterwards and leaves the empty tables.

use distlock::{fence, LockError, Result};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{Connection, MySqlConnection};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS distlock_demo_stock (
    run VARCHAR(64) NOT NULL PRIMARY KEY,
    items BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB";
const RESET: &str = "REPLACE INTO distlock_demo_stock (run, items) VALUES (?, ?)";
const READ: &str = "SELECT items FROM distlock_demo_stock WHERE run = ?";
const WRITE: &str = "UPDATE distlock_demo_stock SET items = ? WHERE run = ?";
const REMOVE: &str = "DELETE FROM distlock_demo_stock WHERE run = ?";

pub(crate) struct MySqlStock {
    conn: MySqlConnection,
    run: String,
}

impl MySqlStock {
    pub(crate) async fn open(url: &str, run: &str) -> Result<Self> {
        let plain = super::without_query(url).replacen("mariadb://", "mysql://", 1);
        let mut options: MySqlConnectOptions = plain
            .parse()
            .map_err(|e| LockError::config("invalid mysql:// URL").with_source(e))?;
        if options.get_database().is_none() {
            options = options.database("distlock");
        }
        let conn = MySqlConnection::connect_with(&options)
            .await
            .map_err(failure)?;
        Ok(MySqlStock {
            conn,
            run: run.to_string(),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("row {:?} of table distlock_demo_stock", self.run)
    }

    fn resource(&self) -> String {
        format!("distlock-demo/{}/stock", self.run)
    }

    pub(crate) async fn reset(&mut self, items: u64) -> Result<()> {
        sqlx::query(CREATE)
            .execute(&mut self.conn)
            .await
            .map_err(failure)?;
        fence::sql::ensure_schema(&mut self.conn).await?;
        sqlx::query(RESET)
            .bind(&self.run)
            .bind(items)
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(failure)
    }

    pub(crate) async fn read(&mut self) -> Result<u64> {
        sqlx::query_scalar(READ)
            .bind(&self.run)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(failure)?
            .ok_or_else(|| LockError::backend(format!("{} is gone", self.describe())))
    }

    pub(crate) async fn write(&mut self, items: u64, token: Option<u64>) -> Result<()> {
        let resource = self.resource();
        let mut tx = self.conn.begin().await.map_err(failure)?;
        if token.is_some() {
            // Dropping `tx` on an error rolls the check back.
            fence::sql::check_and_bump(&mut tx, &resource, token).await?;
        }
        sqlx::query(WRITE)
            .bind(items)
            .bind(&self.run)
            .execute(&mut *tx)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)
    }

    pub(crate) async fn remove(&mut self) -> Result<()> {
        let resource = self.resource();
        sqlx::query(REMOVE)
            .bind(&self.run)
            .execute(&mut self.conn)
            .await
            .map_err(failure)?;
        fence::sql::forget(&mut self.conn, &resource).await
    }
}

fn failure(e: sqlx::Error) -> LockError {
    LockError::connection("the demo's MySQL stock").with_source(e)
}
