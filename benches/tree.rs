//! Release-pipeline benchmark (issue 3): sign, verify and read every module of Debian's
//! linux-image-6.12 package, against Debian's sign-file and kmod's modinfo driven by
//! xargs -P<cores>, and against the limit of the same OpenSSL measured in this run.
//! cargo-kmod signs through AWS-LC by default; each signing is also run with
//! CARGO_KMOD_CRYPTO=openssl (crypto equal to the limit's) and set against AWS-LC's own
//! limit, so the overhead outside the crypto stays visible.
//!
//! Last, a compute-only ceiling (modules in memory, no I/O) shows how far this machine's
//! cores together fall short of the limit, which assumes perfect scaling.
//!
//! Run: `cargo bench --bench tree` (after scripts/test-deps.sh). Prints ratios; no timing
//! is asserted anywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

/// Mean time of `op`, single thread, over a window of at least 1.5 s (a time scale like
/// the timed commands', whose every run includes the host's slow moments too); the
/// best of `runs` windows, as for the commands.
fn per_op(runs: usize, mut op: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let mut n = 0u32;
            while t.elapsed() < Duration::from_millis(1500) {
                for _ in 0..10 {
                    op();
                }
                n += 10;
            }
            t.elapsed() / n
        })
        .min()
        .unwrap()
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
    let (work, plain, runs) = setup(&bin, cores);
    let mods = modules(&plain, ".ko");
    // Single-thread cost of the same OpenSSL: SHA-256 of every byte (files read one at a
    // time, so this process stays small: a child's peak RSS counts its parent's at spawn),
    // best of `runs` passes like every other time here.
    let (mut total, mut largest, mut t_hash) = (0usize, 0usize, Duration::MAX);
    for _ in 0..runs {
        let (mut sum, mut pass) = (0, Duration::ZERO);
        for m in &mods {
            let d = std::fs::read(m).unwrap();
            sum += d.len();
            largest = largest.max(d.len());
            let t = Instant::now();
            std::hint::black_box(openssl::sha::sha256(&d));
            pass += t.elapsed();
        }
        total = sum;
        t_hash = t_hash.min(pass);
    }
    println!(
        "input: {} modules, {:.1} MiB, largest {:.2} MiB, {cores} cores; every time is the best of {runs} runs",
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
    let ours_dir = work.join("ours");
    // Per key: name, key file, limit, our best time; for the compute-only ceiling below.
    let mut ceilings = Vec::new();
    let theirs_dir = work.join("theirs");
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
        let md = openssl::hash::MessageDigest::sha256();
        let mut sig = Vec::new();
        let t_sign = per_op(runs, || {
            let mut s = openssl::sign::Signer::new(md, &pkey).unwrap();
            s.update(b"x").unwrap();
            sig = s.sign_to_vec().unwrap();
        });
        let t_verify = per_op(runs, || {
            let mut v = openssl::sign::Verifier::new(md, &pkey).unwrap();
            v.update(b"x").unwrap();
            assert!(v.verify(&sig).unwrap());
        });
        // The same operation through AWS-LC, which cargo-kmod signs with by default.
        let fast = cargo_kmod::sign::awslc::AwsKey::from_openssl(&pkey).unwrap();
        let t_sign_aws = per_op(runs, || {
            let digest = openssl::hash::hash(md, b"x").unwrap();
            std::hint::black_box(
                fast.sign_digest(cargo_kmod::hash::HashAlg::Sha256, &digest)
                    .unwrap(),
            );
        });
        let n = mods.len() as u32;
        let sign_limit = (t_hash + t_sign * n) / cores as u32;
        let sign_limit_aws = (t_hash + t_sign_aws * n) / cores as u32;
        let verify_limit = (t_hash + t_verify * n) / cores as u32;
        let sign_ours = |dir: &Path, key: &str| {
            let mut c = Command::new(&bin);
            c.env_remove("CARGO_KMOD_CRYPTO");
            c.args(["kmod", "sign", "--hash", "sha256", "--key", key, "--cert"])
                .arg(&cert)
                .arg(dir)
                .stderr(std::process::Stdio::null());
            c
        };
        let key_arg = key.display().to_string();
        let (t_ours, all_ours, rss) = best_of(
            runs,
            || copy_tree(&plain, &ours_dir),
            || sign_ours(&ours_dir, &key_arg),
        );
        // The same run with OpenSSL doing the signing: our overhead over the issue's
        // limit with the crypto held equal.
        let (t_ours_ossl, all_ours_ossl, _) = best_of(
            runs,
            || copy_tree(&plain, &ours_dir),
            || {
                let mut c = sign_ours(&ours_dir, &key_arg);
                c.env("CARGO_KMOD_CRYPTO", "openssl");
                c
            },
        );
        let list = work.join("list");
        let (t_theirs, all_theirs, _) = best_of(
            runs,
            || {
                copy_tree(&plain, &theirs_dir);
                let l: Vec<String> = modules(&theirs_dir, ".ko")
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                std::fs::write(&list, l.join("\n")).unwrap();
            },
            || {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!(
                    "xargs -P{cores} -n1 {} sha256 {} {} < {}",
                    sign_file.display(),
                    key.display(),
                    cert.display(),
                    list.display()
                ));
                c
            },
        );
        println!(
            "sign {name}: cargo-kmod {} = {:.2}x limit; sign-file (xargs -P{cores}) {} = {:.2}x limit; limit {:.2} s (OpenSSL sign {:.3} ms/op)",
            show(t_ours, &all_ours),
            secs(t_ours) / secs(sign_limit),
            show(t_theirs, &all_theirs),
            secs(t_theirs) / secs(sign_limit),
            secs(sign_limit),
            secs(t_sign) * 1e3
        );
        println!(
            "  with CARGO_KMOD_CRYPTO=openssl (same crypto as the limit): {} = {:.2}x limit",
            show(t_ours_ossl, &all_ours_ossl),
            secs(t_ours_ossl) / secs(sign_limit),
        );
        println!(
            "  against AWS-LC's own limit {:.2} s (AWS-LC sign {:.3} ms/op): {:.2}x",
            secs(sign_limit_aws),
            secs(t_sign_aws) * 1e3,
            secs(t_ours) / secs(sign_limit_aws),
        );
        ceilings.push((name, key.clone(), sign_limit, t_ours_ossl));
        println!(
            "  peak RSS while signing: {} MiB (budget {} MiB)",
            rss / 1024,
            peak_budget / 1024
        );
        // ours_dir holds the tree signed by the last run.
        let (t_verify_ours, all_verify, vrss) = best_of(
            runs,
            || {},
            || {
                let mut c = Command::new(&bin);
                c.args(["kmod", "verify", "--cert"])
                    .arg(&cert)
                    .arg(&ours_dir)
                    .stderr(std::process::Stdio::null());
                c
            },
        );
        println!(
            "verify {name}: cargo-kmod {} = {:.2}x limit {:.2} s (verify {:.3} ms/op); peak RSS {} MiB",
            show(t_verify_ours, &all_verify),
            secs(t_verify_ours) / secs(verify_limit),
            secs(verify_limit),
            secs(t_verify) * 1e3,
            vrss / 1024
        );
        if name == "RSA-4096" {
            let (t_info, all_info, _) = best_of(
                runs,
                || {},
                || {
                    let mut c = Command::new(&bin);
                    c.args(["kmod", "info"]).arg(&ours_dir);
                    c
                },
            );
            let (t_modinfo, all_modinfo, _) = best_of(
                runs,
                || {},
                || {
                    let mut c = Command::new("sh");
                    c.arg("-c")
                        .arg(format!("xargs -P{cores} -n50 modinfo < {}", list.display()));
                    c
                },
            );
            println!(
                "info: cargo-kmod {}, modinfo (xargs -P{cores} -n50) {}: ratio {:.2}",
                show(t_info, &all_info),
                show(t_modinfo, &all_modinfo),
                secs(t_info) / secs(t_modinfo)
            );
        }
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
                        .stderr(std::process::Stdio::null())
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
            let uri = format!(
                "pkcs11:token=bench;object=k;type=private?module-path={SOFTHSM}&pin-value=1234"
            );
            let (t_tok, all_tok, _) = best_of(
                runs,
                || copy_tree(&plain, &ours_dir),
                || {
                    let mut c = sign_ours(&ours_dir, &uri);
                    c.env("SOFTHSM2_CONF", &conf);
                    c
                },
            );
            println!(
                "sign {name} through PKCS#11 (SoftHSM2, OpenSSL inside): {} = {:.2}x the PEM key's {:.2} s with CARGO_KMOD_CRYPTO=openssl ({:.0} vs {:.0} modules/s)",
                show(t_tok, &all_tok),
                secs(t_tok) / secs(t_ours_ossl),
                secs(t_ours_ossl),
                n as f64 / secs(t_tok),
                n as f64 / secs(t_ours_ossl)
            );
        }
    }

    // The compute-only ceiling: every module already in memory, hashed and signed on
    // `jobs` threads, no file I/O at all. It shows how close to the limit this machine's
    // cores get together (the limit assumes perfect scaling of single-thread runs).
    // Last, because a child's peak RSS would count this process's memory.
    let data: Vec<Vec<u8>> = mods.iter().map(|m| std::fs::read(m).unwrap()).collect();
    for (name, key, limit, t_ours) in ceilings {
        let pkey =
            openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&key).unwrap()).unwrap();
        let best = (0..runs)
            .map(|_| {
                let next = std::sync::atomic::AtomicUsize::new(0);
                let t = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..jobs {
                        s.spawn(|| {
                            loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(d) = data.get(i) else { break };
                                let mut signer = openssl::sign::Signer::new(
                                    openssl::hash::MessageDigest::sha256(),
                                    &pkey,
                                )
                                .unwrap();
                                signer.update(d).unwrap();
                                std::hint::black_box(signer.sign_to_vec().unwrap());
                            }
                        });
                    }
                });
                t.elapsed()
            })
            .min()
            .unwrap();
        println!(
            "compute-only ceiling {name} (OpenSSL, in memory, {jobs} threads, no I/O): {:.2} s = {:.2}x limit; cargo-kmod sign with CARGO_KMOD_CRYPTO=openssl is {:.2}x this ceiling",
            secs(best),
            secs(best) / secs(limit),
            secs(t_ours) / secs(best)
        );
    }
}
