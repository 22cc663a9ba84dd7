//! `sign` and `sign-file` against Debian's compiled sign-file and openssl cms.

use crate::common::*;
use std::path::Path;
use std::process::Command as Std;

fn oracle(args: &[&str], files: &[&Path]) {
    let mut c = Std::new(sign_file());
    c.args(args).args(files);
    run(&mut c);
}

#[test]
fn rsa_signatures_are_byte_identical_to_sign_file() {
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "dummy");
    for algo in ["rsa2048", "rsa3072", "rsa4096"] {
        let k = keys().get(algo);
        for hash in ["sha256", "sha384", "sha512"] {
            for key_id in [false, true] {
                let theirs = d.path().join("theirs.ko");
                let ours = d.path().join("ours.ko");
                let via_sign_file = d.path().join("ours-sf.ko");
                let flag: &[&str] = if key_id { &["-k"] } else { &[] };
                oracle(
                    &[flag, &[hash]].concat(),
                    &[&k.key, &k.cert, &module, &theirs],
                );
                sign_cmd(&k, hash)
                    .args(if key_id { &["--key-id"][..] } else { &[] })
                    .arg("-o")
                    .arg(&ours)
                    .arg(&module)
                    .assert()
                    .success();
                // One signature goes through OpenSSL by default (AWS-LC's seeding would
                // cost more than it saves); half the combinations force AWS-LC, which
                // falls back to OpenSSL for whatever it does not take: all must match.
                let crypto = if key_id { "openssl" } else { "aws-lc" };
                kmod()
                    .env("CARGO_KMOD_CRYPTO", crypto)
                    .arg("sign-file")
                    .args(flag)
                    .arg(hash)
                    .args([&k.key, &k.cert, &module, &via_sign_file])
                    .assert()
                    .success();
                let t = std::fs::read(&theirs).unwrap();
                assert!(
                    t == std::fs::read(&ours).unwrap(),
                    "sign: {algo} {hash} -k={key_id}"
                );
                assert!(
                    t == std::fs::read(&via_sign_file).unwrap(),
                    "sign-file: {algo} {hash} -k={key_id} crypto={crypto}"
                );
            }
        }
    }
}

#[test]
fn sign_file_modes_d_p_s_and_in_place_match() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa4096");
    let theirs = unsigned_module(d.path(), "dummy");
    let ours_dir = d.path().join("ours");
    std::fs::create_dir(&ours_dir).unwrap();
    let ours = ours_dir.join("dummy.ko");
    std::fs::copy(&theirs, &ours).unwrap();
    let p7s = |p: &Path| std::fs::read(format!("{}.p7s", p.display())).unwrap();

    // -d: only the .p7s, module untouched.
    let before = sha256(&theirs);
    oracle(&["-d", "sha256"], &[&k.key, &k.cert, &theirs]);
    kmod()
        .arg("sign-file")
        .args(["-d", "sha256"])
        .args([&k.key, &k.cert, &ours])
        .assert()
        .success();
    assert_eq!(sha256(&theirs), before);
    assert_eq!(sha256(&ours), before);
    assert_eq!(p7s(&theirs), p7s(&ours));

    // -s: append a raw signature as it is (the .p7s from -d), to a destination.
    let (t_out, o_out) = (d.path().join("t-s.ko"), d.path().join("o-s.ko"));
    let raw = format!("{}.p7s", theirs.display());
    oracle(&["-s", &raw, "sha256"], &[&k.cert, &theirs, &t_out]);
    kmod()
        .arg("sign-file")
        .args(["-s", &raw, "sha256"])
        .args([&k.cert, &ours, &o_out])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&t_out).unwrap(),
        std::fs::read(&o_out).unwrap()
    );

    // -p in place (options after operands, as GNU getopt allows).
    std::fs::remove_file(format!("{}.p7s", theirs.display())).unwrap();
    std::fs::remove_file(format!("{}.p7s", ours.display())).unwrap();
    oracle(&["sha512"], &[&k.key, &k.cert, &theirs, Path::new("-p")]);
    kmod()
        .arg("sign-file")
        .arg("sha512")
        .args([&k.key, &k.cert, &ours])
        .arg("-p")
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&theirs).unwrap(),
        std::fs::read(&ours).unwrap()
    );
    assert_eq!(p7s(&theirs), p7s(&ours));
}

#[test]
fn sign_file_usage_and_failure_exit_codes_match() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let module = unsigned_module(d.path(), "dummy");
    let missing = d.path().join("missing.ko");
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec![],
        vec!["sha256".into()],
        vec![
            "-x".into(),
            "sha256".into(),
            k.key.clone().into(),
            k.cert.clone().into(),
            module.clone().into(),
        ],
        vec![
            "sha256".into(),
            k.key.clone().into(),
            k.cert.clone().into(),
            missing.clone().into(),
        ],
        vec![
            "sha256".into(),
            missing.clone().into(),
            k.cert.clone().into(),
            module.clone().into(),
        ],
        vec![
            "sha256".into(),
            k.key.clone().into(),
            missing.clone().into(),
            module.clone().into(),
        ],
    ];
    for args in cases {
        let theirs = Std::new(sign_file()).args(&args).output().unwrap();
        let ours = kmod().arg("sign-file").args(&args).output().unwrap();
        assert_eq!(
            theirs.status.code(),
            ours.status.code(),
            "args {args:?}: {}",
            stderr(&ours)
        );
    }
}

