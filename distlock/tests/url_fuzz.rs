//! A property test over hostile URLs (issue 10): every backend's URL parser, and the
//! redacted form of any URL, never panics, fails only with `Config` errors, and never
//! shows any part of a password, whatever characters it holds.
//! `zk://127.0.0.1:1?session_timeout=99999999999999999999s` used to panic, and
//! `zk://u:Sup3r?S3cret@host:1` quoted `S3cret@…` in its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

use distlock::settings::RedactedUrl;
use distlock::{ErrorKind, LockError};
use distlock_testkit::url_fuzz::{hostile_urls, leaks_a_password};

/// URLs per parser: the parsers take microseconds, so this stays well under a second.
const COUNT: usize = 20_000;

/// The seed: fixed, so CI is repeatable; `DISTLOCK_FUZZ_SEED` explores others.
fn seed() -> u64 {
    std::env::var("DISTLOCK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0010)
}

/// Every text an error can show: message, `Debug` and the source chain.
fn everything_shown(e: &LockError) -> String {
    let mut shown = format!("{e} {e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        shown.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    shown
}

#[allow(dead_code)] // unused when no server backend is built
fn check<T: Debug>(schemes: &[&str], parse: impl Fn(&str) -> Result<T, LockError>) {
    let seed = seed();
    let mut parsed = 0;
    for (url, password) in hostile_urls(seed, COUNT, schemes) {
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&url)))
            .unwrap_or_else(|_| panic!("seed {seed}: parsing {url:?} panicked"));
        let shown = match outcome {
            Ok(config) => {
                parsed += 1;
                format!("{config:?}")
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Config, "seed {seed}: {url:?}: {e}");
                everything_shown(&e)
            }
        };
        if password.is_some() {
            assert!(
                !leaks_a_password(&shown),
                "seed {seed}: {url:?} leaked its password: {shown}"
            );
        }
        let redacted = RedactedUrl::new(&url);
        assert!(
            password.is_none() || !leaks_a_password(&format!("{redacted} {redacted:?}")),
            "seed {seed}: RedactedUrl of {url:?} shows its password: {redacted}"
        );
    }
    // The generator must also reach the parsers' success paths, or it tests only refusals.
    assert!(parsed > COUNT / 100, "only {parsed} of {COUNT} URLs parsed");
}

#[cfg(feature = "zookeeper")]
#[test]
fn zookeeper_urls() {
    use distlock::zookeeper::{ZkConfig, SCHEMES};
    check(SCHEMES, ZkConfig::from_url);
}

#[cfg(feature = "redis")]
#[test]
fn redis_urls() {
    use distlock::redis::{parse_url, SCHEMES};
    check(SCHEMES, |url| {
        parse_url(url).and_then(|(_, builder)| builder.build())
    });
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_urls() {
    use distlock::mysql::{MySqlConfig, SCHEMES};
    check(SCHEMES, MySqlConfig::from_url);
}

#[test]
fn redacted_urls_of_any_scheme() {
    for (url, password) in hostile_urls(seed(), COUNT, &["zk", "redis", "mysql", "file", "x"]) {
        let shown = RedactedUrl::new(&url);
        if password.is_some() {
            assert!(
                !leaks_a_password(&format!("{shown} {shown:?}")),
                "{url:?}: {shown}"
            );
        }
    }
}
