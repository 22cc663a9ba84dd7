//! Existing projects as they are (issue 28): Debian 12's own DKMS packages, unpacked
//! by scripts/test-deps.sh, built by the real `dkms` (in scratch trees) and by
//! `cargo kmod build` against Debian's 6.1 and 6.12 headers; both must make the same
//! modules with the same vermagic, or both refuse the kernel at the same step.

use crate::common::*;
use crate::fixtures::{debian_61_headers, debian_headers};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a builder did with one package for one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Installed module names, each with its vermagic.
    Built(BTreeMap<String, String>),
    /// BUILD_EXCLUSIVE_* ruled the kernel out.
    Skipped,
    /// The make command failed.
    MakeFailed,
    /// The make command succeeded without making a module BUILT_MODULE_NAME names.
    NotMade,
    /// A module BUILD_DEPENDS names is not installed for the kernel.
    MissingDepends,
}

/// The package's source as Debian ships it (`/usr/src/<name>-<version>`).
fn package_source(deb: &str) -> PathBuf {
    let src = cache_dir().join("fixtures").join(deb).join("usr/src");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| {
            panic!(
                "missing test prerequisite: {} ({e}) — run scripts/test-deps.sh",
                src.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{}", src.display());
    dirs.remove(0)
}

fn copy_tree(from: &Path, to: &Path) {
    run(std::process::Command::new("cp").arg("-a").arg(from).arg(to));
}

/// `vermagic` and `description`, as modinfo reads them.
fn vermagic(ko: &Path) -> String {
    let field = |f: &str| {
        let o = run(std::process::Command::new("modinfo")
            .args(["-F", f])
            .arg(ko));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    format!("{} / {}", field("vermagic"), field("description"))
}

/// Debian's headers are `/usr/src/linux-headers-<release>` (their kernel.release
/// says the upstream version; Kbuild takes Debian's release from .kernelvariables).
fn release_of(headers: &Path) -> String {
    let dir = headers.file_name().unwrap().to_string_lossy();
    dir.strip_prefix("linux-headers-").unwrap().to_string()
}

/// `dkms build` in scratch trees: its `module/` directory, or the refusal.
/// Which real dkms judges: Debian 12's 3.0.10 (installed), or sid's newer one (which
/// knows BUILD_EXCLUSIVE_KERNEL_MIN/_MAX), a bash script run from the sid root
/// scripts/test-deps.sh made.
#[derive(Clone, Copy)]
enum Dkms {
    Bookworm,
    Sid,
}

impl Dkms {
    fn command(self) -> std::process::Command {
        match self {
            Dkms::Bookworm => std::process::Command::new("dkms"),
            Dkms::Sid => {
                let script = cache_dir().join("roots/sid/usr/sbin/dkms");
                assert!(
                    script.is_file(),
                    "missing test prerequisite: {} — run scripts/test-deps.sh",
                    script.display()
                );
                let mut c = std::process::Command::new("bash");
                c.arg(script);
                c
            }
        }
    }
}

fn real_dkms(src: &Path, headers: &Path) -> Outcome {
    real_dkms_of(Dkms::Bookworm, src, headers)
}

fn real_dkms_of(dkms: Dkms, src: &Path, headers: &Path) -> Outcome {
    let d = tempfile::tempdir().unwrap();
    let (tree, sources, install) = (
        d.path().join("tree"),
        d.path().join("src"),
        d.path().join("inst"),
    );
    for p in [&tree, &sources, &install] {
        std::fs::create_dir_all(p).unwrap();
    }
    copy_tree(src, &sources);
    let dir = src.file_name().unwrap().to_string_lossy().into_owned();
    let (name, version) = dir.rsplit_once('-').unwrap();
    let release = release_of(headers);
    let o = dkms
        .command()
        .args(["build", "-m", name, "-v", version, "-k", &release])
        .arg(format!("--kernelsourcedir={}", headers.display()))
        .arg("--dkmstree")
        .arg(&tree)
        .arg("--sourcetree")
        .arg(&sources)
        .arg("--installtree")
        .arg(&install)
        .output()
        .expect("dkms (scripts/test-deps.sh installs it)");
    match o.status.code() {
        Some(0) => {}
        Some(77) => return Outcome::Skipped,
        Some(7) => return Outcome::NotMade,
        Some(13) => return Outcome::MissingDepends,
        Some(10) => {
            let log = tree.join(name).join(version).join("build/make.log");
            eprintln!(
                "dkms build {dir} for {release} failed: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return Outcome::MakeFailed;
        }
        c => panic!(
            "dkms build {dir} for {release}: exit {c:?}: {}{}",
            stdout(&o),
            stderr(&o)
        ),
    }
    let modules = tree
        .join(name)
        .join(version)
        .join(&release)
        .join("x86_64/module");
    Outcome::Built(
        std::fs::read_dir(&modules)
            .unwrap()
            .map(|e| e.unwrap().path())
            // Newer dkms keeps the build's Module.symvers beside the modules.
            .filter(|p| p.to_string_lossy().contains(".ko"))
            .map(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                // DKMS compresses as the kernel's own modules are (6.12's: xz).
                let n = n.split(".ko").next().unwrap().to_string();
                (n, vermagic(&p))
            })
            .collect(),
    )
}

/// `cargo kmod build` in a copy of the package's source (no Cargo.toml: its dkms.conf).
fn ours(src: &Path, headers: &Path) -> (Outcome, serde_json::Value) {
    let d = tempfile::tempdir().unwrap().keep();
    copy_tree(src, &d);
    let project = d.join(src.file_name().unwrap());
    let before = run(std::process::Command::new("find").arg(&project)).stdout;
    let o = kmod()
        .current_dir(&project)
        .args(["build", "--message-format", "json", "--kdir"])
        .arg(headers)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    // Built in a copy: the project's own files are as they were (target/ is new).
    let after = run(std::process::Command::new("find")
        .arg(&project)
        .args(["-path", "*/target", "-prune", "-o", "-print"]))
    .stdout;
    let strip_target = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| !l.ends_with("/target") && !l.contains("/target/"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip_target(&before),
        strip_target(&after),
        "the project's tree changed"
    );
    let outcome = match v["status"].as_str() {
        Some("ok") => Outcome::Built(
            v["modules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let p = PathBuf::from(m["path"].as_str().unwrap());
                    (
                        p.file_stem().unwrap().to_string_lossy().into_owned(),
                        vermagic(&p),
                    )
                })
                .collect(),
        ),
        Some("skipped") => Outcome::Skipped,
        Some("failed")
            if v["exit_code"] == 16 && v["error"].as_str().unwrap().contains("BUILD_DEPENDS") =>
        {
            Outcome::MissingDepends
        }
        Some("failed")
            if v["exit_code"] == 17 && v["error"].as_str().unwrap().contains("MAKE failed") =>
        {
            if v["error"].as_str().unwrap().contains("the build made no") {
                Outcome::NotMade
            } else {
                Outcome::MakeFailed
            }
        }
        _ => panic!("unexpected: {v}\n{}", stderr(&o)),
    };
    (outcome, v)
}

/// Both builders on both kernels; `expected` says what the 6.1 and 6.12 builds make
/// (the 6.12 API broke most of these bookworm packages: both builders must say so).
fn same_as_dkms(deb: &str, on_61: &[&str], on_612: Option<&[&str]>) {
    let src = package_source(deb);
    for (headers, want) in [
        (debian_61_headers(), Some(on_61)),
        (debian_headers(), on_612),
    ] {
        let real = real_dkms(&src, &headers);
        let (mine, json) = ours(&src, &headers);
        assert_eq!(mine, real, "{deb} on {}: {json}", headers.display());
        match (&mine, want) {
            (Outcome::Built(m), Some(want)) => {
                let names: Vec<&str> = m.keys().map(String::as_str).collect();
                let mut want = want.to_vec();
                want.sort();
                assert_eq!(names, want, "{deb} on {}", headers.display());
                let release = release_of(&headers);
                assert!(
                    m.values().all(|v| v.starts_with(&format!("{release} "))),
                    "{m:?}"
                );
            }
            (Outcome::MakeFailed | Outcome::NotMade, None) => {}
            (o, w) => panic!("{deb} on {}: {o:?}, expected {w:?}", headers.display()),
        }
    }
}

#[test]
fn acpi_call_builds_as_dkms_builds_it() {
    same_as_dkms("acpi-call-dkms", &["acpi_call"], Some(&["acpi_call"]));
}

#[test]
fn ddcci_two_modules_in_subdirectories_build_as_dkms_builds_them() {
    same_as_dkms("ddcci-dkms", &["ddcci", "ddcci-backlight"], None);
}

#[test]
fn jool_three_chained_makes_build_as_dkms_builds_them() {
    same_as_dkms("jool-dkms", &["jool_common", "jool", "jool_siit"], None);
}

#[test]
fn v4l2loopback_config_dependent_conf_builds_as_dkms_builds_it() {
    same_as_dkms("v4l2loopback-dkms", &["v4l2loopback"], None);
}

#[test]
fn xtables_addons_shell_pipeline_make_builds_as_dkms_builds_it() {
    same_as_dkms(
        "xtables-addons-dkms",
        &[
            "compat_xtables",
            "xt_ACCOUNT",
            "xt_CHAOS",
            "xt_DELUDE",
            "xt_DHCPMAC",
            "xt_DNETMAP",
            "xt_ECHO",
            "xt_IPMARK",
            "xt_LOGMARK",
            "xt_PROTO",
            "xt_SYSRQ",
            "xt_TARPIT",
            "xt_condition",
            "xt_fuzzy",
            "xt_geoip",
            "xt_iface",
            "xt_ipp2p",
            "xt_ipv4options",
            "xt_length2",
            "xt_lscan",
            "xt_psd",
            "xt_quota2",
            "xt_pknock",
        ],
        None,
    );
}

/// A small C module project, `crafted-1.0`, with `conf` as its dkms.conf and `files`
/// (a file named `*.sh` is made executable).
fn crafted(conf: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("crafted-1.0");
    std::fs::create_dir(&dir).unwrap();
    let hello = concat!(
        "#include <linux/module.h>\n",
        "#ifdef WITH_GEN\n#include \"gen.h\"\n#else\n#define DESC \"plain\"\n#endif\n",
        "static int __init h_init(void) { return 0; }\n",
        "static void __exit h_exit(void) {}\n",
        "module_init(h_init);\nmodule_exit(h_exit);\n",
        "MODULE_DESCRIPTION(DESC);\nMODULE_LICENSE(\"GPL\");\n",
    );
    let base = [
        ("hello.c", hello),
        ("Kbuild", "obj-m += hello.o\nccflags-y += $(EXTRA)\n"),
        ("dkms.conf", conf),
    ];
    write_files(&dir, &base);
    write_files(&dir, files);
    (d, dir)
}

const HEAD: &str = "PACKAGE_NAME=crafted\nPACKAGE_VERSION=1.0\nBUILT_MODULE_NAME[0]=hello\nDEST_MODULE_LOCATION[0]=/extra\n";
const MAKE: &str = "MAKE[0]=\"make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build\"\n";

/// Each crafted project on Debian 12's 6.1 headers: the real dkms's outcome, ours,
/// and what it must be.
/// (what it shows, its dkms.conf, its other files, what both must make of it)
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Outcome);

fn crafted_same_as_dkms(cases: &[Case]) {
    crafted_same_as(Dkms::Bookworm, cases)
}

fn crafted_same_as(dkms: Dkms, cases: &[Case]) {
    let headers = debian_61_headers();
    let release = release_of(&headers);
    for (what, conf, files, want) in cases {
        let (_d, dir) = crafted(conf, files);
        let real = real_dkms_of(dkms, &dir, &headers);
        let (mine, json) = ours(&dir, &headers);
        assert_eq!(mine, real, "{what}: ours vs dkms: {json}");
        let want = match want {
            Outcome::Built(m) => Outcome::Built(
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            format!("{release} SMP preempt mod_unload modversions / {v}"),
                        )
                    })
                    .collect(),
            ),
            o => o.clone(),
        };
        assert_eq!(mine, want, "{what}: {json}");
    }
}

