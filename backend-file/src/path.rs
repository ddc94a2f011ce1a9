//! Where a name's lock and fence files live.

use std::path::{Path, PathBuf};

use distlock_core::LockName;

/// File names stay under common 255-byte limits. Escaped names never contain '.', hashed ones
/// always do, so the two forms cannot collide.
const MAX_STEM: usize = 200;

pub(crate) fn stem(name: &LockName) -> String {
    let escaped = name.escaped();
    if escaped.len() <= MAX_STEM {
        escaped
    } else {
        name.hashed(MAX_STEM)
    }
}

pub(crate) fn lock_file(dir: &Path, name: &LockName) -> PathBuf {
    dir.join(format!("{}.lock", stem(name)))
}

/// The directory of the lock's waiter queue (see `queue`). Lock files end in `.lock`, so
/// this never names one, and `inspect` skips it.
pub(crate) fn queue_dir(dir: &Path, name: &LockName) -> PathBuf {
    dir.join(format!("{}.lock.q", stem(name)))
}
