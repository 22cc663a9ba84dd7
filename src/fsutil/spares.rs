//! Replacing many files in a row without an inode per file: spare files exchanged
//! into place, guarded against other writers.

use super::*;
use crate::error::{Error, Result};
use std::path::Path;

/// What a file was when it was read: the same inode, size and modification time. A
/// writer that finds something else at the name knows another process changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl FileId {
    pub fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    fn same_inode(&self, m: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.dev == m.dev() && self.ino == m.ino()
    }
}

fn changed(path: &Path, left: Option<std::path::PathBuf>) -> Error {
    Error::Changed {
        path: path.to_path_buf(),
        left,
    }
}

/// Replaces many existing files in a row without allocating or freeing an inode per
/// file: the new contents go into a spare file, the spare and the target swap names
/// (`renameat2(RENAME_EXCHANGE)`, atomic like a rename), and the target's old inode
/// becomes the next spare, overwritten in place. On ext4 without a journal each new
/// inode scans past every recently freed one (`recently_deleted()`): a quarter of the
/// time of signing a 4230-module tree went there.
///
/// Spares are hidden `.cargo-kmod-*.tmp` files beside the first file replaced on each
/// mount, each held under `flock` so that another run's cleanup leaves them alone; they
/// are removed on drop. Anything unusual (file missing, hard links, other owner,
/// extended attributes) takes the plain temp-file-and-rename path.
///
/// Other processes may write the same files meanwhile (another `sign`, a package
/// manager's rename). A file's new bytes go in only if the name still holds the inode
/// that was read, unchanged ([`FileId`]), and after each exchange the old inode must be
/// the one now at the spare's name; otherwise the exchange is undone, the file is left
/// as the other process made it, the call fails with [`Error::Changed`], and no inode is
/// reused for the rest of the run.
#[derive(Default)]
pub struct Spares {
    pool: std::sync::Mutex<Vec<Spare>>,
    /// Set once something changed under us (or exchange is not supported): from then
    /// on every file gets a fresh temp file.
    no_reuse: std::sync::atomic::AtomicBool,
    /// Set when the filesystem cannot exchange names: a checked rename instead.
    no_exchange: std::sync::atomic::AtomicBool,
}

struct Spare {
    path: std::path::PathBuf,
    file: std::fs::File,
    /// Mount id: an exchange (a rename) never crosses mounts.
    mnt: u64,
    /// Size, permission bits and owner (uid, gid) it has now.
    len: u64,
    mode: u32,
    owner: (u32, u32),
}

/// New contents written into a spare: [`Staged::finish`] makes them durable and puts
/// them in place. Dropped unfinished, the target stays as it was.
#[must_use = "the new contents are in place only after finish()"]
pub struct Staged<'a> {
    spares: &'a Spares,
    path: std::path::PathBuf,
    pending: Option<Pending>,
}

enum Pending {
    /// In a pooled spare; `old` is the file opened at the name in stage(), as `id`,
    /// which becomes the next spare.
    Reuse {
        spare: Spare,
        old: std::fs::File,
        st: Box<libc::statx>,
        id: FileId,
    },
    /// In a new temp file beside the name, which must still hold `read` (if given).
    Fresh { tmp: Spare, read: Option<FileId> },
}

