//! Keys in a token: SoftHSM2 (a real PKCS#11 module) with keys imported by OpenSC's
//! pkcs11-tool, each test in its own token directory.

use crate::common::*;
use crate::fixtures::test_key;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Token {
    _dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Token {
    /// A fresh token `kmod` (user PIN pin4711secret) holding each (label, id, key, cert).
    fn new(keys: &[(&str, &str, &Key)]) -> Token {
        assert!(
            Path::new(MODULE).exists(),
            "missing test prerequisite: {MODULE} (softhsm2) — run scripts/test-deps.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}/tokens\nobjectstore.backend = file\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let t = Token { _dir: dir, conf };
        run(t.cmd("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            "kmod",
            "--so-pin",
            "5678",
            "--pin",
            "pin4711secret",
        ]));
        for (label, id, k) in keys {
            // The key and its certificate, as DER objects under one id and label.
            for (openssl, pem, kind) in [("pkey", &k.key, "privkey"), ("x509", &k.cert, "cert")] {
                let der = t._dir.path().join(format!("{label}.{kind}.der"));
                run(Std::new("openssl")
                    .args([openssl, "-outform", "DER", "-in"])
                    .arg(pem)
                    .arg("-out")
                    .arg(&der));
                run(t
                    .tool()
                    .args(["--write-object"])
                    .arg(&der)
                    .args(["--type", kind, "--id", id, "--label", label]));
            }
        }
        t
    }

    fn cmd(&self, prog: &str) -> Std {
        let mut c = Std::new(prog);
        c.env("SOFTHSM2_CONF", &self.conf);
        c
    }

    fn tool(&self) -> Std {
        let mut c = self.cmd("pkcs11-tool");
        c.args(["--module", MODULE, "--login", "--pin", "pin4711secret"]);
        c
    }

    fn kmod(&self) -> assert_cmd::Command {
        let mut c = kmod();
        c.env("SOFTHSM2_CONF", &self.conf)
            .env_remove("KBUILD_SIGN_PIN")
            .env_remove("PKCS11_MODULE_PATH");
        c
    }
}

fn uri(object: &str, extra: &str) -> String {
    format!("pkcs11:token=kmod;object={object};type=private?module-path={MODULE}{extra}")
}

#[test]
fn rsa_through_pkcs11_is_byte_identical_to_the_pem_key() {
    let d = tempfile::tempdir().unwrap();
    let rsa = keys().get("rsa3072");
    let tok = Token::new(&[("rsa", "01", &rsa)]);
    let m = unsigned_module(d.path(), "dummy");
    for hash in ["sha256", "sha512"] {
        let (pem_out, tok_out, no_cert) = (
            d.path().join("pem.ko"),
            d.path().join("tok.ko"),
            d.path().join("nocert.ko"),
        );
        sign_cmd(&rsa, hash)
            .arg("-o")
            .arg(&pem_out)
            .arg(&m)
            .assert()
            .success();
        tok.kmod()
            .args([
                "sign",
                "--hash",
                hash,
                "--key",
                &uri("rsa", "&pin-value=pin4711secret"),
                "--cert",
            ])
            .arg(&rsa.cert)
            .arg("-o")
            .arg(&tok_out)
            .arg(&m)
            .assert()
            .success();
        assert_eq!(sha256(&pem_out), sha256(&tok_out), "{hash}");
        // The certificate can come from the token; the PIN from KBUILD_SIGN_PIN.
        tok.kmod()
            .env("KBUILD_SIGN_PIN", "pin4711secret")
            .args(["sign", "--hash", hash, "--key", &uri("rsa", "")])
            .arg("-o")
            .arg(&no_cert)
            .arg(&m)
            .assert()
            .success();
        assert_eq!(sha256(&pem_out), sha256(&no_cert), "{hash}");
    }
    // sign-file drop-in with a pkcs11: key, PIN from KBUILD_SIGN_PIN.
    let sf = d.path().join("sf.ko");
    tok.kmod()
        .env("KBUILD_SIGN_PIN", "pin4711secret")
        .args(["sign-file", "sha256", &uri("rsa", "")])
        .arg(&rsa.cert)
        .arg(&m)
        .arg(&sf)
        .assert()
        .success();
    let reference = d.path().join("ref.ko");
    run(Std::new(sign_file())
        .arg("sha256")
        .args([&rsa.key, &rsa.cert, &m, &reference]));
    assert_eq!(sha256(&sf), sha256(&reference));
}

#[test]
fn ecdsa_through_pkcs11_verifies_with_verify_and_openssl_cms() {
    let d = tempfile::tempdir().unwrap();
    let (p256, p384) = (keys().get("p256"), keys().get("p384"));
    let tok = Token::new(&[("p256", "02", &p256), ("p384", "03", &p384)]);
    let m = unsigned_module(d.path(), "dummy");
    for (label, k) in [("p256", &p256), ("p384", &p384)] {
        let out = d.path().join(format!("{label}.ko"));
        tok.kmod()
            .args([
                "sign",
                "--hash",
                "sha384",
                "--key",
                &uri(label, "&pin-value=pin4711secret"),
            ])
            .arg("-o")
            .arg(&out)
            .arg(&m)
            .assert()
            .success();
        assert_verifies(&k.cert, &out);
        crate::sign::openssl_cms_verify(&out, &m, &k.cert, d.path());
    }
}

#[test]
fn a_module_signed_through_pkcs11_loads_in_the_test_kernel() {
    let d = tempfile::tempdir().unwrap();
    let trusted = test_key("rsa4096");
    let tok = Token::new(&[("kernel", "04", &trusted)]);
    let m = d.path().join("kmodtest.ko");
    std::fs::copy(crate::fixtures::built_module("kmodtest"), &m).unwrap();
    tok.kmod()
        .args([
            "sign",
            "--hash",
            "sha256",
            "--key",
            &uri("kernel", "&pin-value=pin4711secret"),
        ])
        .arg(&m)
        .assert()
        .success();
    let (code, v, err) = crate::fixtures::boot(&[&m], &[]);
    assert_eq!(code, 0, "{v}\n{err}");
}

/// The token's PIN, and a wrong one: neither may ever be printed.
const PINS: [&str; 2] = ["pin4711secret", "wrong0000pin"];

fn assert_no_pin(what: &str, text: &str) {
    for pin in PINS {
        assert!(!text.contains(pin), "{what}: a PIN was printed: {text}");
    }
}

/// A URI with the PIN as a query attribute (`?pin-value=`) or, as RFC 7512 also
/// allows, a path one (`;pin-value=`).
fn uri_pin(token: &str, object: &str, pin: &str, in_path: bool) -> String {
    if in_path {
        format!(
            "pkcs11:token={token};object={object};pin-value={pin};type=private?module-path={MODULE}"
        )
    } else {
        format!(
            "pkcs11:token={token};object={object};type=private?module-path={MODULE}&pin-value={pin}"
        )
    }
}

#[test]
fn wrong_pin_missing_token_missing_object_fail_clearly_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let rsa = keys().get("rsa2048");
    let tok = Token::new(&[("rsa", "01", &rsa)]);
    let m = unsigned_module(d.path(), "dummy");
    let before = sha256(&m);
    let [pin, wrong] = PINS;
    for in_path in [false, true] {
        let cases: [(&str, String, i32, &str); 4] = [
            (
                "wrong PIN",
                uri_pin("kmod", "rsa", wrong, in_path),
                5,
                "wrong passphrase or PIN",
            ),
            ("no PIN", uri("rsa", ""), 5, "no passphrase"),
            (
                "missing token",
                uri_pin("nosuch", "rsa", pin, in_path),
                4,
                "no token labelled `nosuch` (tokens: kmod)",
            ),
            (
                "missing object",
                uri_pin("kmod", "nosuch", pin, in_path),
                4,
                "no private key on the token matches",
            ),
        ];
        for (what, u, code, says) in cases {
            let what = format!(
                "{what} (PIN in the {})",
                if in_path { "path" } else { "query" }
            );
            let o = tok
                .kmod()
                .args(["sign", "--key", &u, "--cert"])
                .arg(&rsa.cert)
                .arg(&m)
                .output()
                .unwrap();
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(code), "{what}: {err}");
            assert!(err.contains(says), "{what}: {err}");
            assert!(err.contains("help: "), "{what}: {err}");
            assert_no_pin(&what, &err);
            assert_eq!(sha256(&m), before, "{what}");
            // sign-file reports failures as 1, and names the key the same way.
            let o = tok
                .kmod()
                .args(["sign-file", "sha256", &u])
                .arg(&rsa.cert)
                .arg(&m)
                .output()
                .unwrap();
            assert_eq!(
                o.status.code(),
                Some(1),
                "sign-file, {what}: {}",
                stderr(&o)
            );
            assert_no_pin(&format!("sign-file, {what}"), &stderr(&o));
            assert_eq!(sha256(&m), before, "sign-file, {what}");
        }
        // And when it works: the results name the key without its PIN.
        let o = tok
            .kmod()
            .args([
                "sign",
                "--message-format",
                "json",
                "--key",
                &uri_pin("kmod", "rsa", pin, in_path),
            ])
            .arg("--cert")
            .arg(&rsa.cert)
            .arg("-o")
            .arg(d.path().join("out.ko"))
            .arg(&m)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_no_pin("sign", &format!("{}{}", stdout(&o), stderr(&o)));
    }
    // A token key whose certificate is another key's: refused before anything is signed.
    let other = keys().get("other");
    let o = tok
        .kmod()
        .args([
            "sign",
            "--key",
            &uri("rsa", "&pin-value=pin4711secret"),
            "--cert",
        ])
        .arg(&other.cert)
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));
    assert_eq!(sha256(&m), before);
}

