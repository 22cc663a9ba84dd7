//! `verify`: the kernel's verdicts, for good signatures and each way one can break.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

fn verdict(module: &Path, cert: &Path) -> (i32, String) {
    let o = kmod()
        .arg("verify")
        .arg("--cert")
        .arg(cert)
        .arg(module)
        .output()
        .unwrap();
    (o.status.code().unwrap(), stdout(&o))
}

fn signed_copy(dir: &Path, name: &str, k: &Key, hash: &str) -> PathBuf {
    let m = unsigned_module(dir, "dummy");
    let out = dir.join(name);
    sign_cmd(k, hash)
        .arg("-o")
        .arg(&out)
        .arg(&m)
        .assert()
        .success();
    out
}

fn mutate(p: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut d = std::fs::read(p).unwrap();
    f(&mut d);
    std::fs::write(p, d).unwrap();
}

#[test]
fn accepts_sign_file_and_our_signatures() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    for (algo, _) in ALGOS {
        let k = keys().get(algo);
        let theirs = d.path().join("t.ko");
        run(Std::new(sign_file())
            .arg("sha256")
            .args([&k.key, &k.cert, &m, &theirs]));
        let (code, out) = verdict(&theirs, &k.cert);
        assert_eq!(code, 0, "{algo}: {out}");
        assert!(
            out.contains(&format!("OK: signed by \"test key {algo}\" with sha256")),
            "{out}"
        );
        let ours = signed_copy(d.path(), "o.ko", &k, "sha512");
        assert_eq!(verdict(&ours, &k.cert).0, 0);
    }
}

/// Each broken module and the errno the kernel gives it (exit codes 10..15).
#[test]
fn rejection_table() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let good = signed_copy(d.path(), "good.ko", &k, "sha256");
    let len = std::fs::read(&good).unwrap().len();
    let case = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let p = d.path().join(name);
        std::fs::copy(&good, &p).unwrap();
        mutate(&p, f);
        p
    };
    let table: Vec<(&str, PathBuf, i32, &str)> = vec![
        (
            "body byte",
            case("body.ko", &|v| v[1000] ^= 1),
            13,
            "EKEYREJECTED",
        ),
        (
            "cms byte (signature value)",
            case("cms.ko", &|v| {
                let i = v.len() - 41;
                v[i] ^= 1
            }),
            13,
            "EKEYREJECTED",
        ),
        (
            "cms byte (structure)",
            case("cms2.ko", &|v| {
                let n = v.len();
                let sig_len = u32::from_be_bytes(v[n - 32..n - 28].try_into().unwrap()) as usize;
                v[n - 40 - sig_len] = 0x31; // SEQUENCE tag -> SET
            }),
            14,
            "EBADMSG",
        ),
        (
            "trailer magic byte",
            case("magic.ko", &|v| {
                let i = v.len() - 2;
                v[i] ^= 1
            }),
            10,
            "ENODATA",
        ),
        (
            "truncated file",
            case("trunc.ko", &|v| v.truncate(len - 10)),
            10,
            "ENODATA",
        ),
        (
            "sig_len larger than file",
            case("siglen.ko", &|v| {
                let i = v.len() - 32;
                v[i..i + 4].copy_from_slice(&(len as u32).to_be_bytes())
            }),
            14,
            "EBADMSG",
        ),
        (
            "reserved byte non-zero",
            case("pad.ko", &|v| {
                let i = v.len() - 35;
                v[i] = 1
            }),
            14,
            "EBADMSG",
        ),
        (
            "id_type not PKCS#7",
            case("idtype.ko", &|v| {
                let i = v.len() - 38;
                v[i] = 1
            }),
            12,
            "ENOPKG",
        ),
    ];
    for (what, p, code, name) in &table {
        let (c, out) = verdict(p, &k.cert);
        assert_eq!((c, out.contains(name)), (*code, true), "{what}: {out}");
    }
    // Wrong certificate: no key matches.
    let other = keys().get("other");
    let (c, out) = verdict(&good, &other.cert);
    assert_eq!(c, 11, "{out}");
    assert!(
        out.contains("ENOKEY") && out.contains("unavailable key"),
        "{out}"
    );
    // Unsigned module.
    let (c, out) = verdict(&unsigned_module(d.path(), "dummy"), &k.cert);
    assert_eq!(c, 10, "{out}");
    assert!(
        out.contains("Loading of unsigned module is rejected"),
        "{out}"
    );
}