impl Spares {
    /// Like [`write_atomic_parts`] with `Some(mode)`, for a file that usually exists, in
    /// two halves: this one writes `parts` into a spare (the CPU part), so the caller can
    /// free them before [`Staged::finish`] waits for the disk and puts the file in place.
    /// With `read`, the name must still hold the file read then (through a symlink, its
    /// target), or nothing is replaced and the error is [`Error::Changed`].
    pub fn stage(
        &self,
        path: &Path,
        parts: &[&[u8]],
        mode: u32,
        read: Option<FileId>,
    ) -> Result<Staged<'_>> {
        use std::os::unix::fs::OpenOptionsExt;
        let staged = |pending| Staged {
            spares: self,
            path: path.to_path_buf(),
            pending: Some(pending),
        };
        // A new inode: a named symlink is replaced, its target left alone.
        let fresh = || {
            use std::os::unix::fs::MetadataExt;
            let owner = std::fs::metadata(path).map_or_else(|_| our_ids(), |m| (m.uid(), m.gid()));
            let mut tmp = Spare::create(path, 0)?;
            match tmp.fill(parts, mode, owner) {
                Ok(()) => Ok(staged(Pending::Fresh { tmp, read })),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp.path);
                    Err(write_err(path, e))
                }
            }
        };
        if self.no_reuse.load(std::sync::atomic::Ordering::Relaxed) {
            return fresh();
        }
        // Opened for writing: after the exchange it is the next spare. Not through a
        // symlink: the exchange would move the link, and its target (still named
        // elsewhere) would be overwritten as a spare.
        let Ok(old) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        else {
            return fresh();
        };
        let st = statx(&old).map_err(|e| write_err(path, e))?;
        if u32::from(st.stx_mode) & libc::S_IFMT != libc::S_IFREG
            || st.stx_mask & libc::STATX_MNT_ID == 0
        {
            return fresh();
        }
        let id = FileId::of(&old.metadata().map_err(|e| write_err(path, e))?);
        if read.is_some_and(|r| r != id) {
            return Err(changed(path, None));
        }
        let len = parts.iter().map(|p| p.len() as u64).sum();
        let mut spare = match self.take(st.stx_mnt_id, len) {
            Some(s) => s,
            None => Spare::create(path, st.stx_mnt_id)?,
        };
        if let Err(e) = spare.fill(parts, mode, (st.stx_uid, st.stx_gid)) {
            self.put(spare);
            return Err(write_err(path, e));
        }
        Ok(staged(Pending::Reuse {
            spare,
            old,
            st: Box::new(st),
            id,
        }))
    }

    /// The spare on mount `mnt` closest in size to `len`: the fewest blocks to free or add.
    fn take(&self, mnt: u64, len: u64) -> Option<Spare> {
        let mut pool = self.pool.lock().expect("spares lock");
        let (i, _) = pool
            .iter()
            .enumerate()
            .filter(|(_, s)| s.mnt == mnt)
            .min_by_key(|(_, s)| s.len.abs_diff(len))?;
        Some(pool.swap_remove(i))
    }

    fn put(&self, s: Spare) {
        self.pool.lock().expect("spares lock").push(s);
    }

    fn stop_reuse(&self) {
        self.no_reuse
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Puts `new` (complete and synced) at `path` in place of the file `id`. Ok(false)
    /// when it could not exchange at all (`new` is unchanged and still at its name).
    fn swap_in(&self, new: &Spare, path: &Path, id: FileId, link_ok: bool) -> Result<bool> {
        if self.no_exchange.load(std::sync::atomic::Ordering::Relaxed) {
            // Checked, then renamed: a small window remains on such filesystems.
            if !holds(path, id, true) {
                return Err(changed(path, None));
            }
            std::fs::rename(&new.path, path).map_err(|e| write_err(path, e))?;
            return Ok(true);
        }
        match exchange(&new.path, path) {
            Ok(()) if holds(&new.path, id, link_ok) => Ok(true),
            Ok(()) => {
                let displaced = std::fs::symlink_metadata(&new.path).ok();
                Err(self.undo(new, path, displaced))
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // This filesystem cannot exchange: from now on, checked renames.
                self.no_exchange
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                self.stop_reuse();
                Ok(false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(changed(path, None)),
            Err(e) => Err(write_err(path, e)),
        }
    }

    /// Another process changed `path` before the exchange, which has put our new
    /// bytes there and its file at our spare's name: swap back, so its file keeps its
    /// name, and reuse no inode from now on.
    ///
    /// If it replaced the name once more in between (our new bytes at `path` went with
    /// that), the swap back brings its older file (`displaced`) to `path`: swapped
    /// again, its newest file is at `path` and the older one, which it had itself
    /// replaced, is removed, as its last rename would have done.
    fn undo(&self, new: &Spare, path: &Path, displaced: Option<std::fs::Metadata>) -> Error {
        self.stop_reuse();
        let ours = |p: &Path| {
            let (Ok(at), Ok(f)) = (std::fs::symlink_metadata(p), new.file.metadata()) else {
                return false;
            };
            FileId::of(&f).same_inode(&at)
        };
        if exchange(&new.path, path).is_err() {
            return changed(path, Some(new.path.clone()));
        }
        if ours(&new.path) {
            let _ = std::fs::remove_file(&new.path);
            return changed(path, None);
        }
        let is_displaced = |p: &Path| {
            let (Some(d), Ok(at)) = (&displaced, std::fs::symlink_metadata(p)) else {
                return false;
            };
            FileId::of(d).same_inode(&at)
        };
        if is_displaced(path) && exchange(&new.path, path).is_ok() && is_displaced(&new.path) {
            let _ = std::fs::remove_file(&new.path);
            return changed(path, None);
        }
        // Changed yet again: what sits at the spare's name is not ours to remove.
        changed(path, Some(new.path.clone()))
    }
}

/// Whether `at` holds the file `id`, unchanged (through a symlink only if `link_ok`).
fn holds(at: &Path, id: FileId, link_ok: bool) -> bool {
    let Ok(m) = std::fs::symlink_metadata(at) else {
        return false;
    };
    if !m.file_type().is_symlink() {
        return FileId::of(&m) == id;
    }
    link_ok && std::fs::metadata(at).is_ok_and(|m| FileId::of(&m) == id)
}

impl Staged<'_> {
    /// Syncs the new contents, then puts them in place; a reusable old inode becomes
    /// a spare.
    pub fn finish(mut self) -> Result<()> {
        let path = self.path.clone();
        match self.pending.take() {
            None => Ok(()),
            Some(Pending::Fresh { tmp, read }) => {
                let done = tmp
                    .file
                    .sync_all()
                    .map_err(|e| write_err(&path, e))
                    .and_then(|()| match read {
                        Some(id) => match self.spares.swap_in(&tmp, &path, id, true)? {
                            true => Ok(()),
                            false => self.spares.swap_in(&tmp, &path, id, true).map(drop),
                        },
                        None => std::fs::rename(&tmp.path, &path).map_err(|e| write_err(&path, e)),
                    });
                // Holds the old file (or link) now, or our unused bytes on failure
                // (unless undo() left another process's file there: never removed).
                if !matches!(&done, Err(Error::Changed { left: Some(_), .. })) {
                    let _ = std::fs::remove_file(&tmp.path);
                }
                done
            }
            Some(Pending::Reuse { spare, old, st, id }) => self.finish_reuse(spare, old, st, id),
        }
    }

    fn finish_reuse(
        &self,
        spare: Spare,
        old: std::fs::File,
        st: Box<libc::statx>,
        id: FileId,
    ) -> Result<()> {
        let path = &self.path;
        if let Err(e) = spare.file.sync_all() {
            self.spares.put(spare);
            return Err(write_err(path, e));
        }
        // A write lease is granted only while no other process has the file open, and
        // is broken (seen below) when one opens it before the exchange. Such a reader
        // keeps the old inode, so it must not become a spare and be overwritten.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&old);
        // SAFETY: fcntl on a descriptor we own; a break's SIGIO is ignored (checked).
        let leased =
            sigio_ignored() && unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_WRLCK) } == 0;
        // Not through a symlink: the exchanged name must hold the very inode opened.
        let swapped = self.spares.swap_in(&spare, path, id, false);
        let unread = leased && unsafe { libc::fcntl(fd, libc::F_GETLEASE) } == libc::F_WRLCK;
        if leased {
            unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        }
        match swapped {
            Ok(true) => {}
            // Cannot exchange here: a checked rename of the complete spare.
            Ok(false) => {
                let r = self.spares.swap_in(&spare, path, id, false).map(drop);
                if r.is_err() {
                    let _ = std::fs::remove_file(&spare.path);
                }
                return r;
            }
            Err(e @ Error::Changed { left: Some(_), .. }) => return Err(e),
            Err(e) => {
                let _ = std::fs::remove_file(&spare.path);
                return Err(e);
            }
        }
        // The old inode now sits at the spare's name, unchanged since it was read. A
        // reader or another hard link would see whatever is written into it next, and
        // a spare must carry nothing of its own (owner, ACL, label) into the file it
        // becomes.
        let reuse = unread
            && old.metadata().is_ok_and(|m| FileId::of(&m) == id)
            && st.stx_nlink == 1
            && (st.stx_uid, st.stx_gid) == our_ids()
            && no_xattrs(&old)
            && lock(&old);
        if reuse {
            self.spares.put(Spare {
                path: spare.path,
                file: old,
                mnt: spare.mnt,
                len: st.stx_size,
                mode: u32::from(st.stx_mode) & 0o7777,
                owner: our_ids(),
            });
        } else {
            let _ = std::fs::remove_file(&spare.path);
        }
        Ok(())
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        match self.pending.take() {
            Some(Pending::Reuse { spare, .. }) => self.spares.put(spare),
            Some(Pending::Fresh { tmp, .. }) => {
                let _ = std::fs::remove_file(&tmp.path);
            }
            None => {}
        }
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        for s in self.pool.get_mut().expect("spares lock").drain(..) {
            let _ = std::fs::remove_file(&s.path);
        }
    }
}