#[test]
fn tree_signing_through_pkcs11_with_two_jobs() {
    let d = tempfile::tempdir().unwrap();
    let rsa = keys().get("rsa2048");
    let tok = Token::new(&[("rsa", "01", &rsa)]);
    let tree = d.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let mods: Vec<PathBuf> = debian_modules()
        .iter()
        .take(24)
        .map(|src| {
            let p = tree.join(
                src.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches(".xz"),
            );
            std::fs::write(&p, strip(&xz_decompress(src))).unwrap();
            p
        })
        .collect();
    let pem_tree = d.path().join("pem");
    run(Std::new("cp").arg("-a").arg(&tree).arg(&pem_tree));
    tok.kmod()
        .args([
            "sign",
            "-j",
            "2",
            "--key",
            &uri("rsa", "&pin-value=pin4711secret"),
            "--cert",
        ])
        .arg(&rsa.cert)
        .arg(&tree)
        .assert()
        .success();
    kmod()
        .args(["sign", "-j", "1", "--key"])
        .arg(&rsa.key)
        .arg("--cert")
        .arg(&rsa.cert)
        .arg(&pem_tree)
        .assert()
        .success();
    for m in &mods {
        assert_eq!(
            sha256(m),
            sha256(&pem_tree.join(m.file_name().unwrap())),
            "{}",
            m.display()
        );
    }
}

