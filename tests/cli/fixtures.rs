//! Shared fixtures: the test kernels scripts/test-deps.sh built, the test keys, the
//! test modules built against a kernel, Debian's packaged kernels (headers, images,
//! module trees), projects made and built, and the boots of each.

use crate::common::*;
use cargo_kmod::kernel::{self, KernelInfo};
use cargo_kmod::toolchain::Toolchain;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const TRUSTED: [&str; 5] = ["rsa2048", "rsa3072", "rsa4096", "p256", "p384"];

/// The 6.12 test kernel scripts/test-deps.sh built (it trusts every key in TRUSTED).
pub fn test_kernel() -> &'static KernelInfo {
    static K: OnceLock<KernelInfo> = OnceLock::new();
    K.get_or_init(|| recorded("test-kernel.txt", "scripts/test-deps.sh"))
}

/// The 7.2 test kernel (Debian sid's source), built the same way.
pub fn test_kernel_72() -> &'static KernelInfo {
    static K: OnceLock<KernelInfo> = OnceLock::new();
    K.get_or_init(|| recorded("test-kernel-7.2.txt", "scripts/test-deps.sh"))
}

/// The 6.12 test kernel with CONFIG_MODVERSIONS (and so without Rust).
pub fn test_kernel_modversions() -> &'static KernelInfo {
    static K: OnceLock<KernelInfo> = OnceLock::new();
    K.get_or_init(|| recorded("test-kernel-modversions.txt", "scripts/test-deps.sh"))
}

/// The kernel `record` (in the cache) names; `how` says what builds it.
pub fn recorded(record: &str, how: &str) -> KernelInfo {
    let missing = format!(
        "missing test prerequisite: the test kernel in {record} — run {how} (the README's test command does)"
    );
    let text = std::fs::read_to_string(cache_dir().join(record)).expect(&missing);
    let kdir = text
        .lines()
        .find_map(|l| l.strip_prefix("kdir:"))
        .expect(&missing)
        .trim()
        .to_string();
    let k = kernel::list(&settings())
        .into_iter()
        .find(|k| k.kdir == Path::new(&kdir))
        .expect(&missing);
    for n in TRUSTED {
        assert!(
            k.trusted
                .iter()
                .any(|t| t.contains(&format!("cargo-kmod test {n}"))),
            "test kernel does not trust {n}"
        );
    }
    k
}

pub fn test_key(name: &str) -> Key {
    // Made by `cargo kmod keygen` (scripts/test-deps.sh): the kernel trusting these and
    // loading what they sign is the test of keygen's certificates.
    let dir = cache_dir().join("test-keys").join(name);
    let k = Key {
        key: dir.join("signing_key.pem"),
        cert: dir.join("signing_key.crt"),
    };
    assert!(
        k.cert.exists(),
        "missing test prerequisite: {} — run scripts/test-deps.sh",
        k.cert.display()
    );
    k
}

/// Builds a test module from tests/modules/<name> against the test kernel, once.
pub fn built_module(name: &str) -> PathBuf {
    let ko = built_modules(test_kernel(), name, &[]).join(format!("{name}.ko"));
    assert!(ko.exists(), "{} was not built", ko.display());
    ko
}

/// Builds tests/modules/<dir> against `k` with extra make arguments, once per
/// kernel; returns the directory holding its modules.
pub fn built_modules(k: &KernelInfo, dir: &str, make_args: &[&str]) -> PathBuf {
    type Built = std::collections::HashMap<(PathBuf, String), PathBuf>;
    static BUILT: OnceLock<std::sync::Mutex<Built>> = OnceLock::new();
    let mut map = BUILT.get_or_init(Default::default).lock().unwrap();
    let key = (k.kdir.clone(), format!("{dir} {}", make_args.join(" ")));
    if let Some(p) = map.get(&key) {
        return p.clone();
    }
    let out = tempfile::tempdir().unwrap().keep();
    copy_module_sources(dir, &out);
    let s = settings();
    let tc = Toolchain::find(&s, None, None)
        .expect("kernel toolchain (scripts/test-deps.sh installs it)");
    let mut make = cargo_kmod::toolchain::make(&s, &k.kdir, &tc.vars());
    make.arg(format!("M={}", out.display()))
        .args(make_args)
        .arg("modules");
    run(&mut make);
    map.insert(key, out.clone());
    out
}

