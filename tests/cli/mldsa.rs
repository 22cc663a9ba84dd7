//! ML-DSA module signatures (Linux 7.0+): the 7.2 test kernel (CONFIG_CRYPTO_MLDSA,
//! signatures enforced, trusting keygen's ML-DSA-44/65/87 certificates and one made by
//! PyPI's `cryptography`) is the judge, `cryptography` (OpenSSL 4) the independent
//! verifier.

use crate::common::*;
use crate::fixtures::{boot_on, built_modules, copy_of, test_kernel, test_kernel_72, test_key};
use cargo_kmod::kernel::KernelInfo;
use std::path::{Path, PathBuf};

pub const MLDSA: [&str; 3] = ["mldsa44", "mldsa65", "mldsa87"];

/// The venv scripts/test-deps.sh makes, with `cryptography` 50 and dilithium-py.
pub fn pyca(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let py = cache_dir().join("tools/pyca/bin/python");
    assert!(
        py.exists(),
        "missing test prerequisite: {} — run scripts/test-deps.sh",
        py.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mldsa/pyca.py");
    std::process::Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .unwrap()
}

/// The key `cryptography` made, in one of its PKCS#8 forms (seed, expanded, both).
pub fn pyca_key(form: &str) -> Key {
    let dir = cache_dir().join("test-keys/pyca-mldsa65");
    let k = Key {
        key: dir.join(format!("{form}.pem")),
        cert: dir.join("cert.pem"),
    };
    assert!(
        k.key.exists(),
        "missing test prerequisite: {} — run scripts/test-deps.sh",
        k.key.display()
    );
    k
}

fn kmodtest_for(k: &KernelInfo) -> PathBuf {
    built_modules(k, "kmodtest", &[]).join("kmodtest.ko")
}

/// `cargo kmod sign [extra] --key --cert MODULE`, which must succeed.
pub fn sign_with(m: &Path, k: &Key, extra: &[&str]) {
    let o = kmod()
        .arg("sign")
        .args(extra)
        .arg("--key")
        .arg(&k.key)
        .arg("--cert")
        .arg(&k.cert)
        .arg(m)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", m.display(), stderr(&o));
}

/// The raw signature: the PKCS#7's last OCTET STRING ends where the trailer begins.
fn signature_range(data: &[u8], sig_len: usize) -> std::ops::Range<usize> {
    let end = data.len() - 40;
    end - sig_len..end
}

fn verdict(kernel: &KernelInfo, m: &Path) -> serde_json::Value {
    let o = kmod()
        .args(["verify", "--message-format", "json", "--kernel"])
        .arg(&kernel.kdir)
        .arg(m)
        .output()
        .unwrap();
    serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)))
}

