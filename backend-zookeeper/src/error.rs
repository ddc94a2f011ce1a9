//! Mapping the client crate's errors onto distlock's kinds.

use distlock_core::LockError;
use zookeeper_client::Error as ZkError;

/// Maps a ZooKeeper error met while doing `what`. Connection-level failures (lost
/// connection, ended session, no server) are retryable [`Connection`] errors.
///
/// [`Connection`]: distlock_core::ErrorKind::Connection
pub(crate) fn zk_error(e: ZkError, what: &str) -> LockError {
    let message = format!("{what}: {e}");
    let error = match &e {
        ZkError::ConnectionLoss
        | ZkError::NoHosts
        | ZkError::Timeout
        | ZkError::SessionExpired
        | ZkError::SessionMoved
        | ZkError::ClientClosed
        | ZkError::Throttled
        | ZkError::Custom(_) => LockError::connection(message),
        ZkError::BadArguments(_) => LockError::config(message),
        _ => LockError::backend(message),
    };
    error.with_source(e)
}
