//! Debian sid as its users have it: Rust and C modules built inside a sid root (made by
//! scripts/test-deps.sh with debootstrap) against Debian's own 7.2 headers, by sid's
//! rustc and gcc-16, with Debian's headers prepared by `kernel prepare`; then loaded in
//! Debian's own 7.2 kernel. And the refusals of `kernel prepare`, each one line naming
//! both sides.

use crate::common::*;
use crate::fixtures::debian_72;
use crate::fixtures::run_debian;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// The sid root, and Debian's 7.2 headers inside it.
pub struct Sid {
    root: PathBuf,
    release: String,
}

pub fn sid() -> Sid {
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
    pub fn run(&self, project: &Path, args: &[&str]) -> std::process::Output {
        Std::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sid/in-root.sh"))
            // The host's cache, where test-deps prepared sid's headers and fetched sid.
            .env("IN_ROOT_CACHE", cache_dir())
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
            Path::new(&prepared)
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
        let vermagic = v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f[0] == "vermagic")
            .map(|f| f[1].clone());
        assert_eq!(vermagic, Some(want.as_str().into()), "{v}");
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
    let key = crate::fixtures::test_key("p384");
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

/// A copy of Debian's 7.2 headers (what `kernel prepare` reads of them) with some
/// `.config` lines replaced: `(option, new line)`.
fn headers_copy(dir: &Path, edits: &[(&str, String)]) -> PathBuf {
    let from = debian_72().headers;
    let to = dir.join("headers");
    std::fs::create_dir_all(to.join("include/config")).unwrap();
    for f in ["include/config/kernel.release", "Module.symvers"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let config: String = std::fs::read_to_string(from.join(".config"))
        .unwrap()
        .lines()
        .map(|l| {
            let key = l
                .split('=')
                .next()
                .unwrap()
                .trim_start_matches("# ")
                .trim_end_matches(" is not set");
            edits
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(l.to_string(), |(_, new)| new.clone())
                + "\n"
        })
        .collect();
    std::fs::write(to.join(".config"), config).unwrap();
    to
}

fn first_line(tool: &str) -> String {
    let o = run(Std::new(tool).arg("--version"));
    stdout(&o).lines().next().unwrap().to_string()
}

/// The host's own tools, in the .config's words: rustc-web's rustc, our bindgen, gcc-12.
fn host_tools() -> Vec<(&'static str, String)> {
    let bindgen = cache_dir().join("tools/bin/bindgen");
    vec![
        (
            "CONFIG_RUSTC_VERSION_TEXT",
            format!(
                "CONFIG_RUSTC_VERSION_TEXT=\"{}\"",
                first_line("/usr/bin/rustc")
            ),
        ),
        (
            "CONFIG_BINDGEN_VERSION_TEXT",
            format!(
                "CONFIG_BINDGEN_VERSION_TEXT=\"{}\"",
                first_line(bindgen.to_str().unwrap())
            ),
        ),
        (
            "CONFIG_CC_VERSION_TEXT",
            format!(
                "CONFIG_CC_VERSION_TEXT=\"{}\"",
                first_line("x86_64-linux-gnu-gcc-12")
            ),
        ),
    ]
}

/// `kernel prepare` with its own cache, the host's rustc-web and our bindgen.
fn prepare_cmd(cache: &Path, headers: &Path, extra: &[&std::ffi::OsStr]) -> Std {
    let mut c = Std::new(assert_cmd::cargo::cargo_bin("cargo-kmod"));
    c.env("CARGO_KMOD_CACHE", cache)
        .args([
            "kmod",
            "kernel",
            "prepare",
            "--rustc",
            "/usr/bin/rustc",
            "--bindgen",
        ])
        .arg(cache_dir().join("tools/bin/bindgen"))
        .arg("--headers")
        .arg(headers)
        .args(extra);
    c
}

/// [`prepare_cmd`] run: the output and what the cache holds after.
fn prepare(
    cache: &Path,
    headers: &Path,
    extra: &[&std::ffi::OsStr],
) -> (std::process::Output, Vec<PathBuf>) {
    let o = prepare_cmd(cache, headers, extra).output().unwrap();
    let left = walkdir::WalkDir::new(cache.join("prepared"))
        .min_depth(1)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.into_path())
        .collect();
    (o, left)
}

/// One refusal: exit 27, its line, the fix, and nothing left in the cache.
fn refused(o: &std::process::Output, left: &[PathBuf], line: &[&str], help: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(27), "{err}");
    let first = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    for part in line {
        assert!(
            first.contains(part),
            "`{part}` not in the error line: {err}"
        );
    }
    assert!(
        err.lines()
            .any(|l| l.starts_with("help:") && l.contains(help)),
        "help `{help}`: {err}"
    );
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Each refusal of `kernel prepare`: one line naming both sides, exit 27, nothing
/// half-made left; a prepare killed midway leaves no tree that looks finished. Also a
/// Rust build against unprepared headers names `kernel prepare`, and a C build against
/// headers whose compiler is missing names its package.
#[test]
fn kernel_prepare_refuses_with_both_sides_named() {
    let k = debian_72();
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    // The source `kernel fetch debian/sid` brought with the headers.
    let src72 = PathBuf::from(
        crate::fixtures::fetched_record("debian/sid")["source"]
            .as_str()
            .unwrap(),
    );
    let source: [&std::ffi::OsStr; 2] = ["--source".as_ref(), src72.as_os_str()];
    let config = std::fs::read_to_string(k.headers.join(".config")).unwrap();
    let want_rustc = config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_RUSTC_VERSION_TEXT="))
        .unwrap()
        .trim_matches('"')
        .to_string();

    // Debian's real headers, the host's rustc-web (1.96): not the kernel's 1.97.1.
    let (o, left) = prepare(&cache, &k.headers, &source);
    refused(
        &o,
        &left,
        &[&want_rustc, &first_line("/usr/bin/rustc"), "/usr/bin/rustc"],
        "rustc package of the kernel's suite",
    );
    assert!(want_rustc.contains("1.97.1") && first_line("/usr/bin/rustc").contains("1.96"));

    // The right rustc and bindgen (edited to the host's), a compiler not installed.
    let mut edits = host_tools();
    edits.pop();
    let h = headers_copy(&d.path().join("gcc16"), &edits);
    let (o, left) = prepare(&cache, &h, &source);
    refused(
        &o,
        &left,
        &[
            "x86_64-linux-gnu-gcc-16 (Debian 16.2.0-4) 16.2.0",
            "x86_64-linux-gnu-gcc-16 is not installed",
        ],
        "apt-get install gcc-16",
    );
    // ... the same compiler, another version of it (a package revision alone,
    // `(Debian 12.2.0-13) 12.2.0` for `-14`, is the same compiler, as Kbuild judges).
    edits.push((
        "CONFIG_CC_VERSION_TEXT",
        "CONFIG_CC_VERSION_TEXT=\"x86_64-linux-gnu-gcc-12 (Debian 12.1.0-8) 12.1.0\"".into(),
    ));
    let h = headers_copy(&d.path().join("gcc12"), &edits);
    let (o, left) = prepare(&cache, &h, &source);
    refused(
        &o,
        &left,
        &[
            "(Debian 12.1.0-8) 12.1.0",
            &first_line("x86_64-linux-gnu-gcc-12"),
        ],
        "Debian package gcc-12",
    );

    // Every tool the kernel's, the source of another version: refused before unpacking.
    let h = headers_copy(&d.path().join("host"), &host_tools());
    let (o, left) = prepare(
        &cache,
        &h,
        &[
            "--source".as_ref(),
            "/usr/src/linux-source-6.12.tar.xz".as_ref(),
        ],
    );
    refused(
        &o,
        &left,
        &[&k.release, "linux-source-6.12"],
        "linux-source-7.2",
    );

    // pahole missing while the kernel wants module BTF.
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for t in ["rustc", "x86_64-linux-gnu-gcc-12"] {
        std::os::unix::fs::symlink(format!("/usr/bin/{t}"), bin.join(t)).unwrap();
    }
    let o = prepare_cmd(&cache, &h, &source)
        .env("PATH", &bin)
        .output()
        .unwrap();
    refused(
        &o,
        &[],
        &["CONFIG_DEBUG_INFO_BTF_MODULES", "pahole is not installed"],
        "apt-get install dwarves",
    );

    // Headers of a kernel without Rust: Debian 12's own 6.12.
    let k612 = crate::fixtures::debian_612();
    let (o, left) = prepare(&cache, &k612.headers, &[]);
    refused(
        &o,
        &left,
        &[&k612.release, "CONFIG_RUST is off"],
        "C modules",
    );

    // Killed while unpacking: the tree is there, unfinished, and never looks finished.
    // A second prepare of the same headers meanwhile waits for the first (its lock),
    // and starts only once the first is gone.
    let spawn = || {
        let mut child = prepare_cmd(&cache, &h, &source)
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in std::io::BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        (child, rx)
    };
    let unpacking = |rx: &std::sync::mpsc::Receiver<String>, wait: u64| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(wait);
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("unpacking") => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    // The whole group: tar too, as Ctrl-C would.
    let kill = |child: &mut std::process::Child| {
        run(Std::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]));
        child.wait().unwrap();
    };
    let (mut first, first_err) = spawn();
    assert!(unpacking(&first_err, 60), "prepare never started unpacking");
    let (mut second, second_err) = spawn();
    assert!(
        !unpacking(&second_err, 3),
        "a second prepare did not wait for the first"
    );
    kill(&mut first);
    assert!(
        unpacking(&second_err, 60),
        "the second prepare never went on"
    );
    kill(&mut second);
    let dirs: Vec<PathBuf> = std::fs::read_dir(cache.join("prepared"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(!dirs[0].join("cargo-kmod-prepared.json").exists());
    // `build` does not take it: a Rust project against those headers is told to prepare.
    let p = d.path().join("rust_on_headers");
    kmod()
        .env("CARGO_KMOD_CACHE", &cache)
        .arg("new")
        .arg(&p)
        .args(["--template", "rust-minimal", "--kdir"])
        .arg(&h)
        .assert()
        .success();
    let o = kmod()
        .env("CARGO_KMOD_CACHE", &cache)
        .current_dir(&p)
        .arg("build")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(16), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "help: cargo kmod kernel prepare --headers {}",
            h.display()
        )),
        "{}",
        stderr(&o)
    );
    // A C module against headers whose compiler is not here: named with its package.
    let h16 = d.path().join("gcc16/headers");
    let p = d.path().join("c_on_headers");
    kmod()
        .arg("new")
        .arg(&p)
        .args(["--template", "c-minimal", "--kdir"])
        .arg(&h16)
        .assert()
        .success();
    let o = kmod().current_dir(&p).arg("build").output().unwrap();
    assert_eq!(o.status.code(), Some(16), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("x86_64-linux-gnu-gcc-16 is not installed")
            && stderr(&o).contains("help: apt-get install gcc-16"),
        "{}",
        stderr(&o)
    );
}
