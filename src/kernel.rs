//! `cargo kmod kernel`: a Rust-enabled kernel with module signature enforcement,
//! built from a kernel source and cached by its inputs.

use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::settings::Settings;
use crate::target::{Arch, Features, Version};
use crate::toolchain::{self, Toolchain};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Options for some generations of the kernel only, merged after [`BASE_FRAGMENT`]
/// for versions in `from..before`. Rust is decided per source (below).
pub const GENERATION_FRAGMENTS: &[GenerationFragment] = &[
    GenerationFragment {
        // 7.3 folded it into CONFIG_SYSCTL (/proc/sys comes with it).
        from: (6, 1),
        before: (7, 3),
        text: "CONFIG_PROC_SYSCTL=y\n",
    },
    GenerationFragment {
        // ML-DSA module signatures (7.0), built in: a module signature cannot wait
        // for a crypto module to load.
        from: crate::target::since::MLDSA,
        before: (u32::MAX, 0),
        text: "CONFIG_CRYPTO_MLDSA=y\n",
    },
];

/// Kconfig lines for kernels `from` up to (not including) `before`.
#[derive(Debug)]
pub struct GenerationFragment {
    pub from: (u32, u32),
    pub before: (u32, u32),
    pub text: &'static str,
}

/// Merged last when the kernel is built without Rust.
const NO_RUST_FRAGMENT: &str = "# CONFIG_RUST is not set\n";

/// Whether the kernel gets Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RustChoice {
    /// Rust where this toolchain can build it; otherwise without, saying why.
    #[default]
    Auto,
    Yes,
    No,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub source: PathBuf,
    pub out: Option<PathBuf>,
    pub fragments: Vec<PathBuf>,
    pub trusted_certs: Vec<PathBuf>,
    pub rustc: Option<PathBuf>,
    pub bindgen: Option<PathBuf>,
    pub jobs: usize,
    pub rust: RustChoice,
    /// Accept ML-DSA module signatures with signed attributes (7.0+).
    pub mldsa_waiver: bool,
    pub arch: Arch,
}

/// What `kernel build` leaves behind, also stored as its [`crate::cache::KERNEL`] record.
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
    /// Absent in kernels built before arm64 came: x86_64.
    #[serde(default = "x86_64")]
    pub arch: Arch,
}

fn x86_64() -> Arch {
    Arch::X86_64
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
    for g in GENERATION_FRAGMENTS {
        feed("generation", format!("{g:?}").as_bytes());
    }
    // Auto's decision follows from the source and the rustc, both fed already.
    if o.rust != RustChoice::Auto {
        feed("rust", format!("{:?}", o.rust).as_bytes());
    }
    feed("rustc", tc.rustc_version.as_bytes());
    for f in &o.fragments {
        feed("fragment", &read(f)?);
    }
    if o.mldsa_waiver {
        feed("mldsa-waiver", b"y");
    }
    // x86_64 feeds nothing: its kernels keep the hashes they had before arm64.
    if o.arch != Arch::X86_64 {
        feed("arch", o.arch.name().as_bytes());
        feed("arch-fragment", o.arch.kernel_fragment().as_bytes());
    }
    for c in &o.trusted_certs {
        feed("cert", &read(c)?);
    }
    Ok(hex::encode(&h.finish()[..6]))
}

/// A config fragment or a certificate file given to `kernel build`: small, regular.
fn read(p: &Path) -> Result<Vec<u8>> {
    crate::fsutil::read_bounded(p, 16 << 20)
}

pub(crate) fn source_identity(src: &Path) -> Result<String> {
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
        // By content: the same tarball unpacked elsewhere (another cache) is the same
        // input; sha256 streams at over 1 GB/s, a tenth of a second for a source.
        let mut f = crate::fsutil::open_regular(&abs)?;
        let mut h = openssl::sha::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).map_err(|source| Error::Read {
                path: src.to_path_buf(),
                source,
            })?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(format!("file:{}:{}", m.len(), hex::encode(h.finish())))
    }
}

