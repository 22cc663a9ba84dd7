//! Boot benchmark (the arm64 issue): boot + load + unload + report under TCG, `cargo
//! kmod run` end to end, for arm64 beside x86_64 — the test kernels (6.12, tinyconfig,
//! each with a C module built and signed for it) and Debian sid's own 7.2 kernels of
//! both architectures with one of their own modules. Prints each time and the arm64 /
//! x86_64 ratio measured in this run; no timing is asserted anywhere.
//!
//! Run: `cargo bench --bench boot` (after scripts/test-deps.sh: test kernels, keys,
//! Debian's packages, the arm64 busybox).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kdir a test-deps record names.
fn kdir(record: &str) -> PathBuf {
    let text = std::fs::read_to_string(cache().join(record))
        .unwrap_or_else(|_| panic!("no {record}: run scripts/test-deps.sh"));
    PathBuf::from(
        text.lines()
            .find_map(|l| l.strip_prefix("kdir:"))
            .expect("kdir line")
            .trim(),
    )
}

/// c-minimal, made by `new` and built by `build` for `kdir`, signed by a trusted key.
fn module_for(bin: &Path, work: &Path, kdir: &Path, name: &str) -> PathBuf {
    let p = work.join(name);
    let _ = std::fs::remove_dir_all(&p);
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new(bin)
        .args(["kmod", "new"])
        .arg(&p)
        .args(["--template", "c-minimal", "--kdir"])
        .arg(kdir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null()));
    let o = Command::new(bin)
        .args(["kmod", "build", "--message-format", "json"])
        .current_dir(&p)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = PathBuf::from(v["path"].as_str().unwrap());
    let keys = cache().join("test-keys/p384");
    ok(Command::new(bin)
        .args(["kmod", "sign", "--key"])
        .arg(keys.join("signing_key.pem"))
        .arg("--cert")
        .arg(keys.join("signing_key.crt"))
        .arg(&m)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null()));
    m
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("boot benchmark: run it with `cargo bench --bench boot`");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let work = cache().join("bench/boot");
    std::fs::create_dir_all(&work).unwrap();
    // Debian sid's kernels, as scripts/test-deps.sh fetched them by name.
    let debian = |arch: &str| {
        let file = match arch {
            "amd64" => "kernel-debian-sid.json".to_string(),
            a => format!("kernel-debian-sid-{a}.json"),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cache().join(file)).unwrap()).unwrap();
        PathBuf::from(v["modules"].as_str().unwrap())
    };
    println!("boot + load + unload + report under TCG, best of {runs} runs");
    let mut rows = Vec::new();
    for (label, arch_label, record) in [
        ("test kernel 6.12", "x86_64", "test-kernel.txt"),
        ("test kernel 6.12", "arm64", "test-kernel-arm64.txt"),
    ] {
        let k = kdir(record);
        let m = module_for(&bin, &work, &k, &format!("boot_{}", arch_label));
        let (best, all, _) = best_of(
            runs,
            || {},
            || {
                let mut c = Command::new(&bin);
                c.args(["kmod", "run", "--accel", "tcg", "--kdir"])
                    .arg(&k)
                    .arg("--module")
                    .arg(&m)
                    .stderr(std::process::Stdio::null());
                c
            },
        );
        println!("{label} {arch_label}: {}", show(best, &all));
        rows.push((label, arch_label, best));
    }
    for arch in ["amd64", "arm64"] {
        let tree = debian(arch);
        let (best, all, _) = best_of(
            runs,
            || {},
            || {
                let mut c = Command::new(&bin);
                c.args(["kmod", "run", "--accel", "tcg", "--kernel"])
                    .arg(tree.join("vmlinuz"))
                    .arg("--modules-from")
                    .arg(&tree)
                    .arg("--module")
                    .arg(tree.join("kernel/drivers/net/dummy.ko.xz"))
                    .stderr(std::process::Stdio::null());
                c
            },
        );
        let arch_label = if arch == "amd64" { "x86_64" } else { "arm64" };
        println!("Debian 7.2 {arch_label}: {}", show(best, &all));
        rows.push(("Debian 7.2", arch_label, best));
    }
    for pair in rows.chunks(2) {
        println!(
            "{}: arm64 / x86_64 = {:.2}x",
            pair[0].0,
            secs(pair[1].2) / secs(pair[0].2)
        );
    }
}
