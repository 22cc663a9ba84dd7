//! `check` predicts, the kernel decides: the same modules, in the same order, checked
//! offline and then loaded by `run` on the test kernels; the verdicts must be equal.

use crate::common::*;
use crate::fixtures::*;
use crate::fixtures::{
    boot_on, built_modules, copy_of, sign, test_kernel, test_kernel_72, test_key,
};
use cargo_kmod::kernel::KernelInfo;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn patch(path: &Path, from: &[u8], to: &[u8]) {
    let mut b = std::fs::read(path).unwrap();
    let at = b
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{}: no {:?}", path.display(), String::from_utf8_lossy(from)));
    b[at..at + to.len()].copy_from_slice(to);
    std::fs::write(path, b).unwrap();
}

/// The table on kernel `k`; `other` builds the module made for another kernel.
fn agree(k: &KernelInfo, other: &KernelInfo) {
    let d = tempfile::tempdir().unwrap();
    let set = built_modules(
        k,
        "kmod_check",
        &["KBUILD_MODPOST_WARN=1", "KBUILD_NSDEPS=1"],
    );
    let base = built_modules(k, "kmodtest", &[]).join("kmodtest.ko");
    let foreign = built_modules(other, "kmodtest", &[]).join("kmodtest.ko");
    let p384 = test_key("p384");
    let signed = |src: &Path, name: &str| {
        let m = copy_of(src, d.path(), name);
        sign(&m, &p384, "sha256");
        m
    };
    let foreign = signed(&foreign, "foreign.ko");
    let unsigned = copy_of(&base, d.path(), "unsigned.ko");
    let untrusted = copy_of(&base, d.path(), "untrusted.ko");
    sign(&untrusted, &test_key("untrusted"), "sha256");
    let tampered = signed(&base, "tampered.ko");
    let mut b = std::fs::read(&tampered).unwrap();
    b[0x400] ^= 1;
    std::fs::write(&tampered, b).unwrap();
    // SHA-1: the test kernels lack CONFIG_CRYPTO_SHA1 (Debian's sign-file still makes it).
    let sha1 = copy_of(&base, d.path(), "sha1.ko");
    let rsa = test_key("rsa2048");
    run(std::process::Command::new(sign_file())
        .arg("sha1")
        .arg(&rsa.key)
        .arg(&rsa.cert)
        .arg(&sha1));
    let good = signed(&base, "good.ko");
    let unknown = signed(&set.join("kmod_unknown.ko"), "kmod_unknown.ko");
    let gplonly = copy_of(&set.join("kmod_gplonly.ko"), d.path(), "kmod_gplonly.ko");
    patch(&gplonly, b"license=GPL\0", b"license=MIT\0");
    sign(&gplonly, &p384, "sha256");
    let ns = signed(&set.join("kmod_ns.ko"), "kmod_ns.ko");
    let b_alone = signed(&set.join("kmod_dep_b.ko"), "kmod_dep_b-alone.ko");
    // An exporter the kernel refuses (unsigned) exports nothing to the next one.
    let a_unsigned = copy_of(
        &set.join("kmod_dep_a.ko"),
        d.path(),
        "kmod_dep_a-unsigned.ko",
    );
    let b_after = signed(&set.join("kmod_dep_b.ko"), "kmod_dep_b-after-unsigned.ko");
    let dep_a = signed(&set.join("kmod_dep_a.ko"), "kmod_dep_a.ko");
    let dep_b = signed(&set.join("kmod_dep_b.ko"), "kmod_dep_b.ko");
    // kmod_crc_b built against kmod_crc_a's first version, loaded after its second.
    let crc = built_modules(k, "kmod_crc", &[]);
    let crc_v2 = built_modules(k, "kmod_crc", &["KCFLAGS=-DKMOD_CRC_V2"]);
    let crc_a = signed(&crc_v2.join("kmod_crc_a.ko"), "kmod_crc_a.ko");
    let crc_b = signed(&crc.join("kmod_crc_b.ko"), "kmod_crc_b.ko");
    let modversions = std::fs::read_to_string(k.kdir.join(".config"))
        .unwrap()
        .contains("\nCONFIG_MODVERSIONS=y\n");

    // In load order; the copies of kmodtest that must fail come before the one that
    // loads (the kernel would otherwise say "already loaded"). The kernel's verdict is
    // pinned too: the table is only a test if each row is what it claims to be.
    let table: [(&PathBuf, Value); 16] = [
        (&foreign, "version-magic".into()),
        (&unsigned, "unsigned".into()),
        (&untrusted, "unavailable-key".into()),
        (&tampered, "bad-signature".into()),
        (&sha1, "unsupported-crypto".into()),
        (&good, Value::Null),
        (&unknown, "unknown-symbol".into()),
        (&gplonly, "unknown-symbol".into()),
        (&ns, "namespace-not-imported".into()),
        (&b_alone, "unknown-symbol".into()),
        (&a_unsigned, "unsigned".into()),
        (&b_after, "unknown-symbol".into()),
        (&dep_a, Value::Null),
        (&dep_b, Value::Null),
        (&crc_a, Value::Null),
        (
            &crc_b,
            if modversions {
                "symbol-version".into()
            } else {
                Value::Null
            },
        ),
    ];
    let modules: Vec<PathBuf> = table.iter().map(|(m, _)| (*m).clone()).collect();
    let (code, predicted) = check_json(&["--kdir".as_ref(), k.kdir.as_os_str()], &modules);
    assert_eq!(predicted.len(), modules.len());
    assert_eq!(code, 20, "some are refused");
    let refs: Vec<&Path> = modules.iter().map(PathBuf::as_path).collect();
    let (_, v, err) = boot_on(k, &refs, &[]);
    assert_eq!(v["finished"], true, "{v}\n{err}");
    for (i, (m, want)) in table.iter().enumerate() {
        let kernel = &v["modules"][i];
        let said = &predicted[i];
        let name = m.file_name().unwrap().to_string_lossy();
        assert_eq!(
            &kernel["refusal"], want,
            "{name} on {}: the kernel said {kernel}",
            k.release
        );
        let check_refusal = said.get("refusal").cloned().unwrap_or(Value::Null);
        assert_eq!(
            check_refusal, kernel["refusal"],
            "{name} on {}: check said {said}, the kernel {kernel}",
            k.release
        );
        assert_eq!(
            said["verdict"],
            if want.is_null() { "loads" } else { "refused" }
        );
        // Where check quotes the kernel, the kernel printed that line.
        let msg = said["message"].as_str().unwrap_or_default();
        let quoted = msg.split(" (").next().unwrap_or_default();
        let log = kernel["kernel_log"].to_string() + &kernel["tool_output"].to_string();
        if quoted.contains("Unknown symbol")
            || quoted.contains("does not import")
            || quoted.starts_with("Loading of")
        {
            let line = quoted.split(" Unknown symbol").next().unwrap();
            assert!(
                log.contains(line),
                "{name}: check quotes {line:?}, the kernel printed {log}"
            );
        }
    }
    // Loaded modules taint out-of-tree (O), as check says.
    assert_eq!(predicted[5]["taints"], "O", "{}", predicted[5]);
    assert!(v["tainted"].as_u64().unwrap() & (1 << 12) != 0, "{v}");
    assert_eq!(
        predicted[13]["load_first"],
        serde_json::json!([]),
        "kmod_dep_a came first"
    );
}

