//! `cargo kmod kernel`: a Rust-enabled kernel with module signature enforcement,
//! built from a kernel source and cached by its inputs.

use crate::error::{Error, Result};
use crate::report::Reporter;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Options on top of tinyconfig: enough to boot in QEMU with a serial console and an
/// initramfs, load and unload modules, enforce signatures, and build Rust modules.
pub const BASE_FRAGMENT: &str = "\
CONFIG_64BIT=y
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_PROC_FS=y
CONFIG_PROC_SYSCTL=y
CONFIG_SYSFS=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_MODULE_SIG=y
CONFIG_MODULE_SIG_FORCE=y
CONFIG_MODULE_SIG_ALL=y
CONFIG_MODULE_SIG_SHA256=y
CONFIG_RUST=y
CONFIG_KEYS=y
CONFIG_SYSTEM_DATA_VERIFICATION=y
CONFIG_CRYPTO_SHA256=y
CONFIG_CRYPTO_SHA512=y
CONFIG_CRYPTO_SHA3=y
CONFIG_CRYPTO_ECDSA=y
CONFIG_CRYPTO_RSA=y
";

pub const META_FILE: &str = "cargo-kmod-kernel.json";

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub source: PathBuf,
    pub out: Option<PathBuf>,
    pub fragments: Vec<PathBuf>,
    pub trusted_certs: Vec<PathBuf>,
    pub rustc: Option<PathBuf>,
    pub bindgen: Option<PathBuf>,
    pub jobs: usize,
}

/// What `kernel build` leaves behind, also stored as `cargo-kmod-kernel.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KernelInfo {
    pub release: String,
    /// Tree usable as KDIR.
    pub kdir: PathBuf,
    pub image: PathBuf,
    pub rust: bool,
    pub rustc: String,
    pub trusted: Vec<String>,
    pub inputs: String,
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_KMOD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/cargo-kmod")
        })
}

pub fn kernels_dir() -> PathBuf {
    cache_dir().join("kernels")
}

/// The tools a Rust-enabled kernel build needs, found or named with their package.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub rustc: PathBuf,
    pub rustc_version: String,
    pub bindgen: PathBuf,
    /// Directory holding clang, ld.lld, llvm-ar, ... when they are not on PATH unsuffixed.
    pub llvm_bin: Option<PathBuf>,
}

impl Toolchain {
    pub fn find(rustc: Option<&Path>, bindgen: Option<&Path>) -> Result<Toolchain> {
        let mut missing = Vec::new();
        let mut pkgs: Vec<&str> = Vec::new();
        let mut notes = Vec::new();

        // The kernel needs the rustc whose library source is installed (rust-src).
        let candidates: Vec<PathBuf> = match rustc {
            Some(r) => vec![r.to_path_buf()],
            None => {
                let mut v = Vec::new();
                if let Some(r) = std::env::var_os("RUSTC") {
                    v.push(PathBuf::from(r));
                }
                v.push("/usr/bin/rustc".into());
                v.extend(which("rustc"));
                v
            }
        };
        let mut found_rustc = None;
        for c in &candidates {
            let Some(version) = tool_version(c, "--version") else {
                continue;
            };
            if has_rust_src(c) {
                found_rustc = Some((c.clone(), version));
                break;
            }
            notes.push(format!("{} ({version}) has no rust-src", c.display()));
        }
        if found_rustc.is_none() {
            missing.push(format!(
                "rustc with matching rust-src{}",
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(" (found: {})", notes.join("; "))
                }
            ));
            pkgs.extend(["rustc-web", "rust-web-src"]);
        }

        // A given path must exist; otherwise PATH, then our own tools directory.
        let bindgen = match bindgen {
            Some(b) => b.is_file().then(|| b.to_path_buf()),
            None => which("bindgen").or_else(|| {
                let p = cache_dir().join("tools/bin/bindgen");
                p.exists().then_some(p)
            }),
        };
        if bindgen.is_none() {
            missing.push("bindgen (>= 0.65.1)".into());
        }

