//! Existing DKMS projects (issue 28): Debian 12's five DKMS packages against Debian's
//! 6.1 and 6.12 headers, built by `cargo kmod build` (one matrix build per package,
//! -j as the cores) and by the real `dkms build` (one kernel after the other, as DKMS
//! builds). Prints the wall times and their ratio (target: at most 0.6); a build that
//! fails on a kernel (most of these packages predate 6.12) fails for both and counts
//! as it ran. Nothing is asserted.
//!
//! Run: `cargo bench --bench dkms` (after scripts/test-deps.sh fetched the packages).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PACKAGES: [&str; 5] = [
    "acpi-call-dkms",
    "ddcci-dkms",
    "jool-dkms",
    "v4l2loopback-dkms",
    "xtables-addons-dkms",
];

fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

fn recorded(name: &str) -> String {
    std::fs::read_to_string(cache().join(name))
        .unwrap_or_else(|_| panic!("no {name}: run scripts/test-deps.sh first"))
        .trim()
        .to_string()
}

/// The package's `/usr/src/<name>-<version>`, copied to `into`.
fn source(deb: &str, into: &Path) -> PathBuf {
    let src = cache().join("fixtures").join(deb).join("usr/src");
    let dir = std::fs::read_dir(&src)
        .unwrap_or_else(|_| panic!("no {}: run scripts/test-deps.sh first", src.display()))
        .next()
        .unwrap()
        .unwrap()
        .path();
    let st = Command::new("cp")
        .arg("-a")
        .arg(&dir)
        .arg(into)
        .status()
        .unwrap();
    assert!(st.success());
    into.join(dir.file_name().unwrap())
}

fn timed(c: &mut Command) -> Duration {
    let t = Instant::now();
    c.output().unwrap();
    t.elapsed()
}

fn main() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let headers = [
        PathBuf::from(recorded("debian-6.1-headers")),
        PathBuf::from(format!(
            "/usr/src/linux-headers-{}-amd64",
            recorded("debian-kernel-version")
        )),
    ];
    let jobs = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let (mut ours, mut dkms) = (Duration::ZERO, Duration::ZERO);
    for deb in PACKAGES {
        let d = tempfile::tempdir().unwrap();
        let dir = source(deb, d.path());
        let mut c = Command::new(&bin);
        c.current_dir(&dir)
            .args(["kmod", "build", "-q", "-j", &jobs]);
        for h in &headers {
            c.arg("--kdir").arg(h);
        }
        let t = timed(&mut c);
        ours += t;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (module, version) = name.rsplit_once('-').unwrap();
        let mut t_dkms = Duration::ZERO;
        for h in &headers {
            let s = tempfile::tempdir().unwrap();
            let (tree, src, inst) = (s.path().join("t"), s.path().join("s"), s.path().join("i"));
            for p in [&tree, &src, &inst] {
                std::fs::create_dir_all(p).unwrap();
            }
            source(deb, &src);
            let release = h.file_name().unwrap().to_string_lossy();
            let release = release.strip_prefix("linux-headers-").unwrap();
            t_dkms += timed(
                Command::new("dkms")
                    .args(["build", "-m", module, "-v", version, "-k", release])
                    .arg(format!("--kernelsourcedir={}", h.display()))
                    .arg("--dkmstree")
                    .arg(&tree)
                    .arg("--sourcetree")
                    .arg(&src)
                    .arg("--installtree")
                    .arg(&inst),
            );
        }
        dkms += t_dkms;
        println!(
            "{deb:<20} cargo kmod {:>6.1} s   dkms {:>6.1} s",
            t.as_secs_f64(),
            t_dkms.as_secs_f64()
        );
    }
    println!(
        "five packages x two kernels: cargo kmod build {:.1} s, dkms build {:.1} s: ratio {:.2} (target <= 0.60)",
        ours.as_secs_f64(),
        dkms.as_secs_f64(),
        ours.as_secs_f64() / dkms.as_secs_f64()
    );
}
