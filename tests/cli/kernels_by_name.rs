//! Distribution kernels by name: `kernel fetch debian/<suite>[/<arch>]` (what
//! scripts/test-deps.sh fetched through the command is found again offline), `kernel
//! list`, the refusals, a fetch killed half-way, and `cargo kmod test`: build (modpost
//! strict), sign, check and boot on Debian's own 6.1, 6.12 and 7.2 (x86_64 and arm64),
//! each cell the booted kernel's verdict and `check`'s prediction equal to it.

use crate::common::*;
use crate::fixtures::fetched;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// The kernels test-deps fetched, by name.
const NAMES: [&str; 4] = [
    "debian/bookworm",
    "debian/bookworm-backports",
    "debian/sid",
    "debian/sid/arm64",
];

/// An address nothing listens on: apt (which honours http_proxy) cannot reach the archive.
const NO_NETWORK: &str = "http://127.0.0.1:9";

fn json_lines(o: &std::process::Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A second fetch of each is offline (the archive unreachable) and gives the same
/// kernel; `kernel list` names them in its DISTRO column; the kernel behind each name
/// is what its packages hold: headers whose release is the image's.
#[test]
fn fetched_kernels_are_found_again_offline_and_listed() {
    for name in NAMES {
        let k = fetched(name);
        let started = std::time::Instant::now();
        let o = kmod()
            .args(["kernel", "fetch", name, "--message-format", "json"])
            .env("http_proxy", NO_NETWORK)
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        // Audited against the tools here (Debian 12's): bookworm's kernels are built by
        // them; sid's by gcc-16 and newer binutils, each line named.
        if name.starts_with("debian/bookworm") {
            assert!(!stderr(&o).contains("warning:"), "{name}: {}", stderr(&o));
        } else {
            for said in [
                "gcc-16 is not installed",
                "CONFIG_LD_VERSION=",
                "olddefconfig would change it",
            ] {
                assert!(stderr(&o).contains(said), "{name}: {}", stderr(&o));
            }
        }
        let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        eprintln!(
            "kernel fetch {name}, fetched already: {:.3} s",
            took.as_secs_f64()
        );
        assert_eq!(v["release"], k.release.as_str(), "{v}");
        assert_eq!(v["kdir"], k.headers.to_str().unwrap(), "{v}");
        // The headers are the image's: the release modules get (UTS_RELEASE).
        let uts =
            std::fs::read_to_string(k.headers.join("include/generated/utsrelease.h")).unwrap();
        assert!(uts.contains(&format!("\"{}\"", k.release)), "{name}: {uts}");
        assert_eq!(
            cargo_kmod::kernel_image::release(&k.image).as_deref(),
            Some(k.release.as_str()),
            "{name}: the image is not {}",
            k.release
        );
        assert!(k.modules.join("kernel").is_dir(), "{name}: no module tree");
        // The name judges as the kernel does: Debian's own signed module is OK there.
        let own = walkdir::WalkDir::new(k.modules.join("kernel/net"))
            .into_iter()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().contains(".ko"))
            .unwrap()
            .into_path();
        let o = kmod()
            .args(["verify", "--message-format", "json", "--kernel", name])
            .arg(&own)
            .env("http_proxy", NO_NETWORK)
            .output()
            .unwrap();
        assert!(
            o.status.success() && stdout(&o).contains("\"verdict\":\"OK\""),
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let packages: Vec<&str> = v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(
            packages.iter().any(|p| p.starts_with("linux-kbuild-")),
            "{name}: {packages:?}"
        );
    }
    let o = kmod().args(["kernel", "list"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().next().unwrap().contains("DISTRO"), "{out}");
    for name in NAMES {
        let full = if name.matches('/').count() == 1 {
            format!("{name}/amd64")
        } else {
            name.to_string()
        };
        let k = fetched(name);
        assert!(
            out.lines()
                .any(|l| l.starts_with(&k.release) && l.contains(&full)),
            "{full} {} not listed:\n{out}",
            k.release
        );
    }
}

/// Unknown names are refused offline with the known ones listed (exit 28); a release
/// the suite does not have lists those it has; no network means a clear error, and
/// the kernels already fetched stay usable.
#[test]
fn kernel_names_are_refused_with_what_exists() {
    for (args, says) in [
        (
            vec!["debian/hamm"],
            "has no suite \"hamm\" that cargo kmod knows",
        ),
        (vec!["debian/sid/mips"], "no architecture \"mips\""),
        (vec!["gentoo/stable"], "not a distribution cargo kmod knows"),
        (
            vec!["debian/sid", "--flavour", "armmp"],
            "no flavour \"armmp\"",
        ),
    ] {
        let o = kmod()
            .arg("kernel")
            .arg("fetch")
            .args(&args)
            .env("http_proxy", NO_NETWORK)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(28), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("help: name one of: "), "{}", stderr(&o));
    }
    // A release bookworm does not have: the suite's own are listed (from its index).
    let have = fetched("debian/bookworm").release;
    let o = kmod()
        .args([
            "kernel",
            "fetch",
            "debian/bookworm",
            "--release",
            "6.1.0-1-amd64",
        ])
        .env("http_proxy", NO_NETWORK)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(28), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the suite has no release 6.1.0-1-amd64") && stderr(&o).contains(&have),
        "{}",
        stderr(&o)
    );
    // No network, nothing cached: the archive is named unreachable, nothing is left.
    let empty = tempfile::tempdir().unwrap();
    let o = kmod()
        .args(["kernel", "fetch", "debian/sid"])
        .env("CARGO_KMOD_CACHE", empty.path())
        .env("http_proxy", NO_NETWORK)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(28), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("debian/sid/amd64: apt-get update failed")
            && stderr(&o).contains("help: check the connection to the archive"),
        "{}",
        stderr(&o)
    );
    let o = kmod()
        .args(["kernel", "list"])
        .env("CARGO_KMOD_CACHE", empty.path())
        .output()
        .unwrap();
    assert!(!stdout(&o).contains("debian/"), "{}", stdout(&o));
}

