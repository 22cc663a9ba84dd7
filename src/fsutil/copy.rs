//! A project directory copied where it is built, never built in place.

use crate::error::{Error, Result};
use std::path::Path;

/// Makes `dst` a copy of `src` (files with their permissions, directories, symbolic
/// links as links), leaving out `skip` (the project's target directory), `.git`, and
/// `dst` itself when it lies inside `src`.
/// Files whose bytes are already the same are left alone, timestamps too, so Kbuild
/// rebuilds only what changed; what `dst` has beyond `src` (Kbuild's outputs) stays.
pub fn sync_tree(src: &Path, dst: &Path, skip: &[&Path]) -> Result<()> {
    let werr = |path: &Path, source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let rerr = |path: &Path, source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dst).map_err(|e| werr(dst, e))?;
    let skip: Vec<std::path::PathBuf> = skip
        .iter()
        .copied()
        .chain([dst])
        .filter_map(|s| std::fs::canonicalize(s).ok())
        .collect();
    let skipped = |p: &Path| {
        p.file_name().is_some_and(|n| n == ".git")
            || std::fs::canonicalize(p).is_ok_and(|c| skip.contains(&c))
    };
    let mut walk = walkdir::WalkDir::new(src).min_depth(1).into_iter();
    while let Some(e) = walk.next() {
        let e = e.map_err(|e| {
            let path = e.path().unwrap_or(src).to_path_buf();
            rerr(&path, e.into())
        })?;
        if e.file_type().is_dir() && skipped(e.path()) {
            walk.skip_current_dir();
            continue;
        }
        let to = dst.join(e.path().strip_prefix(src).expect("below src"));
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).map_err(|err| werr(&to, err))?;
        } else if e.file_type().is_symlink() {
            let link = std::fs::read_link(e.path()).map_err(|err| rerr(e.path(), err))?;
            if std::fs::read_link(&to).ok().as_ref() != Some(&link) {
                let _ = std::fs::remove_file(&to);
                std::os::unix::fs::symlink(&link, &to).map_err(|err| werr(&to, err))?;
            }
        } else if e.file_type().is_file() {
            let same = std::fs::metadata(&to).is_ok_and(|m| {
                m.len() == e.metadata().map_or(u64::MAX, |s| s.len())
                    && std::fs::read(&to).ok() == std::fs::read(e.path()).ok()
            });
            if !same {
                let _ = std::fs::remove_file(&to);
                std::fs::copy(e.path(), &to).map_err(|err| werr(&to, err))?;
            }
        }
    }
    Ok(())
}