        let llvm_bin = if which("clang").is_some() && which("ld.lld").is_some() {
            None
        } else {
            newest_llvm_bin()
        };
        let in_llvm = |tool: &str| {
            llvm_bin.as_ref().is_some_and(|d| d.join(tool).exists()) || which(tool).is_some()
        };
        for (tool, pkg) in [
            ("clang", "clang-19"),
            ("ld.lld", "lld-19"),
            ("llvm-ar", "llvm-19"),
        ] {
            if !in_llvm(tool) {
                missing.push(tool.into());
                pkgs.push(pkg);
            }
        }
        let libclang = llvm_bin.as_ref().and_then(|b| b.parent()).is_some_and(|d| {
            d.join("lib/libclang.so").exists() || d.join("lib/libclang.so.1").exists()
        });
        if !libclang && llvm_bin.is_some() {
            missing.push("libclang".into());
            pkgs.push("libclang-19-dev");
        }
        for (tool, pkg) in [
            ("make", "make"),
            ("flex", "flex"),
            ("bison", "bison"),
            ("bc", "bc"),
            ("tar", "tar"),
            ("xz", "xz-utils"),
            ("openssl", "openssl"),
        ] {
            if which(tool).is_none() {
                missing.push(tool.into());
                pkgs.push(pkg);
            }
        }
        for (header, pkg) in [
            ("/usr/include/gelf.h", "libelf-dev"),
            ("/usr/include/openssl/evp.h", "libssl-dev"),
        ] {
            if !Path::new(header).exists() {
                missing.push(header.into());
                pkgs.push(pkg);
            }
        }
        if !missing.is_empty() {
            let mut install = String::new();
            if !pkgs.is_empty() {
                install = format!("apt-get install {}", pkgs.join(" "));
            }
            if bindgen.is_none() {
                if !install.is_empty() {
                    install.push_str("; ");
                }
                install.push_str(&format!(
                    "cargo install --locked bindgen-cli --root {} (Debian 12's bindgen is too old)",
                    cache_dir().join("tools").display()
                ));
            }
            return Err(Error::Toolchain { missing, install });
        }
        let (rustc, rustc_version) = found_rustc.expect("checked");
        Ok(Toolchain {
            rustc,
            rustc_version,
            bindgen: bindgen.expect("checked"),
            llvm_bin,
        })
    }

    /// `make` with the kernel's toolchain variables.
    pub fn make(&self, dir: &Path) -> Command {
        let mut c = Command::new("make");
        c.arg("-C").arg(dir);
        c.arg("LLVM=1");
        c.arg(format!("RUSTC={}", self.rustc.display()));
        // Proc macros (rust/libmacros.so) must come from the same compiler.
        c.arg(format!("HOSTRUSTC={}", self.rustc.display()));
        c.arg(format!("BINDGEN={}", self.bindgen.display()));
        kbuild_env(&mut c, self.llvm_bin.as_deref());
        c
    }
}

/// The environment every Kbuild call gets: LLVM's directory first on PATH when clang
/// is not on it, and none of the Cargo/rustup variables of our own invocation (they
/// would leak into Kbuild's rustc).
pub fn kbuild_env(c: &mut Command, llvm_bin: Option<&Path>) {
    if let Some(bin) = llvm_bin {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(paths).expect("valid PATH"));
    }
    for v in [
        "RUSTC",
        "RUSTFLAGS",
        "RUSTUP_TOOLCHAIN",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        c.env_remove(v);
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

pub fn tool_version(tool: &Path, flag: &str) -> Option<String> {
    let o = Command::new(tool)
        .arg(flag)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn has_rust_src(rustc: &Path) -> bool {
    let Some(sysroot) = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
    else {
        return false;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    sysroot
        .join("lib/rustlib/src/rust/library/core/src/lib.rs")
        .exists()
}

pub fn newest_llvm_bin() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let v: u32 = n.strip_prefix("llvm-")?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("clang").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, d)| d)
}

