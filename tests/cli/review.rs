//! Regressions from the adversarial review (issue 33), each named after its bug. Where
//! a verdict is concerned, a booted kernel judges it in the same test; where a path or
//! a package is concerned, the real depmod, modprobe, dpkg, rpm and skopeo do.

use crate::common::*;
use crate::fixtures::built_project;
use crate::fixtures::debian_61_headers;
use crate::fixtures::{check_json, debian_612, depmod_copy};
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// Debian 12's 6.1 headers say `6.1.192` in include/config/kernel.release; the kernel
/// is `6.1.0-57-amd64` (.kernelvariables, UTS_RELEASE, vermagic). Everything the tool
/// makes for it must say the latter: modprobe on Debian 12 looks nowhere else.
#[test]
fn debian_12s_default_kernel_gets_its_real_release_everywhere() {
    let h61 = debian_61_headers();
    let release = h61
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("linux-headers-")
        .to_string();
    let stale = std::fs::read_to_string(h61.join("include/config/kernel.release")).unwrap();
    assert_ne!(
        stale.trim(),
        release,
        "the headers no longer differ: nothing to test"
    );
    let d = tempfile::tempdir().unwrap();
    let p = built_project(
        &d.path().join("rel61"),
        "c-minimal",
        &["--kdir", &h61.to_string_lossy()],
        &[&h61],
    );
    let ko = p.join("target/kmod").join(&release).join("rel61.ko");
    assert!(ko.is_file(), "{} not built", ko.display());
    let vermagic = stdout(&run(Std::new("modinfo").args(["-F", "vermagic"]).arg(&ko)));
    assert!(vermagic.starts_with(&format!("{release} ")), "{vermagic}");
    let man = p.join("Cargo.toml");
    // install: where depmod and modprobe of that kernel look.
    let root = d.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    kmod()
        .arg("install")
        .arg("--manifest-path")
        .arg(&man)
        .arg("--root")
        .arg(&root)
        .assert()
        .success();
    let moddir = root.join("lib/modules").join(&release);
    let installed = moddir.join("updates/rel61.ko");
    assert!(installed.is_file(), "not at {}", installed.display());
    let o = run(Std::new("modprobe").arg("-d").arg(&root).args([
        "-S",
        &release,
        "--show-depends",
        "rel61",
    ]));
    assert!(
        stdout(&o).contains(&installed.display().to_string()),
        "{}",
        stdout(&o)
    );
    // Every package format names the real release.
    let out = d.path().join("out");
    kmod()
        .arg("package")
        .arg("--manifest-path")
        .arg(&man)
        .args([
            "--deb",
            "--rpm",
            "--oci",
            "--image",
            "registry.example/kmm/rel61",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let deb = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let contents = stdout(&run(Std::new("dpkg-deb").arg("-c").arg(&deb)));
    assert!(
        contents.contains(&format!("lib/modules/{release}/updates/")),
        "{contents}"
    );
    assert!(!contents.contains(stale.trim()), "{contents}");
    let rpm = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".rpm"))
        .expect("an .rpm");
    let files = stdout(&run(Std::new("rpm").args(["-qlp"]).arg(&rpm)));
    assert!(
        files.contains(&format!("/lib/modules/{release}/")),
        "{files}"
    );
    let layout = out.join("rel61-oci");
    let o = run(Std::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:{release}", layout.display())));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["Labels"]["io.cargo-kmod.kernel.release"],
        release.as_str()
    );
    // check names it, and looks for its installed modules where they are.
    let o = kmod()
        .arg("check")
        .arg("--kdir")
        .arg(&h61)
        .arg("-v")
        .arg(&ko)
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains(&format!("Linux {release}"))
            || stderr(&o).contains(&format!("Linux {release}")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(!stdout(&o).contains(stale.trim()), "{}", stdout(&o));
    // Named explicitly, the release is where it goes (it went to 6.1.192, exit 0).
    let root2 = d.path().join("root2");
    kmod()
        .arg("install")
        .arg("--manifest-path")
        .arg(&man)
        .args(["--kernel-release", &release, "--root"])
        .arg(&root2)
        .assert()
        .success();
    assert!(
        root2
            .join("lib/modules")
            .join(&release)
            .join("updates/rel61.ko")
            .is_file()
    );
    assert!(!root2.join("lib/modules").join(stale.trim()).exists());
}

/// `[package.metadata.kmod]` values reached paths, dkms.conf and RPM specs unchecked.
#[test]
fn cargo_toml_values_that_would_escape_or_run_are_refused_at_load() {
    let d = tempfile::tempdir().unwrap();
    let h = crate::fixtures::debian_headers();
    let p = built_project(&d.path().join("victim"), "c-minimal", &[], &[&h]);
    let man = p.join("Cargo.toml");
    let original = std::fs::read_to_string(&man).unwrap();
    let out = d.path().join("out");
    // What `../../../escaped` would have replaced and deleted.
    let escaped = d.path().join("escaped-0.1.0");
    std::fs::create_dir_all(&escaped).unwrap();
    std::fs::write(escaped.join("keep"), b"mine").unwrap();
    let pwned = d.path().join("PWNED");
    for (field, value, says) in [
        (
            "name",
            "\"../../../escaped\"".to_string(),
            "[package.metadata.kmod] name",
        ),
        (
            "name",
            format!("\"proj$(touch {})\"", pwned.display()),
            "not a valid module name",
        ),
        (
            "name",
            format!("\"proj%(touch {}; echo x)\"", pwned.display()),
            "not a valid module name",
        ),
        ("install-dir", "\"../../../../esc\"".into(), "install-dir"),
    ] {
        let text = set_line(&original, "[package.metadata.kmod]", field, &value);
        std::fs::write(&man, &text).unwrap();
        let root = d.path().join("root");
        for args in [
            vec!["package", "--dkms", "--out"],
            vec!["package", "--srpm", "--out"],
            vec!["package", "--deb", "--out"],
            vec!["install", "--root"],
        ] {
            let o = kmod()
                .args(&args)
                .arg(if args[0] == "install" { &root } else { &out })
                .arg("--manifest-path")
                .arg(&man)
                .output()
                .unwrap();
            assert_eq!(
                o.status.code(),
                Some(3),
                "{field}={value} {args:?}: {}",
                stderr(&o)
            );
            let err = stderr(&o);
            assert!(
                err.contains(&man.display().to_string()) && err.contains(says),
                "{err}"
            );
            assert!(err.contains("help: correct"), "{err}");
            assert!(!pwned.exists(), "{field}={value}: a command ran");
            assert_eq!(std::fs::read(escaped.join("keep")).unwrap(), b"mine");
            assert!(!d.path().join("esc").exists());
            assert!(!out.exists() && !root.exists(), "{args:?} wrote something");
        }
    }
    // Text fields that reach control files and specs: one line where one line goes.
    std::fs::write(
        &man,
        set_line(
            &original,
            "[package]",
            "license",
            "\"GPL\\n%post\\ntouch PWNED\"",
        ),
    )
    .unwrap();
    let o = kmod()
        .args(["package", "--srpm", "--manifest-path"])
        .arg(&man)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("[package] license"), "{}", stderr(&o));
}

