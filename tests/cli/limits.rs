//! Hostile sizes: decompression bombs (modules and kernel images), and counts that
//! made parsing quadratic. Each is refused (exit 3, naming the file) within seconds and
//! a bounded amount of memory; the benchmark measures the same precisely.

use crate::common::*;
use std::path::{Path, PathBuf};

const GIB: u64 = 1 << 30;

/// The bombs test-deps made: an ELF header and 1200 MiB of zeros, per format.
fn bomb(ext: &str) -> Vec<u8> {
    let p = cache_dir().join("bombs").join(format!("elf-zeros.{ext}"));
    assert!(
        p.exists(),
        "missing test prerequisite: {} — run scripts/test-deps.sh",
        p.display()
    );
    std::fs::read(p).unwrap()
}

/// One zstd frame, `\x7fELF` then `gib` GiB of zeros, in 4 bytes per 128 KiB (RLE
/// blocks): 10 GiB in 330 KB.
fn zstd_bomb(gib: u64) -> Vec<u8> {
    let block = |last: bool, typ: u32, size: u32| {
        let h = u32::from(last) | typ << 1 | size << 3;
        h.to_le_bytes()[..3].to_vec()
    };
    // Magic; descriptor 0 (no content size, no checksum); window 2^17.
    let mut z = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    z.extend(block(false, 0, 4));
    z.extend(b"\x7fELF");
    let n = gib * GIB / (128 << 10);
    for i in 0..n {
        z.extend(block(i + 1 == n, 1, 128 << 10));
        z.push(0);
    }
    z
}

/// Legacy lz4 (`lz4 -l`): blocks of 8 MiB (`\x7fELF`, then zeros), each written by
/// hand as 5 literals, one long match at distance 1, and 5 closing literals.
fn lz4_bomb(gib: u64) -> Vec<u8> {
    let out = 8usize << 20;
    let matched = out - 10;
    let mut block = vec![0x5F];
    block.extend(b"\x7fELF\0");
    block.extend(1u16.to_le_bytes());
    let mut rest = matched - 4 - 15;
    while rest >= 255 {
        block.push(255);
        rest -= 255;
    }
    block.push(rest as u8);
    block.push(0x50);
    block.extend([0u8; 5]);
    let mut z = vec![0x02, 0x21, 0x4C, 0x18];
    for _ in 0..gib * GIB / out as u64 {
        z.extend((block.len() as u32).to_le_bytes());
        z.extend(&block);
    }
    z
}

/// A bzImage (boot protocol 2.15, one setup sector) around `payload`.
fn bzimage(payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0x1f1] = 1;
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

struct Measured {
    code: Option<i32>,
    stderr: String,
    peak_mib: u64,
    secs: f64,
}

/// Runs cargo-kmod with `args` and measures that process alone. Through GNU time:
/// a process spawned straight from this (large, multi-threaded) test binary shares its
/// memory until exec (vfork), and the kernel counts the test binary's peak as the
/// child's; time forks from its own small image.
fn measure(args: &[&std::ffi::OsStr]) -> Measured {
    let err = tempfile::NamedTempFile::new().unwrap();
    let rss = tempfile::NamedTempFile::new().unwrap();
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "missing test prerequisite: /usr/bin/time (Debian package time) — run scripts/test-deps.sh"
    );
    let started = std::time::Instant::now();
    // timeout: a read that blocks (a FIFO) ends the run at 60 s instead of hanging it;
    // time's peak is the largest among its descendants, cargo-kmod's.
    let status = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(rss.path())
        .args(["timeout", "-s", "KILL", "60"])
        .arg(assert_cmd::cargo::cargo_bin("cargo-kmod"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(err.reopen().unwrap())
        .status()
        .unwrap();
    let kib: u64 = std::fs::read_to_string(rss.path())
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("time -f %M prints the peak in KiB");
    let stderr = std::fs::read_to_string(err.path()).unwrap();
    Measured {
        // time passes the exit status on; a signal shows as "Command terminated by signal".
        code: (!stderr.contains("Command terminated by signal"))
            .then(|| status.code())
            .flatten(),
        stderr,
        peak_mib: kib / 1024,
        secs: started.elapsed().as_secs_f64(),
    }
}

fn assert_refused(what: &str, m: &Measured, path: &Path, says: &str, max_mib: u64) {
    eprintln!(
        "{what}: exit {:?}, {:.2} s, peak {} MiB",
        m.code, m.secs, m.peak_mib
    );
    assert_eq!(m.code, Some(3), "{what}: {}", m.stderr);
    assert!(
        m.stderr.contains(&path.display().to_string()),
        "{what}: {}",
        m.stderr
    );
    assert!(m.stderr.contains(says), "{what}: {}", m.stderr);
    assert!(m.stderr.contains("help: "), "{what}: {}", m.stderr);
    assert!(m.peak_mib < max_mib, "{what}: {} MiB of memory", m.peak_mib);
    assert!(m.secs < 60.0, "{what}: {:.1} s", m.secs);
}

/// Regression: a 341 KB .ko.zst that inflates to 10 GiB made `info` take 10 GB.
#[test]
fn compressed_module_bombs_are_refused_within_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("ko.zst", zstd_bomb(10)),
        ("ko.xz", bomb("xz")),
        ("ko.gz", bomb("gz")),
    ];
    for (ext, bytes) in cases {
        let p = d.path().join(format!("bomb.{ext}"));
        std::fs::write(&p, &bytes).unwrap();
        for cmd in ["info", "verify", "unsign"] {
            let m = measure(&[cmd.as_ref(), p.as_os_str()]);
            // 512 MiB is the limit: what a module may hold, not more.
            assert_refused(&format!("{cmd} {ext}"), &m, &p, "more than 512 MiB", 640);
        }
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{ext} changed");
    }
}

