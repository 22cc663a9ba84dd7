//! `check` of Debian sid's whole 7.2 module tree against its own kernel (headers, image,
//! module tree), beside the peers that read the same facts: kmod's
//! `modprobe --dump-modversions` and `modinfo` over the same tree, driven by
//! `xargs -P<cores>`. Prints the wall times and their ratio; asserts none.
//!
//! Run: `cargo bench --bench check` (after scripts/test-deps.sh).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

/// Best wall time of `runs` runs (this machine shares its host; runs vary by 15%).
fn best(runs: usize, mut cmd: impl FnMut() -> Command) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let s = cmd()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(s.success() || s.code() == Some(123), "{s}"); // xargs: some failed
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    // The kernel scripts/test-deps.sh fetched with `cargo kmod kernel fetch debian/sid`.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cache().join("kernel-debian-sid.json"))
            .expect("run scripts/test-deps.sh first"),
    )
    .unwrap();
    let modules = std::path::PathBuf::from(record["modules"].as_str().unwrap());
    let headers = std::path::PathBuf::from(record["kdir"].as_str().unwrap());
    let release = record["release"].as_str().unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let count = walkdir::WalkDir::new(modules.join("kernel"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().to_string_lossy().ends_with(".ko.xz"))
        .count();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let ours = best(3, || {
        let mut c = Command::new(&bin);
        c.args(["kmod", "check", "--message-format", "json", "--kdir"])
            .arg(&headers)
            .arg("--kernel")
            .arg(modules.join("vmlinuz"))
            .arg("--modules-dir")
            .arg(&modules)
            .arg(modules.join("kernel"));
        c
    });
    let xargs = |tool: &str, per: usize| {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "find '{}' -name '*.ko.xz' -print0 | xargs -0 -P{cores} -n{per} {tool} >/dev/null 2>&1",
            modules.join("kernel").display()
        ));
        c
    };
    let dump = best(3, || xargs("modprobe --dump-modversions", 1));
    let modinfo = best(3, || xargs("modinfo", 64));
    let peers = dump + modinfo;
    println!("check of Debian {release}'s {count} modules against its own kernel ({cores} cores):");
    println!(
        "  cargo kmod check                      {:>6.2} s",
        ours.as_secs_f64()
    );
    println!(
        "  modprobe --dump-modversions (xargs)   {:>6.2} s",
        dump.as_secs_f64()
    );
    println!(
        "  modinfo (xargs, 64 per call)          {:>6.2} s",
        modinfo.as_secs_f64()
    );
    println!(
        "  check / (dump-modversions + modinfo): {:.2}x (check also verifies every signature and resolves every symbol)",
        ours.as_secs_f64() / peers.as_secs_f64()
    );
}
