//! Hostile sizes (issue 19): what a decompression bomb or a swollen count costs
//! cargo-kmod, against a peer that takes the input at face value (the compressor's
//! own decoder run to the end) and against the limits cargo-kmod sets. Prints ratios;
//! nothing is asserted (the tests assert loose bounds).
//!
//! Run: `cargo bench --bench limits` (after scripts/test-deps.sh made the bombs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cargo-kmod"))
}

/// Wall time, peak RSS (MiB) and exit code of one run, its output discarded.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
fn measure(cmd: &mut Command) -> (Duration, u64, i32) {
    let t = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut status = 0;
    // SAFETY: waiting for our own child; rusage is plain data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert!(r > 0, "{cmd:?}: wait4");
    (
        t.elapsed(),
        ru.ru_maxrss as u64 / 1024,
        (status >> 8) & 0xff,
    )
}

/// A bzImage (boot protocol 2.15) around `payload`.
fn bzimage(payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0x1f1] = 1;
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

fn row(what: &str, ours: (Duration, u64, i32), peer: (Duration, u64, i32), limit_mib: u64) {
    println!(
        "{what:<34} ours {:>6.2} s {:>5} MiB (exit {})   peer {:>6.2} s {:>5} MiB   time {:.3}x peer, memory {:.2}x our limit ({limit_mib} MiB)",
        ours.0.as_secs_f64(),
        ours.1,
        ours.2,
        peer.0.as_secs_f64(),
        peer.1,
        ours.0.as_secs_f64() / peer.0.as_secs_f64(),
        ours.1 as f64 / limit_mib as f64,
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("limits benchmark: run it with `cargo bench --bench limits`");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cargo-kmod"));
    let bombs = cache().join("bombs");
    assert!(
        bombs.join(".done").exists(),
        "no bombs in {}: run scripts/test-deps.sh",
        bombs.display()
    );
    let work = tempfile::tempdir().unwrap();
    let kmod = |args: &[&std::ffi::OsStr]| {
        let mut c = Command::new(&bin);
        c.args(args);
        c
    };
    let decode = |tool: &str, file: &Path| {
        let mut c = Command::new(tool);
        c.arg("-dc").arg(file);
        c
    };
    println!("1200 MiB of zeros behind an ELF header; peers decode all of it");
    for (ext, tool) in [("xz", "xz"), ("gz", "gzip"), ("bz2", "bzip2")] {
        let src = bombs.join(format!("elf-zeros.{ext}"));
        let peer = measure(&mut decode(tool, &src));
        if ext != "bz2" {
            let m = work.path().join(format!("bomb.ko.{ext}"));
            std::fs::copy(&src, &m).unwrap();
            let ours = measure(&mut kmod(&["info".as_ref(), m.as_os_str()]));
            row(&format!("info bomb.ko.{ext}"), ours, peer, 512);
        }
        let payload = std::fs::read(&src).unwrap();
        let img = work.path().join(format!("vmlinuz-{ext}"));
        std::fs::write(&img, bzimage(&payload)).unwrap();
        let ours = measure(&mut kmod(&["certs".as_ref(), img.as_os_str()]));
        row(&format!("certs vmlinuz ({ext} payload)"), ours, peer, 1024);
    }
}
