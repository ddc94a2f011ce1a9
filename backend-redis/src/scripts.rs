//! The Lua scripts. `redis::Script` sends them by `EVALSHA` and reloads them on `NOSCRIPT`.

use std::sync::LazyLock;

use redis::Script;

/// Lua of the fencing counter: `next_fence` advances it to `max(last + 1, server time in
/// µs)` and returns the new token. `INCR` gives `last + 1` as an integer reply (reading the
/// 16-digit string back through `tonumber` was the most expensive step of an uncontended
/// acquire on the server); the floor's `SET` is formatted with `%d` because Lua would write
/// the number as `%.14g` and lose its last digits.
const FENCE: &str = r#"
local function next_fence(fence, t)
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local f = redis.call('INCR', fence)
  if f < now_us then
    redis.call('SET', fence, string.format('%d', now_us))
    f = now_us
  end
  return f
end
"#;

/// Lua shared by the queue-aware scripts (KEYS `q` list of waiter ids, head first; `e` zset
/// of entry expiries in server ms; `g` hash of each waiter's grant details).
///
/// `purge` drops expired entries from the head of the queue and returns the live head, or
/// `false`. Only the head is checked: an entry in the middle is checked when it gets there,
/// and every live waiter keeps refreshing its own.
///
/// `lock_channel` names the lock's channel after its key: the key with its final `lock`
/// replaced by `released` (see [`LockKeys`](crate::keys::LockKeys)), so no call has to send
/// it.
///
/// `grant` hands a free lock straight to the live head (call it only when the lock key is
/// absent): `SET lock <head's wait token> NX PX <the lease its entry names>`, the fence advanced as ACQUIRE
/// does, the head popped, and `"<id> <seq> <fence>"` published to it, `seq` naming the
/// waiter's attempt that last refreshed the entry (so the waiter knows its lease started no
/// later than that attempt was sent). The message goes to the wake channel the entry names
/// (`"=<seq> <lease ms> <token> <channel>"`: one per client, so exactly one subscriber connection
/// reads it, however many clients wait on the lock); an entry in the older form
/// `"<seq> <ttl> <token>"` (which that form's parser cannot mistake the newer one for, by its
/// leading `=`) is told on the lock's channel `chan`, where clients of that version listen. A
/// head without grant details (older still) is only woken by its id. Only a live entry
/// (refreshed within its lifetime) is granted: a waiter that died gets the lock only if it
/// died less than an entry lifetime ago, and then holds it for the lease its entry names
/// (the waiter writes [`GRANT_LEASE`](crate::backend::GRANT_LEASE), its TTL when shorter, and
/// counts on exactly that, whatever version the releasing client runs).
const QUEUE: &str = r#"
local function lock_channel(lock)
  return string.sub(lock, 1, -5) .. 'released'
end
local function purge(q, e, g, now)
  while true do
    local head = redis.call('LINDEX', q, 0)
    if not head then return false end
    local exp = redis.call('ZSCORE', e, head)
    if exp and tonumber(exp) > now then return head end
    redis.call('LPOP', q)
    redis.call('ZREM', e, head)
    redis.call('HDEL', g, head)
  end
end
local function now_ms(t)
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function grant(lock, fence, q, e, g, chan, t)
  local head = purge(q, e, g, now_ms(t))
  if not head then return end
  local v = redis.call('HGET', g, head)
  local seq, ttl, token, own
  if v then
    seq, ttl, token, own = string.match(v, '^=(%d+) (%d+) (%S+) (.+)$')
    if not seq then seq, ttl, token = string.match(v, '^(%d+) (%d+) (.+)$') end
  end
  -- The lease is the one the waiter wrote into its entry and counts on: a short one that
  -- it renews early (an entry of the older form holds its whole TTL).
  if own then chan = own end
  if token and redis.call('SET', lock, token, 'NX', 'PX', ttl) then
    local f = next_fence(fence, t)
    redis.call('LPOP', q)
    redis.call('ZREM', e, head)
    redis.call('HDEL', g, head)
    redis.pcall('PUBLISH', chan, head .. ' ' .. seq .. ' ' .. string.format('%d', f))
  else
    redis.pcall('PUBLISH', chan, head)
  end
end
"#;