fn built(name: &str, description: &str) -> Outcome {
    Outcome::Built([(name.to_string(), description.to_string())].into())
}

#[test]
fn make_match_and_patches_choose_by_kernel_as_dkms_does() {
    let patch = concat!(
        "--- a/hello.c\n+++ b/hello.c\n@@ -4 +4 @@\n",
        "-#define DESC \"plain\"\n+#define DESC \"patched\"\n",
    );
    crafted_same_as_dkms(&[
        (
            "MAKE_MATCH for another kernel",
            format!("{HEAD}{MAKE}MAKE[1]=\"false\"\nMAKE_MATCH[1]=\"^5\\.\"\n"),
            vec![],
            built("hello", "plain"),
        ),
        (
            "MAKE_MATCH for this kernel",
            format!("{HEAD}{MAKE}MAKE[1]=\"false\"\nMAKE_MATCH[1]=\"^6\\.1\\.\"\n"),
            vec![],
            Outcome::MakeFailed,
        ),
        (
            "PATCH with PATCH_MATCH",
            format!(
                "{HEAD}{MAKE}PATCH[0]=desc.patch\nPATCH_MATCH[0]=\"^6\\.1\"\nPATCH[1]=absent.patch\nPATCH_MATCH[1]=\"^5\\.\"\n"
            ),
            vec![("patches/desc.patch", patch)],
            built("hello", "patched"),
        ),
    ]);
}

