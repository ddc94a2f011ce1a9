//! `extend` has one outcome on every backend, leases or not.

use distlock_core::LockExt;

use super::{ok, Ctx};
use crate::case::Outcome;

/// A live hold extends with `Ok(())` on every backend: a lease is renewed, a hold without
/// one (session, connection, lock file) is checked and left as it is. A stale hold's
/// `NotHeld` is checked by the stale-guard case.
pub(crate) async fn extend_live_hold(ctx: &Ctx) -> Outcome {
    let name = ctx.name("lock");
    let (a, b) = (ctx.client().await, ctx.client().await);
    let g = ok(a.try_acquire(&name).await, "acquire").expect("free lock");
    let ttl = ctx.harness.short_ttl();
    ok(g.extend(ttl).await, "extend of a live hold");
    ok(g.extend(ttl).await, "a second extend of a live hold");
    assert!(g.is_held(), "an extend ended the hold");
    assert!(
        ok(b.try_acquire(&name).await, "try_acquire by another client").is_none(),
        "after an extend the lock no longer excludes"
    );
    ok(g.release().await, "release after extends");
    let again = ok(b.try_acquire(&name).await, "try_acquire after the release");
    ok(
        again.expect("free after the release").release().await,
        "release",
    );
    Outcome::Passed
}