/// Hash of everything that decides the built kernel.
fn inputs_hash(o: &BuildOptions, tc: &Toolchain, source_id: &str) -> Result<String> {
    let mut h = openssl::sha::Sha256::new();
    let mut feed = |label: &str, bytes: &[u8]| {
        h.update(label.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    feed("tool", env!("CARGO_PKG_VERSION").as_bytes());
    feed("source", source_id.as_bytes());
    feed("base", BASE_FRAGMENT.as_bytes());
    feed("rustc", tc.rustc_version.as_bytes());
    for f in &o.fragments {
        feed("fragment", &read(f)?);
    }
    for c in &o.trusted_certs {
        feed("cert", &read(c)?);
    }
    Ok(hex::encode(&h.finish()[..6]))
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|source| Error::Read {
        path: p.to_path_buf(),
        source,
    })
}

fn source_identity(src: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let abs = std::fs::canonicalize(src).map_err(|source| Error::Read {
        path: src.to_path_buf(),
        source,
    })?;
    let m = std::fs::metadata(&abs).map_err(|source| Error::Read {
        path: src.to_path_buf(),
        source,
    })?;
    if m.is_dir() {
        let mk = abs.join("Makefile");
        let makefile = std::fs::read(&mk).map_err(|_| Error::KernelSource {
            path: src.to_path_buf(),
            reason: "no Makefile at the top".into(),
        })?;
        Ok(format!(
            "dir:{}:{}",
            abs.display(),
            hex::encode(openssl::sha::sha256(&makefile))
        ))
    } else {
        Ok(format!("file:{}:{}:{}", abs.display(), m.len(), m.mtime()))
    }
}

/// `VERSION.PATCHLEVEL.SUBLEVEL EXTRAVERSION` from the top Makefile.
pub fn makefile_release(src: &Path) -> Option<String> {
    let text = std::fs::read_to_string(src.join("Makefile")).ok()?;
    let get = |k: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(k)?
                .trim_start()
                .strip_prefix('=')
                .map(|v| v.trim().to_string())
        })
    };
    Some(format!(
        "{}.{}.{}{}",
        get("VERSION")?,
        get("PATCHLEVEL")?,
        get("SUBLEVEL")?,
        get("EXTRAVERSION").unwrap_or_default()
    ))
}

/// Finds a finished build with these inputs.
fn cached(base: &Path, hash: &str) -> Option<KernelInfo> {
    std::fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(&format!("-{hash}"))
        })
        .find_map(|e| load_info(&e.path()))
}

pub fn load_info(dir: &Path) -> Option<KernelInfo> {
    let info: KernelInfo =
        serde_json::from_slice(&std::fs::read(dir.join(META_FILE)).ok()?).ok()?;
    info.image.exists().then_some(info)
}

/// Every finished kernel in the cache, newest release first.
pub fn list() -> Vec<KernelInfo> {
    let mut v: Vec<KernelInfo> = std::fs::read_dir(kernels_dir())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| load_info(&e.path()))
        .collect();
    v.sort_by(|a, b| Version::of(&b.release).cmp(&Version::of(&a.release)));
    v
}

/// A kernel release's version, compared as numbers (6.9 < 6.12), a release candidate
/// before its release (7.3-rc2 < 7.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    numbers: Vec<u32>,
    /// u32::MAX for a release, N for -rcN.
    rc: u32,
}

