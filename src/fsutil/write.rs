//! Atomic writes: a temp file beside the target, fsynced, renamed over it; files that
//! belong together appear together.

use super::*;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces (or creates) `path` with `bytes`. On any failure `path` is untouched
/// and the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    write_atomic_parts(path, &[bytes], mode)
}

/// [`write_atomic`] of the concatenation of `parts`.
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]], mode: Option<u32>) -> Result<()> {
    // New files get 0644 (a module is not secret); replaced ones keep their mode.
    let mut w = AtomicWriter::create(path, mode.unwrap_or(0o644))?;
    for p in parts {
        w.write(p)?;
    }
    w.commit()
}

/// Creates files that belong together (a key and its certificates), each with its
/// mode, never overwriting: all appear, complete, or none does. Each is written and
/// synced before any is named; if one cannot be created, those already created are
/// removed again.
pub fn write_new_all(files: &[(&Path, &[u8], u32)]) -> Result<()> {
    let mut temps = Vec::new();
    for (path, bytes, mode) in files {
        temps.push((*path, synced_temp(path, &[bytes], *mode)?));
    }
    let mut done: Vec<&Path> = Vec::new();
    for (path, tmp) in temps {
        if let Err(e) = tmp.persist_noclobber(path) {
            for p in done {
                let _ = std::fs::remove_file(p);
            }
            return Err(write_err(path, e.error));
        }
        done.push(path);
    }
    Ok(())
}

/// Whether anything at all has the name `path`, a dangling symlink included.
pub fn name_taken(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

pub(super) fn write_err(path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// A hidden temp file beside `path` holding `parts`, with `mode` set before any byte
/// is written (a private key is never readable by others, not even briefly), fsynced.
fn synced_temp(path: &Path, parts: &[&[u8]], mode: u32) -> Result<tempfile::NamedTempFile> {
    let mut w = AtomicWriter::create(path, mode)?;
    for p in parts {
        w.write(p)?;
    }
    w.synced()
}

/// A new version of `path` written in parts to a hidden temp file beside it, then
/// fsynced and renamed over it: a crash leaves the old file or the whole new one,
/// and once [`AtomicWriter::commit`] returns the new one is on disk. Dropped
/// uncommitted, the temp file goes.
pub struct AtomicWriter {
    path: PathBuf,
    // Declared before `tmp`, so dropped (joined) before the file closes.
    writeback: Writeback,
    tmp: tempfile::NamedTempFile,
}

/// The thread of [`AtomicWriter::start_writeback`]: it uses the file's descriptor, so
/// it is joined before the file can close.
#[derive(Default)]
struct Writeback(Option<std::thread::JoinHandle<()>>);

impl Writeback {
    fn join(&mut self) {
        if let Some(t) = self.0.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.join();
    }
}

impl AtomicWriter {
    /// `mode` is set before any byte is written.
    pub fn create(path: &Path, mode: u32) -> Result<AtomicWriter> {
        use std::os::unix::fs::PermissionsExt;
        let err = |e| write_err(path, e);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.as_deref().unwrap_or("kmod")))
            .suffix(".tmp")
            .tempfile_in(parent_dir(path))
            .map_err(err)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(err)?;
        Ok(AtomicWriter {
            path: path.to_path_buf(),
            writeback: Writeback::default(),
            tmp,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.tmp
            .write_all(bytes)
            .map_err(|e| write_err(&self.path, e))
    }

    /// Starts writing what it holds so far to disk, on a thread of its own (submitting
    /// the I/O takes a while too), so that work done meanwhile (signing) hides the
    /// disk's time; the sync in `commit` then waits only for the rest.
    pub fn start_writeback(&mut self) {
        use std::os::fd::AsRawFd;
        let fd = self.tmp.as_file().as_raw_fd();
        // SAFETY: a hint on a descriptor that stays open until the thread is joined
        // (in `synced`, or on drop); failure only loses the head start.
        self.writeback.join();
        self.writeback = Writeback(Some(std::thread::spawn(move || unsafe {
            libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        })));
    }

    fn synced(mut self) -> Result<tempfile::NamedTempFile> {
        self.writeback.join();
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| write_err(&self.path, e))?;
        Ok(self.tmp)
    }

    pub fn commit(self) -> Result<()> {
        let path = self.path.clone();
        self.synced()?
            .persist(&path)
            .map_err(|e| write_err(&path, e.error))?;
        Ok(())
    }
}

/// An exclusive lock on `<base>/.<name>.lock` (made with its directories), held until
/// the file returned is dropped: two processes never make the same cached tree at once.
pub fn lock(base: &Path, name: &str) -> Result<std::fs::File> {
    let werr = |path: &Path, source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(base).map_err(|e| werr(base, e))?;
    let lock_path = base.join(format!(".{name}.lock"));
    let lock = std::fs::File::create(&lock_path).map_err(|e| werr(&lock_path, e))?;
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(werr(&lock_path, std::io::Error::last_os_error()));
    }
    Ok(lock)
}