/// A fetch killed with SIGKILL while it unpacks never looks finished: `kernel list`
/// does not show it, and the next fetch finishes it (from the packages already
/// downloaded: the test's cache shares the real cache's packages and index).
#[test]
fn a_fetch_killed_half_way_is_finished_by_the_next() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path();
    for shared in ["apt", "debs"] {
        std::os::unix::fs::symlink(cache_dir().join(shared), cache.join(shared)).unwrap();
    }
    let k = fetched("debian/bookworm");
    let dir = cache.join("distro/debian/bookworm/amd64").join(&k.release);
    let mut child = Std::new(assert_cmd::cargo::cargo_bin("cargo-kmod"))
        .args(["kmod", "kernel", "fetch", "debian/bookworm"])
        .env("CARGO_KMOD_CACHE", cache)
        .env("http_proxy", NO_NETWORK)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the first package is unpacked, before the image is.
    let started = std::time::Instant::now();
    while !dir.join("root/usr/src").exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the fetch never began unpacking"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the fetch ended before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !dir.join("cargo-kmod-distro.json").exists(),
        "killed, yet recorded"
    );
    let list = |c: &Path| {
        stdout(
            &kmod()
                .args(["kernel", "list"])
                .env("CARGO_KMOD_CACHE", c)
                .output()
                .unwrap(),
        )
    };
    assert!(!list(cache).contains(&k.release), "{}", list(cache));
    let o = kmod()
        .args([
            "kernel",
            "fetch",
            "debian/bookworm",
            "--message-format",
            "json",
        ])
        .env("CARGO_KMOD_CACHE", cache)
        .env("http_proxy", NO_NETWORK)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(Path::new(v["image"].as_str().unwrap()).is_file(), "{v}");
    assert!(list(cache).contains(&k.release), "{}", list(cache));
    // `kernel remove` takes it away again, by name.
    let o = kmod()
        .args(["kernel", "remove", "debian/bookworm"])
        .env("CARGO_KMOD_CACHE", cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir.exists());
}

/// A new C project (the c-minimal template) named `name` in `dir`.
fn c_project(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let o = kmod()
        .args(["new", "--template", "c-minimal", "--kdir"])
        .arg(fetched("debian/bookworm").headers)
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    p
}

/// A C project that calls a function only 6.12 exports (`kstrdup_and_replace`), whose
/// Kbuild file asks modpost to only warn.
fn project_with_a_new_symbol(dir: &Path) -> PathBuf {
    let p = c_project(dir, "newsym");
    std::fs::write(
        p.join("newsym.c"),
        r#"#include <linux/module.h>
#include <linux/slab.h>
char *kstrdup_and_replace(const char *src, char old, char new, gfp_t gfp);
static int __init newsym_init(void)
{
	kfree(kstrdup_and_replace("a-b", '-', '_', GFP_KERNEL));
	return 0;
}
static void __exit newsym_exit(void) {}
module_init(newsym_init);
module_exit(newsym_exit);
MODULE_LICENSE("GPL");
"#,
    )
    .unwrap();
    let kbuild = std::fs::read_to_string(p.join("Kbuild")).unwrap();
    std::fs::write(
        p.join("Kbuild"),
        format!("{kbuild}KBUILD_MODPOST_WARN := 1\n"),
    )
    .unwrap();
    p
}

