//! [`Inspect`] for Redis: holders by `SCAN` over the key prefix, breaking a hold by
//! compare-and-delete of the token it has now, and the deployment doctor.
//!
//! Holder metadata (host, pid, label) travels in the owner token, which is the lock key's
//! value. Age is not stored (`time_left` is the key's `PTTL`; the lease is renewed every
//! TTL/3, so TTL − PTTL is the time since the last renewal, not the age).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use distlock_core::{Finding, Holder, Inspect, LockError, LockName, Result};
use redis::{FromRedisValue, Value};

use crate::backend::Node;
use crate::conn::Conn;
use crate::error::map_error;
use crate::keys::LockKeys;

/// What [`RedisLock`](crate::RedisLock) inspects: one server (a cluster only for `doctor`).
#[derive(Debug, Clone)]
pub(crate) struct RedisInspector {
    pub(crate) node: Node,
    pub(crate) key_prefix: String,
    pub(crate) cluster: bool,
}

impl RedisInspector {
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd, what: &str) -> Result<T> {
        let result = match &self.node.conn {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        result.map_err(|e| map_error(e, what, &self.node.label, &self.node.secrets))
    }

    /// The lock keys under the prefix: `prefix{E}:lock`, `E` the escaped name.
    async fn lock_keys(&self) -> Result<Vec<String>> {
        let pattern = format!("{}{{*}}:lock", glob_escape(&self.key_prefix));
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000),
                    "listing lock keys",
                )
                .await?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                return Ok(keys);
            }
        }
    }

    fn name_of(&self, key: &str) -> Option<String> {
        let escaped = key
            .strip_prefix(&self.key_prefix)?
            .strip_prefix('{')?
            .strip_suffix("}:lock")?;
        percent_decode(escaped)
    }

    async fn holder(&self, name: &LockName) -> Result<Option<Holder>> {
        let keys = LockKeys::new(&self.key_prefix, name);
        let mut pipe = redis::pipe();
        pipe.get(&keys.lock).pttl(&keys.lock).get(&keys.fence);
        let read = match &self.node.conn {
            Conn::Single(c) => pipe.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => pipe.query_async(&mut c.clone()).await,
        };
        let (token, pttl, fence): (Option<String>, i64, Option<u64>) =
            read.map_err(|e| map_error(e, "reading a lock", &self.node.label, &self.node.secrets))?;
        Ok(token.map(|token| {
            let mut holder = Holder::new(name.as_str()).with_owner_token(token);
            holder.fencing_token = fence;
            holder.time_left = u64::try_from(pttl).ok().map(Duration::from_millis);
            holder
        }))
    }
}

#[async_trait]
impl Inspect for RedisInspector {
    async fn holders(&self, prefix: &str) -> Result<Vec<Holder>> {
        if self.cluster {
            return Err(LockError::unsupported(
                "listing holders of a Redis Cluster is not supported; inspect each node's URL",
            ));
        }
        let mut found = Vec::new();
        for key in self.lock_keys().await? {
            let Some(name) = self.name_of(&key).filter(|n| n.starts_with(prefix)) else {
                continue;
            };
            let Ok(name) = LockName::new(name) else {
                continue;
            };
            if let Some(holder) = self.holder(&name).await? {
                found.push(holder);
            }
        }
        Ok(found)
    }

    async fn break_lock(&self, name: &LockName) -> Result<Option<Holder>> {
        let keys = LockKeys::new(&self.key_prefix, name);
        // Break the hold seen, by its token: a new holder that slipped in meanwhile is not
        // broken by accident (it is retried, a few times, as the current hold).
        for _ in 0..3 {
            let Some(holder) = self.holder(name).await? else {
                return Ok(None);
            };
            let token = holder.owner_token.clone().unwrap_or_default();
            if self
                .node
                .unlock_raw(&keys, &token, crate::backend::Wake::Head)
                .await?
            {
                distlock_core::observe::forced_release("redis", name);
                return Ok(Some(holder));
            }
        }
        Err(LockError::backend(format!(
            "{name:?} changed hands three times while breaking it; try again"
        )))
    }

    async fn doctor(&self) -> Result<Vec<Finding>> {
        let mut findings = vec![self.eviction().await?];
        findings.push(self.persistence().await?);
        findings.push(self.channels().await);
        findings.push(self.clock().await?);
        Ok(findings)
    }
}

impl RedisInspector {
    async fn config_get(&self, name: &str) -> Result<Option<String>> {
        let pairs: Vec<String> = self
            .query(redis::cmd("CONFIG").arg("GET").arg(name), "reading CONFIG")
            .await?;
        Ok(pairs.get(1).cloned())
    }

