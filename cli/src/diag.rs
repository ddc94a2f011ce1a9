//! What distlock says on stderr: its own messages, and the library's `tracing` events
//! (`-v`, `-vv`, `-vvv`, or `RUST_LOG` with `tracing-subscriber`'s filter syntax).
//!
//! Nothing here panics on a closed stderr: `eprintln!` would, and a lock holder must not
//! die of a closed pipe while its command runs.

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;

/// The crates whose events `-v` turns up.
const OURS: [&str; 7] = [
    "distlock",
    "distlock_core",
    "distlock_file",
    "distlock_redis",
    "distlock_zookeeper",
    "distlock_mysql",
    "distlock_cli",
];

/// Writes `distlock: {message}` to stderr; a closed or full stderr is ignored.
pub(crate) fn error(message: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "distlock: {message}");
}

/// Sends `tracing` events to stderr: our crates' warnings by default, more with each `-v`;
/// `RUST_LOG`, when set, decides instead.
pub(crate) fn init_tracing(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            error(format_args!("ignoring RUST_LOG ({e})"));
            default_filter(verbose)
        }),
        _ => default_filter(verbose),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        // Its report of a failed write is an `eprintln!`, which panics on a closed stderr.
        .log_internal_errors(false)
        .try_init();
}

fn default_filter(verbose: u8) -> EnvFilter {
    let (others, ours) = match verbose {
        0 => ("error", "warn"),
        1 => ("warn", "info"),
        2 => ("info", "debug"),
        _ => ("debug", "trace"),
    };
    let mut spec = others.to_string();
    for target in OURS {
        spec.push_str(&format!(",{target}={ours}"));
    }
    EnvFilter::new(spec)
}