/// ML-DSA asked of a source that predates it (7.0): the waiver, or a trusted
/// certificate with an ML-DSA key (the kernel would not load it).
fn check_mldsa(
    o: &BuildOptions,
    certs: &[(PathBuf, crate::pki::cert::Cert)],
    version: &Version,
    release: &str,
) -> Result<()> {
    if Features::of(Some(version)).mldsa {
        return Ok(());
    }
    if o.mldsa_waiver {
        return Err(Error::KernelSource {
            path: o.source.clone(),
            reason: format!(
                "--mldsa-waiver needs ML-DSA, which came in Linux 7.0; this source is {release}"
            ),
        });
    }
    for (c, cert) in certs {
        if let Ok(k) = &cert.kernel
            && let crate::pki::x509::PublicKey::MlDsa { level, .. } = k.public
        {
            return Err(Error::Cert {
                path: c.clone(),
                reason: format!(
                    "\"{}\" has an {} key, and Linux {release} predates ML-DSA (7.0): it would not load the certificate",
                    cert.subject(),
                    level.name()
                ),
            });
        }
    }
    Ok(())
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
    let info: KernelInfo = crate::cache::KERNEL.read(dir)?;
    info.image.exists().then_some(info)
}

/// Every finished kernel in the cache, newest release first.
/// How to build a test kernel from what this machine has: the kernel source tarballs
/// Debian's `linux-source-*` packages put in /usr/src, or how to get one.
pub fn build_hint() -> String {
    let mut sources: Vec<PathBuf> = std::fs::read_dir("/usr/src")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with("linux-source-") && n.contains(".tar.")
        })
        .collect();
    sources.sort_by_key(|p| {
        Version::of(
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .trim_start_matches("linux-source-"),
        )
    });
    match sources.last() {
        Some(s) => format!("cargo kmod kernel build --source {}", s.display()),
        None => "apt-get install linux-source (Debian: it puts /usr/src/linux-source-<version>.tar.xz), then cargo kmod kernel build --source /usr/src/linux-source-<version>.tar.xz".into(),
    }
}

/// The newest kernel `cargo kmod kernel build` left in the cache.
pub fn newest(s: &Settings) -> Option<crate::target::Target> {
    list(s)
        .into_iter()
        .find_map(|k| crate::target::Target::from_tree(&k.kdir).ok())
}

pub fn list(s: &Settings) -> Vec<KernelInfo> {
    let mut v: Vec<KernelInfo> = std::fs::read_dir(crate::cache::kernels(s))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| load_info(&e.path()))
        .collect();
    v.sort_by(|a, b| Version::of(&b.release).cmp(&Version::of(&a.release)));
    v
}