/// `install-dir` wrote outside --root; a failing depmod left the module and its own
/// temporary file behind while saying nothing was written.
#[test]
fn install_stays_under_root_and_a_failed_depmod_takes_back_what_it_wrote() {
    let d = tempfile::tempdir().unwrap();
    let h = crate::fixtures::debian_headers();
    let p = built_project(&d.path().join("inst"), "c-minimal", &[], &[&h]);
    let man = p.join("Cargo.toml");
    let release = cargo_kmod::target::Target::from_tree(&h).unwrap().release;
    let root = d.path().join("root");
    let moddir = root.join("lib/modules").join(&release);
    // An earlier install, then depmod made to fail: modules.dep is a directory.
    std::fs::create_dir_all(moddir.join("updates")).unwrap();
    std::fs::write(moddir.join("updates/inst.ko"), b"the earlier install").unwrap();
    std::fs::create_dir_all(moddir.join("modules.dep")).unwrap();
    let listing = |dir: &Path| {
        let mut v: Vec<String> = walkdir::WalkDir::new(dir)
            .into_iter()
            .flatten()
            .map(|e| e.path().display().to_string())
            .collect();
        v.sort();
        v
    };
    let install = || {
        kmod()
            .arg("install")
            .arg("--manifest-path")
            .arg(&man)
            .arg("--root")
            .arg(&root)
            .output()
            .unwrap()
    };
    let before = listing(&root);
    let o = install();
    assert_eq!(o.status.code(), Some(26), "{}", stderr(&o));
    assert!(stderr(&o).contains("depmod failed"), "{}", stderr(&o));
    assert_eq!(listing(&root), before, "a failed install left files");
    assert_eq!(
        std::fs::read(moddir.join("updates/inst.ko")).unwrap(),
        b"the earlier install"
    );
    // A symbolic link out of the root is not followed.
    std::fs::remove_dir(moddir.join("modules.dep")).unwrap();
    std::fs::remove_dir_all(moddir.join("updates")).unwrap();
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, moddir.join("updates")).unwrap();
    let o = install();
    assert_eq!(o.status.code(), Some(26), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("leads outside --root"),
        "{}",
        stderr(&o)
    );
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}

