//! The lock URL every subcommand takes: `--url`, else `DISTLOCK_URL`, else lock files in the
//! temp directory; the password from `DISTLOCK_PASSWORD` / `DISTLOCK_PASSWORD_FILE`.

/// The lock URL used when none is given: lock files in the system's temp directory, so the
/// demo needs no server.
pub(crate) fn default_url() -> String {
    format!("file://{}", std::env::temp_dir().join("distlock").display())
}

/// Connects to `url` with the password the environment gives (see [`distlock::env`]).
///
/// # Cancel safety
/// Cancel safe: a dropped connect holds no lock.
pub(crate) async fn connect(url: &str) -> distlock::Result<Box<dyn distlock::DistributedLock>> {
    distlock::connect(&distlock::url_with_password_from_env(url)?).await
}

/// The environment variables, for `--help`.
pub(crate) const ENV_HELP: &str = "\
Environment:
  DISTLOCK_URL            lock URL used when --url is not given
  DISTLOCK_PASSWORD       the store's password (replaces the URL's; keeps it out of ps)
  DISTLOCK_PASSWORD_FILE  a file holding that password
  RUST_LOG                tracing filter for diagnostics on stderr (e.g. distlock=debug)";
