//! Key and channel names of one lock.

use std::ops::Deref;
use std::sync::Arc;

use distlock_core::LockName;

/// The Redis names one lock uses. All share the hash tag `{<escaped name>}` so the scripts,
/// which touch the lock key and the fencing counter together, run on one Redis Cluster slot.
///
/// Shared, not copied: an acquire hands the names to its clean-up guards and to the hold,
/// and five `String` copies per clone were a measurable part of an uncontended cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LockKeys(Arc<Names>);

/// The names themselves (reached through [`LockKeys`]'s `Deref`: `keys.lock`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Names {
    /// Holds the owner token while the lock is held; expires with the lease.
    pub lock: String,
    /// The fencing counter; never expires, so tokens keep increasing.
    pub fence: String,
    /// The waiters' queue (a list of waiter ids, head first); gone when nobody waits.
    pub queue: String,
    /// Each queued waiter's entry expiry (a sorted set, server time in ms), so a waiter that
    /// vanished cannot block the queue for longer than its entry lives.
    pub queue_expiry: String,
    /// Each queued waiter's grant details (a hash: waiter id to `"=<attempt seq> <lease ms>
    /// <grant token> <wake channel>"`), so a release can hand the lock straight to the head.
    pub queue_grant: String,
    /// The lock's own channel: Redlock's releases wake every waiter on it, and a grant to a
    /// waiter of an older client (whose queue entry names no wake channel) is told there.
    /// Queued waiters of this version listen on their client's wake channel instead.
    /// The scripts derive it from the lock key (its final `lock` replaced by `released`)
    /// rather than receive it.
    pub channel: String,
}

impl Deref for LockKeys {
    type Target = Names;

    fn deref(&self) -> &Names {
        &self.0
    }
}

impl LockKeys {
    /// `prefix` never contains `{` or `}` (the config rejects it), and the escaped name only
    /// holds `[A-Za-z0-9_%-]`, so the first `{…}` of every key is exactly the name's tag.
    pub(crate) fn new(prefix: &str, name: &LockName) -> Self {
        let escaped = name.escaped();
        // Built by concatenation: `format!` per key cost more than the rest of the keys'
        // work on every acquire.
        let with = |suffix: &str| {
            let mut key = String::with_capacity(prefix.len() + escaped.len() + 2 + suffix.len());
            key.push_str(prefix);
            key.push('{');
            key.push_str(&escaped);
            key.push('}');
            key.push_str(suffix);
            key
        };
        LockKeys(Arc::new(Names {
            lock: with(":lock"),
            fence: with(":fence"),
            queue: with(":queue"),
            queue_expiry: with(":queue-expiry"),
            queue_grant: with(":queue-grant"),
            channel: with(":released"),
        }))
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
        // What the scripts' `lock_channel` computes from the lock key.
        let derived = format!("{}released", &keys.lock[..keys.lock.len() - 4]);
        assert_eq!(derived, keys.channel);
    }
}
