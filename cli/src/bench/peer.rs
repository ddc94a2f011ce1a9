//! The peer library users compare distlock with on Redis: the `rslock` crate (Redlock on
//! one server), used as its README shows, with its default retry policy.

use std::time::Duration;

use async_trait::async_trait;
use distlock::{LockError, Result};

use super::subject::{Contender, Subject};
use super::target::{without_query, Kind, Target};

/// The peer of the target's store, if it has one.
pub(crate) fn subject(target: &Target) -> Option<Box<dyn Subject>> {
    match target.kind {
        Kind::Redis => Some(Box::new(Rslock {
            url: without_query(&target.url).to_string(),
            prefix: format!("{}rslock:", target.redis_prefix()),
        })),
        _ => None,
    }
}

struct Rslock {
    url: String,
    prefix: String,
}

const TTL: Duration = Duration::from_secs(30);

fn fail(e: rslock::LockError) -> LockError {
    LockError::connection(format!("rslock: {e}"))
}

#[async_trait]
impl Subject for Rslock {
    fn label(&self) -> &'static str {
        "rslock"
    }

    fn describe(&self) -> String {
        "rslock 0.10 LockManager on one server (acquire retries after 0–200 ms)".into()
    }

    async fn contender(&self, name: &str) -> Result<Box<dyn Contender>> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| LockError::connection(format!("rslock: {:?}", e.kind())))?;
        Ok(Box::new(RslockContender {
            manager: rslock::LockManager::from_clients(vec![client]),
            resource: format!("{}{}", self.prefix, super::raw::flat(name)).into_bytes(),
            lock: None,
        }))
    }
}

struct RslockContender {
    manager: rslock::LockManager,
    resource: Vec<u8>,
    lock: Option<rslock::Lock>,
}

#[async_trait]
impl Contender for RslockContender {
    async fn acquire(&mut self, limit: Duration) -> Result<()> {
        let lock = tokio::time::timeout(
            limit,
            self.manager.acquire_no_guard(self.resource.as_slice(), TTL),
        )
        .await
        .map_err(|_| LockError::timeout("rslock did not get the lock"))?
        .map_err(fail)?;
        self.lock = Some(lock);
        Ok(())
    }

    async fn try_acquire(&mut self) -> Result<bool> {
        match self.manager.lock(self.resource.as_slice(), TTL).await {
            Ok(lock) => {
                self.lock = Some(lock);
                Ok(true)
            }
            Err(rslock::LockError::Unavailable) => Ok(false),
            Err(e) => Err(fail(e)),
        }
    }

    async fn release(&mut self) -> Result<()> {
        match self.lock.take() {
            Some(lock) => {
                self.manager.unlock(&lock).await;
                Ok(())
            }
            None => Err(LockError::backend("rslock released a lock it did not hold")),
        }
    }
}