#[test]
fn check_agrees_with_the_612_kernel() {
    agree(test_kernel(), test_kernel_72());
}

#[test]
fn check_agrees_with_the_72_kernel() {
    agree(test_kernel_72(), test_kernel());
}

#[test]
fn check_agrees_with_a_modversions_kernel() {
    agree(crate::fixtures::test_kernel_modversions(), test_kernel());
}

/// tests/modules/<dir> built with plain `make` against a distribution's headers (gcc,
/// as Debian builds them).
fn built_with_headers(headers: &Path, dir: &str, args: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    crate::fixtures::copy_module_sources(dir, out.path());
    run(std::process::Command::new("make")
        .arg("-C")
        .arg(headers)
        .arg(format!("M={}", out.path().display()))
        .args(args)
        .arg("modules"));
    out
}

/// Each module's dependencies as depmod writes them (modules.dep of [`depmod_copy`]).
fn depmod_deps(k: &Packaged) -> std::collections::HashMap<String, Vec<String>> {
    let root = depmod_copy(k, &[]);
    let dep = std::fs::read_to_string(
        root.path()
            .join("lib/modules")
            .join(&k.release)
            .join("modules.dep"),
    )
    .unwrap();
    let name = |p: &str| cargo_kmod::modfile::name_of_path(p.trim());
    dep.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, deps)| {
            let mut d: Vec<String> = deps.split_whitespace().map(name).collect();
            d.sort();
            (name(m), d)
        })
        .collect()
}