#[test]
fn invoked_as_sign_file_through_a_symlink() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let module = unsigned_module(d.path(), "dummy");
    let link = d.path().join("sign-file");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("cargo-kmod"), &link).unwrap();
    let theirs = d.path().join("theirs.ko");
    oracle(&["sha256"], &[&k.key, &k.cert, &module, &theirs]);
    run(Std::new(&link)
        .arg("sha256")
        .args([&k.key, &k.cert, &module]));
    assert_eq!(
        std::fs::read(&theirs).unwrap(),
        std::fs::read(&module).unwrap()
    );
}

/// ECDSA is randomized: same structure, and each side's output verifies with the other.
#[test]
fn ecdsa_same_structure_and_cross_verification() {
    use cargo_kmod::pki::cms;
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "dummy");
    for algo in ["p256", "p384"] {
        let k = keys().get(algo);
        for hash in ["sha256", "sha384", "sha512"] {
            let theirs = d.path().join("theirs.ko");
            let ours = d.path().join("ours.ko");
            oracle(&[hash], &[&k.key, &k.cert, &module, &theirs]);
            sign_cmd(&k, hash)
                .arg("-o")
                .arg(&ours)
                .arg(&module)
                .assert()
                .success();
            let (t, o) = (
                std::fs::read(&theirs).unwrap(),
                std::fs::read(&ours).unwrap(),
            );
            let cms_of = |b: &[u8]| {
                let n = b.len() - 28;
                let len = u32::from_be_bytes(b[n - 4..n].try_into().unwrap()) as usize;
                let mut sd = cms::parse(&b[n - 12 - len..n - 12]).unwrap();
                // Blank the random signature value; everything else must be equal.
                let mut si = sd.signer_infos.0.iter().next().unwrap().clone();
                si.signature = der::asn1::OctetString::new(vec![]).unwrap();
                sd.signer_infos.0 = der::asn1::SetOfVec::try_from(vec![si]).unwrap();
                sd
            };
            assert_eq!(cms_of(&t), cms_of(&o), "{algo} {hash}");
            for f in [&theirs, &ours] {
                assert_verifies(&k.cert, f);
                openssl_cms_verify(f, &module, &k.cert, d.path());
            }
        }
    }
}

/// `openssl cms -verify` accepts the appended PKCS#7 over the unsigned module.
pub fn openssl_cms_verify(signed: &Path, unsigned: &Path, cert: &Path, dir: &Path) {
    let b = std::fs::read(signed).unwrap();
    let n = b.len() - 28;
    let len = u32::from_be_bytes(b[n - 4..n].try_into().unwrap()) as usize;
    let sig = dir.join("sig.p7");
    std::fs::write(&sig, &b[n - 12 - len..n - 12]).unwrap();
    run(Std::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-noverify",
            "-out",
            "/dev/null",
            "-in",
        ])
        .arg(&sig)
        .arg("-content")
        .arg(unsigned)
        .arg("-certfile")
        .arg(cert));
}

#[test]
fn openssl_cms_accepts_our_signatures() {
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "dummy");
    for (algo, _) in ALGOS {
        let k = keys().get(algo);
        for hash in ["sha256", "sha512", "sha3-256"] {
            let out = d.path().join("o.ko");
            sign_cmd(&k, hash)
                .arg("-o")
                .arg(&out)
                .arg(&module)
                .assert()
                .success();
            openssl_cms_verify(&out, &module, &k.cert, d.path());
        }
    }
}

#[test]
fn modinfo_shows_our_signer_key_and_hash() {
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "dummy");
    let k = keys().get("p384");
    sign_cmd(&k, "sha384").arg(&module).assert().success();
    let m = stdout(&run(Std::new("modinfo").arg(&module)));
    assert!(m.contains("signer:         test key p384\n"), "{m}");
    assert!(m.contains("sig_hashalgo:   sha384\n"), "{m}");
    let serial = stdout(&run(Std::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(&k.cert)));
    let serial = serial.trim().trim_start_matches("serial=");
    let want: Vec<String> = serial
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(
        m.contains(&format!("sig_key:        {}\n", want.join(":"))),
        "{m}\nserial {serial}"
    );
    let ours = stdout(&kmod().arg("info").arg(&module).output().unwrap());
    assert_eq!(ours, m);
}

