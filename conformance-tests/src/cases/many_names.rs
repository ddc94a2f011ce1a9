//! Property-style: thousands of generated names, in families of look-alikes (mixed case,
//! long shared prefixes, unicode, lengths around common limits). Within a family every
//! name is held at once, so two that map to the same lock in the store block each other.
//!
//! Families are held one after the other to keep the number of simultaneous holds (and, on
//! backends that pin a connection per hold, connections) small. A collision between names
//! of different families is therefore not looked for: an encoding that hashes names to a
//! short digest collides by chance, and no test run finds that reliably. Use escaping or a
//! full-length cryptographic hash (see the crate docs).

use std::collections::HashSet;
use std::time::Duration;

use distlock_core::{DistributedLock, LockExt, LockGuard};
use futures::future::join_all;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::{ok, within, Ctx};

const FAMILIES: usize = 40;
const MEMBERS: usize = 50;
/// Holds asked for at once.
const BATCH: usize = 16;
/// Set it to replay a failed run's names.
pub(crate) const SEED_VAR: &str = "DISTLOCK_CONFORMANCE_SEED";

/// Shared prefix lengths in bytes, around common column, key and path limits.
const STEMS: [usize; 8] = [0, 20, 60, 180, 250, 500, 1000, 2000];

const ALPHABET: &[&str] = &[
    "a", "b", "z", "A", "B", "Z", "0", "9", "/", ":", "-", "_", ".", " ", "%", "'", "é", "É",
    "e\u{301}", "ß", "ẞ", "σ", "Σ", "ς", "ü", "Ü", "ω", "Ω", "ı", "İ", "ǅ", "ǆ", "Ǆ", "日", "本",
    "🔒", "\u{200d}", "ﬁ", "Å", "Å", "ж", "Ж",
];

/// Pairs a case-folding or normalising encoding would merge.
const TWINS: &[(&str, &str)] = &[
    ("a", "A"),
    ("é", "É"),
    ("é", "e\u{301}"),
    ("Σ", "σ"),
    ("σ", "ς"),
    ("ü", "Ü"),
    ("ß", "ss"),
    ("ß", "ẞ"),
    ("İ", "i"),
    ("ı", "I"),
    ("Ж", "ж"),
    ("ﬁ", "fi"),
    ("Å", "Å"),
    ("_", "-"),
    ("/", "%2F"),
];

fn word(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| *ALPHABET.choose(rng).expect("letters"))
        .collect()
}

fn swap_case(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_uppercase() {
                c.to_lowercase().collect::<Vec<_>>()
            } else {
                c.to_uppercase().collect::<Vec<_>>()
            }
        })
        .collect()
}

/// A stem of at least `bytes` bytes.
fn stem(rng: &mut StdRng, prefix: &str, bytes: usize) -> String {
    let mut s = prefix.to_string();
    while s.len() < prefix.len() + bytes {
        s.push_str(ALPHABET.choose(rng).expect("letters"));
    }
    s
}

/// One family of distinct look-alike names sharing a stem.
fn family(rng: &mut StdRng, prefix: &str, index: usize) -> Vec<String> {
    let stem = stem(
        rng,
        &format!("{prefix}{index}/"),
        STEMS[index % STEMS.len()],
    );
    let mut names = vec![stem.clone()];
    for (x, y) in TWINS {
        names.push(format!("{stem}{x}"));
        names.push(format!("{stem}{y}"));
    }
    // Lengths around 64 characters and 192, 256, 512 and 1024 bytes, differing last.
    for limit in [63usize, 64, 65] {
        let pad = limit.saturating_sub(stem.chars().count() + 1);
        names.push(format!("{stem}{}x", "q".repeat(pad)));
        names.push(format!("{stem}{}y", "q".repeat(pad)));
    }
    for limit in [191usize, 192, 255, 256, 511, 512, 1023, 1024] {
        let pad = limit.saturating_sub(stem.len() + 1);
        names.push(format!("{stem}{}x", "q".repeat(pad)));
        names.push(format!("{stem}{}X", "q".repeat(pad)));
    }
    while names.len() < MEMBERS {
        let len = rng.random_range(1..12);
        let w = word(rng, len);
        names.push(format!("{stem}{}", swap_case(&w)));
        names.push(format!("{stem}{w}"));
    }
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

pub(crate) async fn never_collide(ctx: &Ctx) {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    let mut rng = StdRng::seed_from_u64(seed);
    let (a, b) = (ctx.client().await, ctx.client().await);
    let prefix = ctx.name("");
    let mut total = 0;
    within(Duration::from_secs(150), "the generated names", async {
        for index in 0..FAMILIES {
            let names = family(&mut rng, &prefix, index);
            total += names.len();
            hold_all_at_once(ctx, a.as_ref(), b.as_ref(), &names, seed).await;
        }
    })
    .await;
    assert!(total >= FAMILIES * MEMBERS / 2, "only {total} names");
}

async fn hold_all_at_once(
    ctx: &Ctx,
    a: &dyn DistributedLock,
    b: &dyn DistributedLock,
    names: &[String],
    seed: u64,
) {
    let replay = format!("(replay with {SEED_VAR}={seed})");
    let mut held: Vec<LockGuard> = Vec::new();
    for batch in names.chunks(BATCH) {
        let got = join_all(batch.iter().map(|n| a.try_acquire(n))).await;
        for (name, got) in batch.iter().zip(got) {
            match ok(got, "try_acquire of a generated name") {
                Some(g) => held.push(g),
                None => panic!(
                    "{} was blocked by another held name of its family (stem {}) {replay}",
                    shown(name),
                    shown(&names[0])
                ),
            }
        }
    }
    if ctx.caps.reentrant {
        // The holder may be handed a name twice: release one by one and let another
        // client take each, which a twin still held blocks.
        for g in held {
            let name = g.name().as_str().to_string();
            ok(g.release().await, "release");
            let again = ok(b.try_acquire(&name).await, "try_acquire").unwrap_or_else(|| {
                panic!(
                    "{} stayed held after its release: a twin of it is held {replay}",
                    shown(&name)
                )
            });
            ok(again.release().await, "release");
        }
        return;
    }
    while !held.is_empty() {
        let batch: Vec<_> = held.drain(..held.len().min(BATCH)).collect();
        for r in join_all(batch.into_iter().map(LockGuard::release)).await {
            ok(r, "release");
        }
    }
}

/// A long name, shortened for a message: its start, its length and its end.
fn shown(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= 120 {
        return format!("{name:?}");
    }
    let head: String = chars[..80].iter().collect();
    let tail: String = chars[chars.len() - 30..].iter().collect();
    format!("{head:?}…({} bytes)…{tail:?}", name.len())
}