/// Debian's kernels have CONFIG_MODULE_FORCE_LOAD: a module without `__versions` on
/// their MODVERSIONS kernel loads, tainted F; check said "Exec format error".
#[test]
fn a_module_without_symbol_versions_force_loads_on_debians_612() {
    let k = debian_612();
    let d = tempfile::tempdir().unwrap();
    let plain = unsigned_module(d.path(), "dummy");
    let m = d.path().join("noversions.ko");
    run(Std::new("objcopy")
        .args(["--remove-section=__versions"])
        .arg(&plain)
        .arg(&m));
    let (code, v) = check_json(&k.args(), std::slice::from_ref(&m));
    assert_eq!(code, 0, "{v:?}");
    assert_eq!(v[0]["verdict"], "loads", "{}", v[0]);
    assert!(v[0]["taints"].as_str().unwrap().contains('F'), "{}", v[0]);
    let (v, o) = crate::fixtures::run_image(&k.image, &["--module".as_ref(), m.as_os_str()]);
    assert!(o.status.success(), "{v}\n{}", stderr(&o));
    assert_eq!(v["modules"][0]["loaded"], true, "{v}");
    assert!(
        v.to_string().contains("module_layout: kernel tainted."),
        "{v}"
    );
    // TAINT_FORCED_MODULE is bit 1 of /proc/sys/kernel/tainted.
    assert_ne!(v["tainted"].as_u64().unwrap() & (1 << 1), 0, "{v}");
}

/// depmod takes `updates/fat.ko` (DKMS's) over `kernel/fs/fat/fat.ko`; check and run
/// took the kernel's. Here the updates copy is unsigned and signatures are enforced:
/// the booted kernel refuses it, as check predicts, where modprobe loads it.
#[test]
fn updates_overrides_the_kernels_own_module_as_depmod_says() {
    let k = debian_612();
    let d = tempfile::tempdir().unwrap();
    let fat = unsigned_module(d.path(), "fat");
    let root = depmod_copy(&k, &[&fat]);
    let tree = root.path().join("lib/modules").join(&k.release);
    let o = run(Std::new("modprobe").arg("-d").arg(root.path()).args([
        "-S",
        &k.release,
        "--show-depends",
        "vfat",
    ]));
    let updates = tree.join("updates/fat.ko");
    assert!(
        stdout(&o).contains(&format!("insmod {} ", updates.display())),
        "{}",
        stdout(&o)
    );
    let vfat = k.modules.join("kernel/fs/fat/vfat.ko.xz");
    let (v, o) = crate::fixtures::run_image(
        &k.image,
        &[
            "--module".as_ref(),
            vfat.as_os_str(),
            "--modules-from".as_ref(),
            tree.as_os_str(),
            "--enforce".as_ref(),
        ],
    );
    let all = v.to_string();
    assert!(
        all.contains(&updates.display().to_string()),
        "{all}\n{}",
        stderr(&o)
    );
    assert!(
        all.contains("Loading of unsigned module is rejected"),
        "{all}"
    );
}

