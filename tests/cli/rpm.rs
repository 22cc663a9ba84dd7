//! `package --rpm` / `--srpm`, checked with the real rpm, rpmbuild, rpmlint and depmod.

use crate::common::*;
use crate::fixtures::test_kernel;
use crate::fixtures::{build, built_project, debian_headers};
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// A gpg key made for the test, in its own GNUPGHOME, and an rpm database that trusts
/// it (for `rpm -K` and rpmlint, through $HOME/.rpmmacros).
struct Gpg {
    home: PathBuf,
    gnupg: PathBuf,
}

impl Gpg {
    fn new(dir: &Path) -> Gpg {
        let gnupg = dir.join("gnupg");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&gnupg).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
        run(Std::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--passphrase", "", "--quick-gen-key"])
            .args(["Test Packager <packager@test>", "rsa3072", "sign", "never"]));
        let public = run(Std::new("gpg").env("GNUPGHOME", &gnupg).args([
            "--armor",
            "--export",
            "packager@test",
        ]));
        std::fs::write(dir.join("key.asc"), &public.stdout).unwrap();
        std::fs::write(
            home.join(".rpmmacros"),
            format!("%_dbpath {}\n", dir.join("rpmdb").display()),
        )
        .unwrap();
        run(Std::new("rpm")
            .env("HOME", &home)
            .arg("--import")
            .arg(dir.join("key.asc")));
        Gpg { home, gnupg }
    }
}

fn query(rpm: &Path, what: &[&str]) -> String {
    stdout(&run(Std::new("rpm").arg("-qp").args(what).arg(rpm)))
}