impl Version {
    pub fn of(release: &str) -> Version {
        let end = release
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(release.len());
        let numbers = release[..end]
            .split('.')
            .filter_map(|n| n.parse().ok())
            .collect();
        let rc = release[end..]
            .strip_prefix("-rc")
            .and_then(|r| {
                let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .unwrap_or(u32::MAX);
        Version { numbers, rc }
    }
}

/// Builds (or reuses) the kernel.
pub fn build(o: &BuildOptions, r: &dyn Reporter) -> Result<KernelInfo> {
    let source_id = source_identity(&o.source)?;
    let tc = Toolchain::find(o.rustc.as_deref(), o.bindgen.as_deref())?;
    let hash = inputs_hash(o, &tc, &source_id)?;
    let base = o.out.clone().unwrap_or_else(kernels_dir);
    if let Some(info) = cached(&base, &hash) {
        r.note(&format!(
            "kernel {} already built with these inputs: {}",
            info.release,
            info.kdir.display()
        ));
        return Ok(info);
    }
    std::fs::create_dir_all(&base).map_err(|source| Error::Write {
        path: base.clone(),
        source,
    })?;
    let src_is_dir = std::fs::metadata(&o.source)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    // Work in a temp name; the final name appears only with a finished build.
    let work = base.join(format!(".building-{hash}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|source| Error::Write {
        path: work.clone(),
        source,
    })?;
    let log_path = work.join("build.log");
    let mut log = std::fs::File::create(&log_path).map_err(|source| Error::Write {
        path: log_path.clone(),
        source,
    })?;
    let (src, kdir_rel) = if src_is_dir {
        (std::fs::canonicalize(&o.source).expect("exists"), "build")
    } else {
        r.note(&format!("unpacking {}", o.source.display()));
        let src = work.join("src");
        std::fs::create_dir_all(&src).expect("fresh dir");
        let mut tar = Command::new("tar");
        tar.arg("-xf")
            .arg(&o.source)
            .arg("-C")
            .arg(&src)
            .arg("--strip-components=1");
        run_logged(&mut tar, "unpack", &mut log, &log_path, r, false)?;
        (src, "src")
    };
    let release = makefile_release(&src).ok_or_else(|| Error::KernelSource {
        path: o.source.clone(),
        reason: "no VERSION/PATCHLEVEL/SUBLEVEL in the top Makefile".into(),
    })?;
    r.note(&format!(
        "kernel source {release}, toolchain {}",
        tc.rustc_version
    ));

    // Trusted certificates and the config fragment.
    let certs_path = work.join("trusted-certs.pem");
    let mut trusted = Vec::new();
    let mut pem = Vec::new();
    for c in &o.trusted_certs {
        for cert in crate::sign::keys::load_certs(c)? {
            trusted.push(cert.subject());
            pem.extend(cert.x509.to_pem().expect("re-encode a parsed certificate"));
        }
    }
    std::fs::write(&certs_path, &pem).map_err(|source| Error::Write {
        path: certs_path.clone(),
        source,
    })?;
    let final_dir = base.join(format!("{release}-{hash}"));
    let final_certs = final_dir.join("trusted-certs.pem");
    let mut fragment = BASE_FRAGMENT.to_string();
    if !pem.is_empty() {
        fragment.push_str(&format!(
            "CONFIG_SYSTEM_TRUSTED_KEYS=\"{}\"\n",
            final_certs.display()
        ));
    }
    for f in &o.fragments {
        fragment.push_str(&String::from_utf8_lossy(&read(f)?));
        fragment.push('\n');
    }
    let frag_path = work.join("cargo-kmod.config");
    std::fs::write(&frag_path, &fragment).map_err(|source| Error::Write {
        path: frag_path.clone(),
        source,
    })?;

    // Move into place before configuring: the tree's absolute paths must be final.
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&work, &final_dir).map_err(|source| Error::Write {
        path: final_dir.clone(),
        source,
    })?;
    let log_path = final_dir.join("build.log");
    let frag_path = final_dir.join("cargo-kmod.config");
    let src = if src_is_dir {
        src
    } else {
        final_dir.join("src")
    };
    let kdir = final_dir.join(kdir_rel);
    let make = |targets: &[&str]| {
        let mut c = tc.make(&src);
        if src_is_dir {
            c.arg(format!("O={}", kdir.display()));
        }
        c.args(targets);
        c
    };
    // An unfinished tree is never reused: the metadata file is written last.
    r.note("checking Rust support (make rustavailable)");
    let out = run_logged(
        &mut make(&["rustavailable"]),
        "rustavailable",
        &mut log,
        &log_path,
        r,
        false,
    )?;
    r.note(
        out.lines()
            .find(|l| l.contains("Rust is available"))
            .unwrap_or("Rust is available"),
    );

    r.note("configuring: tinyconfig + module signing + Rust");
    run_logged(
        &mut make(&["tinyconfig"]),
        "configuration",
        &mut log,
        &log_path,
        r,
        false,
    )?;
    let mut merge = Command::new(src.join("scripts/kconfig/merge_config.sh"));
    merge.current_dir(&src).arg("-m");
    if src_is_dir {
        merge.arg("-O").arg(&kdir);
    }
    merge.arg(kdir.join(".config")).arg(&frag_path);
    run_logged(&mut merge, "configuration", &mut log, &log_path, r, false)?;
    run_logged(
        &mut make(&["olddefconfig"]),
        "configuration",
        &mut log,
        &log_path,
        r,
        false,
    )?;
    let config = std::fs::read_to_string(kdir.join(".config")).unwrap_or_default();
    let lost: Vec<&str> = fragment
        .lines()
        .filter(|l| l.starts_with("CONFIG_") && !config.lines().any(|c| c == *l))
        .collect();
    if lost.iter().any(|l| l.starts_with("CONFIG_RUST=")) {
        return Err(Error::KernelBuild {
            step: "configuration".into(),
            log: log_path,
            tail: "CONFIG_RUST=y did not stick after olddefconfig (Rust support unavailable for this toolchain)".into(),
        });
    }
    for l in lost {
        r.warn(&format!("{l} is not set in the final .config"));
    }

    let jobs = o.jobs.max(1);
    r.note(&format!(
        "building with {jobs} jobs (full log: {})",
        log_path.display()
    ));
    let started = std::time::Instant::now();
    run_logged(
        &mut make(&[&format!("-j{jobs}")]),
        "build",
        &mut log,
        &log_path,
        r,
        true,
    )?;
    let release = std::fs::read_to_string(kdir.join("include/config/kernel.release"))
        .map(|s| s.trim().to_string())
        .unwrap_or(release);
    let info = KernelInfo {
        release,
        image: kdir.join("arch/x86/boot/bzImage"),
        kdir: kdir.clone(),
        rust: config.lines().any(|l| l == "CONFIG_RUST=y"),
        rustc: tc.rustc_version.clone(),
        trusted,
        inputs: hash,
    };
    let meta = final_dir.join(META_FILE);
    crate::fsutil::write_atomic(
        &meta,
        &serde_json::to_vec_pretty(&info).expect("serializes"),
        None,
    )?;
    r.note(&format!(
        "built {} in {:.0} s: {}",
        info.release,
        started.elapsed().as_secs_f64(),
        info.image.display()
    ));
    Ok(info)
}

/// Runs a step, copying its output to the log and (for the build) to progress.
fn run_logged(
    cmd: &mut Command,
    step: &str,
    log: &mut std::fs::File,
    log_path: &Path,
    r: &dyn Reporter,
    progress: bool,
) -> Result<String> {
    let _ = writeln!(log, "$ {cmd:?}");
    let (status, lines) = run_lines(cmd, |line| {
        let _ = writeln!(log, "{line}");
        if progress {
            r.progress(line);
        }
    })
    .map_err(|e| Error::KernelBuild {
        step: step.into(),
        log: log_path.to_path_buf(),
        tail: format!("cannot run {:?}: {e}", cmd.get_program()),
    })?;
    let all = lines.join("\n");
    if !status.success() {
        let tail: Vec<&str> = all.lines().rev().take(25).collect();
        return Err(Error::KernelBuild {
            step: step.into(),
            log: log_path.to_path_buf(),
            tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(all)
}

/// Runs `cmd`, handing each line of its stdout and stderr (interleaved) to `on_line`;
/// returns the exit status and every line.
pub fn run_lines(
    cmd: &mut Command,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<(std::process::ExitStatus, Vec<String>)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ]
    .into_iter()
    .map(|pipe| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                let _ = tx.send(l);
            }
        })
    })
    .collect();
    drop(tx);
    let mut lines = Vec::new();
    for line in rx {
        on_line(&line);
        lines.push(line);
    }
    for t in readers {
        let _ = t.join();
    }
    Ok((child.wait()?, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        let mut v = [
            "7.3",
            "6.12.117",
            "6.9",
            "7.3-rc2",
            "6.1.158-amd64",
            "7.2.13+deb14-amd64",
            "6.12",
        ];
        v.sort_by_key(|r| Version::of(r));
        let want = [
            "6.1.158-amd64",
            "6.9",
            "6.12",
            "6.12.117",
            "7.2.13+deb14-amd64",
            "7.3-rc2",
            "7.3",
        ];
        assert_eq!(v, want);
    }
}
