//! keygen, install, DKMS and .deb, checked with the real tools.

use crate::common::*;
use crate::fixtures::test_kernel;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

fn debian_release() -> String {
    let ver = std::fs::read_to_string(cache_dir().join("debian-kernel-version"))
        .expect("missing test prerequisite: Debian kernel version — run scripts/test-deps.sh");
    format!("{}-amd64", ver.trim())
}

fn project(dir: &Path, template: &str, kdir: &Path) -> PathBuf {
    let p = dir.join(format!("pkg_{}", template.replace('-', "_")));
    kmod()
        .arg("new")
        .arg(&p)
        .args(["--template", template, "--author", "Pat Kager", "--kdir"])
        .arg(kdir)
        .assert()
        .success();
    p
}

fn in_project(p: &Path) -> assert_cmd::Command {
    let mut c = kmod();
    c.current_dir(p);
    c
}

/// Regression: a dangling symlink at the certificate's name made keygen fail after
/// writing the private key, which stayed behind.
#[test]
fn keygen_that_cannot_write_the_certificate_leaves_no_key() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("keys");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink("/nonexistent/cert", out.join("signing_key.crt")).unwrap();
    let o = kmod().args(["keygen", "--out"]).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("signing_key.crt exists"),
        "{}",
        stderr(&o)
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["signing_key.crt"], "only the symlink that was there");
}

#[test]
fn keygen_makes_kernel_and_mok_compatible_keys_that_the_kernel_accepts() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let ko = crate::fixtures::built_module("kmodtest");
    for algo in ["rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ecdsa-p384"] {
        let out = d.path().join(algo);
        kmod()
            .args([
                "keygen",
                "--algo",
                algo,
                "--mok",
                "--cn",
                &format!("keygen {algo}"),
                "--out",
            ])
            .arg(&out)
            .assert()
            .success();
        let key = out.join("signing_key.pem");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = stdout(&run(Std::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(out.join("signing_key.crt"))));
        for want in [
            "CA:FALSE",
            "Digital Signature",
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
            "Code Signing",
        ] {
            assert!(text.contains(want), "{algo}: no {want} in {text}");
        }
        assert!(
            text.contains("X509v3 Basic Constraints: critical"),
            "{text}"
        );
        // The DER is the same certificate (what mokutil --import takes).
        let der = stdout(&run(Std::new("openssl")
            .args(["x509", "-inform", "DER", "-noout", "-fingerprint", "-in"])
            .arg(out.join("signing_key.der"))));
        let pem = stdout(&run(Std::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-in"])
            .arg(out.join("signing_key.crt"))));
        assert_eq!(der, pem);
        // Never overwrites.
        let before = sha256(&key);
        kmod().args(["keygen", "--out"]).arg(&out).assert().code(2);
        assert_eq!(sha256(&key), before);
        // The key signs a module that verifies with the certificate.
        let m = d.path().join(format!("{algo}.ko"));
        std::fs::copy(&ko, &m).unwrap();
        kmod()
            .arg("sign")
            .arg("--key")
            .arg(&key)
            .arg("--cert")
            .arg(out.join("signing_key.crt"))
            .arg(&m)
            .assert()
            .success();
        assert_verifies(&out.join("signing_key.der"), &m);
    }
    // Plain keygen: no codeSigning EKU.
    let out = d.path().join("plain");
    kmod()
        .args(["keygen", "--algo", "ecdsa-p256", "--out"])
        .arg(&out)
        .assert()
        .success();
    let text = stdout(&run(Std::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(out.join("signing_key.crt"))));
    assert!(!text.contains("Code Signing"));
}

// That the kernel accepts modules signed with each keygen algorithm is shown by
// run::signed_modules_load_and_unload_for_every_key_and_hash: the test kernel trusts
// keys made by `cargo kmod keygen` (scripts/test-deps.sh).