/// `cargo kmod test` over the kernels of the manifest (`kernels = [...]`): Debian 12's
/// 6.1 and bookworm-backports' 6.12. The template module loads in both, as `check`
/// said; a module using a symbol 6.1 lacks fails on 6.1 only, at build (modpost strict
/// whatever its Kbuild file says), the symbol named — where a plain `build` only warns.
#[test]
fn test_proves_a_project_on_debians_61_and_612() {
    let d = tempfile::tempdir().unwrap();
    let p = c_project(d.path(), "proved");
    let manifest = p.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("kdir = ") {
                "kernels = [\"debian/bookworm\", \"debian/bookworm-backports\"]\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(text.contains("kernels = "), "{text}");
    std::fs::write(&manifest, text).unwrap();
    let (k61, k612) = (
        fetched("debian/bookworm"),
        fetched("debian/bookworm-backports"),
    );
    let o = kmod()
        .args(["test", "--accel", "tcg", "--message-format", "json"])
        .current_dir(&p)
        .output()
        .unwrap();
    let cells = json_lines(&o);
    assert_eq!(o.status.code(), Some(0), "{cells:?}\n{}", stderr(&o));
    assert_eq!(cells.len(), 2, "{cells:?}");
    for (c, k) in cells.iter().zip([&k61, &k612]) {
        assert_eq!(c["release"], k.release.as_str(), "{c}");
        assert_eq!(c["verdict"]["verdict"], "loads", "{c}");
        assert_eq!(c["check"], c["verdict"], "{c}");
        assert_eq!(c["agrees"], true, "{c}");
    }
    // The human table: one row, a column per kernel, headed by name and release.
    let o = kmod()
        .args(["test", "--accel", "tcg"])
        .current_dir(&p)
        .output()
        .unwrap();
    let out = stdout(&o);
    let head = out.lines().find(|l| l.starts_with("module")).unwrap();
    assert!(
        head.contains(&format!("debian/bookworm/amd64 {}", k61.release))
            && head.contains(&format!("debian/bookworm-backports/amd64 {}", k612.release)),
        "{out}"
    );

    let newsym = project_with_a_new_symbol(d.path());
    let o = kmod()
        .args(["test", "--accel", "tcg", "--message-format", "json"])
        .args([
            "--kernel",
            "debian/bookworm",
            "--kernel",
            "debian/bookworm-backports",
        ])
        .current_dir(&newsym)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(17), "{}", stderr(&o));
    let lines = json_lines(&o);
    let failed = lines
        .iter()
        .find(|l| l["kernel"] == "debian/bookworm")
        .unwrap();
    assert_eq!(failed["exit_code"], 17, "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("\"kstrdup_and_replace\" [")
            && failed["error"].as_str().unwrap().contains("undefined!"),
        "{failed}"
    );
    let loads = lines
        .iter()
        .find(|l| l["release"] == k612.release.as_str())
        .unwrap();
    assert_eq!(loads["verdict"]["verdict"], "loads", "{loads}");
    assert_eq!(loads["agrees"], true, "{loads}");
    // A plain build keeps the project's wish: modpost only warns on 6.1.
    let o = kmod()
        .args(["build", "--kernel", "debian/bookworm"])
        .current_dir(&newsym)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// An existing DKMS project as Debian 12 ships it (jool 4.1.9: three modules, one
