//! Fenced writes to a file: replace its contents only if the token is not older than the
//! newest one accepted.
//!
//! The newest accepted token lives beside the data in `<file>.fence` (see [`token_path`]),
//! so the data file keeps exactly the bytes you wrote and any reader can read it as usual.
//! A write, serialised with other fenced writers of the same file by an exclusive `flock`
//! on `<file>.fence`:
//! 1. reads the newest token and refuses an older one ([`ErrorKind::Fenced`]);
//! 2. stores the new token in `<file>.fence` and syncs it;
//! 3. writes the data to a temporary file in the same directory, syncs it, and renames it
//!    over the file (readers see the old or the new contents, never a mix).
//!
//! The token is stored first so that a crash between 2 and 3 errs on the safe side: stale
//! writers are already refused, and the current holder may simply write again (an equal
//! token is accepted). `flock` is advisory and local: every writer must go through
//! [`write()`], on one host (or a file system with working `flock`, which many network file
//! systems lack).
//!
//! [`ErrorKind::Fenced`]: crate::ErrorKind::Fenced

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use distlock_core::{LockError, Result};

/// Replaces the contents of `path` with `data` if `token` is not older than the newest
/// token accepted for this file; see the [module docs](self) for the steps and the
/// [`fence`](crate::fence) docs for the rule.
///
/// Errors: [`Fenced`](crate::ErrorKind::Fenced) for an older token (nothing changed),
/// [`Unsupported`](crate::ErrorKind::Unsupported) for `None`,
/// [`Backend`](crate::ErrorKind::Backend) for I/O failures (the source is kept).
///
/// # Cancel safety
/// The work runs on a blocking thread that finishes even if this future is dropped: the
/// write then happens or is refused as if awaited, and the file is never left half-written.
pub async fn write(
    path: impl AsRef<Path>,
    data: impl AsRef<[u8]>,
    token: Option<u64>,
) -> Result<()> {
    let token = super::require(token)?;
    let path = path.as_ref().to_path_buf();
    let data = data.as_ref().to_vec();
    tokio::task::spawn_blocking(move || write_blocking(&path, &data, token))
        .await
        .map_err(|e| LockError::backend(format!("fenced file write did not finish: {e}")))?
}

/// The newest token accepted for `path` (`None` if no fenced write happened yet).
///
/// # Cancel safety
/// Cancel safe: it only reads.
pub async fn newest_token(path: impl AsRef<Path>) -> Result<Option<u64>> {
    let sidecar = token_path(path.as_ref());
    tokio::task::spawn_blocking(move || match fs::read_to_string(&sidecar) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => parse_token(&sidecar, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", &sidecar, e)),
    })
    .await
    .map_err(|e| LockError::backend(format!("reading a fence token did not finish: {e}")))?
}

/// Where the newest accepted token of `path` is kept: `<path>.fence`.
pub fn token_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".fence");
    PathBuf::from(name)
}

/// Deletes the token file of `path` (not the data), when the resource is retired. Only
/// call it when no fenced writer of this file remains: a writer after it starts from no
/// token and accepts any.
///
/// # Cancel safety
/// Cancel safe: the removal happens or not.
pub async fn forget(path: impl AsRef<Path>) -> Result<()> {
    let sidecar = token_path(path.as_ref());
    tokio::task::spawn_blocking(move || match fs::remove_file(&sidecar) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", &sidecar, e)),
    })
    .await
    .map_err(|e| LockError::backend(format!("removing a fence token did not finish: {e}")))?
}

fn write_blocking(path: &Path, data: &[u8], token: u64) -> Result<()> {
    let sidecar_path = token_path(path);
    let mut sidecar = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&sidecar_path)
        .map_err(|e| io_error("open", &sidecar_path, e))?;
    // Held until `sidecar` is dropped at the end of this function.
    sidecar
        .lock()
        .map_err(|e| io_error("lock", &sidecar_path, e))?;
    let mut text = String::new();
    sidecar
        .read_to_string(&mut text)
        .map_err(|e| io_error("read", &sidecar_path, e))?;
    let newest = if text.trim().is_empty() {
        0
    } else {
        parse_token(&sidecar_path, &text)?
    };
    super::check(&path.display().to_string(), newest, token)?;

    // Fixed width, rewritten in place: the file is never replaced, so the flock on it
    // keeps serialising writers, and a shorter token never leaves digits behind.
    sidecar
        .seek(SeekFrom::Start(0))
        .and_then(|_| sidecar.write_all(format!("{token:020}\n").as_bytes()))
        .and_then(|()| sidecar.sync_data())
        .map_err(|e| io_error("write", &sidecar_path, e))?;

    replace(path, data)
}

/// Writes `data` to a temporary sibling and renames it over `path`.
fn replace(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| LockError::config(format!("{} names no file", path.display())))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(
        ".{}.tmp",
        distlock_core::backend::new_owner_token()
    ));
    let temp = dir.join(temp_name);
    let written = File::create(&temp)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error("replace", path, e));
    }
    // Makes the rename itself durable; best effort (some file systems refuse to sync a
    // directory), the data is already safe in either name.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn parse_token(path: &Path, text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| {
        LockError::backend(format!(
            "{} does not hold a fencing token (corrupted or not written by distlock)",
            path.display()
        ))
    })
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> LockError {
    LockError::backend(format!("fence: {what} {}", path.display())).with_source(e)
}
