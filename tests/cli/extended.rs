//! The extended kernels, 7.3-rc (Debian experimental) and 6.1 (bookworm, no Rust):
//! `scripts/test.sh --extended` builds them and runs these (ignored otherwise, so CI
//! lists them as ignored rather than passing them).

use crate::common::*;
use crate::generations::every_template_on;
use cargo_kmod::kernel::KernelInfo;

fn extended_kernel(record: &str) -> KernelInfo {
    crate::fixtures::recorded(record, "scripts/test.sh --extended")
}

#[test]
#[ignore = "extended: scripts/test.sh --extended"]
fn every_template_on_73_rc() {
    let k = extended_kernel("test-kernel-7.3.txt");
    assert!(k.release.starts_with("7.3"), "{}", k.release);
    assert!(k.rust, "7.3 builds with Rust here");
    every_template_on(&k);
}

#[test]
#[ignore = "extended: scripts/test.sh --extended"]
fn kernel_61_builds_without_rust_and_c_templates_load() {
    let k = extended_kernel("test-kernel-6.1.txt");
    assert!(k.release.starts_with("6.1."), "{}", k.release);
    assert!(!k.rust, "6.1 pins rustc 1.62: built without Rust");
    // Asking for Rust is refused with the reason, before any work.
    let src = cache_dir().join("fixtures/linux-source-6.1/usr/src/linux-source-6.1.tar.xz");
    let o = kmod()
        .args(["kernel", "build", "--rust", "--source"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(25), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs exactly rustc 1.62"),
        "{}",
        stderr(&o)
    );
    every_template_on(&k);
}

/// 7.3-rc built with --mldsa-waiver: the signed-attribute form loads there (the 7.2
/// test kernel refuses it), the kernel says it waived it, and `verify` reading that
/// kernel's .config agrees.
#[test]
#[ignore = "extended: scripts/test.sh --extended"]
fn signed_attribute_mldsa_loads_on_a_kernel_with_the_waiver() {
    use crate::fixtures::{boot_on, built_modules, copy_of, test_key};
    let k = extended_kernel("test-kernel-7.3.txt");
    let config = std::fs::read_to_string(k.kdir.join(".config")).unwrap();
    assert!(
        config.contains("CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA=y"),
        "7.3 was not built with --mldsa-waiver"
    );
    let d = tempfile::tempdir().unwrap();
    let ko = built_modules(&k, "kmodtest", &[]).join("kmodtest.ko");
    let (ml65, ml87) = (test_key("mldsa65"), test_key("mldsa87"));
    let plain = copy_of(&ko, d.path(), "plain.ko");
    let attrs = copy_of(&ko, d.path(), "attrs.ko");
    let sf = copy_of(&ko, d.path(), "sign-file.ko");
    crate::mldsa::sign_with(&plain, &ml65, &[]);
    crate::mldsa::sign_with(&attrs, &ml65, &["--signed-attrs"]);
    kmod()
        .arg("sign-file")
        .arg("sha512")
        .arg(&ml87.key)
        .arg(&ml87.cert)
        .arg(&sf)
        .assert()
        .success();
    for m in [&plain, &attrs, &sf] {
        let (code, v, err) = boot_on(&k, &[m], &[]);
        assert_eq!(code, 0, "{}: {v}\n{err}", m.display());
        assert_eq!(v["modules"][0]["loaded"], true, "{}: {v}", m.display());
        if m != &plain {
            assert!(
                v.to_string()
                    .contains("Waived invalid module sig (has authattrs)"),
                "{}: {v}",
                m.display()
            );
        }
        let o = kmod()
            .args(["verify", "--message-format", "json", "--kernel"])
            .arg(&k.kdir)
            .arg(m)
            .output()
            .unwrap();
        let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(j["verdict"], "OK", "{}: {j}", m.display());
    }
}
