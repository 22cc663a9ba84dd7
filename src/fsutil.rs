//! Atomic file writes: temp file in the target's directory, fsync, rename.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Replaces (or creates) `path` with `bytes`. On any failure `path` is untouched
/// and the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    write_atomic_parts(path, &[bytes], mode)
}

/// [`write_atomic`] of the concatenation of `parts`.
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]], mode: Option<u32>) -> Result<()> {
    // New files get 0644 (a module is not secret); replaced ones keep their mode.
    let tmp = synced_temp(path, parts, mode.unwrap_or(0o644))?;
    tmp.persist(path).map_err(|e| write_err(path, e.error))?;
    Ok(())
}

/// Creates `path` with `bytes` and `mode`, failing if it exists (never overwrites),
/// atomically: the file appears complete or not at all.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = synced_temp(path, &[bytes], mode)?;
    tmp.persist_noclobber(path)
        .map_err(|e| write_err(path, e.error))?;
    Ok(())
}

fn write_err(path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// A hidden temp file beside `path` holding `parts`, with `mode` set before any byte
/// is written (a private key is never readable by others, not even briefly), fsynced.
fn synced_temp(path: &Path, parts: &[&[u8]], mode: u32) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let err = |e| write_err(path, e);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.as_deref().unwrap_or("kmod")))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    for p in parts {
        tmp.write_all(p).map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    Ok(tmp)
}
