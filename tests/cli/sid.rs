//! Debian sid as its users have it: Rust and C modules built inside a sid root (made by
//! scripts/test-deps.sh with debootstrap) against Debian's own 7.2 headers, by sid's
//! rustc and gcc-16, with Debian's headers prepared by `kernel prepare`; then loaded in
//! Debian's own 7.2 kernel. And the refusals of `kernel prepare`, each one line naming
//! both sides.

use crate::check::debian_72;
use crate::common::*;
use crate::distro::run_debian;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// The sid root, and Debian's 7.2 headers inside it.
struct Sid {
    root: PathBuf,
    release: String,
}

fn sid() -> Sid {
    let root = cache_dir().join("roots/sid");
    assert!(
        root.join(".done").exists(),
        "missing test prerequisite: the Debian sid root {} — run scripts/test-deps.sh",
        root.display()
    );
    Sid {
        root,
        release: debian_72().release,
    }
}

impl Sid {
    fn headers(&self) -> String {
        format!("/usr/src/linux-headers-{}", self.release)
    }

    /// `args` run inside the root in /project, which is `project` on the host.
    fn run(&self, project: &Path, args: &[&str]) -> std::process::Output {
        Std::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sid/in-root.sh"))
            .arg(&self.root)
            .arg(assert_cmd::cargo::cargo_bin("cargo-kmod"))
            .arg(project)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, project: &Path, args: &[&str]) -> std::process::Output {
        let o = self.run(project, args);
        assert!(
            o.status.success(),
            "{args:?} in the sid root: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        o
    }

    /// A module built inside: its path on the host.
    fn build(&self, project: &Path, name: &str) -> PathBuf {
        let o = self.ok(
            project,
            &[
                "sh",
                "-c",
                &format!("cd {name} && cargo-kmod kmod build --message-format json"),
            ],
        );
        let v: Value = serde_json::from_str(stdout(&o).trim())
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
        assert_eq!(v["status"], "ok", "{v}");
        let inside = v["path"].as_str().unwrap();
        project.join(
            inside
                .strip_prefix("/project/")
                .expect("built under /project"),
        )
    }
}

fn modinfo_field(module: &Path, field: &str) -> String {
    stdout(&run(Std::new("modinfo").args(["-F", field]).arg(module)))
        .trim_end_matches('\n')
        .to_string()
}

/// In the sid root: `new` (rust-minimal, c-minimal) → `build` against Debian's 7.2
/// headers (the Rust one in the tree `kernel prepare` made of them) → modules whose
/// vermagic is the kernel's own; both load in Debian's 7.2 and unload, tainting it for
/// their missing signature; with enforcement appended, signed by a key Debian does not
/// trust, both are refused as `verify --kernel` says. Then DKMS (sid's 3.2) builds and
/// installs the Rust project's `package --dkms` tree, and that module loads too.
#[test]
fn sid_builds_rust_and_c_modules_that_load_in_debians_own_72() {
    let s = sid();
    let k = debian_72();
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let headers = s.headers();
    // The tree test-deps prepared is found again, not rebuilt.
    let started = std::time::Instant::now();
    let o = s.ok(
        p,
        &[
            "cargo-kmod",
            "kmod",
            "kernel",
            "prepare",
            "--headers",
            &headers,
        ],
    );
    let reuse = started.elapsed();
    let prepared = stdout(&o).trim().to_string();
    assert!(stderr(&o).contains("already prepared"), "{}", stderr(&o));
    eprintln!("kernel prepare, second call: {:.2} s", reuse.as_secs_f64());
    let meta: Value = serde_json::from_slice(
        &std::fs::read(
            s.root
                .join(prepared.trim_start_matches('/'))
                .parent()
                .unwrap()
                .join("cargo-kmod-prepared.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["release"], s.release.as_str(), "{meta}");
    // Its compilers are the kernel's own (the .config names them).
    let config =
        std::fs::read_to_string(s.root.join(headers.trim_start_matches('/')).join(".config"))
            .unwrap();
    for (key, v) in [
        ("CONFIG_RUSTC_VERSION_TEXT", &meta["rustc"]),
        ("CONFIG_CC_VERSION_TEXT", &meta["cc"]),
    ] {
        assert!(config.contains(&format!("{key}={v}")), "{key} is not {v}");
    }

    for (name, template) in [("sid_rust", "rust-minimal"), ("sid_c", "c-minimal")] {
        s.ok(
            p,
            &[
                "cargo-kmod",
                "kmod",
                "new",
                name,
                "--template",
                template,
                "--kdir",
                &headers,
            ],
        );
    }
    let rust = s.build(p, "sid_rust");
    let c = s.build(p, "sid_c");
    let debian = k.modules.join("kernel/drivers/net/tun.ko.xz");
    let want = modinfo_field(&debian, "vermagic");
    for m in [&rust, &c] {
        assert_eq!(modinfo_field(m, "vermagic"), want, "{}", m.display());
        // `info` inside the root shows the same.
        let inside = format!("/project/{}", m.strip_prefix(p).unwrap().display());
        let o = s.ok(
            p,
            &[
                "cargo-kmod",
                "kmod",
                "info",
                "--message-format",
                "json",
                &inside,
            ],
        );
        let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(v["vermagic"], want.as_str(), "{v}");
    }

    // Loaded in Debian's own kernel: not enforced there, so both load, tainted E.
    let args: Vec<&std::ffi::OsStr> = [&rust, &c]
        .iter()
        .flat_map(|m| ["--module".as_ref(), m.as_os_str()])
        .collect();
    let (v, _) = run_debian(&args);
    assert_eq!(v["finished"], true, "{v}");
    for (i, name) in ["sid_rust", "sid_c"].iter().enumerate() {
        let m = &v["modules"][i];
        assert_eq!(m["loaded"], true, "{name}: {v}");
        assert_eq!(m["unloaded"], true, "{name}: {v}");
        let log = m["kernel_log"].to_string();
        assert!(
            log.contains(&format!("{name}: loaded")) && log.contains(&format!("{name}: unloaded")),
            "{name}: {log}"
        );
    }
    let tainted = v["tainted"].as_u64().unwrap();
    assert!(
        tainted & (1 << 13) != 0,
        "no unsigned-module taint (E): {v}"
    );

    // Enforced, signed by a key Debian's kernel does not trust: refused, as verify says.
    let key = crate::run::test_key("p384");
    let signed: Vec<PathBuf> = [&rust, &c]
        .iter()
        .map(|m| {
            let out = d.path().join(format!(
                "signed-{}",
                m.file_name().unwrap().to_string_lossy()
            ));
            std::fs::copy(m, &out).unwrap();
            sign_cmd(&key, "sha256").arg(&out).assert().success();
            out
        })
        .collect();
    let mut args: Vec<&std::ffi::OsStr> = vec!["--enforce".as_ref()];
    args.extend(
        signed
            .iter()
            .flat_map(|m| ["--module".as_ref(), m.as_os_str()]),
    );
    let (v, _) = run_debian(&args);
    let o = kmod()
        .args(["verify", "--message-format", "json", "--kernel"])
        .arg(&k.image)
        .args(&signed)
        .output()
        .unwrap();
    for (i, line) in stdout(&o).lines().enumerate() {
        let verdict: Value = serde_json::from_str(line).unwrap();
        assert_eq!(verdict["verdict"], "ENOKEY", "{verdict}");
        assert_eq!(v["modules"][i]["loaded"], false, "{v}");
        assert_eq!(v["modules"][i]["refusal"], "unavailable-key", "{v}");
    }

    // DKMS for Rust: sid's dkms builds the package --dkms tree against the headers
    // (its MAKE line asks `kernel prepare` for the tree) and installs it.
    s.ok(
        p,
        &[
            "sh",
            "-c",
            "cd sid_rust && cargo-kmod kmod package --dkms --out /project/dkms",
        ],
    );
    let conf = std::fs::read_to_string(p.join("dkms/sid_rust-0.1.0/dkms.conf")).unwrap();
    assert!(
        conf.contains("kmod kernel prepare --headers ${kernel_source_dir}")
            && !conf.contains("LLVM="),
        "{conf}"
    );
    let r = &s.release;
    let o = s.run(
        p,
        &[
            "sh",
            "-c",
            &format!(
                "rm -rf /usr/src/sid_rust-0.1.0 && cp -r /project/dkms/sid_rust-0.1.0 /usr/src/ \
                 && dkms add -m sid_rust -v 0.1.0 && dkms build -m sid_rust -v 0.1.0 -k {r} \
                 && dkms install -m sid_rust -v 0.1.0 -k {r}; st=$?; \
                 cat /var/lib/dkms/sid_rust/0.1.0/build/make.log 2>/dev/null | tail -n 30; \
                 find /lib/modules/{r}/updates -name 'sid_rust.ko*' -exec cp {{}} /project/ \\; ; \
                 dkms remove -m sid_rust -v 0.1.0 --all >/dev/null 2>&1; rm -rf /usr/src/sid_rust-0.1.0; exit $st"
            ),
        ],
    );
    assert!(
        o.status.success(),
        "dkms in the sid root: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    let installed = std::fs::read_dir(p)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sid_rust.ko")
        })
        .unwrap_or_else(|| panic!("dkms installed no sid_rust.ko: {}", stdout(&o)));
    let (v, _) = run_debian(&["--module".as_ref(), installed.as_os_str()]);
    assert_eq!(v["modules"][0]["loaded"], true, "{v}");
    assert_eq!(v["modules"][0]["unloaded"], true, "{v}");
}