/// Every form and level, booted on the kernel: what it does, and what `verify` says
/// judging by that kernel's tree (its keyring and its .config).
#[test]
fn mldsa_modules_load_on_72_and_every_verdict_is_the_kernels() {
    let (k72, k612) = (test_kernel_72(), test_kernel());
    for n in MLDSA {
        assert!(
            k72.trusted.iter().any(|t| t.contains(n)),
            "the 7.2 test kernel does not trust {n}: {:?}",
            k72.trusted
        );
    }
    // kernel build gave 7.x ML-DSA, and `certs` reads the ML-DSA keys in its image.
    let config = std::fs::read_to_string(k72.kdir.join(".config")).unwrap();
    assert!(
        config.contains("\nCONFIG_CRYPTO_MLDSA=y\n"),
        "7.2 lacks CONFIG_CRYPTO_MLDSA=y"
    );
    let o = kmod().arg("certs").arg(&k72.image).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for level in ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"] {
        assert!(
            stdout(&o).contains(&format!("key:      {level}\n")),
            "{level}: {}",
            stdout(&o)
        );
    }
    let d = tempfile::tempdir().unwrap();
    let ko = kmodtest_for(k72);
    let mut rows: Vec<(PathBuf, &KernelInfo, serde_json::Value, &str)> = Vec::new();
    for n in MLDSA {
        let m = copy_of(&ko, d.path(), &format!("{n}.ko"));
        sign_with(&m, &test_key(n), &[]);
        rows.push((m, k72, serde_json::Value::Null, "OK"));
    }
    // Keys from another implementation, in each PKCS#8 form.
    for form in ["seed", "expanded", "both"] {
        let m = copy_of(&ko, d.path(), &format!("pyca-{form}.ko"));
        sign_with(&m, &pyca_key(form), &[]);
        rows.push((m, k72, serde_json::Value::Null, "OK"));
    }
    // And that key encrypted by `cryptography` (PBES2), unlocked by --pin-file.
    let pin = d.path().join("pin");
    std::fs::write(&pin, "correct horse\n").unwrap();
    let encrypted = Key {
        key: d.path().join("encrypted.pem"),
        cert: pyca_key("seed").cert,
    };
    let o = pyca(&[
        "encrypt".as_ref(),
        pyca_key("seed").key.as_os_str(),
        pin.as_os_str(),
        encrypted.key.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = copy_of(&ko, d.path(), "pyca-encrypted.ko");
    sign_with(&m, &encrypted, &["--pin-file", pin.to_str().unwrap()]);
    rows.push((m, k72, serde_json::Value::Null, "OK"));
    // The signed-attribute form (ours, and sign-file's): refused without the waiver.
    let attrs = copy_of(&ko, d.path(), "attrs.ko");
    sign_with(&attrs, &test_key("mldsa65"), &["--signed-attrs"]);
    rows.push((attrs.clone(), k72, "bad-signature".into(), "EKEYREJECTED"));
    let sf = copy_of(&ko, d.path(), "sign-file.ko");
    let k87 = test_key("mldsa87");
    kmod()
        .arg("sign-file")
        .arg("sha512")
        .arg(&k87.key)
        .arg(&k87.cert)
        .arg(&sf)
        .assert()
        .success();
    rows.push((sf, k72, "bad-signature".into(), "EKEYREJECTED"));
    // One flipped bit in the commitment hash: the lattice check fails.
    let good = rows[1].0.clone();
    let flipped = copy_of(&good, d.path(), "flipped.ko");
    let mut b = std::fs::read(&flipped).unwrap();
    let at = signature_range(&b, 3309).start;
    b[at] ^= 1;
    std::fs::write(&flipped, &b).unwrap();
    rows.push((flipped, k72, "bad-signature".into(), "EKEYREJECTED"));
    // A hint count beyond omega: the decoder gives up (EBADMSG), which the trust
    // check, like every failure of a trusted key's check, turns into EKEYREJECTED.
    let hint = copy_of(&good, d.path(), "hint.ko");
    let mut b = std::fs::read(&hint).unwrap();
    let last = signature_range(&b, 3309).end - 1;
    b[last] = 0xff;
    std::fs::write(&hint, &b).unwrap();
    rows.push((hint, k72, "bad-signature".into(), "EKEYREJECTED"));
    // 6.12 predates ML-DSA: "Unsupported pkey algo".
    let old = copy_of(&kmodtest_for(k612), d.path(), "on-612.ko");
    sign_with(&old, &test_key("mldsa65"), &[]);
    rows.push((old, k612, "unsupported-crypto".into(), "ENOPKG"));

    for (m, kernel, kernel_says, want) in &rows {
        let (code, v, err) = boot_on(kernel, &[m], &[]);
        let r = &v["modules"][0];
        assert_eq!(r["refusal"], *kernel_says, "{}: {v}\n{err}", m.display());
        if kernel_says.is_null() {
            assert_eq!(code, 0, "{}: {v}\n{err}", m.display());
            assert_eq!(r["loaded"], true, "{}: {v}", m.display());
            assert_eq!(r["unloaded"], true, "{}: {v}", m.display());
        }
        let j = verdict(kernel, m);
        assert_eq!(
            j["verdict"],
            *want,
            "{}: the kernel said {kernel_says}, verify said {j}",
            m.display()
        );
        if j["verdict"] == "OK" {
            assert!(j["hash"].as_str().unwrap().starts_with("ML-DSA-"), "{j}");
        }
    }
    // The attribute form's verdict follows the kernel's config: this one has no waiver;
    // without any config, verify gives both outcomes.
    let j = verdict(k72, &attrs);
    assert!(
        j["reason"].as_str().unwrap() == "Invalid module sig (has authattrs)",
        "{j}"
    );
    let o = kmod()
        .args(["verify", "--cert"])
        .arg(test_key("mldsa65").cert)
        .arg(&attrs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(13), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA=y (there: OK: signed by \"cargo-kmod test mldsa65\" with ML-DSA-65 (signed attributes, sha512))"),
        "{}",
        stdout(&o)
    );
}

/// `cryptography` (OpenSSL 4) checks what we make: keygen's certificates, raw
/// signatures over the module (attribute-free form) and over the signed attributes'
/// DER (attribute form); and `modinfo` shows an ML-DSA signature as it does others.
#[test]
fn an_independent_implementation_verifies_our_keys_and_signatures() {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use der::{Decode, Encode};
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "tun");
    let body = std::fs::read(&module).unwrap();
    for n in MLDSA {
        let k = test_key(n);
        let o = pyca(&["check-cert".as_ref(), k.cert.as_os_str()]);
        assert!(o.status.success(), "{n}: {}", stderr(&o));
        for attrs in [false, true] {
            let m = copy_of(&module, d.path(), &format!("{n}-{attrs}.ko"));
            sign_with(&m, &k, if attrs { &["--signed-attrs"] } else { &[] });
            let data = std::fs::read(&m).unwrap();
            let p7 = &data[body.len()..data.len() - 40];
            let ci = ContentInfo::from_der(p7).unwrap();
            let sd: SignedData = ci.content.decode_as().unwrap();
            let si = sd.signer_infos.0.get(0).unwrap();
            let sig = d.path().join("sig");
            std::fs::write(&sig, si.signature.as_bytes()).unwrap();
            let signed = d.path().join("signed");
            match &si.signed_attrs {
                None => {
                    assert!(!attrs);
                    std::fs::write(&signed, &body).unwrap();
                }
                Some(a) => {
                    assert!(attrs);
                    // The SET's DER is what is signed; its messageDigest is SHA-512.
                    let der = a.to_der().unwrap();
                    let digest = run(std::process::Command::new("openssl")
                        .args(["dgst", "-sha512", "-binary"])
                        .arg(&module))
                    .stdout;
                    assert!(
                        der.windows(64).any(|w| w == digest),
                        "{n}: no messageDigest"
                    );
                    std::fs::write(&signed, der).unwrap();
                }
            }
            let o = pyca(&[
                "verify".as_ref(),
                k.cert.as_os_str(),
                sig.as_os_str(),
                signed.as_os_str(),
            ]);
            assert!(o.status.success(), "{n} attrs={attrs}: {}", stdout(&o));
            // And it says no to a changed message.
            let mut tampered = std::fs::read(&signed).unwrap();
            tampered[100] ^= 1;
            std::fs::write(&signed, tampered).unwrap();
            let o = pyca(&[
                "verify".as_ref(),
                k.cert.as_os_str(),
                sig.as_os_str(),
                signed.as_os_str(),
            ]);
            assert_eq!(o.status.code(), Some(1), "{n}: tampered message verified");
            // modinfo's signature fields equal info's.
            let ours = kmod().arg("info").arg(&m).output().unwrap();
            assert!(ours.status.success(), "{}", stderr(&ours));
            let ours = stdout(&ours);
            let theirs = stdout(&run(std::process::Command::new("modinfo").arg(&m)));
            for field in ["sig_id:", "signer:", "sig_key:", "sig_hashalgo:"] {
                let line = |s: &str| {
                    s.lines()
                        .find(|l| l.starts_with(field))
                        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                };
                assert_eq!(line(&ours), line(&theirs), "{n}: {field}");
            }
            assert!(theirs.contains("sig_hashalgo:   sha512"), "{theirs}");
        }
    }
}

