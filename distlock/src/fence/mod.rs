//! Fenced writes: make the protected resource itself reject a writer whose hold has ended.
//!
//! A lock alone cannot stop a holder that was paused (GC, swap, `SIGSTOP`, a slow network)
//! past its lease or session: when it wakes up it still believes it holds the lock and
//! writes, although another holder took over meanwhile. The cure is the fencing token
//! ([`LockGuard::fencing_token`](crate::LockGuard::fencing_token)), which strictly grows
//! with every acquire: the resource remembers the newest token it has accepted and refuses
//! older ones. This module does that check at the resource in one call:
//!
//! | resource | call | feature |
//! |---|---|---|
//! | a row of yours in MySQL/MariaDB | `sql::check_and_bump` inside your transaction | `mysql` |
//! | a Redis key | `redis::set` (one Lua script: compare, `SET`, store the token) | `redis` |
//! | a file | [`file::write`] (atomic replace, serialised with `flock`) | always |
//!
//! # The rule
//! A write with token `t` is accepted when `t >= newest`, the newest token the resource
//! has accepted (and `newest` becomes `t`); it fails with
//! [`ErrorKind::Fenced`](crate::ErrorKind::Fenced) when `t < newest`. Equal tokens are
//! accepted so that one holder can write several times during one hold; tokens are
//! unique per acquire, so an equal token is always the same hold. A write refused as
//! `Fenced` changed nothing.
//!
//! A guard without a fencing token (`fencing_token() == None`, e.g. Redlock) is refused
//! with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported): a fenced write that
//! checks nothing would only look safe.
//!
//! Tokens are per lock name and per backend: fence one resource with one lock name on one
//! backend.

pub mod file;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod sql;

use distlock_core::{LockError, Result};

/// The rule, for fencing a resource kind of your own (a ZooKeeper node, an S3 object with
/// a conditional put, …): given the newest token the resource has accepted (`None` before
/// the first fenced write) and the writer's token, returns the token to store as the
/// newest, or the error the built-in kinds return ([`Fenced`](crate::ErrorKind::Fenced),
/// [`Unsupported`](crate::ErrorKind::Unsupported)). The read of `newest`, this check and
/// the write must be one atomic step at the resource (a transaction, a compare-and-set on
/// a version, a script).
pub fn admit(resource: &str, newest: Option<u64>, token: Option<u64>) -> Result<u64> {
    let token = require(token)?;
    check(resource, newest.unwrap_or(0), token)?;
    Ok(token)
}

/// The token to fence with, or `Unsupported` when the guard carries none.
fn require(token: Option<u64>) -> Result<u64> {
    token.ok_or_else(|| {
        LockError::unsupported(
            "this lock gives no fencing token (e.g. Redlock), so a write cannot be fenced",
        )
    })
}

/// Applies the rule: `Ok` when `token` may write after `newest` was accepted.
fn check(resource: &str, newest: u64, token: u64) -> Result<()> {
    if token >= newest {
        Ok(())
    } else {
        Err(LockError::fenced(format!(
            "write to {resource:?} with fencing token {token} refused: token {newest} was \
             already accepted (the hold ended and another holder wrote since)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlock_core::ErrorKind;

    #[test]
    fn equal_and_newer_tokens_pass_older_ones_are_fenced() {
        assert!(check("r", 5, 5).is_ok());
        assert!(check("r", 5, 6).is_ok());
        assert_eq!(check("r", 5, 4).unwrap_err().kind(), ErrorKind::Fenced);
        assert_eq!(require(None).unwrap_err().kind(), ErrorKind::Unsupported);
        assert_eq!(require(Some(3)).unwrap(), 3);
        assert_eq!(admit("r", None, Some(0)).unwrap(), 0);
        assert_eq!(admit("r", Some(7), Some(8)).unwrap(), 8);
        assert_eq!(
            admit("r", Some(7), Some(6)).unwrap_err().kind(),
            ErrorKind::Fenced
        );
    }
}