/// Builds (or reuses) the kernel, in phases: unpack, trusted certificates and the
/// config fragment, move into place, configure, compile, record.
pub fn build(s: &Settings, o: &BuildOptions, r: &dyn Reporter) -> Result<KernelInfo> {
    let source_id = source_identity(&o.source)?;
    let tc = Toolchain::find(s, o.rustc.as_deref(), o.bindgen.as_deref())?;
    let hash = inputs_hash(o, &tc, &source_id)?;
    let base = o.out.clone().unwrap_or_else(|| crate::cache::kernels(s));
    if let Some(info) = cached(&base, &hash) {
        r.note(&format!(
            "kernel {} already built with these inputs: {}",
            info.release,
            info.kdir.display()
        ));
        return Ok(info);
    }
    let mut b = Tree::unpack(s, o, &tc, &base, &hash, r)?;
    let release = makefile_release(&b.src).ok_or_else(|| Error::KernelSource {
        path: o.source.clone(),
        reason: "no VERSION/PATCHLEVEL/SUBLEVEL in the top Makefile".into(),
    })?;
    let version = Version::of(&release);
    let rust = rust_decision(o.rust, &b.src, &version, &tc)?;
    r.note(&format!(
        "kernel source {release}, toolchain {}",
        tc.rustc_version
    ));
    if let Err(why) = &rust {
        r.note(&format!("building without Rust: {why}"));
    }
    let rust = rust.is_ok();
    let certs = match trusted_certs(o, &version, &release) {
        Ok(c) => c,
        Err(e) => {
            // Refused before any build: the unpacked source goes too.
            let _ = std::fs::remove_dir_all(&b.dir);
            return Err(e);
        }
    };
    let final_dir = base.join(format!("{release}-{hash}"));
    let fragment = config_fragment(o, &version, rust, &certs, &final_dir)?;
    b.write("trusted-certs.pem", &certs.pem)?;
    b.write(FRAGMENT_FILE, fragment.as_bytes())?;
    b.move_to(&final_dir)?;
    let config = b.configure(rust, &fragment, r)?;
    let started = std::time::Instant::now();
    b.compile(o.jobs.max(1), expected_steps(s, version.major_minor()), r)?;
    let kdir = b.kdir;
    let release = crate::target::tree_release(&kdir).unwrap_or(release);
    let target = crate::target::Target::from_tree(&kdir)?;
    let info = KernelInfo {
        release,
        image: kdir.join(target.known_arch("a test kernel")?.image_in_tree()),
        kdir: kdir.clone(),
        rust: config.lines().any(|l| l == "CONFIG_RUST=y"),
        rustc: tc.rustc_version.clone(),
        trusted: certs.subjects,
        inputs: hash,
        arch: o.arch,
    };
    crate::cache::KERNEL.finish(&final_dir, &info)?;
    r.note(&format!(
        "built {} in {:.0} s: {}",
        info.release,
        started.elapsed().as_secs_f64(),
        info.image.display()
    ));
    Ok(info)
}

/// The config fragment's file name in a kernel's directory.
const FRAGMENT_FILE: &str = "cargo-kmod.config";

/// The certificates a kernel is built to trust.
struct TrustedCerts {
    subjects: Vec<String>,
    pem: Vec<u8>,
}

/// `--trusted-cert`s, refused before any build when the kernel cannot use them.
fn trusted_certs(o: &BuildOptions, version: &Version, release: &str) -> Result<TrustedCerts> {
    let mut certs = Vec::new();
    for c in &o.trusted_certs {
        for cert in crate::pki::cert::load_certs(c)? {
            certs.push((c.clone(), cert));
        }
    }
    check_mldsa(o, &certs, version, release)?;
    let mut t = TrustedCerts {
        subjects: Vec::new(),
        pem: Vec::new(),
    };
    for (_, cert) in &certs {
        t.subjects.push(cert.subject());
        t.pem
            .extend(cert.x509.to_pem().expect("re-encode a parsed certificate"));
    }
    Ok(t)
}

/// tinyconfig plus: module signing, the architecture's and generation's options, Rust
/// or not, the trusted certificates (by their path in `final_dir`), the user's fragments.
fn config_fragment(
    o: &BuildOptions,
    version: &Version,
    rust: bool,
    certs: &TrustedCerts,
    final_dir: &Path,
) -> Result<String> {
    let mut fragment = BASE_FRAGMENT.to_string();
    fragment.push_str(o.arch.kernel_fragment());
    let (maj, min) = version.major_minor();
    for g in GENERATION_FRAGMENTS {
        if (maj, min) >= g.from && (maj, min) < g.before {
            fragment.push_str(g.text);
        }
    }
    if !rust {
        fragment.push_str(NO_RUST_FRAGMENT);
    }
    if o.mldsa_waiver {
        fragment.push_str(&format!("{}=y\n", crate::target::MLDSA_WAIVER));
    }
    if !certs.pem.is_empty() {
        fragment.push_str(&format!(
            "CONFIG_SYSTEM_TRUSTED_KEYS=\"{}\"\n",
            final_dir.join("trusted-certs.pem").display()
        ));
    }
    for f in &o.fragments {
        fragment.push_str(&String::from_utf8_lossy(&read(f)?));
        fragment.push('\n');
    }
    Ok(fragment)
}

