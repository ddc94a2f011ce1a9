//! The exit statuses of `distlock`: one table for every subcommand, kept in step with the
//! README's EXIT STATUS section and `distlock run --help`.
//!
//! Codes follow the conventions scripts already know: `sysexits.h` for distlock's own
//! failures (as `flock` uses 75 for a conflict), 126/127 as `env`, `timeout` and shells
//! use them, and 128+N for death by signal N.

use distlock::{ErrorKind, LockError};

/// Bad arguments (clap's code for usage errors too).
pub(crate) const USAGE: u8 = 2;
/// The store could not be reached or failed (connection, server error): EX_UNAVAILABLE.
pub(crate) const UNAVAILABLE: u8 = 69;
/// distlock could not do its own work (signals, processes): EX_OSERR.
pub(crate) const OS_ERROR: u8 = 71;
/// The lock was not acquired within `--wait` (default of `-E/--conflict-exit-code`):
/// EX_TEMPFAIL, "try again later".
pub(crate) const NOT_ACQUIRED: u8 = 75;
/// The lock was lost while the command ran; the command was stopped.
pub(crate) const LOST: u8 = 76;
/// A configuration error: bad URL, unreadable password file, invalid lock name: EX_CONFIG.
pub(crate) const CONFIG: u8 = 78;
/// The command was found but could not be run.
pub(crate) const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
pub(crate) const NOT_FOUND: u8 = 127;

/// The code for a library error that ends the program.
pub(crate) fn for_error(e: &LockError) -> u8 {
    match e.kind() {
        ErrorKind::Config | ErrorKind::InvalidName | ErrorKind::Unsupported => CONFIG,
        ErrorKind::Timeout => NOT_ACQUIRED,
        ErrorKind::Lost | ErrorKind::NotHeld => LOST,
        _ => UNAVAILABLE,
    }
}

/// The shell's code for death by signal `signo`.
pub(crate) fn signalled(signo: i32) -> u8 {
    u8::try_from(128 + signo).unwrap_or(u8::MAX)
}

/// The EXIT STATUS table for `--help`.
pub(crate) const HELP: &str = "\
Exit status:
  N        the command's own exit status (128+N if it died of signal N), also after
           distlock forwarded a signal to it
  2        usage error (bad option, duration or argument)
  69       the lock store could not be reached or failed (connection error)
  71       distlock could not supervise the command (operating-system error)
  75       the lock was not acquired within --wait (change with -E/--conflict-exit-code)
  76       the lock was lost while the command ran; the command was stopped
  78       configuration error (bad URL, password file, lock name)
  126      the command was found but could not be run
  127      the command was not found
  128+N    distlock was stopped by signal N before the command started";
