//! One `sign-file` call, as DKMS and Kbuild make it once per module: ours against
//! Debian's compiled scripts/sign-file (the peer, measured in the same run), paired
//! and alternated, on a real disk (the temp dir is under target/), median of each.
//! Prints wall and CPU (user+sys) per call and their ratios for RSA-4096 and P-384;
//! nothing is asserted.
//!
//! Run: `cargo bench --bench signfile` (after scripts/test-deps.sh made the fixtures).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

fn children_cpu() -> Duration {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, u.as_mut_ptr());
        u.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// (wall, cpu) of one call that signs a fresh copy of `module`.
fn once(cmd: &mut Command, module: &Path, work: &Path) -> (Duration, Duration) {
    std::fs::copy(module, work).unwrap();
    let cpu = children_cpu();
    let t = Instant::now();
    let o = cmd.output().unwrap();
    let wall = t.elapsed();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (wall, children_cpu() - cpu)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let fixtures = cache().join("fixtures");
    let theirs = walkdir::WalkDir::new(&fixtures)
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name() == "sign-file" && e.file_type().is_file())
        .expect("Debian's sign-file: run scripts/test-deps.sh first")
        .into_path();
    // A module near 1 MB, as the issue measured.
    let xz = walkdir::WalkDir::new(&fixtures)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ko.xz"))
        .find(|e| {
            e.metadata()
                .is_ok_and(|m| (250_000..400_000).contains(&m.len()))
        })
        .expect("Debian's modules: run scripts/test-deps.sh first")
        .into_path();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let module = dir.path().join("m.ko");
    let raw = Command::new("xz")
        .arg("-dc")
        .arg(&xz)
        .output()
        .unwrap()
        .stdout;
    std::fs::write(&module, raw).unwrap();
    let o = Command::new(&bin)
        .args(["kmod", "unsign"])
        .arg(&module)
        .output()
        .unwrap();
    assert!(o.status.success());
    let size = std::fs::metadata(&module).unwrap().len();
    let work = dir.path().join("w.ko");
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(41);
    println!(
        "sign-file, one call, {} KB module, median of {runs} paired runs (ours vs Debian's {})",
        size / 1000,
        theirs.display()
    );
    for key in ["rsa4096", "p384"] {
        let k = cache().join("test-keys").join(key);
        let args = |c: &mut Command| {
            c.arg("sha256")
                .arg(k.join("signing_key.pem"))
                .arg(k.join("signing_key.crt"))
                .arg(&work);
        };
        let mut ours_cmd = Command::new(&bin);
        ours_cmd.args(["kmod", "sign-file"]);
        args(&mut ours_cmd);
        let mut their_cmd = Command::new(&theirs);
        args(&mut their_cmd);
        let (mut ow, mut oc, mut tw, mut tc) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let (w, c) = once(&mut ours_cmd, &module, &work);
            ow.push(w);
            oc.push(c);
            let (w, c) = once(&mut their_cmd, &module, &work);
            tw.push(w);
            tc.push(c);
        }
        let (ow, oc, tw, tc) = (median(ow), median(oc), median(tw), median(tc));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {key}: wall {:.1} ms vs {:.1} ms = {:.2}x; cpu {:.1} ms vs {:.1} ms = {:.2}x",
            ms(ow),
            ms(tw),
            ms(ow) / ms(tw),
            ms(oc),
            ms(tc),
            ms(oc) / ms(tc).max(0.001)
        );
    }
}