#[test]
fn keygen_in_the_token_writes_only_the_certificate() {
    let d = tempfile::tempdir().unwrap();
    let tok = Token::new(&[]);
    let m = unsigned_module(d.path(), "dummy");
    for algo in ["rsa3072", "ecdsa-p256"] {
        let out = d.path().join(algo);
        // The PIN as a path attribute: the success message and the suggested `sign`
        // command show the URI without it.
        let u = uri_pin("kmod", &format!("gen-{algo}"), PINS[0], true).replace(";type=private", "");
        let o = tok
            .kmod()
            .args(["keygen", "--mok", "--algo", algo, "--pkcs11", &u, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let said = format!("{}{}", stdout(&o), stderr(&o));
        assert!(said.contains(&format!("object=gen-{algo}")), "{said}");
        assert_no_pin("keygen", &said);
        assert!(!out.join("signing_key.pem").exists(), "no private key file");
        run(Std::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(out.join("signing_key.crt"))
            .arg(out.join("signing_key.crt")));
        let text = stdout(&run(Std::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(out.join("signing_key.crt"))));
        assert!(
            text.contains("CA:FALSE") && text.contains("Code Signing"),
            "{text}"
        );
        // The token holds the key and the certificate: sign without --cert.
        let signed = d.path().join(format!("{algo}.ko"));
        tok.kmod()
            .args(["sign", "--key", &u])
            .arg("-o")
            .arg(&signed)
            .arg(&m)
            .assert()
            .success();
        assert_verifies(&out.join("signing_key.der"), &signed);
        // Never overwrites, in the token or on disk.
        let o = tok
            .kmod()
            .args(["keygen", "--algo", algo, "--pkcs11", &u, "--out"])
            .arg(d.path().join("again"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert!(stderr(&o).contains("never overwrites"), "{}", stderr(&o));
        assert_no_pin("keygen again", &stderr(&o));
    }
    let listed = stdout(&run(tok.tool().arg("--list-objects")));
    assert_eq!(listed.matches("Private Key Object").count(), 2, "{listed}");
}

/// `pkcs11-tool --sign` as an external signer on a SoftHSM2 token: RSA through the raw
/// PKCS#1 mechanism (`--signer-input digest-info`) is byte-identical with `sign --key`
/// of the same key; ECDSA P-256 (`-m ECDSA`, raw r‖s out) verifies.
#[test]
fn pkcs11_tool_as_external_signer() {
    let d = tempfile::tempdir().unwrap();
    let (rsa, ec) = (keys().get("rsa2048"), keys().get("p256"));
    let tok = Token::new(&[("rsa", "01", &rsa), ("ec", "02", &ec)]);
    let m = unsigned_module(d.path(), "dummy");
    let tool = |mech: &str, id: &str| {
        format!(
            "pkcs11-tool --module {MODULE} --login --pin pin4711secret --sign -m {mech} --id {id} 2>/dev/null"
        )
    };
    let (by_key, by_tool) = (d.path().join("key.ko"), d.path().join("tool.ko"));
    sign_cmd(&rsa, "sha256")
        .arg("-o")
        .arg(&by_key)
        .arg(&m)
        .assert()
        .success();
    tok.kmod()
        .args(["sign", "--hash", "sha256", "--cert"])
        .arg(&rsa.cert)
        .args([
            "--signer",
            &tool("RSA-PKCS", "01"),
            "--signer-input",
            "digest-info",
        ])
        .arg("-o")
        .arg(&by_tool)
        .arg(&m)
        .assert()
        .success();
    assert_eq!(sha256(&by_key), sha256(&by_tool));
    let ec_out = d.path().join("ec.ko");
    tok.kmod()
        .args(["sign", "--hash", "sha256", "--cert"])
        .arg(&ec.cert)
        .args(["--signer", &tool("ECDSA", "02")])
        .arg("-o")
        .arg(&ec_out)
        .arg(&m)
        .assert()
        .success();
    let o = kmod()
        .args(["verify", "--cert"])
        .arg(&ec.cert)
        .arg(&ec_out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
}