/// A kernel being built: its directory (a temporary name until [`Tree::move_to`]),
/// its source, its output tree and its log.
struct Tree<'a> {
    s: &'a Settings,
    dir: PathBuf,
    /// A source directory given is built out of tree (`O=`); a tarball is unpacked
    /// into `dir/src` and built in place.
    src_is_dir: bool,
    src: PathBuf,
    kdir: PathBuf,
    log: std::fs::File,
    vars: toolchain::MakeVars,
}

impl<'a> Tree<'a> {
    /// Makes the working directory and its log; unpacks a tarball source.
    fn unpack(
        s: &'a Settings,
        o: &BuildOptions,
        tc: &Toolchain,
        base: &Path,
        hash: &str,
        r: &dyn Reporter,
    ) -> Result<Tree<'a>> {
        let werr = |path: &Path, source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(base).map_err(|e| werr(base, e))?;
        // Work in a temp name; the final name appears only with a finished build.
        let dir = base.join(format!(".building-{hash}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| werr(&dir, e))?;
        let log_path = dir.join("build.log");
        let log = std::fs::File::create(&log_path).map_err(|e| werr(&log_path, e))?;
        let src_is_dir = std::fs::metadata(&o.source).is_ok_and(|m| m.is_dir());
        let mut vars = tc.vars();
        // Cross-built with LLVM=1: clang, lld and rustc target any architecture.
        if Some(o.arch) != Arch::host() {
            vars.arch = Some(o.arch.kbuild().to_string());
        }
        let mut t = Tree {
            s,
            src: if src_is_dir {
                std::fs::canonicalize(&o.source).expect("exists")
            } else {
                dir.join("src")
            },
            kdir: dir.join(if src_is_dir { "build" } else { "src" }),
            dir,
            src_is_dir,
            log,
            vars,
        };
        if !src_is_dir {
            r.note(&format!("unpacking {}", o.source.display()));
            std::fs::create_dir_all(&t.src).map_err(|e| werr(&t.src, e))?;
            let mut tar = Command::new("tar");
            tar.arg("-xf")
                .arg(&o.source)
                .arg("-C")
                .arg(&t.src)
                .arg("--strip-components=1");
            t.run(&mut tar, "unpack")?;
        }
        Ok(t)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("build.log")
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| Error::Write { path, source })
    }

    /// Moves into place before configuring: the tree's absolute paths must be final.
    fn move_to(&mut self, final_dir: &Path) -> Result<()> {
        let _ = std::fs::remove_dir_all(final_dir);
        std::fs::rename(&self.dir, final_dir).map_err(|source| Error::Write {
            path: final_dir.to_path_buf(),
            source,
        })?;
        let moved = |p: &Path| final_dir.join(p.strip_prefix(&self.dir).expect("inside"));
        if !self.src_is_dir {
            self.src = moved(&self.src);
        }
        self.kdir = moved(&self.kdir);
        self.dir = final_dir.to_path_buf();
        Ok(())
    }

    fn make(&self, targets: &[&str]) -> Command {
        let mut c = toolchain::make(self.s, &self.src, &self.vars);
        if self.src_is_dir {
            c.arg(format!("O={}", self.kdir.display()));
        }
        c.args(targets);
        c
    }

    fn run(&mut self, cmd: &mut Command, step: &str) -> Result<String> {
        let log_path = self.log_path();
        run_logged(cmd, step, &mut self.log, &log_path)
    }

