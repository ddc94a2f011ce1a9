//! Hostile lock URLs for property tests of URL parsers: seeded, so a failure replays.
//!
//! Every generated password is made of pieces that carry [`MARKER`] and of URL delimiters
//! (`?`, `@`, `/`, `#`, `:`, `%`, `&`, `=`, `,`); nothing else in a URL contains the marker.
//! A message or `Debug` text that contains it (in any case) has leaked part of a password.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The text every password piece carries, and nothing else does.
pub const MARKER: &str = "Qz";

const PASSWORD_PIECES: &[&str] = &[
    "Qz1",
    "Qz2x",
    "QzSecret",
    "?",
    "@",
    "/",
    "#",
    ":",
    "%",
    "%4",
    "%zz",
    "%40",
    "&",
    "=",
    ",",
    " ",
    "é",
    "?session_timeout=",
    "?mode=",
    "@h:1",
    "..",
    "[",
    "]",
];
const USERS: &[&str] = &["", "u", "app", "al%40ice", "root", "a b", "%zz", "é"];
const HOSTS: &[&str] = &[
    "127.0.0.1:1",
    "h:2181",
    "h1:1,h2:2",
    "",
    ",",
    "h:99999999",
    "h:",
    ":1",
    "[::1]:2181",
    "[::1",
    "host",
    "localhost",
    "a:1,b:2,c:3",
];
const PATHS: &[&str] = &[
    "",
    "/",
    "/db",
    "/0",
    "/15",
    "/99999999999",
    "/a/../b",
    "/zookeeper",
    "/%zz",
    "/x/",
    "//",
    "/é",
    "/a b",
];
const KEYS: &[&str] = &[
    "session_timeout",
    "connect_timeout",
    "root",
    "acl",
    "mode",
    "probe_interval",
    "probe_timeout",
    "wait_step",
    "fencing",
    "ttl",
    "ttl_ms",
    "prefix",
    "ssl-mode",
    "bogus",
    "",
    "%zz",
];
const VALUES: &[&str] = &[
    "",
    "2s",
    "1500ms",
    "2000",
    "0s",
    "-1s",
    "NaNs",
    "infs",
    "1e308s",
    "99999999999999999999s",
    "18446744073709551615s",
    "584942417356y",
    "creator",
    "open",
    "row_lock",
    "get_lock",
    "/locks",
    "/zookeeper/x",
    "a{b",
    "%zz",
    "%C3%A9",
    "required",
    "é",
];
const SCHEME_NOISE: &[&str] = &["", "http", "x", "1x", "redis+sentinel", "mysql+x"];

/// `count` hostile URLs for the `schemes` given (in random letter case), each with the
/// password it holds (`None` when it has none). The same `seed` gives the same URLs.
pub fn hostile_urls(seed: u64, count: usize, schemes: &[&str]) -> Vec<(String, Option<String>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| hostile_url(&mut rng, schemes)).collect()
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

fn hostile_url(rng: &mut StdRng, schemes: &[&str]) -> (String, Option<String>) {
    let scheme = if rng.random_bool(0.9) && !schemes.is_empty() {
        let scheme = pick(rng, schemes);
        random_case(rng, scheme)
    } else {
        pick(rng, SCHEME_NOISE).to_string()
    };
    let mut url = format!("{scheme}://");
    let mut password = None;
    if rng.random_bool(0.7) {
        url.push_str(pick(rng, USERS));
        if rng.random_bool(0.85) {
            let mut secret = String::new();
            for _ in 0..rng.random_range(1..6) {
                secret.push_str(pick(rng, PASSWORD_PIECES));
            }
            // A password always carries the marker, so any leak of it is visible.
            if !secret.contains(MARKER) {
                secret.push_str("Qz3");
            }
            url.push(':');
            url.push_str(&secret);
            password = Some(secret);
        }
        url.push('@');
    }
    url.push_str(pick(rng, HOSTS));
    url.push_str(pick(rng, PATHS));
    if rng.random_bool(0.7) {
        let pairs: Vec<String> = (0..rng.random_range(0..4))
            .map(|_| match rng.random_range(0..10) {
                0 => pick(rng, KEYS).to_string(),
                _ => format!("{}={}", pick(rng, KEYS), pick(rng, VALUES)),
            })
            .collect();
        url.push('?');
        url.push_str(&pairs.join("&"));
    }
    (url, password)
}

fn random_case(rng: &mut StdRng, text: &str) -> String {
    text.chars()
        .map(|c| {
            if rng.random_bool(0.3) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Whether `text` shows any part of a generated password (the marker, in any case).
pub fn leaks_a_password(text: &str) -> bool {
    text.to_ascii_lowercase()
        .contains(&MARKER.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_urls_and_every_password_is_marked() {
        let a = hostile_urls(7, 200, &["zk"]);
        assert_eq!(a, hostile_urls(7, 200, &["zk"]));
        for (url, password) in &a {
            if let Some(password) = password {
                assert!(leaks_a_password(password));
                // The marker appears in the password and nowhere else.
                let rest = url.replacen(password.as_str(), "", 1);
                assert!(!leaks_a_password(&rest), "{url}");
            } else {
                assert!(!leaks_a_password(url), "{url}");
            }
        }
    }
}
