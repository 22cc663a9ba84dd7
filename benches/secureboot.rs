//! A Secure Boot `run` (OVMF → shim → GRUB → Debian's 6.1, boot, load, unload, report)
//! beside a plain `run` (-kernel) of the same kernel and module, under TCG: both wall
//! times, their ratio, and the Secure Boot time against the 25 s target. Nothing is
//! asserted.
//!
//! Run: `cargo bench --bench secureboot` (after scripts/test-deps.sh fetched
//! debian/bookworm and installed ovmf, shim-signed, grub-efi-amd64-signed, mtools).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("secure boot benchmark: run it with `cargo bench --bench secureboot`");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let d = tempfile::tempdir().unwrap();
    let kmod = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.arg("kmod").args(args).current_dir(d.path());
        c
    };
    let ok = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    ok(&mut kmod(&["new", "sbbench", "--template", "c-minimal"]));
    ok(&mut kmod(&[
        "keygen", "--mok", "--algo", "rsa2048", "--out", "mok",
    ]));
    let p = d.path().join("sbbench");
    let o = ok(Command::new(&bin)
        .args([
            "kmod",
            "build",
            "--message-format",
            "json",
            "--kernel",
            "debian/bookworm",
        ])
        .current_dir(&p));
    let v: serde_json::Value =
        serde_json::from_slice(o.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let m = v["path"].as_str().unwrap().to_string();
    ok(&mut kmod(&[
        "sign",
        "--hash",
        "sha256",
        "--key",
        "mok/signing_key.pem",
        "--cert",
        "mok/signing_key.crt",
        &m,
    ]));
    let best = |args: &[&str]| -> Duration {
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                ok(&mut kmod(args));
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let plain = best(&[
        "run",
        "--accel",
        "tcg",
        "--kernel",
        "debian/bookworm",
        "--module",
        &m,
    ]);
    let secure = best(&[
        "run",
        "--accel",
        "tcg",
        "--kernel",
        "debian/bookworm",
        "--module",
        &m,
        "--secure-boot",
        "--mok",
        "mok/signing_key.crt",
    ]);
    println!("best of {runs}, TCG");
    println!(
        "plain run (-kernel):                 {:.1} s",
        plain.as_secs_f64()
    );
    println!(
        "--secure-boot (OVMF, shim, GRUB):    {:.1} s (target <= 25 s)",
        secure.as_secs_f64()
    );
    println!(
        "ratio: {:.2} (secure boot / plain)",
        secure.as_secs_f64() / plain.as_secs_f64()
    );
}
