//! `cargo kmod test` over three kernels (Debian 12's 6.1, bookworm-backports' 6.12,
//! and the 6.12 test kernel, which enforces signatures) against the same steps run one
//! after another by hand, per kernel: `build --sign`, `check`, `run`. Prints both wall
//! times and their ratio; nothing is asserted.
//!
//! Run: `cargo bench --bench proof` (after scripts/test-deps.sh fetched and built them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

fn test_kernel() -> PathBuf {
    let text = std::fs::read_to_string(cache().join("test-kernel.txt"))
        .expect("no test-kernel.txt: run scripts/test-deps.sh first");
    PathBuf::from(
        text.lines()
            .find_map(|l| l.strip_prefix("kdir:"))
            .expect("kdir line")
            .trim(),
    )
}

fn timed(c: &mut Command) -> Duration {
    let t = Instant::now();
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    t.elapsed()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("proof benchmark: run it with `cargo bench --bench proof`");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let tk = test_kernel();
    let key = cache().join("test-keys/rsa2048");
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bench_proof");
    let o = Command::new(&bin)
        .args(["kmod", "new", "--template", "c-minimal", "--kdir"])
        .arg(&tk)
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success());
    let kmod = |dir: &Path| {
        let mut c = Command::new(&bin);
        c.arg("kmod").current_dir(dir);
        c
    };
    let sign = |c: &mut Command| {
        c.arg("--sign")
            .arg("--key")
            .arg(key.join("signing_key.pem"))
            .arg("--cert")
            .arg(key.join("signing_key.crt"));
    };
    // Each kernel as `test` takes it and as the hand-run steps do.
    let names = ["debian/bookworm", "debian/bookworm-backports"];
    let t_test = {
        let mut c = kmod(&p);
        c.args(["test", "--accel", "tcg"]);
        for n in names {
            c.args(["--kernel", n]);
        }
        c.arg("--kdir").arg(&tk);
        sign(&mut c);
        timed(&mut c)
    };
    std::fs::remove_dir_all(p.join("target")).unwrap();
    let mut t_hand = Duration::ZERO;
    for k in names
        .iter()
        .map(|n| (true, PathBuf::from(n)))
        .chain([(false, tk.clone())])
    {
        let (named, k) = k;
        let flag = if named { "--kernel" } else { "--kdir" };
        let mut b = kmod(&p);
        b.args(["build", "--message-format", "json", flag]).arg(&k);
        sign(&mut b);
        let t = Instant::now();
        let o = b.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t_hand += t.elapsed();
        let v: serde_json::Value =
            serde_json::from_slice(o.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
        let module = PathBuf::from(v["path"].as_str().unwrap());
        let check_flag = if named { "--kernel" } else { "--kdir" };
        t_hand += timed(kmod(&p).args(["check", check_flag]).arg(&k).arg(&module));
        let run_flag = if named { "--kernel" } else { "--kdir" };
        t_hand += timed(
            kmod(&p)
                .args(["run", "--accel", "tcg", run_flag])
                .arg(&k)
                .arg("--module")
                .arg(&module),
        );
    }
    println!(
        "cargo kmod test, three kernels:        {:.1} s",
        t_test.as_secs_f64()
    );
    println!(
        "build + check + run per kernel, by hand: {:.1} s",
        t_hand.as_secs_f64()
    );
    println!(
        "ratio: {:.2} (cargo kmod test / by hand)",
        t_test.as_secs_f64() / t_hand.as_secs_f64()
    );
}