/// Regression: a bzImage whose payload is a bomb cost 10 GB and 20 s in `certs`.
#[test]
fn kernel_image_bombs_are_refused_in_constant_memory() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("zstd", zstd_bomb(10)),
        ("lz4", lz4_bomb(2)),
        ("bzip2", bomb("bz2")),
        ("xz", bomb("xz")),
    ];
    for (what, payload) in cases {
        let p = d.path().join(format!("vmlinuz-{what}"));
        std::fs::write(&p, bzimage(&payload)).unwrap();
        let m = measure(&["certs".as_ref(), p.as_os_str()]);
        assert_refused(
            &format!("certs {what}"),
            &m,
            &p,
            "larger than 1024 MiB",
            128,
        );
        let module = unsigned_module(d.path(), "dummy");
        let m = measure(&[
            "verify".as_ref(),
            "--kernel".as_ref(),
            p.as_os_str(),
            module.as_os_str(),
        ]);
        assert_refused(
            &format!("verify --kernel {what}"),
            &m,
            &p,
            "larger than 1024 MiB",
            128,
        );
    }
}

/// An ELF "vmlinux" holding `n` distinct certificates (one test certificate with its
/// serial's last bytes counted up), between other bytes.
fn vmlinux_with_certs(dir: &Path, n: usize) -> PathBuf {
    let pem = std::fs::read(&keys().get("rsa2048").cert).unwrap();
    let der = openssl::x509::X509::from_pem(&pem)
        .unwrap()
        .to_der()
        .unwrap();
    // 30 82 LL LL | 30 82 LL LL | A0 03 02 01 02 | 02 len serial...
    assert_eq!(der[13], 0x02);
    let serial_end = 15 + der[14] as usize;
    let mut elf = b"\x7fELF".to_vec();
    elf.resize(4096, 0);
    for i in 0..n {
        let mut c = der.clone();
        c[serial_end - 2..serial_end].copy_from_slice(&(i as u16).to_be_bytes());
        elf.extend(c);
    }
    elf.extend([0u8; 4096]);
    let p = dir.join(format!("vmlinux-{n}"));
    std::fs::write(&p, elf).unwrap();
    p
}

/// Regression: 4,000 certificates in an image took `certs` 6.5 s (quadratic).
#[test]
fn certificate_counts_are_linear_and_bounded() {
    let d = tempfile::tempdir().unwrap();
    let many = vmlinux_with_certs(d.path(), 1024);
    let m = measure(&["certs".as_ref(), many.as_os_str()]);
    eprintln!("certs with 1024 certificates: {:.2} s", m.secs);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    assert!(m.secs < 10.0, "{:.1} s for 1024 certificates", m.secs);
    let too_many = vmlinux_with_certs(d.path(), 4000);
    let m = measure(&["certs".as_ref(), too_many.as_os_str()]);
    assert_refused(
        "certs 4000",
        &m,
        &too_many,
        "more than 1024 certificates",
        128,
    );
}