#[test]
fn build_exclusive_rules_skip_the_kernels_dkms_skips() {
    crafted_same_as_dkms(&[
        (
            "BUILD_EXCLUSIVE_KERNEL",
            format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_KERNEL=\"^5\\.\"\n"),
            vec![],
            Outcome::Skipped,
        ),
        (
            "BUILD_EXCLUSIVE_ARCH",
            format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_ARCH=\"aarch64\"\n"),
            vec![],
            Outcome::Skipped,
        ),
        (
            "BUILD_EXCLUSIVE_CONFIG, set",
            format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_CONFIG=\"CONFIG_ACPI CONFIG_MODULES\"\n"),
            vec![],
            built("hello", "plain"),
        ),
        (
            "BUILD_EXCLUSIVE_CONFIG, negated",
            format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_CONFIG=\"!CONFIG_ACPI\"\n"),
            vec![],
            Outcome::Skipped,
        ),
    ]);
}

/// BUILD_EXCLUSIVE_KERNEL_MIN/_MAX, which Debian 12's dkms does not know, and
/// BUILD_DEPENDS, which it only orders by: judged by sid's, on Debian 12's 6.1.0-57
/// headers.
#[test]
fn build_exclusive_kernel_min_max_and_build_depends_as_a_newer_dkms_reads_them() {
    crafted_same_as(
        Dkms::Sid,
        &[
            (
                "BUILD_EXCLUSIVE_KERNEL_MIN above",
                format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_KERNEL_MIN=6.2\n"),
                vec![],
                Outcome::Skipped,
            ),
            (
                "BUILD_EXCLUSIVE_KERNEL_MIN at",
                format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_KERNEL_MIN=6.1\n"),
                vec![],
                built("hello", "plain"),
            ),
            (
                "BUILD_EXCLUSIVE_KERNEL_MAX below",
                format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_KERNEL_MAX=5.19\n"),
                vec![],
                Outcome::Skipped,
            ),
            (
                "BUILD_EXCLUSIVE_KERNEL_MAX above",
                format!("{HEAD}{MAKE}BUILD_EXCLUSIVE_KERNEL_MAX=6.1.99\n"),
                vec![],
                built("hello", "plain"),
            ),
            // 3.x aborts the build (exit 13) when a module it depends on is not
            // installed for the kernel (this machine's DKMS has none installed).
            (
                "BUILD_DEPENDS not installed",
                format!("{HEAD}{MAKE}BUILD_DEPENDS=(spl-not-here)\n"),
                vec![],
                Outcome::MissingDepends,
            ),
        ],
    );
}

