//! Closed output pipes: `distlock demo | head -1` must end quietly, not panic.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with EPIPE and `println!`
//! panics ("failed printing to stdout: Broken pipe"). `bench`, which keeps no state worth
//! cleaning up, gets the default disposition back, so it ends as `cat` or `seq` do: killed
//! by SIGPIPE, which a shell reports as status 141 and does not print. `demo` keeps SIGPIPE
//! ignored and treats EPIPE as a quiet end (as ripgrep does), so it still removes the stock
//! and scratch files it made. `distlock run` keeps SIGPIPE ignored:
//! a lock holder must never die of a closed pipe while its command runs, and it writes
//! its few messages with [`crate::diag::error`], which ignores write errors.

/// Restores SIGPIPE's default action (terminate) for this process.
#[allow(unsafe_code)]
pub(crate) fn die_quietly_on_closed_stdout() {
    // SAFETY: signal(2) with SIG_DFL installs no handler code and touches no memory of
    // ours; it is called before the runtime starts any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