/// A module that needs another installed beside the kernel's (DKMS's `updates/`), which
/// Module.symvers does not know: found through depmod's modules.symbols.
#[test]
fn a_dependency_installed_by_dkms_is_found_through_depmod() {
    let k = debian_612();
    let dir = built_with_headers(
        &k.headers,
        "kmod_check",
        &["KBUILD_MODPOST_WARN=1", "KBUILD_NSDEPS=1"],
    );
    let (a, b) = (
        dir.path().join("kmod_dep_a.ko"),
        dir.path().join("kmod_dep_b.ko"),
    );
    let root = depmod_copy(&k, &[&a]);
    let tree = root.path().join("lib/modules").join(&k.release);
    let mut args = k.args();
    args[5] = tree.as_os_str();
    let (code, v) = check_json(&args, std::slice::from_ref(&b));
    assert_eq!(code, 0, "{v:?}");
    assert_eq!(v[0]["verdict"], "loads", "{}", v[0]);
    assert_eq!(
        v[0]["taints"], "OE",
        "out of tree, unsigned on a kernel that allows it"
    );
    assert_eq!(
        v[0]["load_first"],
        serde_json::json!(["kmod_dep_a"]),
        "{}",
        v[0]
    );
    // Without it: the kernel would not find the symbol, nor modprobe the module.
    let (code, v) = check_json(&k.args(), &[b]);
    assert_eq!(code, 20);
    assert_eq!(v[0]["refusal"], "unknown-symbol", "{}", v[0]);
    assert!(
        v[0]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown symbol kmod_dep_a_answer (err -2)"),
        "{}",
        v[0]
    );
}

#[test]
fn every_debian_module_loads_on_its_own_kernel_and_612s_are_refused_by_72() {
    let (k72, k612) = (debian_72(), debian_612());
    for k in [&k72, &k612] {
        let all = k.all_modules();
        assert!(all.len() > 4000, "{}: {} modules", k.release, all.len());
        let (code, verdicts) = check_json(&k.args(), &[k.modules.join("kernel")]);
        assert_eq!(verdicts.len(), all.len());
        let refused: Vec<&Value> = verdicts
            .iter()
            .filter(|v| v["verdict"] != "loads")
            .collect();
        assert!(
            refused.is_empty(),
            "{}: {} refused, e.g. {}",
            k.release,
            refused.len(),
            refused[0]
        );
        assert_eq!(code, 0);
        // The dependencies are depmod's (its modules.dep of the same tree).
        let depmod = depmod_deps(k);
        let mut with_deps = 0;
        for v in &verdicts {
            let name = cargo_kmod::modfile::name_of_path(v["module"].as_str().unwrap());
            let mut ours: Vec<String> = serde_json::from_value(v["load_first"].clone()).unwrap();
            ours.sort();
            with_deps += usize::from(!ours.is_empty());
            assert_eq!(Some(&ours), depmod.get(&name), "{name} on {}", k.release);
        }
        assert!(
            with_deps > 1000,
            "{}: {with_deps} modules with dependencies",
            k.release
        );
    }
    // 6.12's modules on 7.2: refused, by vermagic (7.2's struct module has the same size).
    let (code, verdicts) = check_json(&k72.args(), &[k612.modules.join("kernel")]);
    assert_eq!(code, 20);
    let want = format!(
        "version magic '{} SMP preempt mod_unload modversions ' should be '{} SMP preempt mod_unload '",
        k612.release, k72.release
    );
    for v in &verdicts {
        assert_eq!(v["refusal"], "version-magic", "{v}");
        assert!(v["message"].as_str().unwrap().contains(&want), "{v}");
    }
}

