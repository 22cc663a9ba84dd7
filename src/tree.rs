//! Many modules at once: expand directories, and work through them in parallel.

use crate::error::{Error, Result};
use crate::report::Reporter;
use std::path::{Path, PathBuf};

pub const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

pub fn is_module_name(p: &Path) -> bool {
    let n = p.file_name().unwrap_or_default().to_string_lossy();
    !n.starts_with('.') && MODULE_SUFFIXES.iter().any(|s| n.ends_with(s))
}

/// Files stay as given (so a bad one gets its own error); directories are walked for
/// module files, in sorted order. A directory without modules is an error.
pub fn expand(paths: &[PathBuf]) -> Vec<Result<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(Ok(p.clone()));
            continue;
        }
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(p)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file() && is_module_name(e.path()))
            .map(|e| e.into_path())
            .collect();
        if found.is_empty() {
            out.push(Err(Error::IsDir { path: p.clone() }));
        }
        found.sort();
        out.extend(found.into_iter().map(Ok));
    }
    out
}

/// Maps `f` over `items` on `jobs` threads, keeping the order, with progress.
pub fn par_map<T, R, F>(items: &[T], jobs: usize, r: &dyn Reporter, label: &str, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    use rayon::prelude::*;
    r.start(label, items.len() as u64);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .expect("thread pool");
    let out = pool.install(|| {
        items
            .par_iter()
            .map(|i| {
                let res = f(i);
                r.advance(1);
                res
            })
            .collect()
    });
    r.finish();
    out
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
