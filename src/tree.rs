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
    walk(paths).0
}

/// [`expand`], plus the spare files ([`crate::fsutil::Spares`]) that a killed `sign` or
/// `unsign` left in those directories.
pub fn expand_with_leftovers(paths: &[PathBuf]) -> (Vec<Result<PathBuf>>, Vec<PathBuf>) {
    walk(paths)
}

fn walk(paths: &[PathBuf]) -> (Vec<Result<PathBuf>>, Vec<PathBuf>) {
    let (mut out, mut spares) = (Vec::new(), Vec::new());
    for p in paths {
        if !p.is_dir() {
            out.push(Ok(p.clone()));
            continue;
        }
        let mut found = Vec::new();
        for e in walkdir::WalkDir::new(p).into_iter().filter_map(|e| e.ok()) {
            if !e.file_type().is_file() {
                continue;
            }
            if is_module_name(e.path()) {
                found.push(e.into_path());
            } else if crate::fsutil::is_spare(e.path()) {
                spares.push(e.into_path());
            }
        }
        if found.is_empty() {
            out.push(Err(Error::IsDir { path: p.clone() }));
        }
        found.sort();
        out.extend(found.into_iter().map(Ok));
    }
    (out, spares)
}

/// At most `jobs` closures run under [`Gate::cpu`] at once. The pool has four times as
/// many threads, so modules waiting for fsync (they hold no module bytes by then) do
/// not keep the CPUs idle: with twice as many, a P-384 tree left a CPU in iowait for
/// 0.5 s of 3.7 s, with four 0.3 s.
pub struct Gate {
    free: std::sync::Mutex<usize>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn new(n: usize) -> Self {
        Gate {
            free: std::sync::Mutex::new(n),
            cv: std::sync::Condvar::new(),
        }
    }

    pub fn cpu<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut free = self.free.lock().expect("gate lock");
        while *free == 0 {
            free = self.cv.wait(free).expect("gate lock");
        }
        *free -= 1;
        drop(free);
        // Released even if `f` panics.
        struct Release<'a>(&'a Gate);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().expect("gate lock") += 1;
                self.0.cv.notify_one();
            }
        }
        let _release = Release(self);
        f()
    }
}

/// Maps `f` over `items` on `jobs` threads, keeping the order, with progress.
pub fn par_map<T, R, F>(items: &[T], jobs: usize, r: &dyn Reporter, label: &str, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    run(items, jobs, 1, r, label, |i, _| f(i))
}

/// [`par_map`] for work that writes files: `f` does its CPU work inside
/// `gate.cpu(..)` and its waiting on the disk outside, on more threads (see [`Gate`]).
pub fn par_map_writing<T, R, F>(
    items: &[T],
    jobs: usize,
    r: &dyn Reporter,
    label: &str,
    f: F,
) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T, &Gate) -> R + Sync,
{
    run(items, jobs, 4, r, label, f)
}

fn run<T, R, F>(
    items: &[T],
    jobs: usize,
    threads_per_job: usize,
    r: &dyn Reporter,
    label: &str,
    f: F,
) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T, &Gate) -> R + Sync,
{
    use rayon::prelude::*;
    let jobs = jobs.max(1);
    r.start(label, items.len() as u64);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs * threads_per_job)
        .build()
        .expect("thread pool");
    let gate = Gate::new(jobs);
    let out = pool.install(|| {
        items
            .par_iter()
            .with_max_len(1)
            .map(|i| {
                let res = f(i, &gate);
                r.advance(1);
                res
            })
            .collect()
    });
    r.finish();
    out
}

/// One more than the cores: measured to keep both cores of a 2-core machine busy
/// (RSA-4096 tree on tmpfs: -j2 11.2 s, -j3 9.6 s).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 1
}