/// tests/modules/<dir>'s files into `to`.
pub fn copy_module_sources(dir: &str, to: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/modules")
        .join(dir);
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub fn copy_of(module: &Path, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(module, &p).unwrap();
    p
}

pub fn sign(m: &Path, k: &Key, hash: &str) {
    sign_cmd(k, hash).arg(m).assert().success();
}

/// `cargo kmod run` on the test kernel (TCG): exit code, JSON report, stderr.
pub fn boot(modules: &[&Path], extra: &[&str]) -> (i32, serde_json::Value, String) {
    boot_on(test_kernel(), modules, extra)
}

/// [`boot`] on another test kernel.
pub fn boot_on(
    k: &KernelInfo,
    modules: &[&Path],
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut c = kmod();
    // TCG: nested KVM on CI machines may leave a guest silent (auto would retry, slower).
    c.arg("run").arg("--kdir").arg(&k.kdir).args([
        "--accel",
        "tcg",
        "--message-format",
        "json",
        "--timeout",
        "60",
    ]);
    for m in modules {
        c.arg("--module").arg(m);
    }
    let o = c.args(extra).output().unwrap();
    let out = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("run printed no JSON ({e}): {out}\n{}", stderr(&o)));
    (o.status.code().unwrap(), v, stderr(&o))
}

/// `check --message-format json` over `modules` against `kdir`: one object each.
pub fn check_json(args: &[&std::ffi::OsStr], modules: &[PathBuf]) -> (i32, Vec<Value>) {
    let o = kmod()
        .args(["check", "--message-format", "json"])
        .args(args)
        .args(modules)
        .output()
        .unwrap();
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", stderr(&o))))
        .collect();
    assert!(!lines.is_empty(), "{}", stderr(&o));
    (o.status.code().unwrap(), lines)
}

/// A Debian kernel as packaged: headers, image, module tree.
pub struct Packaged {
    pub release: String,
    pub headers: PathBuf,
    pub image: PathBuf,
    pub modules: PathBuf,
}

impl Packaged {
    pub fn args(&self) -> Vec<&std::ffi::OsStr> {
        vec![
            "--kdir".as_ref(),
            self.headers.as_os_str(),
            "--kernel".as_ref(),
            self.image.as_os_str(),
            "--modules-dir".as_ref(),
            self.modules.as_os_str(),
        ]
    }
    pub fn all_modules(&self) -> Vec<PathBuf> {
        ko_xz_under(&self.modules.join("kernel"))
    }
}

pub fn recorded_release(file: &str) -> String {
    let p = cache_dir().join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|_| {
            panic!(
                "missing test prerequisite: {} — run scripts/test-deps.sh",
                p.display()
            )
        })
        .trim()
        .to_string()
}

/// A Debian kernel scripts/test-deps.sh fetched by name (`cargo kmod kernel fetch
/// debian/sid`), from the record it kept of the fetch.
pub fn fetched(name: &str) -> Packaged {
    let v = fetched_record(name);
    let path = |k: &str| PathBuf::from(v[k].as_str().unwrap());
    Packaged {
        headers: path("kdir"),
        image: path("image"),
        modules: path("modules"),
        release: v["release"].as_str().unwrap().to_string(),
    }
}

/// The record `kernel fetch NAME --message-format json` printed for scripts/test-deps.sh.
pub fn fetched_record(name: &str) -> Value {
    let p = cache_dir().join(format!("kernel-{}.json", name.replace('/', "-")));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|_| {
        panic!(
            "missing test prerequisite: {} — run scripts/test-deps.sh",
            p.display()
        )
    }))
    .unwrap()
}

/// Debian sid's 7.2 for amd64.
pub fn debian_72() -> Packaged {
    fetched("debian/sid")
}

/// Debian's 6.12 (trixie's, for bookworm): installed headers, unpacked image package.
pub fn debian_612() -> Packaged {
    let release = format!("{}-amd64", recorded_release("debian-kernel-version"));
    let image = cache_dir().join("fixtures/image");
    Packaged {
        headers: PathBuf::from(format!("/usr/src/linux-headers-{release}")),
        image: image.join(format!("boot/vmlinuz-{release}")),
        modules: image.join(format!("lib/modules/{release}")),
        release,
    }
}

