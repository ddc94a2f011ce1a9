//! Fenced writes on MySQL/MariaDB: a check-and-bump of the newest accepted token inside
//! the caller's transaction.
//!
//! ```no_run
//! # async fn sell(pool: &sqlx::MySqlPool, guard: &distlock::LockGuard) -> distlock::Result<()> {
//! use distlock::fence;
//! let db = |e: sqlx::Error| distlock::LockError::backend("stock").with_source(e);
//! let mut tx = pool.begin().await.map_err(db)?;
//! // Refused (ErrorKind::Fenced) if a newer holder already wrote "stock/sku-7".
//! fence::sql::check_and_bump(&mut tx, "stock/sku-7", guard.fencing_token()).await?;
//! sqlx::query("UPDATE stock SET n = n - 1 WHERE sku = 7")
//!     .execute(&mut *tx)
//!     .await
//!     .map_err(db)?;
//! tx.commit().await.map_err(db)?; // the write and the new token commit together
//! # Ok(()) }
//! ```
//!
//! The newest token per resource lives in the table [`TABLE`] (`distlock_fenced_writes`), which
//! [`ensure_schema`] creates once. It is not created on first use on purpose: `CREATE TABLE`
//! commits the caller's open transaction implicitly in MySQL, which would break the very
//! atomicity this module provides. Privileges: `CREATE` on the schema for
//! [`ensure_schema`]; `SELECT`, `INSERT`, `UPDATE` on `distlock_fenced_writes` for
//! [`check_and_bump`] (and `DELETE` for [`forget`]).
//!
//! [`check_and_bump`] locks the resource's row (`INSERT … ON DUPLICATE KEY UPDATE`, then
//! a locking read), so fenced writers of one resource are serialised until the caller's
//! transaction ends, and a refused check leaves the stored token as it was. Call it in the
//! transaction that does the protected write, before the write; in autocommit mode the
//! check and your write are two separate commits and a stale write can slip between.
//!
//! Resource names are stored as given (binary, case-sensitive) up to 255 bytes; longer
//! ones as `sha256:` and their SHA-256 in hex.

use distlock_core::{LockError, Result};
use sha2::{Digest, Sha256};
use sqlx::{Connection, MySqlConnection};

/// The table that holds the newest accepted token of every fenced resource.
pub const TABLE: &str = "distlock_fenced_writes";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS distlock_fenced_writes (
    resource VARBINARY(255) NOT NULL PRIMARY KEY,
    token BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB";
const BUMP: &str = "INSERT INTO distlock_fenced_writes (resource, token) VALUES (?, ?) \
                    ON DUPLICATE KEY UPDATE token = GREATEST(token, ?)";
const NEWEST: &str = "SELECT token FROM distlock_fenced_writes WHERE resource = ? FOR UPDATE";
const PEEK: &str = "SELECT token FROM distlock_fenced_writes WHERE resource = ?";
const FORGET: &str = "DELETE FROM distlock_fenced_writes WHERE resource = ?";

/// Creates the [`TABLE`] if it does not exist (needs the `CREATE` privilege). Call it
/// outside any transaction of yours: it commits an open one (MySQL DDL does).
///
/// # Cancel safety
/// Cancel safe: `CREATE TABLE IF NOT EXISTS` is idempotent.
pub async fn ensure_schema(conn: &mut MySqlConnection) -> Result<()> {
    sqlx::query(CREATE)
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| sql_error("creating the fence table", e))
}

