//! `new` + `build`: every template compiles on the kernels it targets.

use crate::common::*;
use crate::fixtures::*;
use crate::fixtures::{test_kernel, test_key};
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// C strings take escapes (checked here); the Rust module! macro does not.
fn author(template: &str) -> &'static str {
    if template.starts_with("rust") {
        "Jane Dev"
    } else {
        "Jane \"JD\" Dev"
    }
}

fn new_project(dir: &Path, template: &str, kdir: &Path) -> PathBuf {
    let p = dir.join(format!("demo-{template}"));
    kmod()
        .arg("new")
        .arg(&p)
        .args([
            "--template",
            template,
            "--author",
            author(template),
            "--description",
            "Demo of cargo-kmod",
            "--license",
            "Dual MIT/GPL",
            "--kdir",
        ])
        .arg(kdir)
        .assert()
        .success();
    p
}

fn artifacts(o: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn field(ko: &Path, f: &str) -> String {
    stdout(&kmod().args(["info", "-F", f]).arg(ko).output().unwrap())
        .trim_end()
        .to_string()
}

fn vermagic_release(kdir: &Path) -> String {
    std::fs::read_to_string(kdir.join("include/config/kernel.release"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn every_template_builds_on_the_test_kernel_and_c_on_debian_headers() {
    let d = tempfile::tempdir().unwrap();
    let list = stdout(&kmod().args(["new", "--list"]).output().unwrap());
    for t in ["rust-minimal", "c-minimal", "c-params"] {
        assert!(list.contains(t), "{list}");
    }
    let test_k = &test_kernel().kdir;
    let deb = debian_headers();
    for t in ["rust-minimal", "c-minimal", "c-params"] {
        let p = new_project(d.path(), t, test_k);
        let name = format!("demo_{}", t.replace('-', "_"));
        let arts = artifacts(&build(&p, &[test_k], &[]));
        let ko = PathBuf::from(arts[0]["path"].as_str().unwrap());
        assert_eq!(
            ko,
            p.join(format!(
                "target/kmod/{}/{name}.ko",
                vermagic_release(test_k)
            ))
        );
        assert_eq!(field(&ko, "name"), name);
        assert_eq!(field(&ko, "license"), "Dual MIT/GPL");
        assert_eq!(field(&ko, "author"), author(t));
        assert_eq!(field(&ko, "description"), "Demo of cargo-kmod");
        assert!(
            field(&ko, "vermagic").starts_with(&format!("{} ", vermagic_release(test_k))),
            "{t}"
        );
        assert_eq!(
            arts[0]["sha256"],
            hex::encode(openssl::sha::sha256(&std::fs::read(&ko).unwrap()))
        );
        // Against Debian's headers: C builds, Rust stops in preflight with the fix.
        let o = build(&p, &[&deb], &[]);
        if t.starts_with("rust") {
            assert_eq!(o.status.code(), Some(16), "{}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.contains("these headers were built without Rust support"),
                "{err}"
            );
            assert!(
                err.contains("help: use `cargo kmod kernel build` or headers with CONFIG_RUST=y"),
                "{err}"
            );
            assert!(!err.contains("error[E"), "a compiler error leaked: {err}");
        } else {
            let arts = artifacts(&o);
            let ko = PathBuf::from(arts[0]["path"].as_str().unwrap());
            assert!(
                field(&ko, "vermagic").starts_with(&format!("{} SMP", vermagic_release(&deb))),
                "{}",
                field(&ko, "vermagic")
            );
            // kmod's modinfo agrees.
            let mi = stdout(&run(Std::new("modinfo").arg(&ko)));
            assert!(mi.contains(&format!("name:           {name}")), "{mi}");
        }
    }
}

#[test]
fn one_project_two_kernels_two_vermagics() {
    let d = tempfile::tempdir().unwrap();
    let p = new_project(d.path(), "c-params", &test_kernel().kdir);
    let deb = debian_headers();
    let arts = artifacts(&build(&p, &[&test_kernel().kdir, &deb], &[]));
    assert_eq!(arts.len(), 2);
    let v: Vec<String> = arts
        .iter()
        .map(|a| field(Path::new(a["path"].as_str().unwrap()), "vermagic"))
        .collect();
    assert_ne!(v[0], v[1]);
    assert_ne!(arts[0]["path"], arts[1]["path"]);
}

#[test]
fn forced_mismatching_rustc_fails_in_preflight_naming_both() {
    let d = tempfile::tempdir().unwrap();
    let p = new_project(d.path(), "rust-minimal", &test_kernel().kdir);
    let rustup = PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo/bin/rustc");
    let theirs = stdout(&run(Std::new(&rustup).arg("--version")))
        .trim()
        .to_string();
    let o = kmod()
        .env("RUSTC", &rustup)
        .arg("build")
        .arg("--manifest-path")
        .arg(p.join("Cargo.toml"))
        .arg("--kdir")
        .arg(&test_kernel().kdir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(16), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&test_kernel().rustc) && err.contains(&theirs),
        "{err}"
    );
    assert!(
        !p.join("target/kmod")
            .join(vermagic_release(&test_kernel().kdir))
            .exists(),
        "nothing built"
    );
}

#[test]
fn rust_template_signed_by_build_loads_in_the_vm() {
    let d = tempfile::tempdir().unwrap();
    let p = new_project(d.path(), "rust-minimal", &test_kernel().kdir);
    let k = test_key("p384");
    let arts = artifacts(&build(
        &p,
        &[&test_kernel().kdir],
        &[
            "--sign",
            "--key",
            k.key.to_str().unwrap(),
            "--cert",
            k.cert.to_str().unwrap(),
        ],
    ));
    assert_eq!(arts[0]["signed"], true);
    let ko = PathBuf::from(arts[0]["path"].as_str().unwrap());
    let (code, v, err) = crate::fixtures::boot(&[&ko], &[]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(
        v["modules"][0]["kernel_log"]
            .to_string()
            .contains("demo_rust_minimal: loaded"),
        "{v}"
    );
}

#[test]
fn generated_projects_are_plain_cargo_packages_and_new_refuses_to_overwrite() {
    let d = tempfile::tempdir().unwrap();
    let p = new_project(d.path(), "rust-minimal", &test_kernel().kdir);
    run(Std::new("cargo")
        .arg("check")
        .arg("--quiet")
        .current_dir(&p));
    assert!(
        std::fs::read_to_string(p.join(".gitignore"))
            .unwrap()
            .contains("*.ko")
    );
    let before = sha256(&p.join("Cargo.toml"));
    let o = kmod().arg("new").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not empty"));
    assert_eq!(sha256(&p.join("Cargo.toml")), before);
    for bad in ["1abc", "with-dash", &"x".repeat(56)] {
        let o = kmod()
            .arg("new")
            .arg(d.path().join("n"))
            .args(["--name", bad])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&o).contains("module name") || stderr(&o).contains("at most 55"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!d.path().join("n").exists());
    let o = kmod()
        .arg("new")
        .arg(d.path().join("q"))
        .args(["--author", "A \"B\""])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("module! macro"), "{}", stderr(&o));
    // rust-analyzer's project file, pointing at the project's sources.
    kmod()
        .arg("build")
        .arg("--manifest-path")
        .arg(p.join("Cargo.toml"))
        .arg("--rust-analyzer")
        .assert()
        .success();
    let ra = std::fs::read_to_string(p.join("rust-project.json")).unwrap();
    assert!(
        ra.contains(&p.join("demo_rust_minimal.rs").display().to_string())
            || ra.contains(&p.display().to_string()),
        "{ra}"
    );
}

#[test]
fn run_in_a_project_builds_signs_with_the_trees_key_and_loads() {
    let d = tempfile::tempdir().unwrap();
    let p = new_project(d.path(), "c-minimal", &test_kernel().kdir);
    let o = kmod()
        .current_dir(&p)
        .args([
            "run",
            "--accel",
            "tcg",
            "--message-format",
            "json",
            "--kdir",
        ])
        .arg(&test_kernel().kdir)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    assert_eq!(o.status.code(), Some(0), "{v}");
    assert!(
        v["modules"][0]["kernel_log"]
            .to_string()
            .contains("demo_c_minimal: loaded"),
        "{v}"
    );
    assert_eq!(v["modules"][0]["unloaded"], true);
}

/// A module built for another kernel, validly signed, is refused for its version magic.
#[test]
fn module_for_another_kernel_is_refused_for_version_magic() {
    let d = tempfile::tempdir().unwrap();
    let deb = debian_headers();
    let p = new_project(d.path(), "c-minimal", &deb);
    let arts = artifacts(&build(&p, &[&deb], &[]));
    let ko = PathBuf::from(arts[0]["path"].as_str().unwrap());
    let k = test_key("rsa2048");
    sign_cmd(&k, "sha512").arg(&ko).assert().success();
    let (code, v, err) = crate::fixtures::boot(&[&ko], &[]);
    assert_eq!(code, 20, "{v}\n{err}");
    assert_eq!(v["modules"][0]["refusal"], "version-magic", "{v}");
}
