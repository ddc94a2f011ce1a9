//! Mapping sqlx errors onto the contract's error kinds.

use distlock_core::LockError;

/// `ER_LOCK_WAIT_TIMEOUT` (also what MariaDB returns for `NOWAIT`).
pub(crate) const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// MySQL 8's `ER_LOCK_NOWAIT`.
pub(crate) const LOCK_NOWAIT: u16 = 3572;

/// Server error numbers that mean the session is gone (and its locks with it).
const SESSION_GONE: &[u16] = &[
    1053, // ER_SERVER_SHUTDOWN
    1927, // ER_CONNECTION_KILLED (MariaDB)
    2006, // CR_SERVER_GONE_ERROR
    2013, // CR_SERVER_LOST
    4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8, wait_timeout)
];

/// The server error number, if `e` is a server error.
pub(crate) fn number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Whether `e` is a lock wait that ran out (or a `NOWAIT` that found the row locked).
pub(crate) fn is_lock_wait_timeout(e: &sqlx::Error) -> bool {
    matches!(number(e), Some(LOCK_WAIT_TIMEOUT | LOCK_NOWAIT))
}

/// Whether `e` means the connection, and so the server session, is gone.
pub(crate) fn is_session_gone(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(_) => number(e).is_some_and(|n| SESSION_GONE.contains(&n)),
        _ => false,
    }
}

/// Wraps `e` with a message saying what was being done. Transport failures are of kind
/// `Connection` (retryable), configuration problems `Config`, the rest `Backend`.
pub(crate) fn map(what: &str, e: sqlx::Error) -> LockError {
    let message = format!("{what}: {e}");
    let error = match &e {
        sqlx::Error::Configuration(_) => LockError::config(message),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => LockError::connection(message),
        sqlx::Error::Database(_) if is_session_gone(&e) => LockError::connection(message),
        // Access denied, unknown database: the settings are wrong, retrying will not help.
        sqlx::Error::Database(_) if matches!(number(&e), Some(1044 | 1045 | 1049)) => {
            LockError::config(message)
        }
        _ => LockError::backend(message),
    };
    error.with_source(e)
}
