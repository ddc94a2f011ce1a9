//! The Lua scripts. `redis::Script` sends them by `EVALSHA` and reloads them on `NOSCRIPT`.

use std::sync::LazyLock;

use redis::Script;

/// Lua shared by the queue-aware scripts: drops expired entries from the head of the
/// waiter queue (KEYS `q` list, `e` zset of entry expiries in server ms) and returns the live
/// head, or `false`. Only the head is checked: an entry in the middle is checked when it gets
/// there, and every live waiter keeps refreshing its own.
const PURGE: &str = r#"
local function purge(q, e, now)
  while true do
    local head = redis.call('LINDEX', q, 0)
    if not head then return false end
    local exp = redis.call('ZSCORE', e, head)
    if exp and tonumber(exp) > now then return head end
    redis.call('LPOP', q)
    redis.call('ZREM', e, head)
  end
end
local function now_ms(t)
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"#;

/// KEYS: lock, fence, queue, queue expiries. ARGV: owner token, TTL in ms, waiter id (`''`:
/// not queued — a try, or Redlock), queue entry lifetime in ms, channel.
/// Returns `{1, fencing token}` when this owner holds the lock afterwards, `{0, PTTL, first}`
/// when it does not; `first` is 1 when nobody queues ahead of this waiter.
///
/// `SET NX PX` is the only way the lock is taken, so it is atomic with its expiry. The
/// `GET == token` branch makes a retried attempt idempotent: when the reply to an earlier
/// attempt with the same token was lost, the lock is ours and its token is the counter's
/// current value (nobody else can have incremented it while we held the lock).
///
/// Fairness: the lock is only taken when the queue is empty or this waiter is its live head,
/// so neither a try nor a newcomer jumps the queue. A failed waiter joins the tail (or
/// refreshes its entry's expiry) in the same step. When expired entries were dropped and the
/// lock is free, the new head is told (its release message went to a waiter that is gone).
///
/// The token is `max(last token + 1, server time in µs)`: strictly increasing per name, and
/// also after the counter was lost or rolled back — a restart without persistence, or a
/// failover to a replica that missed the last increments — as long as the server clocks do
/// not go back (tokens handed out before the loss were at most the time then, plus one per
/// acquire within the same microsecond). Needs Redis ≥ 5 (effects replication, so `TIME` may
/// precede writes in a script).
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PURGE}{}",
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local t = redis.call('TIME')
local now = now_ms(t)
local before = redis.call('LINDEX', KEYS[3], 0)
local head = purge(KEYS[3], KEYS[4], now)
local me = ARGV[3]
if (not head or head == me) and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if head then
    redis.call('LPOP', KEYS[3])
    redis.call('ZREM', KEYS[4], me)
  end
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local fence = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, now_us)
  redis.call('SET', KEYS[2], string.format('%d', fence))
  return {1, fence}
end
if head and head ~= me and head ~= before and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.pcall('PUBLISH', ARGV[5], head)
end
local first = 1
if me ~= '' then
  if not redis.call('ZSCORE', KEYS[4], me) then
    redis.call('RPUSH', KEYS[3], me)
  end
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), me)
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
  if head and head ~= me then first = 0 end
end
return {0, redis.call('PTTL', KEYS[1]), first}
"#
    ))
});

/// KEYS: lock, queue, queue expiries. ARGV: owner token, channel, `all`.
/// Compare-and-delete, then wake the next waiter: with `all` = `'1'` every waiter (Redlock,
/// which keeps no queue), else only the live queue head, by publishing its waiter id (an
/// empty channel wakes nobody: Redlock undoing a split vote must not make every contender
/// retry at once, again and again). Nothing is published when nobody queues.
/// Returns 1 when this owner held the lock (now freed), 0 otherwise (nothing changed).
///
/// `PUBLISH` goes through `pcall`: a failure there (an ACL user without channel permissions)
/// must not turn a release that already deleted the key into an error. Waiters then find the
/// lock free on their re-check.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PURGE}{}",
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] ~= '' then
    if ARGV[3] == '1' then
      redis.pcall('PUBLISH', ARGV[2], '1')
    else
      local head = purge(KEYS[2], KEYS[3], now_ms(redis.call('TIME')))
      if head then redis.pcall('PUBLISH', ARGV[2], head) end
    end
  end
  return 1
end
return 0
"#
    ))
});

/// KEYS: lock, queue, queue expiries. ARGV: waiter id, channel. A waiter that gives up
/// leaves the queue; when it was the head and the lock is free, the next head is woken (the
/// release may have woken the leaver instead). Idempotent. Returns 1.
pub(crate) static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PURGE}{}",
        r#"
local was_head = redis.call('LINDEX', KEYS[2], 0) == ARGV[1]
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if was_head and redis.call('EXISTS', KEYS[1]) == 0 then
  local head = purge(KEYS[2], KEYS[3], now_ms(redis.call('TIME')))
  if head then redis.pcall('PUBLISH', ARGV[2], head) end
end
return 1
"#
    ))
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