/// A copy (hard links) of `k`'s module tree under `<root>/lib/modules/<release>`, with
/// `extra` modules added under `updates/` (where DKMS puts them), after depmod.
pub fn depmod_copy(k: &Packaged, extra: &[&Path]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("lib/modules");
    std::fs::create_dir_all(&lib).unwrap();
    run(std::process::Command::new("cp")
        .arg("-al")
        .arg(&k.modules)
        .arg(lib.join(&k.release)));
    let updates = lib.join(&k.release).join("updates");
    std::fs::create_dir_all(&updates).unwrap();
    for m in extra {
        std::fs::copy(m, updates.join(m.file_name().unwrap())).unwrap();
    }
    run(std::process::Command::new("depmod")
        .arg("-b")
        .arg(root.path())
        .arg(&k.release));
    root
}

/// `run --kernel` Debian's 7.2: its JSON report, and what it said on stderr.
pub fn run_debian(args: &[&std::ffi::OsStr]) -> (Value, String) {
    let (v, o) = run_image(&debian_72().image, args);
    (v, stderr(&o))
}

/// `run --kernel IMAGE` under TCG: its JSON report, and the whole output.
pub fn run_image(
    image: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> (Value, std::process::Output) {
    let o = kmod()
        .arg("run")
        .arg("--kernel")
        .arg(image)
        .args([
            "--accel",
            "tcg",
            "--message-format",
            "json",
            "--timeout",
            "300",
        ])
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    (v, o)
}

pub fn debian_headers() -> PathBuf {
    let ver = std::fs::read_to_string(cache_dir().join("debian-kernel-version"))
        .expect("missing test prerequisite: Debian kernel version — run scripts/test-deps.sh");
    let p = PathBuf::from(format!("/usr/src/linux-headers-{}-amd64", ver.trim()));
    assert!(
        p.join(".config").exists(),
        "missing test prerequisite: {} — run scripts/test-deps.sh",
        p.display()
    );
    p
}

/// `new DIR --template T [new_args]`, then `build` against `kdirs`, which must succeed.
pub fn built_project(dir: &Path, template: &str, new_args: &[&str], kdirs: &[&Path]) -> PathBuf {
    kmod()
        .arg("new")
        .arg(dir)
        .args(["--template", template])
        .args(new_args)
        .assert()
        .success();
    let o = build(dir, kdirs, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    dir.to_path_buf()
}

pub fn build(project: &Path, kdirs: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut c = kmod();
    c.arg("build")
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .args(["--message-format", "json"]);
    for k in kdirs {
        c.arg("--kdir").arg(k);
    }
    c.args(extra).output().unwrap()
}

pub fn debian_61_headers() -> PathBuf {
    let p = std::fs::read_to_string(cache_dir().join("debian-6.1-headers"))
        .expect("missing test prerequisite: Debian 6.1 headers — run scripts/test-deps.sh");
    let p = PathBuf::from(p.trim());
    assert!(
        p.join(".config").exists(),
        "missing test prerequisite: {} — run scripts/test-deps.sh",
        p.display()
    );
    p
}

/// Debian sid's arm64 7.2: its image, and its modules' `kernel/` directory.
pub fn debian_arm64() -> (PathBuf, PathBuf) {
    let k = fetched("debian/sid/arm64");
    (k.image, k.modules.join("kernel"))
}

/// `dpkg -i` into `root`, a fresh dpkg database there; the maintainer scripts run
/// outside a chroot with DPKG_ROOT set.
pub fn dpkg_install(root: &Path, deb: &Path) {
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    run(std::process::Command::new("dpkg")
        .arg("--root")
        .arg(root)
        .args([
            "--force-depends",
            "--force-script-chrootless",
            "--log=/dev/null",
            "-i",
        ])
        .arg(deb));
}

/// A MOK made by `keygen --mok` in `dir/mok` (RSA-2048, as DKMS makes them: Debian 12's
/// 6.1 cannot verify ECDSA), named `cn`.
pub fn mok_key(dir: &Path, cn: &str) -> PathBuf {
    let out = dir.join("mok");
    let o = kmod()
        .args(["keygen", "--mok", "--algo", "rsa2048", "--cn", cn, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    out
}
