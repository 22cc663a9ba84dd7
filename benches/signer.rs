//! Keys elsewhere, timed. (1) Debian 12's 6.1 module tree (signatures removed) signed
//! through `--signer` (`openssl pkeyutl`, one process per module) beside `--key` with
//! the same RSA-2048 key, both -j of this machine: the ratio, and the external
//! process's cost per module. (2) `--attach` of the tree's detached signatures (made
//! once by `sign-file -d`) beside Debian's `sign-file -s` run per module over the same
//! tree (the peer, in the same run). Best of BENCH_RUNS (default 3); nothing asserted.
//!
//! Run: `cargo bench --bench signer` (after scripts/test-deps.sh fetched debian/bookworm).

mod common;

use common::{best_of, cache};
use std::path::PathBuf;
use std::process::Command;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("signer benchmark: run it with `cargo bench --bench signer`");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cache().join("kernel-debian-bookworm.json"))
            .expect("run scripts/test-deps.sh first (debian/bookworm)"),
    )
    .unwrap();
    let kernel = PathBuf::from(record["modules"].as_str().unwrap()).join("kernel");
    let sign_file = std::fs::read_dir(cache().join("fixtures/kbuild/usr/lib"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("scripts/sign-file"))
        .find(|p| p.is_file())
        .expect("Debian's sign-file (scripts/test-deps.sh)");
    let d = tempfile::Builder::new()
        .prefix("signer-bench-")
        .tempdir_in(std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from))
        .unwrap();
    let run = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let kmod = || {
        let mut c = Command::new(&bin);
        c.arg("kmod");
        c
    };
    run(kmod()
        .args(["keygen", "--algo", "rsa2048", "--out"])
        .arg(d.path().join("key")));
    let (key, cert) = (
        d.path().join("key/signing_key.pem"),
        d.path().join("key/signing_key.crt"),
    );
    let pristine = d.path().join("pristine");
    run(Command::new("cp").arg("-a").arg(&kernel).arg(&pristine));
    run(kmod().arg("unsign").arg(&pristine));
    let n = common::modules(&pristine, ".ko").len();
    let tree = d.path().join("tree");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&tree);
        run(Command::new("cp").arg("-a").arg(&pristine).arg(&tree));
    };

    // (1) --signer against --key.
    let (by_key, _, _) = best_of(runs, fresh, || {
        let mut c = kmod();
        c.args(["sign", "-q", "--hash", "sha256", "--key"])
            .arg(&key)
            .arg("--cert")
            .arg(&cert)
            .arg(&tree);
        c
    });
    let signer = format!(
        "openssl pkeyutl -sign -inkey '{}' -pkeyopt digest:sha256",
        key.display()
    );
    let (by_signer, _, _) = best_of(runs, fresh, || {
        let mut c = kmod();
        c.args(["sign", "-q", "--hash", "sha256", "--cert"])
            .arg(&cert)
            .arg("--signer")
            .arg(&signer)
            .arg(&tree);
        c
    });
    println!(
        "sign {n} modules: --key {:.2} s, --signer (openssl pkeyutl) {:.2} s: ratio {:.2}, {:.1} ms more per module",
        by_key.as_secs_f64(),
        by_signer.as_secs_f64(),
        by_signer.as_secs_f64() / by_key.as_secs_f64(),
        (by_signer.as_secs_f64() - by_key.as_secs_f64()) * 1000.0 / n as f64
    );

    // (2) --attach against sign-file -s per module: signatures made once.
    let export = d.path().join("export");
    fresh();
    run(kmod()
        .args(["sign", "-q", "--hash", "sha256", "--cert"])
        .arg(&cert)
        .arg("--export")
        .arg(&export)
        .arg(&tree));
    run(Command::new("sh")
        .arg("-c")
        .arg(r#"find "$1/modules" -name '*.ko' -print0 | xargs -0 -P "$(nproc)" -n 1 "$2" -d sha256 "$3" "$4""#)
        .arg("sh")
        .arg(&export)
        .arg(&sign_file)
        .arg(&key)
        .arg(&cert));
    let (attach, _, _) = best_of(runs, fresh, || {
        let mut c = kmod();
        c.args(["sign", "-q", "--attach"]).arg(&export);
        c
    });
    // The peer: sign-file -s with the same .p7s, per module, as many at once.
    let (peer, _, _) = best_of(runs, fresh, || {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"cd "$1/modules" && find . -name '*.ko' -print0 | xargs -0 -P "$(nproc)" -I{} "$2" -s "{}.p7s" sha256 "$3" "$4/{}""#)
            .arg("sh")
            .arg(&export)
            .arg(&sign_file)
            .arg(&cert)
            .arg(&tree);
        c
    });
    println!(
        "attach {n} detached signatures: cargo kmod sign --attach {:.2} s, sign-file -s per module {:.2} s: ratio {:.2}",
        attach.as_secs_f64(),
        peer.as_secs_f64(),
        attach.as_secs_f64() / peer.as_secs_f64()
    );
}
