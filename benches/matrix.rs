//! Matrix builds (issue 12): one project built for three kernels by one
//! `build --kdir A --kdir B --kdir C`, against three sequential builds of the same
//! project, each given the same -j. Prints the wall times and their ratio; nothing is
//! asserted.
//!
//! Run: `cargo bench --bench matrix` (after scripts/test-deps.sh made the kernels).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

fn kdir_of(record: &str) -> PathBuf {
    let text = std::fs::read_to_string(cache().join(record))
        .unwrap_or_else(|_| panic!("no {record}: run scripts/test-deps.sh first"));
    PathBuf::from(
        text.lines()
            .find_map(|l| l.strip_prefix("kdir:"))
            .expect("kdir line")
            .trim(),
    )
}

fn timed(mut c: Command) -> Duration {
    let t = Instant::now();
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    t.elapsed()
}

fn main() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let deb = std::fs::read_to_string(cache().join("debian-kernel-version")).unwrap();
    let kdirs = [
        kdir_of("test-kernel.txt"),
        kdir_of("test-kernel-7.2.txt"),
        PathBuf::from(format!("/usr/src/linux-headers-{}-amd64", deb.trim())),
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = cores.to_string();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bench-matrix");
    let o = Command::new(&bin)
        .args(["kmod", "new"])
        .arg(&p)
        .args(["--template", "c-params", "--kdir"])
        .arg(&kdirs[0])
        .output()
        .unwrap();
    assert!(o.status.success());
    let build = |ks: &[&Path]| {
        // From clean, so every run compiles everything.
        let _ = std::fs::remove_dir_all(p.join("target"));
        let mut c = Command::new(&bin);
        c.args(["kmod", "build", "-j", &jobs, "--manifest-path"])
            .arg(p.join("Cargo.toml"));
        for k in ks {
            c.arg("--kdir").arg(k);
        }
        c
    };
    let rounds = 3;
    let (mut matrix, mut sequential) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let all: Vec<&Path> = kdirs.iter().map(PathBuf::as_path).collect();
        matrix += timed(build(&all));
        for k in &kdirs {
            sequential += timed(build(&[k]));
        }
    }
    let (m, s) = (
        matrix.as_secs_f64() / rounds as f64,
        sequential.as_secs_f64() / rounds as f64,
    );
    println!(
        "matrix build of 3 kernels (-j{jobs}): {m:.2} s; 3 sequential builds: {s:.2} s; ratio {:.2}x (mean of {rounds})",
        m / s
    );
}
