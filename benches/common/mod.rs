//! Shared by the benchmarks: the cache, the module trees they read, and timing of
//! child processes (best of several runs, with their peak RSS).
#![allow(dead_code)] // each benchmark uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

pub fn modules(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.into_path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Runs a command; returns wall time and the child's peak RSS (KiB).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
pub fn timed(cmd: &mut Command) -> (Duration, u64) {
    let t = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child; rusage is plain data.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert!(r > 0 && status == 0, "{cmd:?} failed (status {status})");
    (t.elapsed(), ru.ru_maxrss as u64)
}

/// This machine shares its host: one run of the same work varies by 15% or more. Every
/// timed command (ours and the peers alike) runs `runs` times after `prepare` and a
/// `sync` (so no run pays for the previous one's writeback); the best time counts.
/// Returns the best time, all times, and the highest peak RSS.
pub fn best_of(
    runs: usize,
    mut prepare: impl FnMut(),
    mut cmd: impl FnMut() -> Command,
) -> (Duration, Vec<Duration>, u64) {
    let mut times = Vec::new();
    let mut rss = 0;
    for _ in 0..runs {
        prepare();
        assert!(Command::new("sync").status().unwrap().success());
        let (t, r) = timed(&mut cmd());
        times.push(t);
        rss = rss.max(r);
    }
    (*times.iter().min().unwrap(), times, rss)
}

/// "a.aa s (runs: a.aa b.bb c.cc)"
pub fn show(best: Duration, all: &[Duration]) -> String {
    let all: Vec<String> = all.iter().map(|d| format!("{:.2}", secs(*d))).collect();
    format!("{:.2} s (runs {})", secs(best), all.join(" "))
}

/// The benchmarks' working directory (BENCH_DIR puts the trees elsewhere, e.g. a
/// tmpfs, to take the disk out), its `plain` module tree made, and BENCH_RUNS (default
/// 3): how often each timed thing runs.
pub fn setup(bin: &Path, cores: usize) -> (PathBuf, PathBuf, usize) {
    let work = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("bench"));
    let plain = work.join("plain");
    std::fs::create_dir_all(&work).unwrap();
    plain_modules(bin, &plain, cores);
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    (work, plain, runs)
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Every module of Debian's linux-image-6.12 package, decompressed and unsigned, in
/// `plain` (made once; kept between runs).
pub fn plain_modules(bin: &Path, plain: &Path, cores: usize) {
    let fixtures = cache().join("fixtures");
    // Input: every module, decompressed, signature stripped (cached between runs).
    if !plain.join(".done").exists() {
        eprintln!("preparing unsigned plain modules in {}", plain.display());
        let _ = std::fs::remove_dir_all(plain);
        let src = fixtures.join("image/lib/modules");
        for m in modules(&src, ".ko.xz") {
            let rel = m
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".xz")
                .to_string();
            let dst = plain.join(rel);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            let out = Command::new("xz").arg("-dc").arg(&m).output().unwrap();
            std::fs::write(&dst, &out.stdout).unwrap();
        }
        let st = Command::new(bin)
            .args(["kmod", "unsign", "-j", &cores.to_string()])
            .arg(plain)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::write(plain.join(".done"), "").unwrap();
    }
}