/// rpmlint's errors (`E:` lines), by name.
fn lint_errors(gpg: &Gpg, rpm: &Path) -> Vec<String> {
    let o = Std::new("rpmlint")
        .env("HOME", &gpg.home)
        .arg(rpm)
        .output()
        .expect("rpmlint runs (the README's test command installs it)");
    let text = stdout(&o);
    assert!(text.contains("1 packages"), "{text}{}", stderr(&o));
    text.lines()
        .filter_map(|l| l.split_once(": E: "))
        .map(|(_, e)| e.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// `rpm --root ROOT -i` without dependencies or scriptlets (an empty root has no shell).
fn install_into(root: &Path, rpm: &Path) {
    run(Std::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(rpm));
}

#[test]
fn rpm_per_kernel_installs_into_a_root_lints_clean_and_the_srpm_rebuilds() {
    let d = tempfile::tempdir().unwrap();
    let debian = debian_headers();
    let ours = test_kernel();
    let p = built_project(
        &d.path().join("rpm_demo"),
        "c-params",
        &[
            "--author",
            "Pat Kager",
            "--description",
            "Demo parameters module.",
        ],
        &[&debian, &ours.kdir],
    );
    let gpg = Gpg::new(d.path());
    let kg = d.path().join("kg");
    kmod().args(["keygen", "--out"]).arg(&kg).assert().success();
    let out = d.path().join("rpms");
    let o = kmod()
        .current_dir(&p)
        .env("GNUPGHOME", &gpg.gnupg)
        .args(["package", "--rpm", "--srpm", "--gpg-key", "packager@test"])
        .args(["--sign", "--key"])
        .arg(kg.join("signing_key.pem"))
        .arg("--cert")
        .arg(kg.join("signing_key.crt"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let made: Vec<PathBuf> = stdout(&o).lines().map(PathBuf::from).collect();
    assert_eq!(made.len(), 3, "one SRPM, one RPM per kernel: {made:?}");
    let debian_rel = std::fs::read_to_string(debian.join("include/config/kernel.release")).unwrap();
    let debian_rel = debian_rel.trim();
    // Debian's modules are .ko.xz (CONFIG_MODULE_COMPRESS_XZ); the test kernel's are not compressed.
    for (release, file) in [
        (debian_rel, "rpm_demo.ko.xz"),
        (ours.release.as_str(), "rpm_demo.ko"),
    ] {
        let name = format!("kmod-rpm_demo-{release}");
        let rpm = made
            .iter()
            .find(|m| {
                m.file_name().unwrap().to_string_lossy() == format!("{name}-0.1.0-1.x86_64.rpm")
            })
            .unwrap_or_else(|| panic!("no RPM for {release}: {made:?}"));
        let info = query(rpm, &["-i"]);
        for want in [
            format!("Name        : {name}"),
            "Version     : 0.1.0".into(),
            "Architecture: x86_64".into(),
            "License     : GPL-2.0".into(),
            "Summary     : Demo parameters module".into(),
        ] {
            assert!(info.contains(&want), "{want} in {info}");
        }
        let path = format!("/lib/modules/{release}/extra/rpm_demo/{file}");
        assert_eq!(
            query(rpm, &["-l"]),
            format!("/lib/modules/{release}/extra/rpm_demo\n{path}\n")
        );
        let requires = query(rpm, &["--requires"]);
        assert!(
            requires.contains(&format!("kernel-uname-r = {release}")),
            "{requires}"
        );
        let provides = query(rpm, &["--provides"]);
        assert!(
            provides.contains("kmod(rpm_demo.ko) = 0.1.0-1"),
            "{provides}"
        );
        let scripts = query(rpm, &["--scripts"]);
        assert_eq!(
            scripts
                .matches(&format!("/usr/sbin/depmod -a {release}"))
                .count(),
            2,
            "%post and %postun run depmod: {scripts}"
        );
        let k = stdout(&run(Std::new("rpm")
            .env("HOME", &gpg.home)
            .arg("-Kv")
            .arg(rpm)));
        assert!(k.contains("Signature, key ID") && k.contains(": OK"), "{k}");
        // rpmlint cannot see an ELF inside .ko.xz and calls the package "no-binary".
        let mut want: Vec<&str> = vec![];
        if file.ends_with(".xz") {
            want.push("no-binary");
        }
        assert_eq!(lint_errors(&gpg, rpm), want, "{}", rpm.display());

        // Installed into an empty root: the module is where depmod and modinfo find it.
        let root = d.path().join(format!("root-{release}"));
        install_into(&root, rpm);
        let installed = root.join(path.trim_start_matches('/'));
        let mi = stdout(&run(Std::new("modinfo").arg(&installed)));
        assert!(
            mi.contains(&format!("vermagic:       {release} "))
                && mi.contains("name:           rpm_demo"),
            "{mi}"
        );
        assert_verifies(&kg.join("signing_key.crt"), &installed);
        run(Std::new("depmod").arg("-b").arg(&root).arg(release));
        let dep = std::fs::read_to_string(root.join(format!("lib/modules/{release}/modules.dep")))
            .unwrap();
        assert_eq!(dep, format!("extra/rpm_demo/{file}:\n"));
    }

    // The SRPM: its spec builds a source package again, and rebuilds the module
    // against Debian's headers as it would against a kernel-devel.
    let srpm = made
        .iter()
        .find(|m| m.to_string_lossy().ends_with(".src.rpm"))
        .unwrap();
    assert_eq!(
        query(srpm, &["-l"]),
        "rpm_demo-0.1.0.tar.gz\nrpm_demo-kmod.spec\n"
    );
    assert!(lint_errors(&gpg, srpm).is_empty());
    let unpacked = d.path().join("srpm");
    std::fs::create_dir_all(&unpacked).unwrap();
    let cpio = run(Std::new("rpm2cpio").arg(srpm));
    let mut c = Std::new("cpio")
        .args(["-idm", "--quiet"])
        .current_dir(&unpacked)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(&cpio.stdout).unwrap();
    assert!(c.wait().unwrap().success());
    let top = d.path().join("top");
    let rpmbuild = |args: &[&str]| {
        let mut c = Std::new("rpmbuild");
        c.arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("_sourcedir {}", unpacked.display()))
            .args(args);
        c
    };
    run(&mut rpmbuild(&[
        "-bs",
        unpacked.join("rpm_demo-kmod.spec").to_str().unwrap(),
    ]));
    assert!(top.join("SRPMS/rpm_demo-kmod-0.1.0-1.src.rpm").is_file());
    run(rpmbuild(&["--rebuild", "--nodeps", srpm.to_str().unwrap()])
        .arg("--define")
        .arg(format!("kversion {debian_rel}"))
        .arg("--define")
        .arg(format!("ksrc {}", debian.display())));
    let rebuilt = top.join(format!(
        "RPMS/x86_64/kmod-rpm_demo-{debian_rel}-0.1.0-1.x86_64.rpm"
    ));
    assert!(rebuilt.is_file(), "{}", rebuilt.display());
    let root = d.path().join("root-rebuilt");
    install_into(&root, &rebuilt);
    let mi = stdout(&run(Std::new("modinfo").arg(root.join(format!(
        "lib/modules/{debian_rel}/extra/rpm_demo/rpm_demo.ko"
    )))));
    assert!(
        mi.contains(&format!("vermagic:       {debian_rel} ")),
        "{mi}"
    );
}

#[test]
fn packaging_without_a_build_an_unknown_release_or_a_file_as_out_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("unbuilt");
    kmod()
        .arg("new")
        .arg(&p)
        .args(["--template", "c-minimal"])
        .assert()
        .success();
    let out = d.path().join("out");
    for kind in ["--rpm", "--oci", "--deb"] {
        let o = kmod()
            .current_dir(&p)
            .args(["package", kind, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(26), "{kind}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("no module of unbuilt built yet")
                && e.contains("help: run `cargo kmod build` first"),
            "{e}"
        );
        assert!(!out.exists(), "{kind} wrote nothing");
    }
    let o = build(&p, &[&debian_headers()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kmod()
        .current_dir(&p)
        .args(["package", "--rpm", "--kernel-release", "9.9.9", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(26), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no module built for 9.9.9"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    std::fs::write(&out, "not a directory").unwrap();
    for kind in ["--rpm", "--oci", "--srpm"] {
        let o = kmod()
            .current_dir(&p)
            .args(["package", kind, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(26), "{kind}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("exists and is not a directory"),
            "{}",
            stderr(&o)
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "not a directory");
    }
}

/// A Kbuild project with a module in each of two subdirectories: its source RPM
/// carries the whole tree, and `rpmbuild --rebuild` against Debian's headers (as against
/// a kernel-devel) makes one kmod package holding both, each provided by name. A DKMS
/// tree is refused for --srpm, saying to use --dkms.
#[test]
fn the_srpm_of_a_project_with_modules_in_subdirectories_rebuilds_them_all() {
    let debian = debian_headers();
    let rel = std::fs::read_to_string(debian.join("include/config/kernel.release")).unwrap();
    let rel = rel.trim();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("pair");
    for (f, text) in [
        ("Kbuild", "obj-m += alpha/ beta/\n"),
        ("alpha/Kbuild", "obj-m := alpha.o\n"),
        ("beta/Kbuild", "obj-m := beta.o\n"),
    ] {
        std::fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
        std::fs::write(p.join(f), text).unwrap();
    }
    for m in ["alpha", "beta"] {
        std::fs::write(
            p.join(m).join(format!("{m}.c")),
            format!(
                "#include <linux/module.h>\nstatic int __init i(void) {{ return 0; }}\nstatic void __exit e(void) {{}}\nmodule_init(i);\nmodule_exit(e);\nMODULE_LICENSE(\"GPL\");\nMODULE_DESCRIPTION(\"{m}\");\n"
            ),
        )
        .unwrap();
    }
    let o = kmod()
        .arg("init")
        .arg("--kdir")
        .arg(&debian)
        .current_dir(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = build(&p, &[&debian], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("out");
    let o = kmod()
        .args(["package", "--srpm", "--out"])
        .arg(&out)
        .current_dir(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let srpm = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".src.rpm"))
        .unwrap();
    let top = d.path().join("top");
    run(Std::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--rebuild", "--nodeps"])
        .arg(&srpm)
        .arg("--define")
        .arg(format!("kversion {rel}"))
        .arg("--define")
        .arg(format!("ksrc {}", debian.display())));
    let rebuilt = std::fs::read_dir(top.join("RPMS/x86_64"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let files = query(&rebuilt, &["-l"]);
    for m in ["alpha", "beta"] {
        assert!(
            files.contains(&format!("/lib/modules/{rel}/extra/pair/{m}.ko\n")),
            "{files}"
        );
        assert!(
            query(&rebuilt, &["--provides"]).contains(&format!("kmod({m}.ko)")),
            "{}",
            query(&rebuilt, &["--provides"])
        );
    }
    // A DKMS tree says how it builds in its dkms.conf: not a source RPM's business.
    let dk = d.path().join("dk");
    std::fs::create_dir_all(&dk).unwrap();
    std::fs::write(
        dk.join("dkms.conf"),
        "PACKAGE_NAME=dk\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=dk\nDEST_MODULE_LOCATION[0]=/extra\nAUTOINSTALL=yes\n",
    )
    .unwrap();
    let before = std::fs::read_dir(&dk).unwrap().count();
    let o = kmod()
        .args(["package", "--srpm", "--out"])
        .arg(d.path().join("out2"))
        .current_dir(&dk)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(26), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("use --dkms") || stderr(&o).contains("with --dkms"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&dk).unwrap().count(), before);
}
