//! ML-DSA benchmark (issue 14): sign and verify every module of Debian's
//! linux-image-6.12 package with ML-DSA-65, beside ECDSA P-384, each against its limit
//! measured the same way in this run: the signature's own work over every module, one
//! thread (ECDSA: SHA-512 of all bytes and one signing or verification per module;
//! ML-DSA: ML-DSA-65 over each module, which hashes it inside), divided by the cores.
//!
//! Run: `cargo bench --bench mldsa` (after scripts/test-deps.sh, whose test keys it
//! uses). Prints ratios; no timing is asserted anywhere.

mod common;
use cargo_kmod::hash::HashAlg;
use cargo_kmod::pki::x509::{Certificate, PublicKey};
use cargo_kmod::sign::awslc::AwsKey;
use cargo_kmod::sign::keys::{self, PrivateKey};
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// One thread's time for `op` over every module (read one at a time, untimed, so this
/// process stays small: a child's peak RSS counts its parent's at spawn), best of
/// `runs` passes. `op` gets the module's index too.
fn pass(runs: usize, mods: &[PathBuf], mut op: impl FnMut(usize, &[u8])) -> Duration {
    (0..runs)
        .map(|_| {
            let mut total = Duration::ZERO;
            for (i, m) in mods.iter().enumerate() {
                let d = std::fs::read(m).unwrap();
                let t = Instant::now();
                op(i, &d);
                total += t.elapsed();
            }
            total
        })
        .min()
        .unwrap()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("mldsa benchmark: run it with `cargo bench --bench mldsa`");
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let (work, plain, runs) = setup(&bin, cores);
    let mods = modules(&plain, ".ko");
    println!(
        "input: {} modules, {:.1} MiB, {cores} cores; every time is the best of {runs} runs",
        mods.len(),
        mods.iter()
            .map(|m| std::fs::metadata(m).unwrap().len())
            .sum::<u64>() as f64
            / 1048576.0
    );
    let jobs = (cores + 1).to_string();
    let tree = work.join("mldsa-tree");
    let keys = [("ECDSA P-384", "p384"), ("ML-DSA-65", "mldsa65")];
    let mut limits = Vec::new();
    for (name, dir) in keys {
        let keys_dir = cache().join("test-keys").join(dir);
        let (key, cert) = (
            keys_dir.join("signing_key.pem"),
            keys_dir.join("signing_key.crt"),
        );
        assert!(
            cert.exists(),
            "missing {}: run scripts/test-deps.sh",
            cert.display()
        );
        let pem = std::fs::read(&cert).unwrap();
        let der = openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap();
        let public = Certificate::parse(&der).unwrap().public;
        // The limit's crypto: AWS-LC signs (as cargo-kmod does for a tree), the kernel's
        // rules verify (OpenSSL for ECDSA, AWS-LC for ML-DSA).
        let (sign_limit, verify_limit) =
            match keys::load_private_key(&key, &Default::default()).unwrap() {
                PrivateKey::OpenSsl(pkey) => {
                    let aws = AwsKey::from_openssl(&pkey).expect("AWS-LC takes P-384");
                    let PublicKey::Ec { point, .. } = &public else {
                        panic!("{name}: not an EC key")
                    };
                    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1)
                        .unwrap();
                    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
                    let pt = openssl::ec::EcPoint::from_bytes(&group, point, &mut ctx).unwrap();
                    let ec = openssl::ec::EcKey::from_public_key(&group, &pt).unwrap();
                    let mut sigs = vec![Vec::new(); mods.len()];
                    let sign = pass(runs, &mods, |i, d| {
                        sigs[i] = aws
                            .sign_digest(HashAlg::Sha512, &HashAlg::Sha512.digest(d))
                            .unwrap();
                    });
                    let verify = pass(runs, &mods, |i, d| {
                        let s = openssl::ecdsa::EcdsaSig::from_der(&sigs[i]).unwrap();
                        assert!(s.verify(&HashAlg::Sha512.digest(d), &ec).unwrap());
                    });
                    (sign, verify)
                }
                PrivateKey::MlDsa(aws, level) => {
                    let PublicKey::MlDsa { key: pk, .. } = &public else {
                        panic!("{name}: not an ML-DSA key")
                    };
                    let mut sigs = vec![Vec::new(); mods.len()];
                    let sign = pass(runs, &mods, |i, d| sigs[i] = aws.sign_message(d).unwrap());
                    let verify = pass(runs, &mods, |i, d| {
                        cargo_kmod::pki::mldsa::verify(level, pk, d, &sigs[i]).unwrap();
                    });
                    (sign, verify)
                }
            };
        limits.push((name, key, cert, sign_limit, verify_limit));
    }
    let per_core = |d: Duration| d / cores as u32;
    for (name, key, cert, sign_limit, verify_limit) in limits {
        let (ours_sign, all_sign, rss_sign) = best_of(
            runs,
            || {
                let _ = std::fs::remove_dir_all(&tree);
                let st = Command::new("cp")
                    .arg("-a")
                    .arg(&plain)
                    .arg(&tree)
                    .status()
                    .unwrap();
                assert!(st.success());
            },
            || {
                let mut c = Command::new(&bin);
                c.args(["kmod", "sign", "-q", "-j", &jobs, "--key"])
                    .arg(&key)
                    .arg("--cert")
                    .arg(&cert)
                    .arg(&tree);
                c
            },
        );
        let (ours_verify, all_verify, rss_verify) = best_of(
            runs,
            || {},
            || {
                let mut c = Command::new(&bin);
                c.args(["kmod", "verify", "-q", "-j", &jobs, "--cert"])
                    .arg(&cert)
                    .arg(&tree);
                c
            },
        );
        for (what, ours, all, rss, limit) in [
            ("sign", ours_sign, &all_sign, rss_sign, sign_limit),
            ("verify", ours_verify, &all_verify, rss_verify, verify_limit),
        ] {
            println!(
                "{name} {what}: cargo-kmod {} , peak {} MiB; limit {:.2} s ({:.2} s on 1 thread / {cores}); ratio {:.2}x",
                show(ours, all),
                rss / 1024,
                secs(per_core(limit)),
                secs(limit),
                secs(ours) / secs(per_core(limit))
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tree);
}