/// A bad `--param` was blamed on the signature; a `"` in a value was mangled.
#[test]
fn a_bad_parameter_is_named_as_the_kernel_names_it() {
    let d = tempfile::tempdir().unwrap();
    let m = crate::fixtures::copy_of(
        &crate::fixtures::built_module("kmodtest"),
        d.path(),
        "kmodtest.ko",
    );
    crate::fixtures::sign(&m, &crate::fixtures::test_key("rsa2048"), "sha256");
    let (code, v, err) = crate::fixtures::boot(&[&m], &["--param", "count=abc"]);
    assert_eq!(code, 20, "{v}\n{err}");
    assert_eq!(v["modules"][0]["refusal"], "invalid-parameters", "{v}");
    assert!(v.to_string().contains("invalid for parameter"), "{v}");
    assert!(!v.to_string().contains("for a signature"), "{v}");
    for bad in ["greeting=say \"hi\" now", "greeting=\"quoted\""] {
        let o = kmod()
            .arg("run")
            .arg("--kdir")
            .arg(&crate::fixtures::test_kernel().kdir)
            .arg("--module")
            .arg(&m)
            .args(["--param", bad])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot receive this value intact"),
            "{}",
            stderr(&o)
        );
    }
    let o = kmod()
        .arg("run")
        .arg("--kdir")
        .arg(&crate::fixtures::test_kernel().kdir)
        .args(["--timeout", "0"])
        .arg("--module")
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// The PE certificate table of Debian's arm64 vmlinuz: the Authenticode signature.
fn authenticode_signer(image: &Path) -> openssl::x509::X509 {
    let b = std::fs::read(image).unwrap();
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let pe = u32_at(0x3c);
    assert_eq!(&b[pe..pe + 4], b"PE\0\0");
    let opt = pe + 24;
    assert_eq!(u16::from_le_bytes([b[opt], b[opt + 1]]), 0x20b, "PE32+");
    let (off, size) = (u32_at(opt + 112 + 32), u32_at(opt + 112 + 36));
    // WIN_CERTIFICATE: length, revision, type, then the PKCS#7.
    let p7 = openssl::pkcs7::Pkcs7::from_der(&b[off + 8..off + size]).unwrap();
    let certs = p7.signed().unwrap().certificates().unwrap();
    let signer = certs
        .iter()
        .find(|c| format!("{:?}", c.subject_name()).contains("Signer"))
        .expect("a signer certificate");
    signer.to_owned()
}

