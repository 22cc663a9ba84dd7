//! Bad input for every command: one clear error naming the file, a help line, a
//! documented exit code, and the file on disk unchanged.

use crate::common::*;
use std::path::{Path, PathBuf};

struct Case {
    what: &'static str,
    path: PathBuf,
    code: i32,
    says: &'static str,
}

fn bad_modules(d: &Path) -> Vec<Case> {
    let good = unsigned_module(d, "dummy");
    let elf = std::fs::read(&good).unwrap();
    let w = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut wrong_arch = elf.clone();
    wrong_arch[18..20].copy_from_slice(&0x1234u16.to_le_bytes()); // e_machine
    let dir = d.join("adir.ko");
    std::fs::create_dir_all(&dir).unwrap();
    vec![
        Case {
            what: "not ELF",
            path: w("text.ko", b"this is not a module\n"),
            code: 3,
            says: "not an ELF file",
        },
        Case {
            what: "empty",
            path: w("empty.ko", b""),
            code: 3,
            says: "empty",
        },
        Case {
            what: "truncated ELF",
            path: w("trunc.ko", &elf[..elf.len() / 3]),
            code: 3,
            says: "truncated",
        },
        Case {
            what: "wrong-arch ELF",
            path: w("arch.ko", &wrong_arch),
            code: 3,
            says: "architecture",
        },
        Case {
            what: "executable, not a module",
            path: PathBuf::from("/bin/true"),
            code: 3,
            says: "relocatable",
        },
        Case {
            what: "missing",
            path: d.join("missing.ko"),
            code: 3,
            says: "No such file",
        },
        Case {
            what: "directory",
            path: dir,
            code: 3,
            says: "is a directory",
        },
        Case {
            what: "damaged xz",
            path: w("bad.ko.xz", &[0xFD, b'7', b'z', b'X', b'Z', 0, 1, 2, 3]),
            code: 3,
            says: "decompress",
        },
    ]
}

fn digest(p: &Path) -> Option<Vec<u8>> {
    p.is_file().then(|| sha256(p))
}

fn check(o: &std::process::Output, path: &Path, code: i32, says: &str, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    assert!(
        err.contains(&path.display().to_string()),
        "{what}: error does not name the file: {err}"
    );
    assert!(err.contains(says), "{what}: expected \"{says}\" in: {err}");
    assert!(err.contains("\nhelp: "), "{what}: no help line: {err}");
}

#[test]
fn every_command_rejects_bad_modules_and_leaves_them_alone() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    for c in bad_modules(d.path()) {
        let before = digest(&c.path);
        for cmd in ["sign", "verify", "info", "unsign"] {
            let mut k_cmd = kmod();
            k_cmd.arg(cmd);
            match cmd {
                "sign" => {
                    k_cmd.arg("--key").arg(&k.key).arg("--cert").arg(&k.cert);
                }
                "verify" => {
                    k_cmd.arg("--cert").arg(&k.cert);
                }
                _ => {}
            }
            let o = k_cmd.arg(&c.path).output().unwrap();
            check(&o, &c.path, c.code, c.says, &format!("{cmd} / {}", c.what));
            assert_eq!(digest(&c.path), before, "{cmd} / {}: file changed", c.what);
        }
    }
}

#[test]
fn read_only_module_is_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let m = unsigned_module(d.path(), "dummy");
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = sha256(&m);
    let o = sign_cmd(&k, "sha512").arg(&m).output().unwrap();
    check(&o, &m, 7, "read-only", "sign read-only");
    let signed = d.path().join("signed.ko");
    sign_cmd(&k, "sha512")
        .arg("-o")
        .arg(&signed)
        .arg(&m)
        .assert()
        .success();
    std::fs::set_permissions(&signed, std::fs::Permissions::from_mode(0o444)).unwrap();
    let signed_before = sha256(&signed);
    let o = kmod().arg("unsign").arg(&signed).output().unwrap();
    check(&o, &signed, 7, "read-only", "unsign read-only");
    assert_eq!(sha256(&m), before);
    assert_eq!(sha256(&signed), signed_before);
    // No temp files left behind.
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_keys_certs_pins_and_hashes() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    let before = sha256(&m);
    let ks = keys();
    let (rsa, other) = (ks.get("rsa2048"), ks.get("other"));
    let enc = ks.dir.path().join("enc.key");
    let garbage = d.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let garbage_cert = d.path().join("garbage.crt");
    std::fs::write(
        &garbage_cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = d.path().join("nokey.pem");
    // (what, key, cert, KBUILD_SIGN_PIN, exit code, file the error names, words it says)
    type BadKey<'a> = (
        &'a str,
        &'a Path,
        &'a Path,
        Option<&'a str>,
        i32,
        &'a Path,
        &'a str,
    );
    let cases: Vec<BadKey> = vec![
        (
            "key/cert mismatch",
            &rsa.key,
            &other.cert,
            None,
            4,
            &rsa.key,
            "does not match",
        ),
        (
            "encrypted key without PIN",
            &enc,
            &rsa.cert,
            None,
            5,
            &enc,
            "no passphrase",
        ),
        (
            "wrong PIN",
            &enc,
            &rsa.cert,
            Some("wrong"),
            5,
            &enc,
            "wrong passphrase",
        ),
        (
            "garbage PEM key",
            &garbage,
            &rsa.cert,
            None,
            4,
            &garbage,
            "not a valid private key",
        ),
        (
            "garbage PEM cert",
            &rsa.key,
            &garbage_cert,
            None,
            4,
            &garbage_cert,
            "certificate",
        ),
        // Regression (newcomer issue): a missing key was exit 3 with help about modules.
        (
            "missing key",
            &missing,
            &rsa.cert,
            None,
            4,
            &missing,
            "cannot read key: No such file",
        ),
        (
            "missing certificate",
            &rsa.key,
            &missing,
            None,
            4,
            &missing,
            "cannot read certificate: No such file",
        ),
        (
            "cert given as key",
            &rsa.cert,
            &rsa.cert,
            None,
            4,
            &rsa.cert,
            "no private key",
        ),
    ];
    for (what, key, cert, pin, code, names, says) in cases {
        let mut c = kmod();
        c.env_remove("KBUILD_SIGN_PIN");
        if let Some(p) = pin {
            c.env("KBUILD_SIGN_PIN", p);
        }
        let o = c
            .arg("sign")
            .arg("--key")
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .arg(&m)
            .output()
            .unwrap();
        check(&o, names, code, says, what);
        assert_eq!(sha256(&m), before, "{what}: module changed");
    }
    let o = sign_cmd(&rsa, "md5").arg(&m).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("md5"), "{}", stderr(&o));
    // The secret never shows up in any output.
    let o = kmod()
        .env("KBUILD_SIGN_PIN", "hunter2-secret")
        .arg("sign")
        .arg("--key")
        .arg(&enc)
        .arg("--cert")
        .arg(&rsa.cert)
        .arg(&m)
        .output()
        .unwrap();
    assert!(!stderr(&o).contains("hunter2") && !stdout(&o).contains("hunter2"));
    assert_eq!(sha256(&m), before);
}

