//! The one error type every backend returns.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What went wrong, coarsely: callers branch on this, not on messages.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A wait limit ran out before the lock could be taken.
    Timeout,
    /// The caller does not (or no longer) own the hold it tried to release or extend.
    NotHeld,
    /// A hold was lost: renewal failed, the session expired, the connection died.
    Lost,
    /// The store could not be reached; retrying later may succeed.
    Connection,
    /// The lock name is not acceptable (for example empty).
    InvalidName,
    /// A configuration or URL problem.
    Config,
    /// The backend does not support the requested operation.
    Unsupported,
    /// Any other failure reported by the store.
    Backend,
    /// A fenced write was refused: the resource has already accepted a write with a
    /// newer fencing token, so the writer's hold ended and someone else took the lock
    /// since (see `distlock::fence`). Not retryable with the same token.
    Fenced,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timed out",
            ErrorKind::NotHeld => "lock not held",
            ErrorKind::Lost => "lock lost",
            ErrorKind::Connection => "connection error",
            ErrorKind::InvalidName => "invalid lock name",
            ErrorKind::Config => "configuration error",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Backend => "backend error",
            ErrorKind::Fenced => "stale fencing token",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every distlock operation.
///
/// It is `Clone` (the source is shared) so one failure can be handed to every waiter of a
/// lost signal. Messages never contain credentials: backends redact URLs before building one.
#[non_exhaustive]
#[derive(Clone)]
pub struct LockError {
    kind: ErrorKind,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl LockError {
    /// An error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        LockError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps the backend's own error as the source.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Connection | ErrorKind::Timeout)
    }

    /// Shorthand for [`ErrorKind::Timeout`].
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// Shorthand for [`ErrorKind::NotHeld`].
    pub fn not_held(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotHeld, message)
    }

    /// Shorthand for [`ErrorKind::Lost`].
    pub fn lost(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Lost, message)
    }

    /// Shorthand for [`ErrorKind::Connection`].
    pub fn connection(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Connection, message)
    }

    /// Shorthand for [`ErrorKind::InvalidName`].
    pub fn invalid_name(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidName, message)
    }

    /// Shorthand for [`ErrorKind::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Shorthand for [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for [`ErrorKind::Backend`].
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }

    /// Shorthand for [`ErrorKind::Fenced`].
    pub fn fenced(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Fenced, message)
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.message)
        }
    }
}

impl fmt::Debug for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LockError");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for LockError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn StdError + 'static))
    }
}

/// Result alias used across distlock.
pub type Result<T, E = LockError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_keeps_kind_and_message_and_source_survives_clone() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = LockError::connection("dialing 127.0.0.1:1").with_source(io);
        let copy = err.clone();
        assert_eq!(copy.to_string(), "connection error: dialing 127.0.0.1:1");
        assert_eq!(copy.kind(), ErrorKind::Connection);
        assert!(copy.is_retryable());
        assert_eq!(
            StdError::source(&copy).map(|s| s.to_string()),
            Some("refused".into())
        );
        assert!(!LockError::not_held("x").is_retryable());
    }
}