/// certs, verify --kernel and check --kernel took the EFI signer of Debian's arm64
/// vmlinuz as a kernel key: a module signed by a certificate copying its issuer and
/// serial was EKEYREJECTED where the booted kernel says ENOKEY (loads, taint E).
#[test]
fn an_arm64_images_authenticode_signer_is_not_a_kernel_key() {
    let (image, modules) = crate::fixtures::debian_arm64();
    let signer = authenticode_signer(&image);
    let o = kmod().arg("certs").arg(&image).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("Secure Boot"), "{}", stdout(&o));
    // A key of ours in a certificate with the signer's issuer and serial.
    let d = tempfile::tempdir().unwrap();
    let pkey = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut x = openssl::x509::X509Builder::new().unwrap();
    x.set_version(2).unwrap();
    x.set_serial_number(signer.serial_number()).unwrap();
    x.set_issuer_name(signer.issuer_name()).unwrap();
    x.set_subject_name(signer.subject_name()).unwrap();
    x.set_pubkey(&pkey).unwrap();
    x.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    x.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    x.sign(&pkey, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let (key, cert) = (d.path().join("k.pem"), d.path().join("c.pem"));
    std::fs::write(&key, pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(&cert, x.build().to_pem().unwrap()).unwrap();
    let dummy = ko_xz_under(&modules)
        .into_iter()
        .find(|p| p.ends_with("drivers/net/dummy.ko.xz"))
        .unwrap();
    let m = d.path().join("dummy.ko");
    std::fs::write(&m, strip(&xz_decompress(&dummy))).unwrap();
    sign_cmd(&Key { key, cert }, "sha256")
        .arg(&m)
        .assert()
        .success();
    let o = kmod()
        .arg("verify")
        .arg("--kernel")
        .arg(&image)
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(11),
        "ENOKEY: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let (v, o) = crate::fixtures::run_image(&image, &["--module".as_ref(), m.as_os_str()]);
    assert!(o.status.success(), "{v}\n{}", stderr(&o));
    assert_eq!(v["modules"][0]["loaded"], true, "{v}");
    assert!(v.to_string().contains("module verification failed"), "{v}");
}

/// A truncated Image.gz passed `certs` with exit 0; a half one said "no certificates".
#[test]
fn a_truncated_compressed_image_is_named_truncated() {
    let (image, _) = crate::fixtures::debian_arm64();
    let d = tempfile::tempdir().unwrap();
    let gz = d.path().join("Image.gz");
    let o = Std::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -1 -n < {} > {}",
            image.display(),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(o.success());
    let whole = std::fs::read(&gz).unwrap();
    for (name, len) in [("tail", whole.len() - 64), ("half", whole.len() / 2)] {
        let cut = d.path().join(format!("{name}.gz"));
        std::fs::write(&cut, &whole[..len]).unwrap();
        let o = kmod().arg("certs").arg(&cut).output().unwrap();
        assert_eq!(o.status.code(), Some(3), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("truncated or damaged"),
            "{name}: {}",
            stderr(&o)
        );
    }
    kmod().arg("certs").arg(&gz).assert().success();
}

/// `package --image` reached the KMM YAML unchecked.
#[test]
fn an_image_reference_must_be_one() {
    let d = tempfile::tempdir().unwrap();
    let h = crate::fixtures::debian_headers();
    let p = built_project(&d.path().join("img"), "c-minimal", &[], &[&h]);
    for bad in [
        "Quay.IO/Me/X Y",
        "quay.io/me/x\nkind: Evil",
        "quay.io/a:tag",
    ] {
        let o = kmod()
            .arg("package")
            .arg("--manifest-path")
            .arg(p.join("Cargo.toml"))
            .args(["--oci", "--image", bad])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not an image repository"),
            "{}",
            stderr(&o)
        );
    }
}

