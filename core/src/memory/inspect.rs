//! [`Inspect`] for the memory backend: every hold with its token, age and time left;
//! breaking one marks its guard lost at once.

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Holder, MemoryLock};
use crate::error::{LockError, Result};
use crate::inspect::{self, Inspect};
use crate::lock::DistributedLock;
use crate::name::LockName;
use crate::observe::LossReason;

impl Holder {
    fn report(&self, name: &LockName, now: Instant) -> inspect::Holder {
        let mut holder = inspect::Holder::new(name.as_str()).with_owner_token(self.token.clone());
        holder.fencing_token = Some(self.fence);
        holder.age = Some(now.saturating_duration_since(self.since));
        holder.time_left = Some(self.expires.saturating_duration_since(now));
        holder
    }
}

#[async_trait]
impl Inspect for MemoryLock {
    async fn holders(&self, prefix: &str) -> Result<Vec<inspect::Holder>> {
        let now = Instant::now();
        let mut locks = self.store.lock_map();
        let mut found = Vec::new();
        for (name, entry) in locks.iter_mut() {
            entry.expire_due(now);
            if let Some(holder) = entry.holder.as_ref() {
                if name.as_str().starts_with(prefix) {
                    found.push(holder.report(name, now));
                }
            }
        }
        locks.retain(|_, entry| !entry.idle());
        Ok(found)
    }

    async fn break_lock(&self, name: &LockName) -> Result<Option<inspect::Holder>> {
        let broken = self.store.with_entry(name, |entry| {
            let now = Instant::now();
            let holder = entry.holder.take()?;
            holder.status.mark_lost_because(
                LossReason::Broken,
                LockError::lost("the hold was broken by an operator"),
            );
            entry.hand_off(now);
            Some(holder.report(name, now))
        });
        if broken.is_some() {
            crate::observe::forced_release(self.backend_name(), name);
        }
        Ok(broken)
    }
}