#[test]
fn pre_build_dest_module_name_and_shell_idioms_as_dkms_runs_them() {
    let idioms = concat!(
        "pushd `dirname $BASH_SOURCE` > /dev/null\n",
        "NAME_FROM_FILE=$(cat name.txt)\n",
        "popd > /dev/null\n",
        ". $kernel_source_dir/.config\n",
        "PACKAGE_NAME=crafted\nPACKAGE_VERSION=1.0\nDEST_MODULE_LOCATION[0]=/extra\n",
        "if [ \"$CONFIG_ACPI\" = y ]; then BUILT_MODULE_NAME[0]=$NAME_FROM_FILE; fi\n",
    );
    crafted_same_as_dkms(&[
        (
            "PRE_BUILD writes a header the build needs",
            format!(
                "{HEAD}MAKE[0]=\"make -C ${{kernel_source_dir}} M=${{dkms_tree}}/${{PACKAGE_NAME}}/${{PACKAGE_VERSION}}/build EXTRA=-DWITH_GEN\"\nPRE_BUILD=\"gen.sh\"\n"
            ),
            vec![(
                "gen.sh",
                "#!/bin/sh\necho '#define DESC \"generated\"' > gen.h\n",
            )],
            built("hello", "generated"),
        ),
        (
            "DEST_MODULE_NAME",
            format!("{HEAD}{MAKE}DEST_MODULE_NAME[0]=renamed\n"),
            vec![],
            built("renamed", "plain"),
        ),
        (
            "pushd `dirname $BASH_SOURCE`, $(...), the kernel's .config sourced",
            format!("{idioms}{MAKE}"),
            vec![("name.txt", "hello\n")],
            built("hello", "plain"),
        ),
    ]);
}

/// The files of a project, but for what the tool made in target/.
fn tree_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != "target")
        .map(|e| e.unwrap())
        .map(|e| {
            let bytes = if e.file_type().is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (e.into_path(), bytes)
        })
        .collect()
}

