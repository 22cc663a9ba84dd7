//! Release-pipeline benchmark (issue 3): sign, verify and read every module of Debian's
//! linux-image-6.12 package, against Debian's sign-file and kmod's modinfo driven by
//! xargs -P<cores>, and against the limit of the same OpenSSL measured in this run.
//!
//! Run: `cargo bench --bench tree` (after scripts/test-deps.sh). Prints ratios; no timing
//! is asserted anywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

fn modules(dir: &Path, suffix: &str) -> Vec<PathBuf> {
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
fn timed(cmd: &mut Command) -> (Duration, u64) {
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

fn copy_tree(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("tree benchmark: run it with `cargo bench --bench tree`");
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let fixtures = cache().join("fixtures");
    let sign_file = modules(&fixtures.join("kbuild/usr/lib"), "scripts/sign-file")
        .pop()
        .expect("sign-file fixture: run scripts/test-deps.sh");
    // BENCH_DIR puts the trees elsewhere (e.g. a tmpfs, to take the disk out).
    let work = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("bench"));
    let plain = work.join("plain");
    std::fs::create_dir_all(&work).unwrap();

    // Input: every module, decompressed, signature stripped (cached between runs).
    if !plain.join(".done").exists() {
        eprintln!("preparing unsigned plain modules in {}", plain.display());
        let _ = std::fs::remove_dir_all(&plain);
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
        let st = Command::new(&bin)
            .args(["kmod", "unsign", "-j", &cores.to_string()])
            .arg(&plain)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::write(plain.join(".done"), "").unwrap();
    }
    let mods = modules(&plain, ".ko");
    // Single-thread cost of the same OpenSSL: SHA-256 of every byte (files read one at a
    // time, so this process stays small: a child's peak RSS counts its parent's at spawn).
    let (mut total, mut largest, mut t_hash) = (0usize, 0usize, Duration::ZERO);
    for m in &mods {
        let d = std::fs::read(m).unwrap();
        total += d.len();
        largest = largest.max(d.len());
        let t = Instant::now();
        std::hint::black_box(openssl::sha::sha256(&d));
        t_hash += t.elapsed();
    }
    println!(
        "input: {} modules, {:.1} MiB, largest {:.2} MiB, {cores} cores",
        mods.len(),
        total as f64 / 1048576.0,
        largest as f64 / 1048576.0
    );
    println!(
        "sha256 of all module bytes, 1 thread: {:.3} s",
        secs(t_hash)
    );

    let jobs = cores as u64 + 1; // cargo-kmod's default -j
    let peak_budget = 64 * 1024 + jobs * largest as u64 / 1024;
    for (name, newkey) in [
        ("RSA-4096", vec!["-newkey", "rsa:4096"]),
        (
            "ECDSA P-384",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
    ] {
        let key = work.join(format!("{}.key", name.replace(' ', "_")));
        let cert = work.join(format!("{}.crt", name.replace(' ', "_")));
        if !cert.exists() {
            let st = Command::new("openssl")
                .args([
                    "req",
                    "-new",
                    "-x509",
                    "-nodes",
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=bench",
                ])
                .args(&newkey)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
        }
        // One private- and one public-key operation, single thread.
        let pkey =
            openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&key).unwrap()).unwrap();
        let n_ops = 200;
        let t = Instant::now();
        let mut sig = Vec::new();
        for i in 0..n_ops {
            let mut s =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
            s.update(&[i as u8]).unwrap();
            sig = s.sign_to_vec().unwrap();
        }
        let t_sign = t.elapsed() / n_ops;
        let t = Instant::now();
        for _ in 0..n_ops {
            let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pkey)
                .unwrap();
            v.update(&[(n_ops - 1) as u8]).unwrap();
            assert!(v.verify(&sig).unwrap());
        }
        let t_verify = t.elapsed() / n_ops;
        let n = mods.len() as u32;
        let sign_limit = (t_hash + t_sign * n) / cores as u32;
        let verify_limit = (t_hash + t_verify * n) / cores as u32;

        let ours_dir = work.join("ours");
        copy_tree(&plain, &ours_dir);
        let (t_ours, rss) = timed(
            Command::new(&bin)
                .args(["kmod", "sign", "--hash", "sha256", "--key"])
                .arg(&key)
                .arg("--cert")
                .arg(&cert)
                .arg(&ours_dir)
                .stderr(std::process::Stdio::null()),
        );
        let theirs_dir = work.join("theirs");
        copy_tree(&plain, &theirs_dir);
        let list: Vec<String> = modules(&theirs_dir, ".ko")
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        std::fs::write(work.join("list"), list.join("\n")).unwrap();
        let (t_theirs, _) = timed(Command::new("sh").arg("-c").arg(format!(
            "xargs -P{cores} -n1 {} sha256 {} {} < {}",
            sign_file.display(),
            key.display(),
            cert.display(),
            work.join("list").display()
        )));
        println!(
            "sign {name}: cargo-kmod {:.2} s = {:.2}x limit; sign-file (xargs -P{cores}) {:.2} s = {:.2}x limit; limit {:.2} s (sign {:.2} ms/op)",
            secs(t_ours),
            secs(t_ours) / secs(sign_limit),
            secs(t_theirs),
            secs(t_theirs) / secs(sign_limit),
            secs(sign_limit),
            secs(t_sign) * 1e3
        );
        println!(
            "  peak RSS while signing: {} MiB (budget {} MiB)",
            rss / 1024,
            peak_budget / 1024
        );
        let (t_verify_ours, vrss) = timed(
            Command::new(&bin)
                .args(["kmod", "verify", "--cert"])
                .arg(&cert)
                .arg(&ours_dir)
                .stderr(std::process::Stdio::null()),
        );
        println!(
            "verify {name}: cargo-kmod {:.2} s = {:.2}x limit {:.2} s (verify {:.3} ms/op); peak RSS {} MiB",
            secs(t_verify_ours),
            secs(t_verify_ours) / secs(verify_limit),
            secs(verify_limit),
            secs(t_verify) * 1e3,
            vrss / 1024
        );
        // The same key in a SoftHSM2 token, through PKCS#11 (issue 7).
        if Path::new(SOFTHSM).exists() {
            let tok = work.join("softhsm");
            let _ = std::fs::remove_dir_all(&tok);
            std::fs::create_dir_all(tok.join("tokens")).unwrap();
            let conf = tok.join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}/tokens\nobjectstore.backend = file\n",
                    tok.display()
                ),
            )
            .unwrap();
            let sh = |cmd: &mut Command| {
                assert!(
                    cmd.env("SOFTHSM2_CONF", &conf)
                        .stdout(std::process::Stdio::null())
                        .status()
                        .unwrap()
                        .success(),
                    "{cmd:?}"
                )
            };
            sh(Command::new("softhsm2-util").args([
                "--init-token",
                "--free",
                "--label",
                "bench",
                "--so-pin",
                "5678",
                "--pin",
                "1234",
            ]));
            let der = tok.join("key.der");
            sh(Command::new("openssl")
                .args(["pkey", "-outform", "DER", "-in"])
                .arg(&key)
                .arg("-out")
                .arg(&der));
            sh(Command::new("pkcs11-tool")
                .args([
                    "--module",
                    SOFTHSM,
                    "--login",
                    "--pin",
                    "1234",
                    "--type",
                    "privkey",
                    "--id",
                    "01",
                    "--label",
                    "k",
                    "--write-object",
                ])
                .arg(&der));
            let tok_dir = work.join("tok-tree");
            copy_tree(&plain, &tok_dir);
            let uri = format!(
                "pkcs11:token=bench;object=k;type=private?module-path={SOFTHSM}&pin-value=1234"
            );
            let (t_tok, _) = timed(
                Command::new(&bin)
                    .env("SOFTHSM2_CONF", &conf)
                    .args(["kmod", "sign", "--hash", "sha256", "--key", &uri, "--cert"])
                    .arg(&cert)
                    .arg(&tok_dir)
                    .stderr(std::process::Stdio::null()),
            );
            println!(
                "sign {name} through PKCS#11 (SoftHSM2): {:.2} s = {:.2}x the PEM key's {:.2} s ({:.0} vs {:.0} modules/s)",
                secs(t_tok),
                secs(t_tok) / secs(t_ours),
                secs(t_ours),
                n as f64 / secs(t_tok),
                n as f64 / secs(t_ours)
            );
            let _ = std::fs::remove_dir_all(&tok_dir);
        }
        if name == "RSA-4096" {
            let (t_info, _) = timed(Command::new(&bin).args(["kmod", "info"]).arg(&ours_dir));
            let (t_modinfo, _) = timed(Command::new("sh").arg("-c").arg(format!(
                "xargs -P{cores} -n50 modinfo < {}",
                work.join("list").display()
            )));
            println!(
                "info: cargo-kmod {:.2} s, modinfo (xargs -P{cores} -n50) {:.2} s: ratio {:.2}",
                secs(t_info),
                secs(t_modinfo),
                secs(t_info) / secs(t_modinfo)
            );
        }
    }
}
