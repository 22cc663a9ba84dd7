//! What a newcomer meets first (the newcomer issue): each message pinned, with its
//! exit code.

use crate::common::*;

#[test]
fn info_takes_message_format_json_as_every_other_command_does() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    for flags in [&["--message-format", "json"][..], &["--json"][..]] {
        let o = kmod().arg("info").args(flags).arg(&m).output().unwrap();
        assert!(o.status.success(), "{flags:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert!(v.to_string().contains("dummy"), "{flags:?}: {v}");
    }
}

#[test]
fn sign_file_help_prints_help_and_the_usage_it_accepts() {
    let o = kmod().args(["sign-file", "--help"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Usage: scripts/sign-file [-dpk] <hash algo>"),
        "{out}"
    );
    assert!(
        out.contains("-k  identify the signer by subjectKeyIdentifier"),
        "{out}"
    );
    // sign-file's own usage error stays exit 2.
    let o = kmod().args(["sign-file", "-x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("[-dpk]"), "{}", stderr(&o));
}

#[test]
fn a_missing_certificate_is_a_certificate_error_not_a_module_one() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    let missing = d.path().join("missing.crt");
    let o = kmod()
        .arg("verify")
        .arg("--cert")
        .arg(&missing)
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "{}: cannot read certificate: No such file",
            missing.display()
        )) && e.contains("help: give the X.509 certificate (PEM or DER)"),
        "{e}"
    );
}

#[test]
fn keygen_says_an_before_a_vowel_sound() {
    let d = tempfile::tempdir().unwrap();
    for (algo, said) in [
        ("ecdsa-p384", "generated an ecdsa-p384 key"),
        ("rsa2048", "generated an rsa2048 key"),
    ] {
        let o = kmod()
            .args(["keygen", "--algo", algo, "--out"])
            .arg(d.path().join(algo))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
    }
}
