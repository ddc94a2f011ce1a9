//! The Lua scripts. `redis::Script` sends them by `EVALSHA` and reloads them on `NOSCRIPT`.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: lock, fence. ARGV: owner token, TTL in ms.
/// Returns `{1, fencing token}` when this owner holds the lock afterwards, `{0, PTTL}` when
/// someone else does.
///
/// `SET NX PX` is the only way the lock is taken, so it is atomic with its expiry. The
/// `GET == token` branch makes a retried attempt idempotent: when the reply to an earlier
/// attempt with the same token was lost, the lock is ours and its token is the counter's
/// current value (nobody else can have incremented it while we held the lock).
///
/// The token is `max(last token + 1, server time in µs)`: strictly increasing per name, and
/// also after the counter was lost or rolled back — a restart without persistence, or a
/// failover to a replica that missed the last increments — as long as the server clocks do
/// not go back (tokens handed out before the loss were at most the time then, plus one per
/// acquire within the same microsecond). Needs Redis ≥ 5 (effects replication, so `TIME` may
/// precede writes in a script).
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local fence = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, now)
  redis.call('SET', KEYS[2], string.format('%d', fence))
  return {1, fence}
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
return {0, redis.call('PTTL', KEYS[1])}
"#,
    )
});

/// KEYS: lock. ARGV: owner token, channel. Compare-and-delete, then wake the waiters (an
/// empty channel wakes nobody: Redlock undoing a split vote must not make every contender
/// retry at once, again and again).
/// Returns 1 when this owner held the lock (now freed), 0 otherwise (nothing changed).
///
/// `PUBLISH` goes through `pcall`: a failure there (an ACL user without channel permissions)
/// must not turn a release that already deleted the key into an error. Waiters then find the
/// lock free on their re-check.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] ~= '' then
    redis.pcall('PUBLISH', ARGV[2], '1')
  end
  return 1
end
return 0
"#,
    )
});

/// KEYS: lock. ARGV: owner token, TTL in ms. Compare-and-pexpire.
/// Returns 1 when this owner holds the lock (lease reset to the TTL), 0 otherwise.
pub(crate) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#,
    )
});

/// KEYS: up to [`MAX_BATCH`](distlock_core::backend::MAX_BATCH) locks. ARGV: TTL in ms, then
/// the owner token of each key in order. Compare-and-pexpire of each key, as [`EXTEND`].
/// Returns one 1 (lease reset) or 0 (not this owner's) per key: a client renews all its due
/// holds in one round trip.
pub(crate) static EXTEND_MANY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    out[i] = redis.call('PEXPIRE', KEYS[i], ARGV[1])
  else
    out[i] = 0
  end
end
return out
"#,
    )
});
