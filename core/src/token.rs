//! Owner tokens, and the holder metadata they carry.

use std::sync::{OnceLock, PoisonError, RwLock};

/// The most bytes of the host name or label a token carries (before escaping).
const META_MAX: usize = 64;

/// A fresh owner token: a random v4 UUID (122 random bits) in simple hex, followed by
/// this process's holder metadata, `<uuid>~<pid>~<host>[~<label>]` (see [`HolderMeta`]).
/// Metadata fields are percent-escaped to `[A-Za-z0-9.%]`, so the token is safe in keys,
/// node names and SQL parameters; only the UUID makes it unique. Backends store the token
/// with the hold (Redis value, ZooKeeper node name, …), which is how `distlock holders`
/// knows who holds a lock (like Redisson's `uuid:thread` lock values). Generated before
/// anything is sent, so a cancelled acquire can always be cleaned up by token.
pub fn new_owner_token() -> String {
    let suffix = SUFFIX.read().unwrap_or_else(PoisonError::into_inner);
    let suffix = suffix.as_deref().unwrap_or_else(|| process_part());
    let mut buf = uuid::Uuid::encode_buffer();
    // The thread's CSPRNG (seeded from the OS), not `Uuid::new_v4`: that asks the kernel
    // (`getrandom`, a system call) for every token, a measurable part of an uncontended
    // acquire on a fast store.
    let random: [u8; 16] = rand::Rng::random(&mut rand::rng());
    let id = uuid::Builder::from_random_bytes(random)
        .into_uuid()
        .simple()
        .encode_lower(&mut buf);
    let mut token = String::with_capacity(id.len() + suffix.len());
    token.push_str(id);
    token.push_str(suffix);
    token
}

/// Sets the free-form label every later owner token of this process carries (a service
/// name, a job id): shown by `distlock holders`. At most 64 bytes are kept.
pub fn set_holder_label(label: &str) {
    let suffix = if label.is_empty() {
        None
    } else {
        Some(format!("{}~{}", process_part(), escape(truncate(label))))
    };
    *SUFFIX.write().unwrap_or_else(PoisonError::into_inner) = suffix;
}

/// Everything after the UUID, when a label is set (else [`process_part`] alone).
static SUFFIX: RwLock<Option<String>> = RwLock::new(None);

fn process_part() -> &'static str {
    static PART: OnceLock<String> = OnceLock::new();
    PART.get_or_init(|| format!("~{}~{}", std::process::id(), escape(truncate(&host_name()))))
}

/// This machine's host name, best effort (no libc call: `/proc`, then `$HOSTNAME`).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(META_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = escaped
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who made a hold, as carried by its owner token (see [`new_owner_token`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HolderMeta {
    /// The holder's host name.
    pub host: Option<String>,
    /// The holder's process id.
    pub pid: Option<u32>,
    /// The label set by [`set_holder_label`].
    pub label: Option<String>,
}

impl HolderMeta {
    /// Reads the metadata out of an owner token; empty for tokens without it (older
    /// versions, other libraries).
    pub fn from_owner_token(token: &str) -> Self {
        let mut parts = token.split('~').skip(1);
        HolderMeta {
            pid: parts.next().and_then(|p| p.parse().ok()),
            host: parts.next().map(unescape),
            label: parts.next().map(unescape),
        }
    }

    /// Metadata of this process, as its tokens carry it.
    pub fn this_process() -> Self {
        Self::from_owner_token(&new_owner_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_safe_and_carry_pid_and_host() {
        let (a, b) = (new_owner_token(), new_owner_token());
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".%~".contains(&c)),
            "{a}"
        );
        let meta = HolderMeta::from_owner_token(&a);
        assert_eq!(meta.pid, Some(std::process::id()));
        assert_eq!(meta.host.as_deref(), Some(host_name().as_str()));
        assert_eq!(
            HolderMeta::from_owner_token("0123abcd"),
            HolderMeta::default()
        );
    }

    #[test]
    fn labels_round_trip_through_escaping() {
        let label = "job 7/ünï~%-x";
        let token = format!("u~1~h~{}", escape(label));
        assert_eq!(
            HolderMeta::from_owner_token(&token).label.as_deref(),
            Some(label)
        );
        assert_eq!(truncate(&"é".repeat(40)).len(), 64);
    }
}