/// Wrong codes and help, one line each in the review.
#[test]
fn wrong_codes_and_help_are_right() {
    let d = tempfile::tempdir().unwrap();
    let ko = unsigned_module(d.path(), "dummy");
    // A garbage .config: exit 3 naming it (was 25, "use an x86_64 kernel").
    let cfg = d.path().join("config");
    std::fs::write(&cfg, "# Linux/garbage Kernel Configuration\nCONFIG_FOO=y\n").unwrap();
    let o = kmod()
        .arg("check")
        .arg("--kernel")
        .arg(&cfg)
        .arg(&ko)
        .output()
        .unwrap();
    let tree = d.path().join("tree");
    std::fs::create_dir_all(tree.join("include/config")).unwrap();
    std::fs::copy(&cfg, tree.join(".config")).unwrap();
    std::fs::write(tree.join("include/config/kernel.release"), "6.12.0\n").unwrap();
    std::fs::write(tree.join("Module.symvers"), "").unwrap();
    let o2 = kmod()
        .arg("check")
        .arg("--kdir")
        .arg(&tree)
        .arg(&ko)
        .output()
        .unwrap();
    for o in [o, o2] {
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(stderr(&o).contains("config"), "{}", stderr(&o));
        assert!(!stderr(&o).contains("x86_64 kernel"), "{}", stderr(&o));
    }
    // kernel prepare --headers /nonexistent: names --headers, not --kdir.
    let o = kmod()
        .args(["kernel", "prepare", "--headers", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(27), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--headers") && !stderr(&o).contains("--kdir"),
        "{}",
        stderr(&o)
    );
    // verify with certificates the kernel cannot load: says so, not "none given".
    let ml = cache_dir().join("test-keys/mldsa65/signing_key.crt");
    let o = kmod()
        .arg("verify")
        .arg("--cert")
        .arg(&ml)
        .arg("--kernel")
        .arg(crate::fixtures::test_kernel().kdir.join(".config"))
        .arg(&ko)
        .output()
        .unwrap();
    assert!(
        !stderr(&o).contains("no --cert or --kernel given"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("no certificate given is one the kernel can load"),
        "{}",
        stderr(&o)
    );
    // info prints modinfo's bytes as kmod's modinfo does, not U+FFFD.
    let odd = d.path().join("odd.ko");
    let mut b = std::fs::read(&ko).unwrap();
    let at = b
        .windows(12)
        .position(|w| w == b"description=")
        .expect("a description");
    b[at + 12] = 0xff;
    std::fs::write(&odd, &b).unwrap();
    let ours = run(kmod_std()
        .arg("info")
        .arg("-F")
        .arg("description")
        .arg(&odd))
    .stdout;
    let theirs = run(Std::new("modinfo").args(["-F", "description"]).arg(&odd)).stdout;
    assert_eq!(ours, theirs);
    assert!(ours.contains(&0xff));
}

/// `check -v` said "modprobe: FATAL" for a `depends=` entry depmod never follows (it
/// takes dependencies from symbols) while the verdict was `loads`.
#[test]
fn a_depends_entry_depmod_ignores_is_not_called_fatal() {
    let k = debian_612();
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("af_key.ko");
    let mut b = strip(&xz_decompress(
        &k.modules.join("kernel/net/key/af_key.ko.xz"),
    ))
    .to_vec();
    let at = b
        .windows(18)
        .position(|w| w == b"depends=xfrm_algo\0")
        .expect("af_key depends on xfrm_algo");
    b[at + 16] = b'_';
    std::fs::write(&m, &b).unwrap();
    let o = kmod()
        .arg("check")
        .arg("-v")
        .args(k.args())
        .arg(&m)
        .output()
        .unwrap();
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("loads"), "{all}");
    assert!(!all.contains("FATAL"), "{all}");
}

fn kmod_std() -> Std {
    let mut c = Std::new(assert_cmd::cargo::cargo_bin("cargo-kmod"));
    c.arg("kmod");
    c
}

/// A `run` killed by SIGTERM left its initramfs in the temp directory and QEMU running.
#[test]
fn a_run_killed_by_sigterm_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tempfile::tempdir().unwrap();
    let m = crate::fixtures::copy_of(
        &crate::fixtures::built_module("kmodtest"),
        d.path(),
        "kmodtest.ko",
    );
    let mut child = kmod_std()
        .arg("run")
        .args(["--accel", "tcg"])
        .arg("--kdir")
        .arg(&crate::fixtures::test_kernel().kdir)
        .arg("--module")
        .arg(&m)
        .args(["--exec", "sleep 600", "--timeout", "300"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // QEMU, as a child of this run.
    let qemu = || {
        let o = run(Std::new("ps").args(["-eo", "pid=,ppid=,comm="]));
        stdout(&o).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[1] == pid.to_string() && f[2].contains("qemu"))
                .then(|| f[0].to_string())
        })
    };
    let started = std::time::Instant::now();
    let qpid = loop {
        if let Some(q) = qemu() {
            break q;
        }
        assert!(started.elapsed().as_secs() < 30, "QEMU never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let gone = std::time::Instant::now();
    // Gone, or a zombie waiting for whoever reaps orphans: not running either way.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{qpid}/stat"))
            .is_ok_and(|st| st.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')))
    };
    while alive() {
        assert!(
            gone.elapsed().as_secs() < 10,
            "QEMU {qpid} outlived the run"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let left: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

/// `text` with `key = value` in `section` (replacing the key's line there, if any).
fn set_line(text: &str, section: &str, key: &str, value: &str) -> String {
    let mut out = Vec::new();
    let (mut inside, mut done) = (false, false);
    for line in text.lines() {
        if line.starts_with('[') {
            if inside && !done {
                out.insert(out.len(), format!("{key} = {value}"));
                done = true;
            }
            inside = line == section;
        }
        if inside && line.starts_with(&format!("{key} = ")) {
            out.push(format!("{key} = {value}"));
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    if inside && !done {
        out.push(format!("{key} = {value}"));
    }
    out.join("\n") + "\n"
}