#[test]
fn a_bad_dkms_conf_or_build_is_named_with_its_step_and_changes_nothing() {
    let headers = debian_61_headers();
    let cases: [(&str, String, i32, &[&str]); 5] = [
        (
            "a syntax error",
            format!("{HEAD}{MAKE}if then\n"),
            3,
            &["dkms.conf", "not valid bash"],
        ),
        (
            "a file that exits",
            format!("exit 4\n{HEAD}{MAKE}"),
            3,
            &["dkms.conf", "ended early (exit status 4)"],
        ),
        (
            "a file that hangs",
            format!("{HEAD}{MAKE}sleep 600\n"),
            3,
            &["dkms.conf", "did not finish in 10 s"],
        ),
        (
            "a module the build never makes",
            format!("{HEAD}{MAKE}BUILT_MODULE_NAME[1]=ghost\nDEST_MODULE_LOCATION[1]=/extra\n"),
            17,
            &[
                "dkms.conf: MAKE failed",
                "the build made no ghost.ko",
                "make.log",
            ],
        ),
        (
            "a MAKE that fails",
            format!("{HEAD}MAKE[0]=\"echo broken-on-purpose >&2; false\"\n"),
            17,
            &["dkms.conf: MAKE failed", "broken-on-purpose", "make.log"],
        ),
    ];
    for (what, conf, code, says) in cases {
        let (_d, dir) = crafted(&conf, &[]);
        let before = tree_of(&dir);
        let started = std::time::Instant::now();
        let o = kmod()
            .current_dir(&dir)
            .arg("build")
            .arg("--kdir")
            .arg(&headers)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(code), "{what}: {}", stderr(&o));
        for s in says {
            assert!(stderr(&o).contains(s), "{what}: no {s:?} in {}", stderr(&o));
        }
        assert!(stderr(&o).contains("help: "), "{what}: {}", stderr(&o));
        assert!(started.elapsed().as_secs() < 60, "{what}: bounded");
        assert_eq!(tree_of(&dir), before, "{what}: the project changed");
    }
    // Nothing Kbuild can build: build and init say so, and write nothing.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("README"), "notes\n").unwrap();
    let before = tree_of(d.path());
    for cmd in ["build", "init"] {
        let o = kmod().current_dir(d.path()).arg(cmd).output().unwrap();
        assert_eq!(o.status.code(), Some(3), "{cmd}: {}", stderr(&o));
        assert!(stderr(&o).contains("help: "), "{cmd}: {}", stderr(&o));
        assert_eq!(tree_of(d.path()), before, "{cmd} wrote into the directory");
    }
    let o = kmod().current_dir(d.path()).arg("init").output().unwrap();
    assert!(
        stderr(&o).contains("nothing Kbuild can build here"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn init_adopts_a_dkms_tree_writing_only_its_cargo_toml_and_build_uses_it() {
    let d = tempfile::tempdir().unwrap();
    copy_tree(&package_source("ddcci-dkms"), d.path());
    let dir = d.path().join("ddcci-0.4.2");
    let before = tree_of(&dir);
    let headers = debian_61_headers();
    let o = kmod()
        .current_dir(&dir)
        .arg("init")
        .arg("--kdir")
        .arg(&headers)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut after = tree_of(&dir);
    let manifest = after
        .iter()
        .position(|(p, _)| p.ends_with("Cargo.toml"))
        .expect("Cargo.toml written");
    let (_, text) = after.remove(manifest);
    assert_eq!(after, before, "init wrote more than Cargo.toml");
    let text = String::from_utf8(text).unwrap();
    for line in [
        "name = \"ddcci\"",
        "version = \"0.4.2\"",
        "modules = [\"ddcci\", \"ddcci-backlight\"]",
    ] {
        assert!(text.contains(line), "{text}");
    }
    // A second init refuses; the Cargo.toml stays as it was.
    let o = kmod().current_dir(&dir).arg("init").output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("already a project"), "{}", stderr(&o));
    // The adopted project builds against the tree it names (its kdir), as a DKMS tree.
    let o = kmod()
        .current_dir(&dir)
        .args(["build", "--message-format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let names = module_names(&v);
    assert_eq!(names, ["ddcci", "ddcci_backlight"], "{v}");
    // package --dkms keeps the project's own dkms.conf; the real dkms builds the tree.
    let out = d.path().join("out");
    let o = kmod()
        .current_dir(&dir)
        .args(["package", "--dkms", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let conf = std::fs::read(out.join("ddcci-0.4.2/dkms.conf")).unwrap();
    assert_eq!(conf, std::fs::read(dir.join("dkms.conf")).unwrap());
    let made = dkms_ldtarball_build(
        &out.join("ddcci-0.4.2.dkms.tar.gz"),
        ("ddcci", "0.4.2"),
        &headers,
    );
    assert_eq!(made, ["ddcci-backlight.ko", "ddcci.ko"]);
}

#[test]
fn jool_packages_carry_every_module_and_depmod_resolves_them() {
    let d = tempfile::tempdir().unwrap();
    copy_tree(&package_source("jool-dkms"), d.path());
    let dir = d.path().join("jool-dkms-4.1.9");
    let headers = debian_61_headers();
    let release = release_of(&headers);
    signed_build(&dir, Some(&headers));
    let out = d.path().join("out");
    let o = kmod()
        .current_dir(&dir)
        .args(["package", "--deb", "--rpm", "--oci", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let file = |ext: &str| {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(ext))
            .unwrap_or_else(|| panic!("no {ext} in {}", out.display()))
    };
    // One .deb with the three modules where DKMS puts them; installed by dpkg into a
    // root, whose depmod (the postinst) resolves jool's dependency on jool_common.
    let deb = file(".deb");
    let root = d.path().join("root");
    crate::fixtures::dpkg_install(&root, &deb);
    for m in ["jool_common", "jool", "jool_siit"] {
        let p = root.join(format!("lib/modules/{release}/extra/{m}.ko"));
        let signer = stdout(&run(std::process::Command::new("modinfo")
            .args(["-F", "signer"])
            .arg(&p)));
        assert!(!signer.trim().is_empty(), "{m} is signed");
    }
    let deps = stdout(&run(std::process::Command::new("modprobe")
        .arg("-d")
        .arg(&root)
        .args(["-S", &release, "--show-depends", "jool"])));
    let lines: Vec<&str> = deps.lines().map(str::trim_end).collect();
    assert_eq!(lines.len(), 2, "{deps}");
    assert!(lines[0].ends_with("/extra/jool_common.ko"), "{deps}");
    assert!(lines[1].ends_with("/extra/jool.ko"), "{deps}");
    // The RPM and the OCI image carry every module too.
    let rpm = stdout(&run(std::process::Command::new("rpm")
        .args(["-qpl", "--nosignature"])
        .arg(file(".rpm"))));
    for m in ["jool_common", "jool", "jool_siit"] {
        assert!(rpm.contains(&format!("/extra/jool-dkms/{m}.ko")), "{rpm}");
    }
    let tar = stdout(&run(std::process::Command::new("tar")
        .arg("-tf")
        .arg(file("-oci.tar"))));
    assert!(tar.contains("blobs/sha256/"), "{tar}");
    let layout = file("-oci");
    let listing = stdout(&run(std::process::Command::new("sh").arg("-c").arg(
        format!(
            "for b in {}/blobs/sha256/*; do tar -tzf $b 2>/dev/null || true; done",
            layout.display()
        ),
    )));
    for m in ["jool_common", "jool", "jool_siit"] {
        assert!(
            listing.contains(&format!("opt/lib/modules/{release}/extra/{m}.ko")),
            "{listing}"
        );
    }
}

/// acpi-call (the one of the five that builds for 6.12), built and signed as a DKMS
/// tree against Debian's 6.12 headers: `check` against Debian's own kernel (headers,
/// image, module tree) and a boot of that very vmlinuz give the same verdict.
#[test]
fn acpi_call_checks_and_boots_on_debians_own_612() {
    let k = crate::fixtures::debian_612();
    let d = tempfile::tempdir().unwrap();
    copy_tree(&package_source("acpi-call-dkms"), d.path());
    let dir = d.path().join("acpi-call-1.2.2");
    let v = signed_build(&dir, Some(&k.headers));
    let ko = PathBuf::from(v["modules"][0]["path"].as_str().unwrap());
    // Signed by a key Debian's kernel does not trust, out of tree: it loads, tainting
    // O and E, as Debian's kernel enforces no signatures.
    let (code, verdicts) = crate::fixtures::check_json(&k.args(), std::slice::from_ref(&ko));
    assert_eq!(code, 0, "{verdicts:?}");
    assert_eq!(verdicts[0]["verdict"], "loads", "{}", verdicts[0]);
    assert_eq!(verdicts[0]["taints"], "OE", "{}", verdicts[0]);
    let (rep, o) = crate::fixtures::run_image(
        &k.image,
        &[
            "--modules-from".as_ref(),
            k.modules.as_os_str(),
            "--module".as_ref(),
            ko.as_os_str(),
        ],
    );
    let m = &rep["modules"][0];
    assert_eq!(m["loaded"], true, "{rep}\n{}", stderr(&o));
    assert_eq!(m["unloaded"], true, "{rep}");
    let tainted = rep["tainted"].as_u64().unwrap();
    let letters = cargo_kmod::loader::taint_letters(tainted);
    assert!(letters.contains('O') && letters.contains('E'), "{letters}");
}

/// A DKMS project of two modules in subdirectories, `b` using what `a` exports (as
/// jool does): built for Debian's 6.12, `check` judges them together whatever order
/// they are named in, and `run` boots Debian's own kernel, loads `a`
/// then `b` and unloads them in reverse.
#[test]
fn two_modules_that_need_each_other_are_checked_and_loaded_together() {
    let k = crate::fixtures::debian_612();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("pair-1.0");
    let files = [
        ("a/Kbuild", "obj-m += pair_a.o\n"),
        (
            "a/pair_a.c",
            "#include <linux/module.h>\nint pair_a_answer(void) { return 42; }\nEXPORT_SYMBOL_GPL(pair_a_answer);\nMODULE_LICENSE(\"GPL\");\n",
        ),
        ("b/Kbuild", "obj-m += pair_b.o\n"),
        (
            "b/pair_b.c",
            "#include <linux/module.h>\nint pair_a_answer(void);\nstatic int __init b_init(void) { return pair_a_answer() == 42 ? 0 : -EINVAL; }\nstatic void __exit b_exit(void) {}\nmodule_init(b_init);\nmodule_exit(b_exit);\nMODULE_LICENSE(\"GPL\");\n",
        ),
        (
            "dkms.conf",
            concat!(
                "PACKAGE_NAME=pair\nPACKAGE_VERSION=1.0\n",
                "B=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build\n",
                "MAKE[0]=\"make -C ${kernel_source_dir} M=$B/a modules && make -C ${kernel_source_dir} M=$B/b KBUILD_EXTRA_SYMBOLS=$B/a/Module.symvers modules\"\n",
                "BUILT_MODULE_NAME[0]=pair_b\nBUILT_MODULE_LOCATION[0]=b/\nDEST_MODULE_LOCATION[0]=/extra\n",
                "BUILT_MODULE_NAME[1]=pair_a\nBUILT_MODULE_LOCATION[1]=a/\nDEST_MODULE_LOCATION[1]=/extra\n",
            ),
        ),
    ];
    write_files(&dir, &files);
    let o = kmod()
        .current_dir(&dir)
        .args(["build", "--message-format", "json", "--kdir"])
        .arg(&k.headers)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let paths: Vec<PathBuf> = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| PathBuf::from(m["path"].as_str().unwrap()))
        .collect();
    // Listed in the order they load, whatever order dkms.conf names them in.
    let names = module_names(&v);
    assert_eq!(names, ["pair_a", "pair_b"], "{v}");
    // Judged together in that order: b loads with a's export.
    let (code, verdicts) = crate::fixtures::check_json(&k.args(), &paths);
    assert_eq!(code, 0, "{verdicts:?}");
    for v in &verdicts {
        assert_eq!(v["verdict"], "loads", "{v}");
    }
    // Named b first, b is refused as the kernel would refuse it loaded first.
    let reversed = [paths[1].clone(), paths[0].clone()];
    let (code, verdicts) = crate::fixtures::check_json(&k.args(), &reversed);
    assert_eq!(code, 20, "{verdicts:?}");
    assert_eq!(verdicts[0]["refusal"], "unknown-symbol", "{}", verdicts[0]);
    // Booted on Debian's own kernel in that order: a, then b; unloaded b, then a.
    let mut args: Vec<&std::ffi::OsStr> = vec!["--modules-from".as_ref(), k.modules.as_os_str()];
    for p in &paths {
        args.extend(["--module".as_ref(), p.as_os_str()]);
    }
    let (rep, _) = crate::fixtures::run_image(&k.image, &args);
    let names = module_names(&rep);
    assert_eq!(names, ["pair_a", "pair_b"], "{rep}");
    for m in rep["modules"].as_array().unwrap() {
        assert_eq!(m["loaded"], true, "{m}");
        assert_eq!(m["unloaded"], true, "{m}");
    }
}

/// A Rust project of two modules in subdirectories, adopted by `init`: `rpair_a`
/// exports a Rust function (a C line beside it exports the symbol), `rpair_b` calls it.
/// On the 6.12 and 7.2 test kernels both build, are signed (listed a then b, the
/// order they load in), load and unload.
#[test]
fn rust_modules_in_subdirectories_export_to_each_other_and_load_on_612_and_72() {
    for (k, authors) in [
        (crate::fixtures::test_kernel(), "author: \"cargo-kmod\""),
        (
            crate::fixtures::test_kernel_72(),
            "authors: [\"cargo-kmod\"]",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("rpair");
        let module = |name: &str, body: &str| {
            format!(
                "// SPDX-License-Identifier: GPL-2.0\n//! {name}\nuse kernel::prelude::*;\n\nmodule! {{\n    type: M,\n    name: \"{name}\",\n    {authors},\n    description: \"{name}\",\n    license: \"GPL\",\n}}\n\nstruct M;\n\n{body}"
            )
        };
        let a = module(
            "rpair_a",
            "#[no_mangle]\npub extern \"C\" fn rpair_answer() -> i32 {\n    42\n}\n\nimpl kernel::Module for M {\n    fn init(_module: &'static ThisModule) -> Result<Self> {\n        Ok(M)\n    }\n}\n",
        );
        let b = module(
            "rpair_b",
            "extern \"C\" {\n    fn rpair_answer() -> i32;\n}\n\nimpl kernel::Module for M {\n    fn init(_module: &'static ThisModule) -> Result<Self> {\n        // SAFETY: rpair_a exports it; the loader resolved it before init.\n        let a = unsafe { rpair_answer() };\n        pr_info!(\"rpair_answer() = {}\\n\", a);\n        if a == 42 { Ok(M) } else { Err(EINVAL) }\n    }\n}\n",
        );
        let files = [
            ("Kbuild", "obj-y += a/ b/\n".to_string()),
            (
                "a/Kbuild",
                "obj-m += rpair_a.o\nrpair_a-y := rpair_a_main.o rpair_a_export.o\n".into(),
            ),
            ("a/rpair_a_main.rs", a),
            (
                "a/rpair_a_export.c",
                "#include <linux/export.h>\nint rpair_answer(void);\nEXPORT_SYMBOL_GPL(rpair_answer);\n"
                    .into(),
            ),
            ("b/Kbuild", "obj-m += rpair_b.o\n".into()),
            ("b/rpair_b.rs", b),
        ];
        write_files(&dir, &files);
        let o = kmod()
            .current_dir(&dir)
            .arg("init")
            .arg("--kdir")
            .arg(&k.kdir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v = signed_build(&dir, None);
        // Listed in the order they load (a first), as `run` takes them.
        let mut run_cmd = kmod();
        run_cmd
            .current_dir(&dir)
            .args([
                "run",
                "--message-format",
                "json",
                "--accel",
                "tcg",
                "--kdir",
            ])
            .arg(&k.kdir);
        for m in v["modules"].as_array().unwrap() {
            run_cmd.arg("--module").arg(m["path"].as_str().unwrap());
        }
        let o = run_cmd.output().unwrap();
        let rep: serde_json::Value = serde_json::from_str(stdout(&o).trim())
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
        let names = module_names(&rep);
        assert_eq!(names, ["rpair_a", "rpair_b"], "{}: {rep}", k.release);
        for m in rep["modules"].as_array().unwrap() {
            assert_eq!(m["loaded"], true, "{}: {m}", k.release);
            assert_eq!(m["unloaded"], true, "{}: {m}", k.release);
        }
        assert!(
            rep["modules"][1]["kernel_log"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().contains("rpair_answer() = 42")),
            "{rep}"
        );
    }
}

/// The real dkms: `ldtarball` of a tarball `package --dkms` wrote, then `build` for the
/// kernel of `headers`, in scratch trees; the modules it made.
fn dkms_ldtarball_build(
    tarball: &Path,
    (name, version): (&str, &str),
    headers: &Path,
) -> Vec<String> {
    let s = tempfile::tempdir().unwrap();
    let (tree, sources, install) = (s.path().join("t"), s.path().join("s"), s.path().join("i"));
    let scratch = |c: &mut std::process::Command| {
        c.arg("--dkmstree")
            .arg(&tree)
            .arg("--sourcetree")
            .arg(&sources)
            .arg("--installtree")
            .arg(&install);
    };
    for p in [&tree, &sources, &install] {
        std::fs::create_dir_all(p).unwrap();
    }
    let mut c = std::process::Command::new("dkms");
    c.arg("ldtarball").arg(tarball);
    scratch(&mut c);
    run(&mut c);
    let release = release_of(headers);
    let mut c = std::process::Command::new("dkms");
    c.args(["build", "-m", name, "-v", version, "-k", &release])
        .arg(format!("--kernelsourcedir={}", headers.display()));
    scratch(&mut c);
    run(&mut c);
    let mut made: Vec<String> =
        std::fs::read_dir(tree.join(format!("{name}/{version}/{release}/x86_64/module")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    made.sort();
    made
}

/// A plain Kbuild project of two modules in subdirectories (no dkms.conf), adopted:
/// `package --dkms` writes a DKMS tree of the whole project whose dkms.conf names both
/// modules where the build makes them, and the real dkms builds them.
#[test]
fn package_dkms_of_a_kbuild_project_carries_every_module() {
    let headers = debian_61_headers();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("kpair");
    write_files(
        &dir,
        &[
            ("Kbuild", "obj-y += one/ two/\n"),
            ("one/Kbuild", "obj-m += kpair_one.o\n"),
            ("two/Kbuild", "obj-m += kpair_two.o\n"),
            (
                "one/kpair_one.c",
                "#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\n",
            ),
            (
                "two/kpair_two.c",
                "#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\n",
            ),
        ],
    );
    for args in [
        vec!["init", "--kdir", headers.to_str().unwrap()],
        vec!["build"],
        vec!["package", "--dkms", "--out", "out"],
    ] {
        let o = kmod().current_dir(&dir).args(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    let conf = std::fs::read_to_string(dir.join("out/kpair-0.1.0/dkms.conf")).unwrap();
    assert!(conf.contains("BUILT_MODULE_LOCATION[0]=\"one/\""), "{conf}");
    let made = dkms_ldtarball_build(
        &dir.join("out/kpair-0.1.0.dkms.tar.gz"),
        ("kpair", "0.1.0"),
        &headers,
    );
    assert_eq!(made, ["kpair_one.ko", "kpair_two.ko"]);
}

/// The `name` of each of `v["modules"]` (a build's JSON or a boot's report).
fn module_names(v: &serde_json::Value) -> Vec<&str> {
    v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect()
}

/// Writes `files` (path under `dir`, text); a `*.sh` is made executable.
fn write_files<T: AsRef<str>>(dir: &Path, files: &[(&str, T)]) {
    use std::os::unix::fs::PermissionsExt;
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text.as_ref()).unwrap();
        if name.ends_with(".sh") {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// `build --sign` of the project in `dir` with the rsa2048 test key (for one kernel:
/// `kdir`, else the project's own), which must succeed: its JSON, every module signed.
fn signed_build(dir: &Path, kdir: Option<&Path>) -> serde_json::Value {
    let key = crate::fixtures::test_key("rsa2048");
    let mut c = kmod();
    c.current_dir(dir)
        .args(["build", "--message-format", "json", "--sign", "--key"])
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.cert);
    if let Some(k) = kdir {
        c.arg("--kdir").arg(k);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["signed"], true, "{v}");
    v
}

/// Debian 12's own DKMS packages, adopted as they are, proved on Debian 12's own 6.1
/// (`cargo kmod test --kernel debian/bookworm`: built, checked, booted, every module
/// loaded after what it needs from the kernel's module tree, then unloaded). The
/// kernel's verdicts are pinned: everything loads as `check` said, except two
/// xtables-addons modules whose own init fails in a guest without their setup
/// (xt_pknock -ENXIO, xt_DNETMAP -EINVAL: the kernel's initcall tracepoint says their
/// init ran, so the loader had accepted them), and xt_CHAOS oopses when it is unloaded
/// (a NULL dereference in chaos_tg_exit): exit 22, the oops named.
#[test]
fn debians_dkms_packages_load_in_debians_own_61() {
    let k = crate::fixtures::fetched("debian/bookworm");
    let cases: [(&str, &[&str], i32); 4] = [
        ("acpi-call-dkms", &["acpi_call"], 0),
        ("ddcci-dkms", &["ddcci", "ddcci_backlight"], 0),
        ("v4l2loopback-dkms", &["v4l2loopback"], 0),
        ("xtables-addons-dkms", &[], 22),
    ];
    for (deb, modules, code) in cases {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p");
        copy_tree(&package_source(deb), &p);
        let o = kmod().arg("init").current_dir(&p).output().unwrap();
        assert!(o.status.success(), "{deb}: {}", stderr(&o));
        let o = kmod()
            .args(["test", "--accel", "tcg", "--message-format", "json"])
            .args(["--kernel", "debian/bookworm"])
            .current_dir(&p)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(code),
            "{deb}: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        let cells: Vec<serde_json::Value> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(cells.iter().all(|c| c["release"] == k.release.as_str()));
        for c in &cells {
            assert_eq!(c["agrees"], true, "{deb}: {c}");
        }
        let verdict = |c: &serde_json::Value| c["verdict"].clone();
        if modules.is_empty() {
            // xtables-addons: 23 modules.
            assert_eq!(cells.len(), 23, "{cells:?}");
            for c in &cells {
                let want = match c["module"].as_str().unwrap() {
                    "xt_pknock" => serde_json::json!({"verdict": "init-failed", "refusal": -6}),
                    "xt_DNETMAP" => {
                        serde_json::json!({"verdict": "init-failed", "refusal": -22})
                    }
                    _ => serde_json::json!({"verdict": "loads"}),
                };
                assert_eq!(verdict(c), want, "{c}");
            }
            assert!(
                stderr(&o).contains("BUG: kernel NULL pointer dereference"),
                "{}",
                stderr(&o)
            );
            continue;
        }
        let names: Vec<&str> = cells
            .iter()
            .map(|c| c["module"].as_str().unwrap())
            .collect();
        assert_eq!(names, modules, "{deb}");
        for c in &cells {
            assert_eq!(verdict(c), serde_json::json!({"verdict": "loads"}), "{c}");
            assert_eq!(c["unloaded"], true, "{c}");
        }
    }
}