/// The README's promise for every file argument of every command: `/dev/zero` (endless)
/// and a FIFO (blocks whoever opens it) are refused quickly, in bounded memory, with
/// the file named and a help line. Regression: `check --cert /dev/zero` reached 21 GiB;
/// `--key`, `--pin-file` the same; a FIFO blocked forever.
#[test]
fn every_file_argument_refuses_dev_zero_and_fifos_without_blocking() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("fifo");
    run(std::process::Command::new("mkfifo").arg(&fifo));
    let k = keys().get("p384");
    let module = unsigned_module(d.path(), "dummy");
    let image = crate::fixtures::debian_612().image;
    let headers = crate::fixtures::debian_612().headers;
    let project = d.path().join("proj");
    kmod()
        .arg("new")
        .arg(&project)
        .args(["--template", "c-minimal", "--kdir"])
        .arg(&headers)
        .assert()
        .success();
    // Each case: the argument under test is `@`; the others are named by `{...}`
    // (paths here hold no spaces).
    let src612 = "/usr/src/linux-source-6.12.tar.xz";
    let vars = [
        ("{key}", k.key.clone()),
        ("{cert}", k.cert.clone()),
        ("{m}", module.clone()),
        ("{img}", image.clone()),
        ("{man}", project.join("Cargo.toml")),
        ("{h72}", crate::fixtures::debian_72().headers),
        ("{out}", d.path().join("k")),
    ];
    let cases: Vec<Vec<String>> = [
        "sign --key @ --cert {cert} {m}",
        "sign --key {key} --cert @ {m}",
        "sign --key {key} --cert {cert} --pin-file @ {m}",
        "sign --key pkcs11:token=x --pkcs11-module @ {m}",
        "sign --key {key} --cert {cert} @",
        "verify --cert @ {m}",
        "verify --kernel @ {m}",
        "verify --cert {cert} @",
        "check --kernel {img} --cert @ {m}",
        "check --kernel @ {m}",
        "check --kernel {img} @",
        "info @",
        "unsign @",
        "certs @",
        "sign-file sha256 @ {cert} {m}",
        "sign-file sha256 {key} @ {m}",
        "sign-file sha256 {key} {cert} @",
        "sign-file -s @ sha256 {cert} {m}",
        "kernel build --source @",
        "kernel build --source SRC612 --config @",
        "kernel build --source SRC612 --trusted-cert @",
        "kernel prepare --headers {h72} --source @",
        "kernel prepare --headers {h72} --rustc @",
        "kernel build --source SRC612 --rustc @",
        "run --kernel @ --module {m}",
        "run --manifest-path @",
        "run --kernel {img} --module @",
        "run --kernel {img} --busybox @ --module {m}",
        "keygen --out {out} --pkcs11 pkcs11:token=x --pin-file @",
        "keygen --out {out} --pkcs11 pkcs11:token=x --pkcs11-module @",
        "build --manifest-path @",
        "build --manifest-path {man} --sign --key @ --cert {cert}",
        "build --manifest-path {man} --sign --key {key} --cert @",
        "install --manifest-path {man} --sign --key @ --cert {cert}",
        "package --manifest-path {man} --deb --sign --key {key} --cert @",
    ]
    .iter()
    .map(|c| {
        c.split_whitespace()
            .map(|w| {
                let w = w.replace("SRC612", src612);
                vars.iter()
                    .find(|(k, _)| *k == w)
                    .map_or(w.clone(), |(_, p)| p.to_string_lossy().into_owned())
            })
            .collect()
    })
    .collect();
    let mut failures = Vec::new();
    for case in &cases {
        for hostile in [Path::new("/dev/zero"), fifo.as_path()] {
            let args: Vec<std::ffi::OsString> = std::iter::once("kmod".into())
                .chain(case.iter().map(|a| {
                    if a == "@" {
                        hostile.as_os_str().to_owned()
                    } else {
                        a.into()
                    }
                }))
                .collect();
            let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            let m = measure(&refs);
            let shown = format!("{} ({})", case.join(" "), hostile.display());
            eprintln!(
                "{shown}: exit {:?}, {:.2} s, peak {} MiB",
                m.code, m.secs, m.peak_mib
            );
            // sign-file answers as the kernel's sign-file does: exit 1, no help line.
            let sign_file = case[0] == "sign-file";
            let ok = m.code.is_some_and(|c| {
                if sign_file {
                    c == 1
                } else {
                    (2..=27).contains(&c)
                }
            }) && m.stderr.contains(&hostile.display().to_string())
                && (sign_file || m.stderr.contains("help: "))
                && m.peak_mib < 256
                && m.secs < 20.0;
            if !ok {
                failures.push(format!(
                    "{shown}: exit {:?}, {:.1} s, {} MiB:\n{}",
                    m.code, m.secs, m.peak_mib, m.stderr
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs:\n{}",
        failures.len(),
        2 * cases.len(),
        failures.join("\n")
    );
}
