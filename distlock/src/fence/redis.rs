//! Fenced writes to a Redis key: one Lua script compares the token, `SET`s the value and
//! stores the token, atomically.
//!
//! The newest accepted token of key `K` lives in a second key, [`token_key`]`(K)`, in the
//! same hash slot, so the script also runs on Redis Cluster: `K:fence` when `K` has a
//! hash tag (`{order:42}:stock` → `{order:42}:stock:fence`), otherwise `{K}:fence`.
//! Readers read `K` as usual (`GET`). Delete both keys to retire the resource.
//!
//! Tokens are compared as decimal strings of equal form inside the script, so every `u64`
//! compares exactly (Lua numbers are doubles).

use distlock_core::{LockError, Result};
use redis::aio::ConnectionLike;
use redis::ToRedisArgs;

/// KEYS[1] the data, KEYS[2] its token; ARGV[1] the value, ARGV[2] the token in decimal.
/// Returns nil when written, else the newest token (the write was refused).
const SET_IF_NOT_STALE: &str = r"
local newest = redis.call('GET', KEYS[2])
if newest then
  local t = ARGV[2]
  if #t < #newest or (#t == #newest and t < newest) then
    return newest
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return false
";

/// `SET key value` if `token` is not older than the newest token accepted for `key`,
/// storing `token` as the newest, all in one script (see the [`fence`](crate::fence) rule).
///
/// Works on any async connection of the `redis` crate (multiplexed, connection manager,
/// cluster). Errors: [`Fenced`](crate::ErrorKind::Fenced) for an older token (nothing
/// changed), [`Unsupported`](crate::ErrorKind::Unsupported) for `None`,
/// [`InvalidName`](crate::ErrorKind::InvalidName) when no key in the key's slot can hold
/// the token (see [`token_key`]), [`Config`](crate::ErrorKind::Config) for a value that is
/// not exactly one Redis argument, [`Connection`](crate::ErrorKind::Connection) or
/// [`Backend`](crate::ErrorKind::Backend) from Redis.
///
/// # Cancel safety
/// The script is atomic: dropped midway, the write happened entirely or not at all; only
/// the answer is lost, and repeating the write with the same token is accepted.
pub async fn set<C, V>(conn: &mut C, key: &str, value: V, token: Option<u64>) -> Result<()>
where
    C: ConnectionLike + Send,
    V: ToRedisArgs + Send + Sync,
{
    let token = super::require(token)?;
    let fence = token_key(key)?;
    // The script reads the value as ARGV[1] and the token as ARGV[2]: a value that is
    // several arguments (a Vec of strings, a tuple) would put its second part in the
    // token's place.
    let value = value.to_redis_args();
    let [value] = value.as_slice() else {
        return Err(LockError::config(format!(
            "a fenced Redis write stores one value, but this one is {} Redis arguments; \
             join or serialise it into one",
            value.len()
        )));
    };
    let refused: Option<String> = redis::Script::new(SET_IF_NOT_STALE)
        .key(key)
        .key(&fence)
        .arg(value.as_slice())
        .arg(token.to_string())
        .invoke_async(conn)
        .await
        .map_err(redis_error)?;
    match refused {
        None => Ok(()),
        Some(newest) => {
            let newest = newest.parse().map_err(|_| {
                LockError::backend(format!("{fence:?} does not hold a fencing token"))
            })?;
            super::check(key, newest, token)
        }
    }
}

/// The newest token accepted for `key` (`None` before the first fenced write).
///
/// # Cancel safety
/// Cancel safe: it only reads.
pub async fn newest_token<C: ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
) -> Result<Option<u64>> {
    let fence = token_key(key)?;
    let newest: Option<String> = redis::cmd("GET")
        .arg(&fence)
        .query_async(conn)
        .await
        .map_err(redis_error)?;
    newest
        .map(|n| {
            n.parse()
                .map_err(|_| LockError::backend(format!("{fence:?} does not hold a fencing token")))
        })
        .transpose()
}

/// The key that holds the newest accepted token of `key`, in the same hash slot.
///
/// `key:fence` when `key` has a hash tag (a `{…}` with something inside); `{key}:fence`
/// when `key` has no `}` (then the whole key is its slot's hash input, and so is the tag).
/// A key with a `}` but no hash tag has no such sibling: [`InvalidName`]; give it a tag.
///
/// [`InvalidName`]: crate::ErrorKind::InvalidName
pub fn token_key(key: &str) -> Result<String> {
    if key.is_empty() {
        return Err(LockError::invalid_name(
            "an empty Redis key cannot be fenced",
        ));
    }
    let has_tag = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}'))
        .is_some_and(|len| len > 0);
    if has_tag {
        Ok(format!("{key}:fence"))
    } else if !key.contains('}') {
        Ok(format!("{{{key}}}:fence"))
    } else {
        Err(LockError::invalid_name(format!(
            "Redis key {key:?} has a '}}' but no hash tag, so no other key is sure to share \
             its Cluster slot: put a hash tag in it, e.g. \"{{name}}:rest\""
        )))
    }
}

fn redis_error(e: redis::RedisError) -> LockError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        LockError::connection("fenced Redis write").with_source(e)
    } else {
        LockError::backend("fenced Redis write").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::token_key;

    #[test]
    fn the_token_key_shares_the_slot() {
        assert_eq!(token_key("stock").unwrap(), "{stock}:fence");
        assert_eq!(token_key("{sale}:stock").unwrap(), "{sale}:stock:fence");
        assert_eq!(token_key("a{b").unwrap(), "{a{b}:fence");
        // An empty first tag means the whole key is hashed, and it has a '}'.
        assert!(token_key("a{}b{c}").is_err());
        assert!(token_key("a}b").is_err());
        assert!(token_key("").is_err());
    }
}
