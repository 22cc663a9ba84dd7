//! Bounded reads: a FIFO or device is refused without blocking, a file beyond its
//! bound is refused without being read whole.

use crate::error::{Error, Result};
use std::path::Path;

/// Opens `path` for reading if it is a regular file (through symlinks). A FIFO or
/// device is refused without blocking on it: the open does not wait (`O_NONBLOCK`),
/// except for the moment another process holds a lease on a regular file.
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let open = |flags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
    };
    let file = match open(libc::O_NONBLOCK) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open(0),
        r => r,
    }
    .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(Error::IsDir {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_file() {
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// A whole small file for callers that name their own error (a key, a certificate,
/// a PIN file): a FIFO or device is refused without blocking, and more than `max`
/// bytes are never read. The error says why, without the path.
pub fn read_small(path: &Path, max: u64) -> std::result::Result<Vec<u8>, String> {
    match read_bounded(path, max) {
        Ok(v) => Ok(v),
        Err(Error::Read { source, .. }) => Err(source.to_string()),
        Err(Error::IsDir { .. }) => Err("is a directory".into()),
        Err(e @ Error::NotRegular { .. }) => Err(e.reason()),
        Err(e) => Err(e.to_string()),
    }
}

/// A whole small file (a `.config`, a list), refused beyond `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    open_regular(path)?
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > max {
        return Err(Error::Read {
            path: path.to_path_buf(),
            source: std::io::Error::other(if max >= 1 << 20 {
                format!("larger than {} MiB", max >> 20)
            } else {
                format!("larger than {} KiB", max >> 10)
            }),
        });
    }
    Ok(buf)
}

/// The first `n` bytes of a file (fewer if it is shorter).
pub fn read_head(path: &Path, n: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    open_regular(path)?
        .take(n)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(buf)
}
