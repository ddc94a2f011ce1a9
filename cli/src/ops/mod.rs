//! The operator's commands: `holders`, `break`, `doctor` (see [`distlock::Inspect`]).

pub(crate) mod break_lock;
pub(crate) mod doctor;
pub(crate) mod holders;

use distlock::{DistributedLock, LockError};

/// Connects to `url` and checks that its backend offers [`distlock::Inspect`].
pub(crate) async fn connect(url: &str) -> distlock::Result<Box<dyn DistributedLock>> {
    let locks = crate::store::connect(url).await?;
    if locks.inspect().is_none() {
        return Err(LockError::unsupported(format!(
            "the {} backend cannot list, break or check locks",
            locks.backend_name()
        )));
    }
    Ok(locks)
}

/// `locks.inspect()`, known to be there after [`connect`].
pub(crate) fn inspector(locks: &dyn DistributedLock) -> distlock::Result<&dyn distlock::Inspect> {
    locks
        .inspect()
        .ok_or_else(|| LockError::unsupported("this backend offers no inspection"))
}

/// A duration for people: `1.2s`, `350ms`, `2h 3m`.
pub(crate) fn human(d: std::time::Duration) -> String {
    let rounded = if d >= std::time::Duration::from_secs(10) {
        std::time::Duration::from_secs(d.as_secs())
    } else {
        std::time::Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(rounded).to_string()
}
