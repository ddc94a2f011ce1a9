//! Turning Redis errors into [`LockError`]s without leaking credentials.

use std::fmt;

use distlock_core::LockError;
use redis::RedisError;

/// A Redis error reduced to its (scrubbed) text, kept as the [`LockError`]'s source.
/// The original is not kept because its `Debug` could carry connection details.
#[derive(Debug, Clone)]
pub struct RedisFailure {
    message: String,
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RedisFailure {}

/// Removes every secret from `text`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// Whether the error says the connection is unusable (as opposed to a server reply).
pub(crate) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
}

/// Maps `e`, which happened while doing `what` against `server` (already redacted).
pub(crate) fn map_error(e: RedisError, what: &str, server: &str, secrets: &[String]) -> LockError {
    let text = scrub(&e.to_string(), secrets);
    let message = format!("{what} on {server}: {text}");
    // The redis crate files a refused password under errors to reconnect on, but retrying
    // cannot fix it: it is the configuration's.
    let error = if e.kind() == redis::ErrorKind::AuthenticationFailed {
        LockError::config(message)
    } else if is_connection_error(&e) {
        LockError::connection(message)
    } else {
        LockError::backend(message)
    };
    error.with_source(RedisFailure { message: text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_every_secret() {
        let s = scrub(
            "auth s3cret failed for s3cret",
            &["s3cret".into(), String::new()],
        );
        assert_eq!(s, "auth *** failed for ***");
    }
}