/// Bad input: each a clear error with its exit code, and the module as it was.
#[test]
fn mldsa_bad_input_is_refused_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "tun");
    let before = std::fs::read(&module).unwrap();
    let ml = test_key("mldsa65");
    // A truncated seed: the PKCS#8 of a 31-byte seed.
    let pem = std::fs::read_to_string(&ml.key).unwrap();
    assert!(
        pem.contains("BEGIN PRIVATE KEY"),
        "keygen writes PKCS#8 PEM"
    );
    let seed = d.path().join("short.der");
    let mut der = hex::decode("3033020100300b0609608648016503040312042180").unwrap();
    der.extend([0x1f]);
    der.extend([7u8; 31]);
    std::fs::write(&seed, &der).unwrap();
    let p256 = test_key("p256");
    let cases: [(&str, Vec<std::ffi::OsString>, i32, &str); 4] = [
        (
            "ML-DSA key, ECDSA certificate",
            vec![
                "--key".into(),
                ml.key.clone().into(),
                "--cert".into(),
                p256.cert.clone().into(),
            ],
            4,
            "private key does not match the certificate",
        ),
        (
            "truncated seed",
            vec![
                "--key".into(),
                seed.clone().into(),
                "--cert".into(),
                ml.cert.clone().into(),
            ],
            4,
            "not a valid ML-DSA-65 private key",
        ),
        (
            "--hash sha256",
            vec![
                "--hash".into(),
                "sha256".into(),
                "--key".into(),
                ml.key.clone().into(),
                "--cert".into(),
                ml.cert.clone().into(),
            ],
            // A hash the key cannot take: exit 4, as every hash problem (regression: 2).
            4,
            "ML-DSA-65 module signatures take sha512, not sha256",
        ),
        (
            "--signed-attrs with ECDSA",
            vec![
                "--signed-attrs".into(),
                "--key".into(),
                p256.key.clone().into(),
                "--cert".into(),
                p256.cert.clone().into(),
            ],
            2,
            "signed attributes are for ML-DSA keys",
        ),
    ];
    for (what, args, code, says) in cases {
        let o = kmod()
            .arg("sign")
            .args(&args)
            .arg(&module)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(code), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains("help: "), "{what}: {}", stderr(&o));
        assert_eq!(
            std::fs::read(&module).unwrap(),
            before,
            "{what}: module changed"
        );
    }
    // ML-DSA for a 6.12 target: a signed build is refused before it compiles.
    let p = d.path().join("demo");
    kmod()
        .arg("new")
        .arg(&p)
        .args(["--template", "c-minimal", "--author", "Jane Dev", "--kdir"])
        .arg(&test_kernel().kdir)
        .assert()
        .success();
    let o = kmod()
        .arg("build")
        .arg("--manifest-path")
        .arg(p.join("Cargo.toml"))
        .arg("--kdir")
        .arg(&test_kernel().kdir)
        .arg("--sign")
        .arg("--key")
        .arg(&ml.key)
        .arg("--cert")
        .arg(&ml.cert)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(25), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("predates ML-DSA module signatures (Linux 7.0)"),
        "{}",
        stderr(&o)
    );
    assert!(!p.join("target").exists(), "the refused build left target/");
    // A 6.12 kernel cannot trust an ML-DSA certificate: kernel build refuses it, and
    // leaves nothing behind.
    let out = d.path().join("kernels");
    let o = kmod()
        .args([
            "kernel",
            "build",
            "--source",
            "/usr/src/linux-source-6.12.tar.xz",
            "--out",
        ])
        .arg(&out)
        .arg("--trusted-cert")
        .arg(&ml.cert)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has an ML-DSA-65 key, and Linux 6.12"),
        "{}",
        stderr(&o)
    );
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(left.is_empty(), "kernel build left {left:?}");
}