#[test]
fn install_into_a_root_compresses_like_the_kernel_and_runs_depmod() {
    let d = tempfile::tempdir().unwrap();
    let rel = debian_release();
    let p = project(
        d.path(),
        "c-params",
        Path::new(&format!("/usr/src/linux-headers-{rel}")),
    );
    in_project(&p).arg("build").assert().success();
    let kg = d.path().join("kg");
    kmod()
        .args(["keygen", "--algo", "ecdsa-p384", "--out"])
        .arg(&kg)
        .assert()
        .success();
    let root = d.path().join("root");
    for _ in 0..2 {
        // Idempotent: the second install replaces the same file.
        in_project(&p)
            .args(["install", "--kernel-release", &rel, "--sign", "--key"])
            .arg(kg.join("signing_key.pem"))
            .arg("--cert")
            .arg(kg.join("signing_key.crt"))
            .arg("--root")
            .arg(&root)
            .assert()
            .success();
    }
    let moddir = root.join(format!("lib/modules/{rel}"));
    let installed = moddir.join("updates/pkg_c_params.ko.xz");
    assert!(
        installed.is_file(),
        "Debian's modules are .ko.xz, so is ours"
    );
    let files: Vec<_> = std::fs::read_dir(moddir.join("updates")).unwrap().collect();
    assert_eq!(files.len(), 1);
    let mi = stdout(&run(Std::new("modinfo").arg(&installed)));
    assert!(
        mi.contains("name:           pkg_c_params")
            && mi.contains("signer:         cargo-kmod module signing key"),
        "{mi}"
    );
    let dep = std::fs::read_to_string(moddir.join("modules.dep")).unwrap();
    assert!(
        dep.lines()
            .any(|l| l.starts_with("updates/pkg_c_params.ko.xz:")),
        "{dep}"
    );
    assert_verifies(&kg.join("signing_key.crt"), &installed);
    let xz = stdout(&run(Std::new("xz").args(["-lvv"]).arg(&installed)));
    assert!(xz.contains("CRC32"), "{xz}");
}

