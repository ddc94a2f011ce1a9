//! The suite on the in-memory reference backend: every claimed case passes, the rest are
//! reported skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use async_trait::async_trait;
use distlock_conformance::{Faults, Harness};
use distlock_core::memory::MemoryStore;
use distlock_core::{DistributedLock, LockGuard, Result};

struct MemoryHarness(MemoryStore);

#[async_trait]
impl Harness for MemoryHarness {
    async fn client(&self) -> Result<Box<dyn DistributedLock>> {
        Ok(Box::new(self.0.client()))
    }
    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
}

#[async_trait]
impl Faults for MemoryHarness {
    async fn lose_hold(&self, guard: &LockGuard) -> Result<()> {
        assert!(self.0.expire(guard.name().as_str()), "nothing to expire");
        Ok(())
    }
}

distlock_conformance::conformance_tests!(MemoryHarness(MemoryStore::new()));