/// Whether `path` is named like a spare file (a killed run leaves some behind).
pub fn is_spare(path: &Path) -> bool {
    let n = path.file_name().unwrap_or_default().to_string_lossy();
    n.starts_with(SPARE_PREFIX) && n.ends_with(SPARE_SUFFIX)
}

/// Removes a spare file that a killed run left, unless a running one holds it (its
/// `flock`). Whether it was removed.
pub fn remove_leftover_spare(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let same = |m: std::fs::Metadata| {
        f.metadata()
            .is_ok_and(|fm| FileId::of(&fm).same_inode(&m) && fm.is_file())
    };
    lock(&f)
        && std::fs::symlink_metadata(path).is_ok_and(same)
        && std::fs::remove_file(path).is_ok()
}

/// An exclusive `flock` on `f`, without waiting; whether it was taken.
fn lock(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

const SPARE_PREFIX: &str = ".cargo-kmod-";
const SPARE_SUFFIX: &str = ".tmp";

impl Spare {
    fn create(beside: &Path, mnt: u64) -> Result<Spare> {
        let (file, path) = tempfile::Builder::new()
            .prefix(SPARE_PREFIX)
            .suffix(SPARE_SUFFIX)
            .tempfile_in(parent_dir(beside))
            .and_then(|t| t.keep().map_err(|e| e.error))
            .map_err(|e| write_err(beside, e))?;
        // Created just now under a random name: nobody else holds it.
        lock(&file);
        Ok(Spare {
            path,
            file,
            mnt,
            len: 0,
            mode: 0o600,
            owner: our_ids(),
        })
    }

    /// Owner and mode first (a replaced file keeps both, as far as we may set them),
    /// then the bytes over the old ones, then the length (not synced).
    fn fill(&mut self, parts: &[&[u8]], mode: u32, owner: (u32, u32)) -> std::io::Result<()> {
        use std::os::unix::fs::{FileExt, PermissionsExt};
        if self.owner != owner
            && std::os::unix::fs::fchown(&self.file, Some(owner.0), Some(owner.1)).is_ok()
        {
            // chown clears set-id bits: set the mode again.
            (self.owner, self.mode) = (owner, u32::MAX);
        }
        if self.mode != mode {
            self.file
                .set_permissions(std::fs::Permissions::from_mode(mode))?;
            self.mode = mode;
        }
        let old_len = std::mem::replace(&mut self.len, u64::MAX); // unknown until done
        let mut at = 0u64;
        for p in parts {
            self.file.write_all_at(p, at)?;
            at += p.len() as u64;
        }
        if at < old_len {
            self.file.set_len(at)?;
        }
        self.len = at;
        Ok(())
    }
}

fn our_ids() -> (u32, u32) {
    // SAFETY: no arguments, cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

fn statx(f: &std::fs::File) -> std::io::Result<libc::statx> {
    use std::os::fd::AsRawFd;
    // SAFETY: statx fills the zeroed plain-data struct for an open descriptor.
    unsafe {
        let mut st: libc::statx = std::mem::zeroed();
        let r = libc::statx(
            f.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_BASIC_STATS | libc::STATX_MNT_ID,
            &mut st,
        );
        if r == 0 {
            Ok(st)
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// Whether SIGIO is ignored: a lease break sends it to the lease holder, and its
/// default action ends the process. The binary ignores it; an embedder that does not
/// gets no inode reuse rather than a dead process.
fn sigio_ignored() -> bool {
    // SAFETY: queries the disposition only (null new action).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGIO, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Lets [`Spares`] reuse inodes (see [`sigio_ignored`]); the binary calls it at start.
pub fn ignore_sigio() {
    // SAFETY: sets a signal disposition; no handler code runs.
    unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
}

fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn no_xattrs(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a size query (null buffer, length 0) on an open descriptor.
    unsafe { libc::flistxattr(f.as_raw_fd(), std::ptr::null_mut(), 0) == 0 }
}

pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn replace(spares: &Spares, path: &Path, parts: &[&[u8]], mode: u32) -> Result<()> {
        spares.stage(path, parts, mode, None)?.finish()
    }

    fn tmp_names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn spares_replace_across_directories_and_spare_no_other_name() {
        ignore_sigio();
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("x/a.ko"), d.path().join("y/b.ko"));
        for (p, body) in [(&a, "old a, the longer one"), (&b, "old b")] {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        // A second name for b: it must keep b's old bytes, as after a plain rename.
        let b_link = d.path().join("y/b-link");
        std::fs::hard_link(&b, &b_link).unwrap();
        let c = d.path().join("y/c.ko");
        std::fs::write(&c, "old c").unwrap();
        {
            let spares = Spares::default();
            replace(&spares, &a, &[b"new ", b"a"], 0o600).unwrap();
            replace(&spares, &b, &[b"new b"], 0o644).unwrap();
            replace(&spares, &c, &[b"new c, longer than the spare"], 0o644).unwrap();
            assert_eq!(std::fs::read(&a).unwrap(), b"new a");
            let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            assert_eq!(std::fs::read(&b).unwrap(), b"new b");
            assert_eq!(std::fs::read(&c).unwrap(), b"new c, longer than the spare");
            assert_eq!(std::fs::read(&b_link).unwrap(), b"old b");
            assert_eq!(tmp_names(d.path()).len(), 1, "one spare in use");
        }
        assert!(tmp_names(d.path()).is_empty(), "spares removed on drop");
    }

    #[test]
    fn a_file_open_elsewhere_keeps_its_old_bytes_for_its_reader() {
        ignore_sigio();
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.ko"), d.path().join("b.ko"));
        std::fs::write(&a, "old a").unwrap();
        std::fs::write(&b, "old b").unwrap();
        // Another process reading a (an open in a child holds it for us).
        let mut reader = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3<\"$0\"; read x; cat <&3")
            .arg(&a)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let spares = Spares::default();
        replace(&spares, &a, &[b"new a"], 0o644).unwrap();
        replace(&spares, &b, &[b"new b, a longer one"], 0o644).unwrap();
        drop(reader.stdin.take()); // lets it read on
        let out = reader.wait_with_output().unwrap();
        assert_eq!(
            out.stdout, b"old a",
            "the reader's file was reused as a spare"
        );
        assert_eq!(std::fs::read(&a).unwrap(), b"new a");
        assert_eq!(std::fs::read(&b).unwrap(), b"new b, a longer one");
    }

    #[test]
    fn a_symlinked_file_is_replaced_and_its_target_left_alone() {
        ignore_sigio();
        let d = tempfile::tempdir().unwrap();
        let (target, link, other) = (
            d.path().join("real.ko"),
            d.path().join("link.ko"),
            d.path().join("other.ko"),
        );
        std::fs::write(&target, "real").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::fs::write(&other, "other").unwrap();
        let spares = Spares::default();
        replace(&spares, &link, &[b"new link"], 0o644).unwrap();
        replace(&spares, &other, &[b"new other"], 0o644).unwrap();
        // As after a plain rename: the link is now a file, the target is untouched
        // (it was never taken as a spare and overwritten).
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&link).unwrap(), b"new link");
        assert_eq!(std::fs::read(&target).unwrap(), b"real");
        assert_eq!(std::fs::read(&other).unwrap(), b"new other");
    }

    /// What `sign` does: read (and remember what was read), then stage, then finish.
    fn read_then_stage<'s>(spares: &'s Spares, p: &Path, new: &[u8]) -> Result<Staged<'s>> {
        let read = FileId::of(&std::fs::metadata(p).unwrap());
        spares.stage(p, &[new], 0o644, Some(read))
    }

    #[test]
    fn a_file_renamed_over_the_name_before_the_exchange_keeps_its_name() {
        ignore_sigio();
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            d.path().join("a.ko"),
            d.path().join("b.ko"),
            d.path().join("c.ko"),
        );
        for p in [&a, &b, &c] {
            std::fs::write(p, format!("old {}", p.display())).unwrap();
        }
        let spares = Spares::default();
        replace(&spares, &a, &[b"new a"], 0o644).unwrap(); // a spare now exists
        let staged = read_then_stage(&spares, &b, b"new b").unwrap();
        // A package manager puts another b in place meanwhile.
        let pm = d.path().join("pm.tmp");
        std::fs::write(&pm, "b from the package manager").unwrap();
        std::fs::rename(&pm, &b).unwrap();
        let e = staged.finish().unwrap_err();
        assert!(matches!(e, Error::Changed { left: None, .. }), "{e}");
        assert_eq!(std::fs::read(&b).unwrap(), b"b from the package manager");
        // Nothing reused from now on; c gets its own bytes, a keeps its own.
        replace(&spares, &c, &[b"new c"], 0o644).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), b"new c");
        assert_eq!(std::fs::read(&a).unwrap(), b"new a");
        drop(spares);
        assert!(tmp_names(d.path()).is_empty());
    }

    #[test]
    fn a_file_changed_between_read_and_stage_is_not_written() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.ko");
        std::fs::write(&a, "old a").unwrap();
        let read = FileId::of(&std::fs::metadata(&a).unwrap());
        let pm = d.path().join("pm.tmp");
        std::fs::write(&pm, "other a").unwrap();
        std::fs::rename(&pm, &a).unwrap();
        let spares = Spares::default();
        for _ in 0..2 {
            // Once through the reuse path (refused in stage), once through the fresh
            // one (refused in finish).
            let e = spares
                .stage(&a, &[b"new a"], 0o644, Some(read))
                .and_then(|s| s.finish())
                .unwrap_err();
            assert!(matches!(e, Error::Changed { .. }), "{e}");
            spares.stop_reuse();
        }
        assert_eq!(std::fs::read(&a).unwrap(), b"other a");
    }

    #[test]
    fn two_writers_of_one_file_leave_one_result_and_no_crossed_inodes() {
        ignore_sigio();
        let d = tempfile::tempdir().unwrap();
        let names: Vec<_> = (0..4).map(|i| d.path().join(format!("m{i}.ko"))).collect();
        for p in &names {
            std::fs::write(p, format!("orig {}", p.display())).unwrap();
        }
        let (one, two) = (Spares::default(), Spares::default());
        // Both read and stage m0; one finishes first, then the other.
        let s1 = read_then_stage(&one, &names[0], b"one m0").unwrap();
        let s2 = read_then_stage(&two, &names[0], b"two m0").unwrap();
        s1.finish().unwrap();
        let e = s2.finish().unwrap_err();
        assert!(matches!(e, Error::Changed { left: None, .. }), "{e}");
        assert_eq!(std::fs::read(&names[0]).unwrap(), b"one m0");
        // Both go on with the other files; each ends with exactly its writer's bytes.
        for (i, p) in names.iter().enumerate().skip(1) {
            let (w, tag) = if i % 2 == 0 {
                (&one, "one")
            } else {
                (&two, "two")
            };
            read_then_stage(w, p, format!("{tag} m{i}").as_bytes())
                .unwrap()
                .finish()
                .unwrap();
            assert_eq!(std::fs::read(p).unwrap(), format!("{tag} m{i}").as_bytes());
        }
        assert_eq!(std::fs::read(&names[0]).unwrap(), b"one m0");
    }

    #[test]
    fn a_live_spare_is_not_removed_as_a_leftover_and_a_dead_one_is() {
        ignore_sigio();
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.ko"), d.path().join("b.ko"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let spares = Spares::default();
        replace(&spares, &a, &[b"new a"], 0o644).unwrap();
        let live: Vec<_> = tmp_names(d.path());
        assert_eq!(live.len(), 1);
        let spare = d.path().join(&live[0]);
        assert!(is_spare(&spare));
        assert!(!remove_leftover_spare(&spare), "a running writer's spare");
        replace(&spares, &b, &[b"new b"], 0o644).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"new b");
        // What a killed run leaves: the name, and no lock on it.
        let dead = d.path().join(".cargo-kmod-dead.tmp");
        std::fs::write(&dead, "old bytes").unwrap();
        assert!(remove_leftover_spare(&dead));
        assert!(!dead.exists());
    }

    #[test]
    fn files_written_together_appear_together_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        // The last name is taken once the first two are written: none may stay.
        std::os::unix::fs::symlink("/nonexistent", &c).unwrap();
        let e = write_new_all(&[
            (&a, b"key", 0o600),
            (&b, b"crt", 0o644),
            (&c, b"der", 0o644),
        ]);
        assert!(matches!(e, Err(Error::Write { .. })));
        assert!(!name_taken(&a) && !name_taken(&b), "a partial set stayed");
        assert!(tmp_names(d.path()).is_empty());
        std::fs::remove_file(&c).unwrap();
        write_new_all(&[
            (&a, b"key", 0o600),
            (&b, b"crt", 0o644),
            (&c, b"der", 0o644),
        ])
        .unwrap();
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!((std::fs::read(&c).unwrap(), mode), (b"der".to_vec(), 0o600));
    }

    #[test]
    fn spares_create_a_missing_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.ko");
        replace(&Spares::default(), &p, &[b"x"], 0o644).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        assert!(tmp_names(d.path()).is_empty());
    }
}