    /// rustavailable, tinyconfig, the fragment merged, olddefconfig; returns the
    /// final `.config`, warning of the fragment's options it lost.
    fn configure(&mut self, rust: bool, fragment: &str, r: &dyn Reporter) -> Result<String> {
        if rust {
            r.note("checking Rust support (make rustavailable)");
            let out = self.run(&mut self.make(&["rustavailable"]), "rustavailable")?;
            r.note(
                out.lines()
                    .find(|l| l.contains("Rust is available"))
                    .unwrap_or("Rust is available"),
            );
        }
        r.note(if rust {
            "configuring: tinyconfig + module signing + Rust"
        } else {
            "configuring: tinyconfig + module signing"
        });
        self.run(&mut self.make(&["tinyconfig"]), "configuration")?;
        let mut merge = Command::new(self.src.join("scripts/kconfig/merge_config.sh"));
        merge.current_dir(&self.src).arg("-m");
        // merge_config.sh runs `make` itself and takes the architecture from the environment.
        if let Some(a) = &self.vars.arch {
            merge.env("ARCH", a);
            merge.env("LLVM", "1");
        }
        if self.src_is_dir {
            merge.arg("-O").arg(&self.kdir);
        }
        merge
            .arg(self.kdir.join(".config"))
            .arg(self.dir.join(FRAGMENT_FILE));
        self.run(&mut merge, "configuration")?;
        self.run(&mut self.make(&["olddefconfig"]), "configuration")?;
        let config = std::fs::read_to_string(self.kdir.join(".config")).unwrap_or_default();
        let lost = lost_options(fragment, &config);
        if rust && lost.iter().any(|l| l.starts_with("CONFIG_RUST=")) {
            return Err(Error::KernelBuild {
                step: "configuration".into(),
                log: self.log_path(),
                tail: "CONFIG_RUST=y did not stick after olddefconfig (Rust support unavailable for this toolchain)".into(),
            });
        }
        for l in lost {
            r.warn(&format!("{l} is not set in the final .config"));
        }
        Ok(config)
    }

    /// The build itself, its progress estimated from `expected` steps.
    fn compile(&mut self, jobs: usize, expected: usize, r: &dyn Reporter) -> Result<()> {
        let log_path = self.log_path();
        r.note(&format!(
            "building with {jobs} jobs (full log: {})",
            log_path.display()
        ));
        let started = std::time::Instant::now();
        let mut done = 0usize;
        let mut c = self.make(&[&format!("-j{jobs}")]);
        let log = &mut self.log;
        let _ = writeln!(log, "$ {c:?}");
        toolchain::run_step(&mut c, 25, |line| {
            let _ = writeln!(log, "{line}");
            if is_step(line) {
                done += 1;
            }
            r.progress(&format!(
                "{} {line}",
                estimate(done, expected, started.elapsed())
            ));
        })
        .map(drop)
        .map_err(|tail| Error::KernelBuild {
            step: "build".into(),
            log: log_path,
            tail,
        })
    }
}