/// Accepts `token` for `resource` if it is not older than the newest accepted one, and
/// stores it as the newest, in the caller's transaction (pass `&mut tx` from `begin()`, or
/// a connection with autocommit off); see the [`fence`](crate::fence) rule and the [module docs](self).
///
/// Errors: [`Fenced`](crate::ErrorKind::Fenced) for an older token (the stored token is
/// unchanged; roll back), [`Unsupported`](crate::ErrorKind::Unsupported) for `None`,
/// [`InvalidName`](crate::ErrorKind::InvalidName) for an empty resource,
/// [`Config`](crate::ErrorKind::Config) when the table is missing (call
/// [`ensure_schema`]) or `conn` is in autocommit mode outside a transaction, [`Connection`](crate::ErrorKind::Connection) /
/// [`Backend`](crate::ErrorKind::Backend) from the server.
///
/// # Cancel safety
/// Dropped midway, the statements sent so far belong to the caller's transaction; roll it
/// back (dropping a sqlx `Transaction` does) and nothing of the check remains.
pub async fn check_and_bump(
    conn: &mut MySqlConnection,
    resource: &str,
    token: Option<u64>,
) -> Result<()> {
    let token = super::require(token)?;
    let key = stored_key(resource)?;
    if !in_transaction(conn).await? {
        return Err(LockError::config(
            "fence::sql::check_and_bump must run inside the transaction of the write it \
             guards (pass `&mut tx` from `begin()`, or a connection with autocommit off): in \
             autocommit the check commits apart from the write and a stale write can slip \
             between",
        ));
    }
    sqlx::query(BUMP)
        .bind(&key)
        .bind(token)
        .bind(token)
        .execute(&mut *conn)
        .await
        .map_err(|e| sql_error("fence check", e))?;
    // A locking read: it sees the newest committed token even when the caller's
    // transaction took its snapshot earlier.
    let (newest,): (u64,) = sqlx::query_as(NEWEST)
        .bind(&key)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| sql_error("fence check", e))?;
    super::check(resource, newest, token)
}

/// Whether statements on `conn` run in an open transaction: one begun through sqlx, or
/// any statement when autocommit is off (then every statement opens one).
async fn in_transaction(conn: &mut MySqlConnection) -> Result<bool> {
    if conn.is_in_transaction() {
        return Ok(true);
    }
    let autocommit: i64 = sqlx::query_scalar("SELECT CAST(@@autocommit AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| sql_error("fence check", e))?;
    Ok(autocommit == 0)
}

/// The newest token accepted for `resource` (`None` before the first fenced write); a
/// plain (non-locking) read.
///
/// # Cancel safety
/// Cancel safe: it only reads.
pub async fn newest_token(conn: &mut MySqlConnection, resource: &str) -> Result<Option<u64>> {
    let key = stored_key(resource)?;
    let row: Option<(u64,)> = sqlx::query_as(PEEK)
        .bind(&key)
        .fetch_optional(conn)
        .await
        .map_err(|e| sql_error("reading a fence token", e))?;
    Ok(row.map(|(t,)| t))
}

/// Deletes the stored token of `resource`, when the resource is retired. Only call it when
/// no fenced writer of this resource remains: a writer after it starts from no token.
///
/// # Cancel safety
/// Cancel safe: the delete happens or not.
pub async fn forget(conn: &mut MySqlConnection, resource: &str) -> Result<()> {
    let key = stored_key(resource)?;
    sqlx::query(FORGET)
        .bind(&key)
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| sql_error("forgetting a fence token", e))
}

/// The bytes stored for `resource`: itself up to 255 bytes, else `sha256:<hex>`.
fn stored_key(resource: &str) -> Result<Vec<u8>> {
    if resource.is_empty() {
        return Err(LockError::invalid_name(
            "an empty resource cannot be fenced",
        ));
    }
    if resource.len() <= 255 {
        return Ok(resource.as_bytes().to_vec());
    }
    let digest = Sha256::digest(resource.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}").into_bytes())
}

fn sql_error(what: &str, e: sqlx::Error) -> LockError {
    let missing_table = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "42S02");
    if missing_table {
        return LockError::config(format!(
            "{what}: the table {TABLE} does not exist; call distlock::fence::sql::ensure_schema \
             once (it needs the CREATE privilege)"
        ))
        .with_source(e);
    }
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            LockError::connection(what.to_string()).with_source(e)
        }
        _ => LockError::backend(what.to_string()).with_source(e),
    }
}

#[cfg(test)]
mod tests {
    use super::stored_key;

    #[test]
    fn long_resources_are_hashed_not_truncated() {
        assert_eq!(stored_key("stock/1").unwrap(), b"stock/1");
        let a = stored_key(&"x".repeat(300)).unwrap();
        let b = stored_key(&format!("{}y", "x".repeat(299))).unwrap();
        assert_ne!(a, b);
        assert!(a.len() <= 255 && a.starts_with(b"sha256:"));
        assert!(stored_key("").is_err());
    }
}