#[test]
fn already_signed_is_refused_replaced_or_skipped() {
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "dummy");
    let (a, b) = (keys().get("rsa2048"), keys().get("p256"));
    let sign = |k: &Key, extra: &[&str]| {
        sign_cmd(k, "sha512")
            .args(extra)
            .arg(&module)
            .output()
            .unwrap()
    };
    assert!(sign(&a, &[]).status.success());
    let signed = sha256(&module);
    let o = sign(&b, &[]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("already signed") && stderr(&o).contains("help: "));
    assert_eq!(sha256(&module), signed);
    assert!(sign(&b, &["--skip-signed"]).status.success());
    assert_eq!(sha256(&module), signed);
    assert!(sign(&b, &["--replace"]).status.success());
    // Exactly one signature, by b: verifies with b and not with a.
    assert_verifies(&b.cert, &module);
    kmod()
        .arg("verify")
        .arg("--cert")
        .arg(&a.cert)
        .arg(&module)
        .assert()
        .code(11);
    let data = std::fs::read(&module).unwrap();
    let body = strip(&data);
    assert!(
        !body.ends_with(b"~Module signature appended~\n"),
        "double signature written"
    );
}

#[test]
fn unsign_restores_the_original_and_extracts_the_signature() {
    let d = tempfile::tempdir().unwrap();
    let src = debian_module("dummy");
    let m = d.path().join("dummy.ko.xz");
    std::fs::copy(&src, &m).unwrap();
    let full = xz_decompress(&src);
    let sig = d.path().join("sig.p7s");
    kmod()
        .arg("unsign")
        .arg("--extract-sig")
        .arg(&sig)
        .arg(&m)
        .assert()
        .success();
    assert_eq!(xz_decompress(&m), strip(&full));
    let n = full.len() - 28;
    let len = u32::from_be_bytes(full[n - 4..n].try_into().unwrap()) as usize;
    assert_eq!(std::fs::read(&sig).unwrap(), &full[n - 12 - len..n - 12]);
    // A second unsign leaves it as it is; --extract-sig on an unsigned module is an error.
    let before = sha256(&m);
    kmod().arg("unsign").arg(&m).assert().success();
    kmod()
        .arg("unsign")
        .arg("--extract-sig")
        .arg(&sig)
        .arg(&m)
        .assert()
        .code(3);
    assert_eq!(sha256(&m), before);
}

#[test]
fn detached_and_save_sig_write_p7s_like_sign_file() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa3072");
    let theirs = unsigned_module(d.path(), "dummy");
    let ours = d.path().join("ours.ko");
    std::fs::copy(&theirs, &ours).unwrap();
    oracle(&["-d", "sha256"], &[&k.key, &k.cert, &theirs]);
    sign_cmd(&k, "sha256")
        .arg("--detached")
        .arg(&ours)
        .assert()
        .success();
    assert_eq!(sha256(&ours), sha256(&theirs));
    let p = |x: &Path| std::fs::read(format!("{}.p7s", x.display())).unwrap();
    assert_eq!(p(&theirs), p(&ours));
    std::fs::remove_file(format!("{}.p7s", ours.display())).unwrap();
    sign_cmd(&k, "sha256")
        .arg("--save-sig")
        .arg(&ours)
        .assert()
        .success();
    assert_eq!(p(&theirs), p(&ours));
    oracle(&["sha256"], &[&k.key, &k.cert, &theirs]);
    assert_eq!(sha256(&ours), sha256(&theirs));
}

#[test]
fn encrypted_key_with_pin_from_env_or_file() {
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "dummy");
    let k = keys();
    let (enc, cert, plain) = (
        k.dir.path().join("enc.key"),
        k.get("rsa2048").cert,
        k.get("rsa2048").key,
    );
    let reference = d.path().join("ref.ko");
    oracle(&["sha256"], &[&plain, &cert, &module, &reference]);
    let out = d.path().join("a.ko");
    kmod()
        .env("KBUILD_SIGN_PIN", "s3cret")
        .args(["sign", "--hash", "sha256", "--key"])
        .arg(&enc)
        .arg("--cert")
        .arg(&cert)
        .arg("-o")
        .arg(&out)
        .arg(&module)
        .assert()
        .success();
    assert_eq!(sha256(&out), sha256(&reference));
    let pin = d.path().join("pin");
    std::fs::write(&pin, "s3cret\n").unwrap();
    let out2 = d.path().join("b.ko");
    kmod()
        .env_remove("KBUILD_SIGN_PIN")
        .args(["sign", "--hash", "sha256", "--pin-file"])
        .arg(&pin)
        .arg("--key")
        .arg(&enc)
        .arg("--cert")
        .arg(&cert)
        .arg("-o")
        .arg(&out2)
        .arg(&module)
        .assert()
        .success();
    assert_eq!(sha256(&out2), sha256(&reference));
    // DER keys too.
    let der = d.path().join("k.der");
    run(Std::new("openssl")
        .args(["pkey", "-outform", "DER", "-in"])
        .arg(&plain)
        .arg("-out")
        .arg(&der));
    let out3 = d.path().join("c.ko");
    kmod()
        .args(["sign", "--hash", "sha256", "--key"])
        .arg(&der)
        .arg("--cert")
        .arg(&cert)
        .arg("-o")
        .arg(&out3)
        .arg(&module)
        .assert()
        .success();
    assert_eq!(sha256(&out3), sha256(&reference));
}