/// A line of Kbuild's progress (`  CC      mm/slub.o`): one step of the build.
fn is_step(line: &str) -> bool {
    line.strip_prefix("  ")
        .is_some_and(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// How many steps a build of this generation takes: as many as the last cached one of
/// the same major.minor logged, else the newest one; else 1400 (this tool's tinyconfig
/// kernels log 1250-1450).
fn expected_steps(s: &Settings, generation: (u32, u32)) -> usize {
    let kernels = list(s);
    kernels
        .iter()
        .find(|k| Version::of(&k.release).major_minor() == generation)
        .or(kernels.first())
        .and_then(|k| std::fs::read_to_string(k.kdir.parent()?.join("build.log")).ok())
        .map(|log| log.lines().filter(|l| is_step(l)).count())
        .filter(|&n| n > 100)
        .unwrap_or(1400)
}

/// "[ 42%, about 3 min left]": from the steps done and the time they took.
fn estimate(done: usize, expected: usize, elapsed: std::time::Duration) -> String {
    let pct = (done * 100 / expected.max(1)).min(99);
    if done < 20 {
        return format!("[{pct:>3}%]");
    }
    let left = elapsed.as_secs_f64() * (expected.saturating_sub(done)) as f64 / done as f64;
    let left = if left >= 90.0 {
        format!("about {:.0} min left", left / 60.0)
    } else {
        format!("about {:.0} s left", left.max(1.0))
    };
    format!("[{pct:>3}%, {left}]")
}

/// Runs a step, copying its output to the log.
pub(crate) fn run_logged(
    cmd: &mut Command,
    step: &str,
    log: &mut std::fs::File,
    log_path: &Path,
) -> Result<String> {
    let _ = writeln!(log, "$ {cmd:?}");
    toolchain::run_step(cmd, 25, |line| {
        let _ = writeln!(log, "{line}");
    })
    .map(|lines| lines.join("\n"))
    .map_err(|tail| Error::KernelBuild {
        step: step.into(),
        log: log_path.to_path_buf(),
        tail,
    })
}

/// Lines of the fragment the final `.config` does not carry (a later line for the same
/// option overrides an earlier one, as merge_config.sh does).
fn lost_options(fragment: &str, config: &str) -> Vec<String> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for l in fragment.lines() {
        let key = if let Some(k) = l
            .strip_prefix("# ")
            .and_then(|r| r.strip_suffix(" is not set"))
        {
            k
        } else if l.starts_with("CONFIG_") {
            l.split('=').next().unwrap_or(l)
        } else {
            continue;
        };
        wanted.retain(|(k, _)| k != key);
        wanted.push((key.to_string(), l.to_string()));
    }
    wanted
        .into_iter()
        .filter(|(key, line)| {
            if line.starts_with('#') {
                config.lines().any(|c| c.starts_with(&format!("{key}=")))
            } else {
                !config.lines().any(|c| c == line)
            }
        })
        .map(|(_, line)| line)
        .collect()
}

/// Whether this source gets Rust with this toolchain: `Err(why not)` for a kernel that
/// pins a rustc (before 6.11: `scripts/min-tool-version.sh` names the one it takes)
/// other than ours. Asking for Rust there is refused.
fn rust_decision(
    choice: RustChoice,
    src: &Path,
    version: &Version,
    tc: &Toolchain,
) -> Result<std::result::Result<(), String>> {
    if choice == RustChoice::No {
        return Ok(Err("--no-rust".into()));
    }
    if !Features::of(Some(version)).rust_pins_rustc {
        return Ok(Ok(()));
    }
    let pinned = |tool: &str| {
        Command::new("sh")
            .arg(src.join("scripts/min-tool-version.sh"))
            .arg(tool)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let (rustc, bindgen) = (
        pinned("rustc").unwrap_or_else(|| "?".into()),
        pinned("bindgen").unwrap_or_else(|| "?".into()),
    );
    if tc.rustc_version.starts_with(&format!("rustc {rustc} ")) {
        return Ok(Ok(()));
    }
    let (maj, min) = version.major_minor();
    let why = format!(
        "{maj}.{min}'s Rust needs exactly rustc {rustc} and bindgen {bindgen} (its scripts/min-tool-version.sh), and the toolchain here is {}",
        tc.rustc_version
    );
    if choice == RustChoice::Yes {
        return Err(Error::TargetRefuses {
            target: format!("Linux {maj}.{min}"),
            reason: why,
            fix: "build it without Rust (drop --rust), or install exactly that rustc and bindgen and pass --rustc/--bindgen".into(),
        });
    }
    Ok(Err(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_progress_estimates_from_steps_done() {
        use std::time::Duration;
        assert!(is_step("  CC      mm/slub.o") && !is_step("make[1]: Entering directory"));
        assert_eq!(estimate(5, 1400, Duration::from_secs(3)), "[  0%]");
        assert_eq!(
            estimate(700, 1400, Duration::from_secs(60)),
            "[ 50%, about 60 s left]"
        );
        assert_eq!(
            estimate(100, 1400, Duration::from_secs(30)),
            "[  7%, about 6 min left]"
        );
        assert_eq!(
            estimate(1500, 1400, Duration::from_secs(300)),
            "[ 99%, about 1 s left]"
        );
    }
}
