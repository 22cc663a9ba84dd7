//! Many modules at once: expand directories, and work through them in parallel.

use crate::error::{Error, Result};
use crate::report::Reporter;
use std::path::{Path, PathBuf};

pub const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

pub fn is_module_name(p: &Path) -> bool {
    let n = p.file_name().unwrap_or_default().to_string_lossy();
    !n.starts_with('.') && MODULE_SUFFIXES.iter().any(|s| n.ends_with(s))
}

/// What [`walk`] found under the paths given.
#[derive(Default)]
pub struct Walk {
    /// Files stay as given (so a bad one gets its own error); directories are walked
    /// for module files, in sorted order. A directory without modules is an error.
    pub modules: Vec<Result<PathBuf>>,
    /// Spare files ([`crate::fsutil::Spares`]) that a killed `sign` or `unsign` left.
    pub leftovers: Vec<PathBuf>,
    /// Symlinks named like modules inside the directories: not followed (a tree's
    /// link would have its module signed twice, or one outside the tree changed).
    pub links: Vec<PathBuf>,
}

pub fn walk(paths: &[PathBuf]) -> Walk {
    let mut w = Walk::default();
    for p in paths {
        if !p.is_dir() {
            w.modules.push(Ok(p.clone()));
            continue;
        }
        let mut found = Vec::new();
        for e in walkdir::WalkDir::new(p).into_iter().filter_map(|e| e.ok()) {
            let module = is_module_name(e.path());
            if e.path_is_symlink() {
                if module {
                    w.links.push(e.into_path());
                }
            } else if !e.file_type().is_file() {
            } else if module {
                found.push(e.into_path());
            } else if crate::fsutil::is_spare(e.path()) {
                w.leftovers.push(e.into_path());
            }
        }
        if found.is_empty() {
            w.modules.push(Err(Error::IsDir { path: p.clone() }));
        }
        found.sort();
        w.modules.extend(found.into_iter().map(Ok));
    }
    w.links.sort();
    w
}

/// The modules `paths` name, directories walked ([`walk`]), and an error for each path
/// that names none; symlinks inside directories are warned about, not followed. For a
/// command that rewrites modules (`for_writing`), spare files a killed run left in the
/// walked directories (old or partly written module bytes, never a module's name) are
/// removed first, so they never end up in a package; a running one's are kept.
pub fn expand(
    paths: &[PathBuf],
    for_writing: bool,
    r: &dyn Reporter,
) -> (Vec<PathBuf>, Vec<Error>) {
    let w = walk(paths);
    if for_writing {
        let removed = w
            .leftovers
            .iter()
            .filter(|p| crate::fsutil::remove_leftover_spare(p))
            .count();
        if removed > 0 {
            r.note(&format!(
                "removed {removed} spare file(s) left by an interrupted run"
            ));
        }
    }
    for l in &w.links {
        let to = std::fs::read_link(l).unwrap_or_default();
        r.warn(&format!(
            "{}: a symlink (to {}), not followed inside a directory; name it to include it",
            l.display(),
            to.display()
        ));
    }
    let mut errors = Vec::new();
    let modules = w
        .modules
        .into_iter()
        .filter_map(|m| m.map_err(|e| errors.push(e)).ok())
        .collect();
    (modules, errors)
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
    run(
        items,
        (0..items.len()).collect(),
        jobs,
        1,
        r,
        label,
        |i, _| f(i),
    )
}

/// [`par_map`] for work that replaces files: `f` does its CPU work inside
/// `gate.cpu(..)` and its waiting on the disk outside, on more threads (see [`Gate`]).
/// The largest files go first, so no big one is left for one core at the end, and
/// each recycled spare ([`crate::fsutil::Spares`]) comes back at about the size of
/// the next file (few blocks freed or added). The results keep the given order.
pub fn par_map_writing<P, R, F>(
    paths: &[P],
    jobs: usize,
    r: &dyn Reporter,
    label: &str,
    f: F,
) -> Vec<R>
where
    P: AsRef<Path> + Sync,
    R: Send,
    F: Fn(&P, &Gate) -> R + Sync,
{
    run(paths, largest_first(paths), jobs, 4, r, label, f)
}

/// Indices of `paths` by file size, largest first (missing files count as empty).
fn largest_first<P: AsRef<Path>>(paths: &[P]) -> Vec<usize> {
    let sizes: Vec<u64> = paths
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    order
}

/// Workers on a rayon pool take the items in `order`, one at a time.
fn run<T, R, F>(
    items: &[T],
    order: Vec<usize>,
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    let jobs = jobs.max(1);
    r.start(label, items.len() as u64);
    let threads = (jobs * threads_per_job).clamp(1, items.len().max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let gate = Gate::new(jobs);
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    pool.scope(|s| {
        for _ in 0..threads {
            s.spawn(|_| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let res = f(&items[i], &gate);
                    *slots[i].lock().expect("result slot") = Some(res);
                    r.advance(1);
                }
            });
        }
    });
    r.finish();
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("result slot")
                .expect("every item was taken")
        })
        .collect()
}

/// One more than the cores: measured to keep both cores of a 2-core machine busy
/// (RSA-4096 tree on tmpfs: -j2 11.2 s, -j3 9.6 s).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl Reporter for Quiet {
        fn warn(&self, _: &str) {}
        fn note(&self, _: &str) {}
    }

    #[test]
    fn writing_order_is_largest_first_and_missing_files_last() {
        let d = tempfile::tempdir().unwrap();
        let file = |name: &str, len: usize| {
            let p = d.path().join(name);
            std::fs::write(&p, vec![0u8; len]).unwrap();
            p
        };
        let paths = [
            file("a", 10),
            file("b", 3000),
            file("c", 0),
            file("d", 200),
            d.path().join("missing"),
        ];
        assert_eq!(largest_first(&paths), [1, 3, 0, 2, 4]);
    }

    #[test]
    fn items_are_taken_in_the_order_given_and_returned_in_theirs() {
        let taken = std::sync::Mutex::new(Vec::new());
        let items = ["a", "b", "c", "d"];
        let out = run(&items, vec![2, 0, 3, 1], 1, 1, &Quiet, "test", |i, _| {
            taken.lock().unwrap().push(*i);
            i.to_uppercase()
        });
        assert_eq!(out, ["A", "B", "C", "D"]);
        assert_eq!(taken.into_inner().unwrap(), ["c", "a", "d", "b"]);
    }
}