/// KEYS: lock, fence, queue, queue expiries, grants. ARGV: owner token, TTL in ms; then,
/// only from a queued waiter: its id, its queue entry's lifetime in ms, the wait's grant
/// token, and its grant details as its entry keeps them (`"=<attempt seq> <lease ms a grant
/// sets> <grant token> <wake channel>"`, see `grant`: written by the client, so the server
/// builds no string). A try (or Redlock) sends the first two alone: every argument costs
/// the server a string and a table slot per call.
/// Returns `{1, fencing token}` when this attempt's owner token holds the lock afterwards,
/// `{2, fencing token}` when the wait's grant token does (the lock was handed to this waiter;
/// its lease was reset to the TTL by this script), `{0, PTTL, first}` when neither does;
/// `first` is 1 when nobody queues ahead of this waiter.
///
/// `SET NX PX` is the only way the lock is taken, so it is atomic with its expiry. The
/// common case comes first and costs four commands: nobody queues (`LINDEX`) and the lock is
/// free (`SET NX`), then the fence. Otherwise the `GET == token` branch makes a retried
/// attempt idempotent: when the reply to an earlier attempt with the same token was lost,
/// the lock is ours and its token is the counter's current value (nobody else can have
/// incremented it while we held the lock). The grant token branch is how a waiter whose
/// grant message was lost (or arrived too late to trust its lease start) picks the lock up:
/// the lease restarts here, after the attempt was sent.
///
/// Fairness: the lock is only taken when the queue is empty or this waiter is its live head,
/// so neither a try nor a newcomer jumps the queue. When the lock is free and someone else
/// heads the queue (its release grant went to a waiter that is gone, or the holder's lease
/// ran out), it is granted to that head. A failed waiter joins the tail (or refreshes its
/// entry's expiry and grant details) in the same step.
///
/// The token is `max(last token + 1, server time in µs)`: strictly increasing per name, and
/// also after the counter was lost or rolled back — a restart without persistence, or a
/// failover to a replica that missed the last increments — as long as the server clocks do
/// not go back (tokens handed out before the loss were at most the time then, plus one per
/// acquire within the same microsecond). Needs Redis ≥ 5 (effects replication, so `TIME` may
/// precede writes in a script).
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE}{}{QUEUE}{}",
        r#"
if not redis.call('LINDEX', KEYS[3], 0)
  and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, next_fence(KEYS[2], redis.call('TIME'))}
end
"#,
        r#"
local me = ARGV[3] or ''
local grant_token = ARGV[5] or ''
local cur = redis.call('GET', KEYS[1])
if cur and (cur == ARGV[1] or (grant_token ~= '' and cur == grant_token)) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local f = tonumber(redis.call('GET', KEYS[2]) or '0')
  if cur == ARGV[1] then return {1, f} end
  return {2, f}
end
local t = redis.call('TIME')
local now = now_ms(t)
local head = purge(KEYS[3], KEYS[4], KEYS[5], now)
if not cur then
  if (not head or head == me) and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    if head then
      redis.call('LPOP', KEYS[3])
      redis.call('ZREM', KEYS[4], me)
      redis.call('HDEL', KEYS[5], me)
    end
    return {1, next_fence(KEYS[2], t)}
  end
  if head and head ~= me then
    grant(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], lock_channel(KEYS[1]), t)
    head = redis.call('LINDEX', KEYS[3], 0)
  end
end
local first = 1
if me ~= '' then
  if not redis.call('ZSCORE', KEYS[4], me) then
    redis.call('RPUSH', KEYS[3], me)
  end
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), me)
  redis.call('HSET', KEYS[5], me, ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
  redis.call('PEXPIRE', KEYS[5], ARGV[4])
  if head and head ~= me then first = 0 end
end
return {0, redis.call('PTTL', KEYS[1]), first}
"#
    ))
});

/// KEYS: lock, fence, queue, queue expiries, grants. ARGV: owner token, whom to wake (`h`,
/// `a` or `n`). Compare-and-delete, then pass the lock on: `h` grants it to the live queue
/// head (see `grant`), `a` publishes `1` on the lock's channel, which wakes every waiter
/// (Redlock, which keeps no queue), and `n` passes it to nobody (Redlock undoing a split
/// vote must not make every contender retry at once, again and again). With `h`, nothing is
/// published when nobody queues, and then the queue's functions are not even defined: the common
/// release is three commands. Returns 1 when this owner held the lock (freed, or handed
/// on), 0 otherwise (nothing changed).
///
/// `PUBLISH` goes through `pcall`: a failure there (an ACL user without channel permissions)
/// must not turn a release that already deleted the key into an error. A granted waiter then
/// finds the lock its own on its re-check.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{FENCE}{QUEUE}{}",
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == 'n' or (ARGV[2] == 'h' and redis.call('EXISTS', KEYS[3]) == 0) then
  return 1
end
"#,
        r#"
if ARGV[2] == 'a' then
  redis.pcall('PUBLISH', lock_channel(KEYS[1]), '1')
else
  grant(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], lock_channel(KEYS[1]), redis.call('TIME'))
end
return 1
"#
    ))
});

/// KEYS: lock, fence, queue, queue expiries, grants. ARGV: waiter id, the wait's grant
/// token. A waiter that gives up leaves the queue; if the lock was granted to it (the
/// message in flight or unread), the grant is undone (compare-and-delete); when it was the
/// head or held the grant and the lock is free, the lock is granted to the next live head.
/// Idempotent. Returns 1.
pub(crate) static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE}{QUEUE}{}",
        r#"
local was_head = redis.call('LINDEX', KEYS[3], 0) == ARGV[1]
redis.call('LREM', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur and ARGV[2] ~= '' and cur == ARGV[2] then
  redis.call('DEL', KEYS[1])
  cur = false
  was_head = true
end
if was_head and not cur then
  grant(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], lock_channel(KEYS[1]), redis.call('TIME'))
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