    async fn eviction(&self) -> Result<Finding> {
        const CHECK: &str = "maxmemory-policy";
        let policy = match self.config_get(CHECK).await {
            Ok(Some(policy)) => policy,
            Ok(None) | Err(_) => {
                return Ok(Finding::warn(
                    CHECK,
                    "could not read it (CONFIG GET refused or renamed)",
                    "check by hand that `maxmemory-policy` is `noeviction`",
                ))
            }
        };
        if policy == "noeviction" {
            return Ok(Finding::pass(
                CHECK,
                "noeviction: lock keys are never evicted",
            ));
        }
        let maxmemory = self.config_get("maxmemory").await.ok().flatten();
        Ok(Finding::fail(
            CHECK,
            format!(
                "{policy} (maxmemory {}): under memory pressure Redis evicts lock keys, \
                 silently freeing held locks",
                maxmemory.as_deref().unwrap_or("?")
            ),
            "`CONFIG SET maxmemory-policy noeviction` (and in redis.conf), or use a \
             dedicated Redis for locks",
        ))
    }

    async fn persistence(&self) -> Result<Finding> {
        const CHECK: &str = "persistence with replicas";
        let info: String = self
            .query(redis::cmd("INFO").arg("replication"), "reading INFO")
            .await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
                .map(str::to_string)
        };
        let replicas: u64 = field("connected_slaves")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let replica = field("role").as_deref() == Some("slave");
        let aof = self.config_get("appendonly").await.ok().flatten();
        let save = self.config_get("save").await.ok().flatten();
        let persisted =
            aof.as_deref() == Some("yes") || save.as_deref().is_some_and(|s| !s.is_empty());
        Ok(match (replicas > 0 || replica, persisted) {
            (true, false) => Finding::warn(
                CHECK,
                "replication without persistence: a primary that restarts empty is \
                 replicated as empty, and every lock is gone",
                "enable `appendonly yes` (or RDB `save`) on the primary, and fence writes",
            ),
            (true, true) => Finding::pass(
                CHECK,
                "persistence is on; failover can still lose a lock: fence writes",
            ),
            (false, _) => Finding::pass(CHECK, "no replicas"),
        })
    }

    /// Whether this user may use the waiters' wake channels (see
    /// [`wake_channel`](crate::subscriber::wake_channel)); without it waiting degrades to
    /// re-checks every 100–250 ms.
    async fn channels(&self) -> Finding {
        const CHECK: &str = "pub/sub channel permission";
        let channel = format!("{}wake:distlock-doctor", self.key_prefix);
        let user: Result<String> = self
            .query(&redis::cmd("ACL").arg("WHOAMI").clone(), "ACL WHOAMI")
            .await;
        let Ok(user) = user else {
            return Finding::pass(
                CHECK,
                "no ACLs (Redis < 6) or ACL WHOAMI refused; assumed allowed",
            );
        };
        let dry: Result<Value> = self
            .query(
                redis::cmd("ACL")
                    .arg("DRYRUN")
                    .arg(&user)
                    .arg("SUBSCRIBE")
                    .arg(&channel),
                "ACL DRYRUN",
            )
            .await;
        match dry {
            Ok(Value::Okay) => Finding::pass(CHECK, format!("user {user:?} may subscribe")),
            Ok(Value::SimpleString(s)) if s == "OK" => {
                Finding::pass(CHECK, format!("user {user:?} may subscribe"))
            }
            Ok(other) => Finding::warn(
                CHECK,
                format!("user {user:?} may not subscribe to {channel}: {other:?}; waiters fall back to re-checks every 100–250 ms"),
                format!("`ACL SETUSER {user} &{}*`", self.key_prefix),
            ),
            Err(e) => Finding::warn(
                CHECK,
                format!("could not check ({e}); without channel permission waiters fall back to re-checks"),
                format!("grant `&{}*` to the lock user", self.key_prefix),
            ),
        }
    }

    async fn clock(&self) -> Result<Finding> {
        let before = SystemTime::now();
        let (secs, micros): (u64, u64) = self
            .query(&redis::cmd("TIME").clone(), "reading TIME")
            .await?;
        let server = Duration::from_secs(secs) + Duration::from_micros(micros);
        Ok(distlock_core::inspect::clock_skew(
            before,
            server,
            SystemTime::now(),
        ))
    }
}

fn glob_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn percent_decode(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_decode_back() {
        let name = LockName::new("a}{b:c/ d ü").unwrap();
        assert_eq!(
            percent_decode(&name.escaped()).as_deref(),
            Some("a}{b:c/ d ü")
        );
        assert_eq!(glob_escape("p*[x]:"), "p\\*\\[x\\]:");
    }
}
