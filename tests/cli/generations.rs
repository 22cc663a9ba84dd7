//! Kernel generations: every template on the 6.12 and 7.2 test kernels (made, built,
//! signed by `build --sign`, booted with signatures enforced, loaded with parameters,
//! unloaded), C templates on Debian's 6.1 and 6.12 headers, the signing hash that
//! follows the target, and matrix builds.

use crate::common::*;
use crate::fixtures::build;
use crate::fixtures::*;
use crate::fixtures::{boot_on, test_kernel, test_kernel_72, test_key};
use cargo_kmod::kernel::KernelInfo;
use std::path::{Path, PathBuf};

/// Template names, from `new --list` (its first column, under the header).
fn templates() -> Vec<String> {
    let list = stdout(&kmod().args(["new", "--list"]).output().unwrap());
    assert!(list.starts_with("TEMPLATE"), "{list}");
    list.lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn new_for(dir: &Path, template: &str, kdir: &Path) -> (assert_cmd::assert::Assert, PathBuf) {
    let p = dir.join(format!("demo-{template}"));
    let a = kmod()
        .arg("new")
        .arg(&p)
        .args(["--template", template, "--author", "Jane Dev", "--kdir"])
        .arg(kdir)
        .assert();
    (a, p)
}

fn json_lines(o: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn sign_args() -> Vec<String> {
    let k = test_key("p384");
    vec![
        "--sign".into(),
        "--key".into(),
        k.key.display().to_string(),
        "--cert".into(),
        k.cert.display().to_string(),
    ]
}

fn config_value(k: &KernelInfo, key: &str) -> String {
    let c = std::fs::read_to_string(k.kdir.join(".config")).unwrap();
    c.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} not in the test kernel's .config"))
        .trim_matches('"')
        .to_string()
}

fn is_at_least(release: &str, maj: u32, min: u32) -> bool {
    cargo_kmod::target::Version::of(release).at_least(maj, min)
}

/// What each template's module logs with the parameters passed, and its sysfs view.
fn expected_log(template: &str, name: &str) -> Vec<String> {
    match template {
        "c-params" => vec![format!("{name}: loaded: count=3 greeting=hi verbose=0")],
        "rust-params" => vec![format!("{name}: loaded: count=3 level=7")],
        "c-export" => vec![format!(
            "{name}: loaded: exports {name}_answer in namespace {}",
            name.to_uppercase()
        )],
        _ => vec![format!("{name}: loaded")],
    }
}

#[test]
fn every_template_on_both_test_kernels_builds_signs_boots_with_parameters() {
    let all = templates();
    for t in [
        "rust-minimal",
        "rust-params",
        "c-minimal",
        "c-params",
        "c-export",
    ] {
        assert!(all.iter().any(|a| a == t), "{t} missing from new --list");
    }
    for k in [test_kernel(), test_kernel_72()] {
        every_template_on(k);
    }
}

/// Every template `new` offers for kernel `k` (Rust ones when it has Rust): made,
/// built and signed by `build --sign` with the kernel's own hash, booted with
/// signatures enforced, loaded with parameters, unloaded.
pub fn every_template_on(k: &KernelInfo) {
    let all = templates();
    let sign = sign_args();
    let sign: Vec<&str> = sign.iter().map(String::as_str).collect();
    {
        let d = tempfile::tempdir().unwrap();
        let hash = config_value(k, "CONFIG_MODULE_SIG_HASH");
        let mut modules = Vec::new();
        for t in &all {
            let name = format!("demo_{}", t.replace('-', "_"));
            if t.starts_with("rust") && !k.rust {
                continue;
            }
            let (a, p) = new_for(d.path(), t, &k.kdir);
            if t == "rust-params" && !is_at_least(&k.release, 6, 19) {
                let o = a.get_output();
                assert_eq!(o.status.code(), Some(25), "{}", stderr(o));
                assert!(stderr(o).contains("came with Linux 6.19"), "{}", stderr(o));
                assert!(!p.exists(), "refused, yet {} was written", p.display());
                continue;
            }
            a.success();
            let src = std::fs::read_to_string(p.join(format!(
                "{name}.{}",
                if t.starts_with("rust") { "rs" } else { "c" }
            )))
            .unwrap();
            if t == "rust-minimal" {
                let list = is_at_least(&k.release, 6, 15);
                assert_eq!(src.contains("authors: [\"Jane Dev\"]"), list, "{src}");
                assert_eq!(src.contains("author: \"Jane Dev\""), !list, "{src}");
            }
            if t == "c-export" {
                let ns = name.to_uppercase();
                let want = if is_at_least(&k.release, 6, 13) {
                    format!("EXPORT_SYMBOL_NS_GPL({name}_answer, \"{ns}\");")
                } else {
                    format!("EXPORT_SYMBOL_NS_GPL({name}_answer, {ns});")
                };
                assert!(src.contains(&want), "{src}");
            }
            // No --hash: the tree's CONFIG_MODULE_SIG_HASH.
            let o = build(&p, &[&k.kdir], &sign);
            assert!(o.status.success(), "{t} on {}: {}", k.release, stderr(&o));
            let art = &json_lines(&o)[0];
            assert_eq!(art["status"], "ok");
            assert_eq!(art["signed"], true);
            assert_eq!(art["hash"], hash.as_str(), "{t} on {}", k.release);
            let ko = PathBuf::from(art["path"].as_str().unwrap());
            let info = stdout(&kmod().args(["info"]).arg(&ko).output().unwrap());
            assert!(info.contains(&format!("sig_hashalgo:   {hash}")), "{info}");
            if t == "rust-params" {
                let parm = stdout(&run(std::process::Command::new("modinfo")
                    .args(["-F", "parm"])
                    .arg(&ko)));
                assert!(parm.contains("count:How many times to greet"), "{parm}");
                assert!(parm.contains("level:A number to log"), "{parm}");
            }
            modules.push((t.clone(), name, ko));
        }
        // One boot per kernel, every module in it; unknown parameters are ignored.
        let kos: Vec<&Path> = modules.iter().map(|(_, _, ko)| ko.as_path()).collect();
        let (code, v, err) = boot_on(
            k,
            &kos,
            &[
                "--param",
                "count=3",
                "--param",
                "greeting=hi",
                "--param",
                "level=7",
            ],
        );
        assert_eq!(code, 0, "{}: {v}\n{err}", k.release);
        for (i, (t, name, _)) in modules.iter().enumerate() {
            let r = &v["modules"][i];
            assert_eq!(r["loaded"], true, "{t} on {}: {v}", k.release);
            assert_eq!(r["unloaded"], true, "{t} on {}: {v}", k.release);
            let log = r["kernel_log"].to_string();
            for want in expected_log(t, name) {
                assert!(
                    log.contains(&want),
                    "{t} on {}: want {want:?} in {log}",
                    k.release
                );
            }
            if t == "c-params" {
                let params = r["params"].to_string();
                assert!(params.contains(r#"["count","3"]"#), "{v}");
                assert!(params.contains(r#"["greeting","hi"]"#), "{v}");
            }
        }
    }
}

#[test]
fn c_templates_build_on_debian_61_and_612_headers() {
    let d = tempfile::tempdir().unwrap();
    let h61 = debian_61_headers();
    let h612 = crate::fixtures::debian_headers();
    for t in ["c-minimal", "c-params", "c-export"] {
        // Made for 6.1: c-export's namespace is a bare token there.
        let (a, p) = new_for(d.path(), t, &h61);
        a.success();
        let o = build(&p, &[&h61], &[]);
        assert!(o.status.success(), "{t} on 6.1: {}", stderr(&o));
        let ko = json_lines(&o)[0]["path"].as_str().unwrap().to_string();
        let vermagic = stdout(&run(std::process::Command::new("modinfo")
            .args(["-F", "vermagic"])
            .arg(&ko)));
        assert!(vermagic.starts_with("6.1."), "{vermagic}");
        let p612 = d.path().join(format!("{t}-612"));
        kmod()
            .arg("new")
            .arg(&p612)
            .args(["--template", t, "--name", "demo612", "--kdir"])
            .arg(&h612)
            .assert()
            .success();
        let o = build(&p612, &[&h612], &[]);
        assert!(o.status.success(), "{t} on 6.12: {}", stderr(&o));
    }
}

#[test]
fn signing_hash_follows_the_target_and_refusals_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (a, p) = new_for(d.path(), "c-minimal", &test_kernel_72().kdir);
    a.success();
    let mut sign = sign_args();
    sign.extend(["--hash".into(), "sha1".into()]);
    let sign: Vec<&str> = sign.iter().map(String::as_str).collect();
    // 7.0 removed SHA-1 signing.
    let o = build(&p, &[&test_kernel_72().kdir], &sign);
    assert_eq!(o.status.code(), Some(25), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("7.0 removed SHA-1 module signing"), "{err}");
    assert!(err.contains("help: sign with sha256"), "{err}");
    assert!(
        !p.join("target/kmod").exists(),
        "a refused build wrote files"
    );
    let v = &json_lines(&o)[0];
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 25);
    // 6.12 signs with SHA-1 in general, but this one has no CONFIG_CRYPTO_SHA1.
    let o = build(&p, &[&test_kernel().kdir], &sign);
    assert_eq!(o.status.code(), Some(25), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot verify sha1 signatures: CONFIG_CRYPTO_SHA1 is not set"),
        "{}",
        stderr(&o)
    );
    assert!(!p.join("target/kmod").exists());
}

/// A SHA-1 signature: `verify` judges it by what the kernel was built with (the test
/// kernels have no CONFIG_CRYPTO_SHA1: ENOPKG, as the booted kernel says), and without
/// a kernel's .config it still verifies — 7.0 removed SHA-1 signing, not checking.
#[test]
fn verify_with_a_kernels_config_judges_digests_as_that_kernel() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("sha1.ko");
    std::fs::copy(crate::fixtures::built_module("kmodtest"), &m).unwrap();
    let k = test_key("rsa2048");
    // cargo kmod sign offers no SHA-1; its sign-file drop-in signs as asked.
    kmod()
        .args(["sign-file", "sha1"])
        .arg(&k.key)
        .arg(&k.cert)
        .arg(&m)
        .assert()
        .success();
    let verify = |kernel: &Path| {
        kmod()
            .args(["verify", "--cert"])
            .arg(&k.cert)
            .arg("--kernel")
            .arg(kernel)
            .arg(&m)
            .output()
            .unwrap()
    };
    for kernel in [test_kernel(), test_kernel_72()] {
        for given in [
            kernel.kdir.join(".config"),
            kernel.kdir.clone(),
            kernel.image.clone(),
        ] {
            let o = verify(&given);
            assert_eq!(
                o.status.code(),
                Some(12),
                "{}: {}",
                given.display(),
                stderr(&o)
            );
            assert!(
                stdout(&o)
                    .contains("ENOPKG: the kernel has no sha1 (CONFIG_CRYPTO_SHA1 is not set)"),
                "{}",
                stdout(&o)
            );
        }
        let (code, v, _) = boot_on(kernel, &[&m], &[]);
        assert_eq!(code, 20, "{v}");
        assert!(
            v["modules"][0]["kernel_log"]
                .to_string()
                .contains("Loading of module with unsupported crypto is rejected"),
            "{v}"
        );
    }
    let o = kmod()
        .args(["verify", "--cert"])
        .arg(&k.cert)
        .arg(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("with sha1"), "{}", stdout(&o));
}

#[test]
fn matrix_build_reports_each_kernel_and_one_failure_stops_none() {
    let d = tempfile::tempdir().unwrap();
    let deb = crate::fixtures::debian_headers();
    let kdirs = [&test_kernel().kdir, &deb, &test_kernel_72().kdir];
    let kdirs: Vec<&Path> = kdirs.iter().map(|k| k.as_path()).collect();
    // A C module builds for all three at once.
    let (a, c) = new_for(d.path(), "c-params", &test_kernel().kdir);
    a.success();
    let o = build(&c, &kdirs, &["-j", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_lines(&o);
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v.iter().all(|x| x["status"] == "ok"), "{v:?}");
    // A Rust module written for 6.12 (`author:`): Debian's headers have no Rust
    // (refused in preflight, 16), 7.2 no longer takes `author:` (Kbuild fails, 17);
    // 6.12 still builds, and the exit status is the highest.
    let (a, p) = new_for(d.path(), "rust-minimal", &test_kernel().kdir);
    a.success();
    let o = build(&p, &kdirs, &["-j", "2"]);
    assert_eq!(o.status.code(), Some(17), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown key \"author\""),
        "{}",
        stderr(&o)
    );
    let v = json_lines(&o);
    assert_eq!(v.len(), 3, "{v:?}");
    let status = |release: &str| {
        v.iter()
            .find(|x| x["release"] == release || x["kdir"] == release)
            .map(|x| (x["status"].clone(), x["exit_code"].clone()))
            .unwrap_or_else(|| panic!("{release} missing: {v:?}"))
    };
    assert_eq!(status(&test_kernel().release).0, "ok");
    assert_eq!(
        status(&test_kernel_72().release),
        ("failed".into(), 17.into())
    );
    assert_eq!(status(deb.to_str().unwrap()), ("failed".into(), 16.into()));
    // Human: a table at the end, one row per kernel.
    let mut c = kmod();
    c.arg("build")
        .arg("--manifest-path")
        .arg(p.join("Cargo.toml"));
    for k in &kdirs {
        c.arg("--kdir").arg(k);
    }
    let o = c.output().unwrap();
    let out = stdout(&o);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(
        rows.iter().filter(|r| r.contains("  ok  ")).count(),
        1,
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("FAILED") && r.contains("exit 16")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("7.2.13") && r.contains("exit 17")),
        "{rows:?}"
    );
}

#[test]
fn kernel_list_orders_by_version_and_run_picks_the_newest() {
    let (a, b) = (test_kernel(), test_kernel_72());
    let out = stdout(&kmod().args(["kernel", "list"]).output().unwrap());
    let pos = |k: &KernelInfo| {
        out.lines()
            .position(|l| {
                l.starts_with(&format!("{} ", k.release))
                    && l.contains(&format!("  {}  ", k.kdir.display()))
            })
            .unwrap_or_else(|| panic!("{} not listed: {out}", k.release))
    };
    // Newest first: 7.2 above 6.12.
    assert!(pos(b) < pos(a), "{out}");
    // run without a kernel boots the newest cached one.
    let newest = cargo_kmod::kernel::list(&crate::common::settings()).remove(0);
    assert!(is_at_least(&newest.release, 7, 2), "{}", newest.release);
    let m = crate::fixtures::built_module("kmodtest");
    let o = kmod()
        .args(["run", "--accel", "tcg", "--message-format", "json"])
        .args(["--exec", "cat /proc/sys/kernel/osrelease", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["exec"][0]["output"][0], newest.release.as_str(), "{v}");
}