#[test]
fn bad_input_names_the_file_and_the_fix() {
    let d = tempfile::tempdir().unwrap();
    let ko = crate::fixtures::built_module("kmodtest");
    let fail = |args: &[&std::ffi::OsStr], module: &Path| {
        let o = kmod().arg("check").args(args).arg(module).output().unwrap();
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
        (o.status.code().unwrap(), stderr(&o))
    };
    // A directory that is neither a tree nor headers.
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, err) = fail(&["--kdir".as_ref(), empty.as_os_str()], &ko);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!(
            "error: {}: not a configured kernel tree",
            empty.display()
        )),
        "{err}"
    );
    assert!(err.contains("help: ") && err.contains("headers"), "{err}");
    // A configured tree without Module.symvers.
    let bare = d.path().join("bare");
    std::fs::create_dir_all(bare.join("include/config")).unwrap();
    let kdir = &test_kernel().kdir;
    std::fs::copy(kdir.join(".config"), bare.join(".config")).unwrap();
    std::fs::copy(
        kdir.join("include/config/kernel.release"),
        bare.join("include/config/kernel.release"),
    )
    .unwrap();
    let (code, err) = fail(&["--kdir".as_ref(), bare.as_os_str()], &ko);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!(
            "{}: missing",
            bare.join("Module.symvers").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("help: ") && err.contains("headers package"),
        "{err}"
    );
    // A module that is not ELF, and an image that is not a kernel.
    let text = d.path().join("notes.ko");
    std::fs::write(&text, "not a module\n").unwrap();
    let o = kmod()
        .arg("check")
        .arg("--kdir")
        .arg(kdir)
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}: not a kernel module: not an ELF file",
            text.display()
        )),
        "{}",
        stderr(&o)
    );
    let (code, err) = fail(
        &[
            "--kdir".as_ref(),
            kdir.as_os_str(),
            "--kernel".as_ref(),
            text.as_os_str(),
        ],
        &ko,
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not a kernel image"), "{err}");
    // Nothing is written anywhere it reads.
    let mut left: Vec<_> = walkdir::WalkDir::new(d.path())
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    left.sort();
    assert_eq!(left.len(), 8, "only what the test made: {left:?}");
}

/// On a distribution's kernel too: Debian's own 7.2, booted, judges as check said its
/// own tun, 6.12's (vermagic) and a module built against Debian 12's 6.1 headers (its
/// `struct module` is smaller than the one in 7.2's BTF; the size is checked first).
#[test]
fn debian_72_booted_agrees_with_check() {
    let (k72, k612) = (debian_72(), debian_612());
    let headers61 = PathBuf::from(recorded_release("debian-6.1-headers"));
    let dir61 = built_with_headers(&headers61, "kmodtest", &[]);
    let mods = [
        k612.modules.join("kernel/drivers/net/tun.ko.xz"),
        k72.modules.join("kernel/drivers/net/tun.ko.xz"),
        dir61.path().join("kmodtest.ko"),
    ];
    let (_, predicted) = check_json(&k72.args(), &mods);
    let args: Vec<&std::ffi::OsStr> = mods
        .iter()
        .flat_map(|m| ["--module".as_ref(), m.as_os_str()])
        .collect();
    let (v, _) = crate::fixtures::run_debian(&args);
    assert_eq!(v["finished"], true, "{v}");
    let want = [
        Value::from("version-magic"),
        Value::Null,
        Value::from("version-magic"),
    ];
    for (i, want) in want.iter().enumerate() {
        assert_eq!(&v["modules"][i]["refusal"], want, "{v}");
        let said = predicted[i].get("refusal").cloned().unwrap_or(Value::Null);
        assert_eq!(&said, want, "{}", predicted[i]);
    }
    for i in [0, 2] {
        let msg = predicted[i]["message"].as_str().unwrap();
        let quoted = msg.split(" (").next().unwrap();
        assert!(
            v["modules"][i]["kernel_log"].to_string().contains(quoted),
            "check said {msg:?}; the kernel: {}",
            v["modules"][i]["kernel_log"]
        );
    }
    assert!(
        predicted[2]["message"]
            .as_str()
            .unwrap()
            .contains("section size must match the kernel's built struct module size"),
        "{}",
        predicted[2]
    );
}

