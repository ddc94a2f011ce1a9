//! Key and channel names of one lock.

use distlock_core::LockName;

/// The Redis names one lock uses. All share the hash tag `{<escaped name>}` so the scripts,
/// which touch the lock key and the fencing counter together, run on one Redis Cluster slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LockKeys {
    /// Holds the owner token while the lock is held; expires with the lease.
    pub lock: String,
    /// The fencing counter; never expires, so tokens keep increasing.
    pub fence: String,
    /// The waiters' queue (a list of waiter ids, head first); gone when nobody waits.
    pub queue: String,
    /// Each queued waiter's entry expiry (a sorted set, server time in ms), so a waiter that
    /// vanished cannot block the queue for longer than its entry lives.
    pub queue_expiry: String,
    /// Each queued waiter's grant details (a hash: waiter id to `"<attempt seq> <TTL ms>
    /// <grant token>"`), so a release can hand the lock straight to the head.
    pub queue_grant: String,
    /// The lock's own channel: Redlock's releases wake every waiter on it, and a grant to a
    /// waiter of an older client (whose queue entry names no wake channel) is told there.
    /// Queued waiters of this version listen on their client's wake channel instead.
    pub channel: String,
}

impl LockKeys {
    /// `prefix` never contains `{` or `}` (the config rejects it), and the escaped name only
    /// holds `[A-Za-z0-9_%-]`, so the first `{…}` of every key is exactly the name's tag.
    pub(crate) fn new(prefix: &str, name: &LockName) -> Self {
        let tag = format!("{prefix}{{{}}}", name.escaped());
        LockKeys {
            lock: format!("{tag}:lock"),
            fence: format!("{tag}:fence"),
            queue: format!("{tag}:queue"),
            queue_expiry: format!("{tag}:queue-expiry"),
            queue_grant: format!("{tag}:queue-grant"),
            channel: format!("{tag}:released"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag_and_hostile_names_stay_inside_it() {
        let name = LockName::new("a}{b:c/ d").unwrap();
        let keys = LockKeys::new("distlock:", &name);
        let tag = "distlock:{a%7D%7Bb%3Ac%2F%20d}";
        assert_eq!(keys.lock, format!("{tag}:lock"));
        assert_eq!(keys.fence, format!("{tag}:fence"));
        assert_eq!(keys.queue, format!("{tag}:queue"));
        assert_eq!(keys.queue_expiry, format!("{tag}:queue-expiry"));
        assert_eq!(keys.queue_grant, format!("{tag}:queue-grant"));
        assert_eq!(keys.channel, format!("{tag}:released"));
    }
}