/// Every exit code the README documents is in `--help` too, and the other way round.
#[test]
fn help_and_readme_document_the_same_exit_codes() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let from_readme: Vec<String> = readme
        .lines()
        .filter_map(|l| {
            l.strip_prefix("| ")?
                .split(" |")
                .next()
                .map(str::trim)
                .map(String::from)
        })
        .filter(|c| c.parse::<u32>().is_ok())
        .collect();
    let help = stdout(&kmod().arg("--help").output().unwrap());
    let from_help: Vec<String> = help
        .lines()
        .filter_map(|l| {
            l.strip_prefix("  ")?
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .filter(|c| c.parse::<u32>().is_ok())
        .collect();
    assert!(from_readme.len() >= 20, "{from_readme:?}");
    assert_eq!(from_readme, from_help);
    // Word for word: the README's table is the library's one.
    let table = cargo_kmod::error::exit::markdown();
    assert!(
        readme.contains(&table),
        "README.md's exit-code table differs from error::exit::TABLE; it should read:\n{table}"
    );
}

/// Regression: `verify … | head -1` exited 0 although modules failed (a closed pipe
/// turned every exit into 0).
#[test]
fn a_closed_stdout_keeps_the_exit_status() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    let k = keys().get("rsa2048");
    for json in [false, true] {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-kmod"));
        c.arg("verify").arg("--cert").arg(&k.cert);
        if json {
            c.args(["--message-format", "json"]);
        }
        let mut child = c
            .args(std::iter::repeat_n(&m, 50))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before anything is written
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(10), "json {json}: {}", stderr(&o));
        assert!(!stderr(&o).contains("internal error"), "{}", stderr(&o));
    }
}

/// One error shape in JSON for every command: `error`, `help`, `exit_code` beside the
/// command's own fields (regression: `sign` said `exit_code`, `unsign` did not; some
/// said `error`, others `message`).
#[test]
fn json_errors_have_one_shape() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.ko");
    std::fs::write(&bad, b"not a module").unwrap();
    let k = keys().get("rsa2048");
    let h = crate::fixtures::debian_headers();
    let p = d.path().join("shape");
    kmod()
        .arg("new")
        .arg(&p)
        .args(["--template", "c-minimal", "--kdir"])
        .arg(&h)
        .assert()
        .success();
    std::fs::write(p.join("shape.c"), "this is not C").unwrap();
    let mut runs: Vec<std::process::Output> = Vec::new();
    for args in [
        vec!["unsign"],
        vec!["verify"],
        vec!["check", "--kdir", &h.to_string_lossy()],
    ] {
        runs.push(
            kmod()
                .args(&args)
                .args(["--message-format", "json"])
                .arg(&bad)
                .output()
                .unwrap(),
        );
    }
    runs.push(
        sign_cmd(&k, "sha256")
            .args(["--message-format", "json"])
            .arg(&bad)
            .output()
            .unwrap(),
    );
    runs.push(
        kmod()
            .arg("build")
            .arg("--manifest-path")
            .arg(p.join("Cargo.toml"))
            .args(["--message-format", "json"])
            .output()
            .unwrap(),
    );
    for o in runs {
        let line = stdout(&o);
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}: {line}\n{}", stderr(&o)));
        assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
        assert!(v["help"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
        assert_eq!(
            v["exit_code"].as_i64(),
            o.status.code().map(i64::from),
            "{v}"
        );
    }
}
