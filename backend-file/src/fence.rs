//! The fencing counter, kept in the first 8 bytes of the lock file itself and bumped while
//! the lock is held (so there is one writer at a time and no second file to open).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads the counter (0 for a new, empty file), writes it back incremented, returns the new
/// value. A write of 8 bytes at offset 0 is not torn by a crashed process.
pub(crate) fn bump(file: &File) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    let read = file.read_at(&mut bytes, 0)?;
    let current = if read == 8 {
        u64::from_le_bytes(bytes)
    } else {
        0
    };
    let next = current + 1;
    file.write_all_at(&next.to_le_bytes(), 0)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn counts_up_from_an_empty_file() {
        let path = std::env::temp_dir().join(format!("distlock-fence-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        assert_eq!(super::bump(&file).unwrap(), 1);
        assert_eq!(super::bump(&file).unwrap(), 2);
        let _ = std::fs::remove_file(path);
    }
}