/// Several kernels: a verdict per module per kernel, then the module x kernel table.
#[test]
fn several_kernels_give_a_table() {
    let d = tempfile::tempdir().unwrap();
    let m = copy_of(
        &crate::fixtures::built_module("kmodtest"),
        d.path(),
        "kmodtest.ko",
    );
    sign(&m, &test_key("p384"), "sha256");
    let (k612, k72) = (test_kernel(), test_kernel_72());
    let o = kmod()
        .arg("check")
        .arg("--kdir")
        .arg(&k612.kdir)
        .arg("--kdir")
        .arg(&k72.kdir)
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(20), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{out}"))
            .to_string()
    };
    let path = m.display().to_string();
    assert_eq!(
        line(&format!("{path} on {}:", k612.release)),
        format!("{path} on {}: loads, taints (O)", k612.release)
    );
    assert!(
        line(&format!("{path} on {}:", k72.release)).starts_with(&format!(
            "{path} on {}: refused: kmodtest: version magic '{} ",
            k72.release, k612.release
        )),
        "{out}"
    );
    // Indented details under the refusal, the kernel's own words.
    assert!(
        out.contains("    !! vermagic: kmodtest: version magic"),
        "{out}"
    );
    let head = line("module");
    assert!(
        head.contains(&k612.release) && head.contains(&k72.release),
        "{out}"
    );
    let row = out.lines().last().unwrap();
    assert!(
        row.starts_with(&path) && row.contains("loads") && row.contains("refused (version-magic)"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("1 module(s) x 2 kernel(s): 1 load, 1 refused"),
        "{}",
        stderr(&o)
    );
    // -v: every finding, also for the kernel it loads on.
    let o = kmod()
        .args(["check", "-v", "--kdir"])
        .arg(&k612.kdir)
        .arg(&m)
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("    ok signature: OK: signed by \"cargo-kmod test p384\""),
        "{}",
        stdout(&o)
    );
}

/// `check --mok`: a MOK counts where the kernel would put it in a keyring it checks
/// modules against — Debian 12's 6.1 (`.machine`) — and not on a kernel that loads no
/// certificate from firmware (the test kernel, without CONFIG_LOAD_UEFI_KEYS), which
/// `check` says. The same certificate given with `--cert` counts on both.
#[test]
fn check_mok_counts_only_where_the_kernel_takes_moks_for_modules() {
    let d = tempfile::tempdir().unwrap();
    // A key of its own: the test kernel trusts the test keys.
    let key = crate::fixtures::mok_key(d.path(), "check mok");
    let cert = key.join("signing_key.crt");
    let signed = |module: &Path, name: &str| {
        let m = copy_of(module, d.path(), name);
        let o = kmod().arg("unsign").arg(&m).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let o = kmod()
            .args(["sign", "--hash", "sha256", "--key"])
            .arg(key.join("signing_key.pem"))
            .arg("--cert")
            .arg(&cert)
            .arg(&m)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        m
    };
    let signature = |kernel: &[&std::ffi::OsStr], trust: &str, m: &Path| -> (Value, String) {
        let o = kmod()
            .args(["check", "--message-format", "json"])
            .args(kernel)
            .arg(trust)
            .arg(&cert)
            .arg(m)
            .output()
            .unwrap();
        let v: Value = serde_json::from_str(stdout(&o).lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "signature")
            .unwrap()
            .clone();
        (f, stderr(&o))
    };
    // Debian 12's 6.1: one of its own modules, signed with our key.
    let k = fetched("debian/bookworm");
    let ifb = walkdir::WalkDir::new(k.modules.join("kernel/drivers/net"))
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("ifb.ko"))
        .unwrap()
        .into_path();
    let m = signed(&ifb, ifb.file_name().unwrap().to_str().unwrap());
    let debian: [&std::ffi::OsStr; 2] = ["--kernel".as_ref(), "debian/bookworm".as_ref()];
    for trust in ["--mok", "--cert"] {
        let (f, err) = signature(&debian, trust, &m);
        assert_eq!(f["ok"], true, "{trust}: {f}\n{err}");
    }
    // The test kernel: the MOK is left out, and the kernel refuses the module.
    let own = signed(&built_module("kmodtest"), "kmodtest.ko");
    let kdir = test_kernel().kdir.clone();
    let tree: [&std::ffi::OsStr; 2] = ["--kdir".as_ref(), kdir.as_os_str()];
    let (f, err) = signature(&tree, "--mok", &own);
    assert_eq!(f["ok"], false, "{f}\n{err}");
    assert!(f["detail"].as_str().unwrap().contains("ENOKEY"), "{f}");
    assert!(
        err.contains("warning: ")
            && err.contains("CONFIG_LOAD_UEFI_KEYS unset")
            && err.contains("does not count for modules"),
        "{err}"
    );
    let (f, err) = signature(&tree, "--cert", &own);
    assert_eq!(f["ok"], true, "{f}\n{err}");
}