/// Signatures made by openssl with shapes the kernel refuses for modules.
#[test]
fn signed_attributes_and_unsupported_digest_are_rejected() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let m = unsigned_module(d.path(), "dummy");
    let make = |name: &str, extra: &[&str]| {
        let sig = d.path().join(format!("{name}.p7"));
        run(Std::new("openssl")
            .args(["cms", "-sign", "-binary", "-outform", "DER", "-nocerts"])
            .args(extra)
            .arg("-in")
            .arg(&m)
            .arg("-signer")
            .arg(&k.cert)
            .arg("-inkey")
            .arg(&k.key)
            .arg("-out")
            .arg(&sig));
        let out = d.path().join(format!("{name}.ko"));
        run(Std::new(sign_file())
            .arg("-s")
            .arg(&sig)
            .arg("sha256")
            .args([&k.cert, &m, &out]));
        out
    };
    let with_attrs = make("attrs", &["-md", "sha256", "-nosmimecap"]);
    let (c, out) = verdict(&with_attrs, &k.cert);
    assert_eq!(c, 13, "{out}");
    assert!(out.contains("has authattrs"), "{out}");
    // OpenSSL's default attributes include S/MIME capabilities, which the kernel's
    // parser refuses first (outside Authenticode).
    let with_caps = make("caps", &["-md", "sha256"]);
    let (c, out) = verdict(&with_caps, &k.cert);
    assert_eq!(c, 13, "{out}");
    assert!(
        out.contains("S/MIME Caps only allowed with Authenticode"),
        "{out}"
    );
    let md5 = make("md5", &["-md", "md5", "-noattr"]);
    let (c, out) = verdict(&md5, &k.cert);
    assert_eq!(c, 12, "{out}");
    assert!(out.contains("ENOPKG") && out.contains("digest"), "{out}");
    // Control: the same recipe with sha256 and no attributes is what the kernel wants.
    let plain = make("plain", &["-md", "sha256", "-noattr"]);
    assert_eq!(verdict(&plain, &k.cert).0, 0);
}

#[test]
fn certificates_from_bundles_and_directories_and_json() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (keys().get("p256"), keys().get("rsa4096"));
    let ma = signed_copy(d.path(), "a.ko", &a, "sha256");
    let mb = signed_copy(d.path(), "b.ko", &b, "sha384");
    let bundle = d.path().join("bundle.pem");
    let mut pem = std::fs::read(&a.cert).unwrap();
    pem.extend(std::fs::read(&b.cert).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    kmod()
        .arg("verify")
        .arg("--cert")
        .arg(&bundle)
        .args([&ma, &mb])
        .assert()
        .success();
    let certdir = d.path().join("certs");
    std::fs::create_dir(&certdir).unwrap();
    run(Std::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&b.cert)
        .arg("-out")
        .arg(certdir.join("b.der")));
    std::fs::copy(&a.cert, certdir.join("a.pem")).unwrap();
    let o = kmod()
        .arg("verify")
        .arg("--cert")
        .arg(&certdir)
        .args(["--message-format", "json"])
        .args([&ma, &mb])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["verdict"], "OK");
    assert_eq!(lines[1]["hash"], "sha384");
    // Mixed verdicts: the highest exit code wins.
    let unsigned = unsigned_module(d.path(), "dummy");
    kmod()
        .arg("verify")
        .arg("--cert")
        .arg(&a.cert)
        .args([&ma, &mb, &unsigned])
        .assert()
        .code(11);
}