#[test]
fn deb_installs_with_dpkg_root_and_modinfo_reads_it() {
    let d = tempfile::tempdir().unwrap();
    let rel = debian_release();
    let p = project(
        d.path(),
        "c-minimal",
        Path::new(&format!("/usr/src/linux-headers-{rel}")),
    );
    in_project(&p).arg("build").assert().success();
    let out = d.path().join("debs");
    let o = in_project(&p)
        .args(["package", "--deb", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let deb = PathBuf::from(stdout(&o).trim());
    let info = stdout(&run(Std::new("dpkg-deb").arg("--info").arg(&deb)));
    assert!(
        info.contains(&format!("Depends: linux-image-{rel}")),
        "{info}"
    );
    assert!(
        info.contains("postinst") && info.contains("postrm"),
        "{info}"
    );
    let contents = stdout(&run(Std::new("dpkg-deb").arg("--contents").arg(&deb)));
    assert!(
        contents.contains(&format!("./lib/modules/{rel}/updates/pkg_c_minimal.ko.xz")),
        "{contents}"
    );
    let root = d.path().join("root");
    crate::fixtures::dpkg_install(&root, &deb);
    let installed = root.join(format!("lib/modules/{rel}/updates/pkg_c_minimal.ko.xz"));
    let mi = stdout(&run(Std::new("modinfo").arg(&installed)));
    assert!(mi.contains("name:           pkg_c_minimal"), "{mi}");
    let dep = std::fs::read_to_string(root.join(format!("lib/modules/{rel}/modules.dep"))).unwrap();
    assert!(
        dep.contains("updates/pkg_c_minimal.ko.xz:"),
        "postinst ran depmod: {dep}"
    );
}

struct DkmsCleanup(String, String);
impl Drop for DkmsCleanup {
    fn drop(&mut self) {
        let _ = Std::new("dkms")
            .args(["remove", "-m", &self.0, "-v", &self.1, "--all"])
            .output();
        let _ = std::fs::remove_dir_all(format!("/usr/src/{}-{}", self.0, self.1));
    }
}

fn dkms_round(p: &Path, name: &str, release: &str) {
    let out = p.join("target/dkms-out");
    let o = in_project(p)
        .args(["package", "--dkms", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tree = out.join(format!("{name}-0.1.0"));
    let conf = std::fs::read_to_string(tree.join("dkms.conf")).unwrap();
    assert!(
        conf.contains("AUTOINSTALL=\"yes\"")
            && conf.contains(&format!("BUILT_MODULE_NAME[0]=\"{name}\"")),
        "{conf}"
    );
    assert!(out.join(format!("{name}-0.1.0.dkms.tar.gz")).is_file());
    let _cleanup = DkmsCleanup(name.into(), "0.1.0".into());
    let _ = std::fs::remove_dir_all(format!("/usr/src/{name}-0.1.0"));
    run(Std::new("cp")
        .arg("-r")
        .arg(&tree)
        .arg(format!("/usr/src/{name}-0.1.0")));
    run(Std::new("dkms").args(["add", "-m", name, "-v", "0.1.0"]));
    let b = Std::new("dkms")
        .args(["build", "-m", name, "-v", "0.1.0", "-k", release])
        .output()
        .unwrap();
    if !b.status.success() {
        let log = std::fs::read_to_string(format!("/var/lib/dkms/{name}/0.1.0/build/make.log"))
            .unwrap_or_default();
        panic!("dkms build failed: {}{}\n{log}", stdout(&b), stderr(&b));
    }
    run(Std::new("dkms").args([
        "install", "-m", name, "-v", "0.1.0", "-k", release, "--force",
    ]));
    let status = stdout(&run(Std::new("dkms").args(["status", "-m", name])));
    assert!(status.contains("installed"), "{status}");
    let found: Vec<_> = walkdir::WalkDir::new(format!("/lib/modules/{release}/updates"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}.ko"))
        })
        .collect();
    assert!(
        !found.is_empty(),
        "dkms install put no {name}.ko under /lib/modules/{release}/updates"
    );
}

#[test]
fn dkms_builds_and_installs_the_c_template_for_debian_headers() {
    let d = tempfile::tempdir().unwrap();
    let rel = debian_release();
    assert!(
        Path::new(&format!("/lib/modules/{rel}/build")).exists(),
        "missing test prerequisite: linux-headers-{rel} — run scripts/test-deps.sh"
    );
    let p = project(
        d.path(),
        "c-minimal",
        Path::new(&format!("/usr/src/linux-headers-{rel}")),
    );
    dkms_round(&p, "pkg_c_minimal", &rel);
}

#[test]
fn dkms_builds_and_installs_the_rust_template_for_the_test_kernel() {
    let d = tempfile::tempdir().unwrap();
    let k = test_kernel();
    // The test kernel, installed the way DKMS looks for a kernel's tree.
    let build = PathBuf::from(format!("/lib/modules/{}/build", k.release));
    std::fs::create_dir_all(build.parent().unwrap()).unwrap();
    if std::fs::read_link(&build).ok().as_deref() != Some(k.kdir.as_path()) {
        let _ = std::fs::remove_file(&build);
        std::os::unix::fs::symlink(&k.kdir, &build).unwrap();
    }
    let p = project(d.path(), "rust-minimal", &k.kdir);
    let conf_check = |conf: &str| {
        assert!(
            conf.contains("BUILD_EXCLUSIVE_CONFIG=\"CONFIG_RUST\""),
            "{conf}"
        );
        assert!(
            conf.contains("RUSTC=/usr/bin/rustc") && conf.contains("LLVM="),
            "{conf}"
        );
    };
    dkms_round(&p, "pkg_rust_minimal", &k.release);
    conf_check(
        &std::fs::read_to_string(p.join("target/dkms-out/pkg_rust_minimal-0.1.0/dkms.conf"))
            .unwrap(),
    );
}