/// needing another's exports, and netfilter modules of the kernel's own tree), adopted
/// by `init`: `cargo kmod test` on 6.1 loads all three, dependencies first from that
/// kernel's module tree, as `check` predicted; on bookworm-backports' 6.12 its own
/// Makefile is found where DKMS projects look for the tree (/lib/modules/<R>/build,
/// given in a private mount namespace) and the build fails on the kernel's changed
/// netlink API, as Debian's DKMS would: that kernel's column says so, exit 17.
#[test]
fn test_proves_an_adopted_dkms_project_on_debians_61_and_612() {
    let d = tempfile::tempdir().unwrap();
    let src = cache_dir().join("fixtures/jool-dkms/usr/src");
    let version = std::fs::read_dir(&src)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let p = d.path().join("jool");
    run(Std::new("cp").arg("-a").arg(&version).arg(&p));
    let o = kmod().arg("init").current_dir(&p).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kmod()
        .args(["test", "--accel", "tcg", "--message-format", "json"])
        .args([
            "--kernel",
            "debian/bookworm",
            "--kernel",
            "debian/bookworm-backports",
        ])
        .current_dir(&p)
        .output()
        .unwrap();
    let lines = json_lines(&o);
    assert_eq!(o.status.code(), Some(17), "{lines:?}\n{}", stderr(&o));
    let k61 = fetched("debian/bookworm");
    let cells: Vec<&Value> = lines
        .iter()
        .filter(|c| c["release"] == k61.release.as_str())
        .collect();
    let mut names: Vec<&str> = cells
        .iter()
        .map(|c| c["module"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["jool", "jool_common", "jool_siit"], "{lines:?}");
    for c in &cells {
        assert_eq!(c["verdict"]["verdict"], "loads", "{c}");
        assert_eq!(c["agrees"], true, "{c}");
    }
    let failed = lines
        .iter()
        .find(|l| l["kernel"] == "debian/bookworm-backports")
        .unwrap();
    assert_eq!(failed["exit_code"], 17, "{failed}");
    let why = failed["error"].as_str().unwrap();
    assert!(
        why.contains("MAKE failed") && why.contains("nl_handler.c"),
        "{failed}"
    );
}

/// Inside a Debian sid system (the root test-deps made, with the host's cache bound in
/// so the names resolve to what test-deps fetched): `cargo kmod test` of a C project on
/// sid's 7.2 for x86_64 and, cross-built by sid's aarch64 gcc-16, for arm64; both
/// booted (arm64 under qemu-system-aarch64), loading as `check` said.
#[test]
fn test_proves_a_project_on_sids_72_for_x86_64_and_arm64() {
    let d = tempfile::tempdir().unwrap();
    let p = c_project(d.path(), "sidproved");
    let o = crate::sid::sid().run(
        &p,
        &[
            "cargo-kmod",
            "kmod",
            "test",
            "--accel",
            "tcg",
            "--message-format",
            "json",
            "--kernel",
            "debian/sid",
            "--kernel",
            "debian/sid/arm64",
        ],
    );
    let cells = json_lines(&o);
    assert_eq!(o.status.code(), Some(0), "{cells:?}\n{}", stderr(&o));
    let releases: Vec<&str> = cells
        .iter()
        .map(|c| c["release"].as_str().unwrap())
        .collect();
    assert_eq!(
        releases,
        [
            fetched("debian/sid").release.as_str(),
            fetched("debian/sid/arm64").release.as_str()
        ]
    );
    for c in &cells {
        assert_eq!(c["verdict"]["verdict"], "loads", "{c}");
        assert_eq!(c["agrees"], true, "{c}");
    }
    let arm = Std::new("file")
        .arg(
            p.join("target/kmod")
                .join(releases[1])
                .join(format!("{}.ko", p.file_name().unwrap().to_string_lossy())),
        )
        .output()
        .unwrap();
    assert!(stdout(&arm).contains("ARM aarch64"), "{}", stdout(&arm));
}

/// A Rust project over debian/sid, inside the sid root (sid's rustc is the one that
/// built Debian's 7.2): `kernel prepare --kernel debian/sid` finds the tree test-deps
/// prepared from those headers, then `cargo kmod test --kernel debian/sid` builds the
/// module in it, and Debian's own 7.2 loads it, as `check` said.
#[test]
fn test_proves_a_rust_project_on_sids_72() {
    let d = tempfile::tempdir().unwrap();
    let sid = crate::sid::sid();
    let in_root = |args: &[&str]| sid.run(d.path(), args);
    let k = fetched("debian/sid");
    let o = in_root(&[
        "cargo-kmod",
        "kmod",
        "kernel",
        "prepare",
        "--kernel",
        "debian/sid",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already prepared"), "{}", stderr(&o));
    let headers = k.headers.to_str().unwrap();
    let o = in_root(&[
        "cargo-kmod",
        "kmod",
        "new",
        "rusty",
        "--template",
        "rust-minimal",
        "--kdir",
        headers,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = in_root(&[
        "sh",
        "-c",
        "cd rusty && cargo-kmod kmod test --accel tcg --message-format json --kernel debian/sid",
    ]);
    let cells = json_lines(&o);
    assert_eq!(o.status.code(), Some(0), "{cells:?}\n{}", stderr(&o));
    assert_eq!(cells.len(), 1, "{cells:?}");
    assert_eq!(cells[0]["release"], k.release.as_str(), "{cells:?}");
    assert_eq!(cells[0]["verdict"]["verdict"], "loads", "{cells:?}");
    assert_eq!(cells[0]["agrees"], true, "{cells:?}");
    assert!(
        stderr(&o).contains("building in the tree prepared from these headers"),
        "{}",
        stderr(&o)
    );
}
