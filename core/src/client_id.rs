//! Which client a hold belongs to, so that nested scopes reuse only their own client's hold.

use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one lock client for task-scoped reentrancy ([`crate::scope`]): a nested
/// `with_lock` reuses an outer hold only when both were taken through the same `ClientId`.
///
/// Two kinds exist, and they never compare equal to each other:
/// - [`ClientId::of`] — the address of the client object, the default of
///   [`DistributedLock::client_id`](crate::DistributedLock::client_id). An `Arc` clone, a
///   `&Box<dyn …>` or a `&` reference reach the same object, so they are one client; a
///   `Clone`d client object is a different one. A scope borrows its client for its whole
///   run, so the address cannot be reused by another client while the scope is open.
///   Zero-sized clients share addresses: such a backend must return [`ClientId::unique`].
/// - [`ClientId::unique`] — a fresh process-wide number, for backends whose clones share
///   one connection/session and should count as one client (the memory backend does this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(Repr);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Repr {
    Address(usize),
    Unique(u64),
}

impl ClientId {
    /// The identity of the object `client` points to (its address).
    pub fn of<T: ?Sized>(client: &T) -> Self {
        // Only the address is kept (pointer metadata such as a vtable is dropped), so the
        // same object seen through different trait objects is still one client.
        ClientId(Repr::Address((client as *const T).cast::<()>() as usize))
    }

    /// A new identity, different from every other one handed out in this process.
    pub fn unique() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ClientId(Repr::Unique(NEXT.fetch_add(1, Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_and_unique_ids_are_distinct() {
        let a = 1u8;
        let b = 2u8;
        assert_eq!(ClientId::of(&a), ClientId::of(&a));
        assert_ne!(ClientId::of(&a), ClientId::of(&b));
        assert_ne!(ClientId::unique(), ClientId::unique());
        let dynamic: &dyn std::fmt::Debug = &a;
        assert_eq!(ClientId::of(dynamic), ClientId::of(&a));
    }
}
