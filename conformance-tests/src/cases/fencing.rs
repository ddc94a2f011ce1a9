//! Fencing tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock_core::LockExt;

use super::{ok, within, Ctx};

pub(crate) async fn strictly_increasing(ctx: &Ctx) {
    if !ctx.caps.fencing {
        return ctx.skip("the backend does not claim fencing tokens");
    }
    let name = ctx.name("fenced");
    let clients = [ctx.client().await, ctx.client().await, ctx.client().await];
    let mut last = 0u64;
    for round in 0..9 {
        let g = ok(clients[round % 3].try_acquire(&name).await, "try_acquire").expect("free lock");
        let token = g
            .fencing_token()
            .expect("a backend claiming fencing returned no token");
        assert!(
            token > last,
            "fencing token {token} after {last}: not increasing"
        );
        last = token;
        if round % 2 == 0 {
            ok(g.release().await, "release");
        } else {
            drop(g);
            // Wait for the background release so the next round's try succeeds.
            let g = ok(
                clients[(round + 1) % 3]
                    .acquire_timeout(&name, ctx.harness.cleanup())
                    .await,
                "acquire after drop",
            );
            let t = g.fencing_token().expect("token");
            assert!(t > last, "fencing token {t} after {last}: not increasing");
            last = t;
            ok(g.release().await, "release");
        }
    }

    // Contended: tokens in the order the lock was held must strictly increase.
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = ctx.client().await;
        let (name, order) = (name.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let g = ok(
                    client.acquire_timeout(&name, Duration::from_secs(30)).await,
                    "contended acquire",
                );
                order
                    .lock()
                    .unwrap()
                    .push(g.fencing_token().expect("token"));
                ok(g.release().await, "release");
            }
        }));
    }
    within(Duration::from_secs(60), "contended fencing run", async {
        for t in tasks {
            t.await.expect("fencing client panicked");
        }
    })
    .await;
    let seen = order.lock().unwrap().clone();
    let mut prev = last;
    for t in &seen {
        assert!(
            *t > prev,
            "fencing tokens in hold order {seen:?} are not strictly increasing (after {last})"
        );
        prev = *t;
    }
}
