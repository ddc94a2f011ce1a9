//! The one settings layer every backend's URL parser uses: how a URL is cut into parts,
//! how durations, booleans and percent-escapes read, and how a URL is shown without its
//! password. Backends keep only their own parameters and defaults.
//!
//! # The unit rule for durations
//! A duration in a URL **must carry its unit**: `500ms`, `30s`, `2m`, `1h`, `1m 30s`
//! ([`humantime`] syntax). A bare number such as `2000` is refused with a
//! [`Config`](crate::ErrorKind::Config) error, because every reader would guess a different
//! unit (milliseconds for one tool, seconds for the next). Durations above a year
//! ([`MAX_URL_DURATION`]) are refused too.
//!
//! # Passwords
//! Parsers cut the user information off at the **last** `@` before they look at anything
//! else, so a password holding `?`, `/`, `#` or `@` can never be read as a host, path or
//! parameter and quoted back in an error. [`RedactedUrl`] is the only form of a URL that
//! goes into messages, logs and `Debug`.

mod boolean;
mod duration;
mod parts;
mod percent;
mod redacted;

pub use boolean::parse_bool;
pub use duration::{parse_duration, MAX_URL_DURATION};
pub use parts::{scheme_of, UrlParts};
pub use percent::percent_decode;
pub use redacted::RedactedUrl;
