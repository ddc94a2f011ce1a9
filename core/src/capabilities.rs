//! What a backend promises beyond plain mutual exclusion.

/// Capabilities a backend claims. The conformance suite tests every claimed one and reports
/// the others as skipped by name.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Holds expire after a TTL and the guard renews them (`extend` works).
    pub leases: bool,
    /// Guards carry fencing tokens that strictly increase per name.
    pub fencing: bool,
    /// Waiters get the lock in the order they started waiting.
    pub fifo: bool,
    /// A client that holds a name and acquires it again gets a second, nested hold.
    /// When `false`, the second acquire behaves like any other contender (it waits or
    /// times out), and never corrupts the first hold. This is about plain acquires only:
    /// the task-scoped reentrancy of [`with_lock`](crate::LockExt::with_lock) scopes is
    /// provided by `core` on every backend, whatever this says.
    pub reentrant: bool,
    /// The guard notices and signals when its hold is lost.
    pub lost_detection: bool,
    /// Several OS processes can share the store (false only for in-process backends).
    pub cross_process: bool,
}

impl Capabilities {
    /// No capability beyond mutual exclusion.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets [`Capabilities::leases`].
    pub fn with_leases(mut self, on: bool) -> Self {
        self.leases = on;
        self
    }

    /// Sets [`Capabilities::fencing`].
    pub fn with_fencing(mut self, on: bool) -> Self {
        self.fencing = on;
        self
    }

    /// Sets [`Capabilities::fifo`].
    pub fn with_fifo(mut self, on: bool) -> Self {
        self.fifo = on;
        self
    }

    /// Sets [`Capabilities::reentrant`].
    pub fn with_reentrant(mut self, on: bool) -> Self {
        self.reentrant = on;
        self
    }

    /// Sets [`Capabilities::lost_detection`].
    pub fn with_lost_detection(mut self, on: bool) -> Self {
        self.lost_detection = on;
        self
    }

    /// Sets [`Capabilities::cross_process`].
    pub fn with_cross_process(mut self, on: bool) -> Self {
        self.cross_process = on;
        self
    }
}
