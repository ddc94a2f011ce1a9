//! Odd and hostile names.

use distlock_core::{ErrorKind, LockExt};

use super::{expect_kind, ok, Ctx};

fn hostile_suffixes() -> Vec<String> {
    let mut names: Vec<String> = [
        " ",
        "a/b",
        "a%2Fb",
        "/",
        "//",
        ".",
        "..",
        "../../etc",
        "a b",
        "a\nb",
        "a\tb",
        "*",
        "?",
        "{x}",
        "}",
        "{",
        "a:b",
        "'",
        "\"",
        "\\",
        "'; DROP TABLE locks; --",
        "\" OR 1=1 --",
        "%",
        "%%",
        "$1",
        "ключ",
        "🔒",
        "Order",
        "order",
        "ORDER",
        "\u{0}",
        "nul\u{0}byte",
        "zwj\u{200d}x",
        "e\u{301}",
        "\u{e9}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Names a sloppy escaper or a readable-prefix hash would fold together.
    names.extend(["a_b", "a.b", "a-b", "a%20b", "a+b"].map(String::from));
    names.push("x".repeat(300));
    names.push(format!("{}y", "x".repeat(299)));
    names.push(format!("{}A", "€".repeat(100)));
    names.push(format!("{}a", "€".repeat(100)));
    names
}

/// Whole names of 63, 64 and 65 characters (MySQL's limit is 64), and a 64-character pair
/// that differs only in case.
fn around_64_chars(prefix: &str) -> Vec<String> {
    let used = prefix.chars().count();
    let fill = |n: usize, c: &str| format!("{prefix}{}", c.repeat(n.saturating_sub(used)));
    vec![fill(63, "q"), fill(64, "q"), fill(65, "q"), fill(64, "Q")]
}

pub(crate) async fn odd_and_hostile(ctx: &Ctx) {
    let (a, b) = (ctx.client().await, ctx.client().await);
    expect_kind(
        a.try_acquire("").await,
        &[ErrorKind::InvalidName],
        "the empty name",
    );

    let names: Vec<String> = hostile_suffixes()
        .iter()
        .map(|s| format!("{}{s}", ctx.name("")))
        .chain(["", "/", "x"].map(|s| s.to_string() + &ctx.run_tag()))
        .chain(around_64_chars(&ctx.name("")))
        .collect();
    // `a` takes every name: a collision shows as a failed try (non-reentrant backends).
    let mut held = Vec::new();
    for name in &names {
        let g = ok(a.try_acquire(name).await, "try_acquire of an odd name")
            .unwrap_or_else(|| panic!("{name:?} collided with an earlier name"));
        held.push(Some(g));
    }
    // Release by partition and check `b` gets exactly the released ones: a collision
    // across partitions shows even on reentrant backends.
    for partition in [0usize, 1] {
        let mut taken = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if i % 2 == partition {
                let g = held[i].take().expect("held");
                ok(g.release().await, "release");
                let g = ok(b.try_acquire(name).await, "try_acquire").unwrap_or_else(|| {
                    panic!("{name:?} was still held after its release (names collide?)")
                });
                taken.push(g);
            }
        }
        for (i, name) in names.iter().enumerate() {
            if held[i].is_some() {
                assert!(
                    ok(b.try_acquire(name).await, "try_acquire").is_none(),
                    "{name:?} was free while held (names collide?)"
                );
            }
        }
        for g in taken {
            ok(g.release().await, "release");
        }
    }
}
