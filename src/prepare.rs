//! `cargo kmod kernel prepare`: a distribution's headers package made into a tree that
//! builds Rust modules. Headers ship without `rust/` (the kernel crate's metadata and
//! the macros); the source of the same version, configured with the headers' own
//! `.config` and built by the kernel's own C compiler, rustc and bindgen, supplies it.
//! Rust symbol names carry a hash of the compiler, so nothing but the kernel's exact
//! rustc gives modules that load.

use crate::error::{Error, Result};
use crate::kernel::makefile_release;
use crate::report::Reporter;
use crate::settings::Settings;
use crate::target::{Config, Target, Version};
use crate::toolchain::{self, KernelCc, MakeVars, which};
use std::path::{Path, PathBuf};

/// Written last into a prepared tree's directory: a tree without it is unfinished.

#[derive(Debug, Clone)]
pub struct PrepareOptions {
    pub headers: PathBuf,
    /// The kernel source: a tarball or an unpacked tree (default: Debian's
    /// `/usr/src/linux-source-<major>.<minor>.tar.xz`).
    pub source: Option<PathBuf>,
    pub rustc: Option<PathBuf>,
    pub bindgen: Option<PathBuf>,
    pub jobs: usize,
}

/// A finished tree, also stored as its [`crate::cache::PREPARED`] record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Prepared {
    pub release: String,
    /// The tree to build modules against (KDIR).
    pub kdir: PathBuf,
    /// The headers it was made from (canonical path) and their `.config`'s SHA-256:
    /// `build --kdir HEADERS` finds the tree by both.
    pub headers: PathBuf,
    pub config_sha256: String,
    pub source: PathBuf,
    pub rustc: String,
    pub cc: String,
    pub inputs: String,
}

pub fn prepared_dir(s: &Settings) -> PathBuf {
    crate::cache::prepared(s)
}

/// The prepared tree for these headers (as they are now), if one was made: from
/// these or the same headers elsewhere (the package installed, or fetched by name),
/// known by their release and `.config`.
pub fn find(s: &Settings, headers: &Path) -> Option<Prepared> {
    let release = crate::target::tree_release(headers)?;
    let sha = hex::encode(openssl::sha::sha256(
        &std::fs::read(headers.join(".config")).ok()?,
    ));
    finished(s)
        .into_iter()
        .find(|p| p.release == release && p.config_sha256 == sha)
}

fn finished(s: &Settings) -> Vec<Prepared> {
    std::fs::read_dir(prepared_dir(s))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| load(&e.path()))
        .collect()
}

fn load(dir: &Path) -> Option<Prepared> {
    let p: Prepared = crate::cache::PREPARED.read(dir)?;
    p.kdir.join("rust").is_dir().then_some(p)
}

/// Debian's source tarball for a kernel version (package `linux-source-M.m`).
pub fn default_source(version: &Version) -> PathBuf {
    let (maj, min) = version.major_minor();
    PathBuf::from(format!("/usr/src/linux-source-{maj}.{min}.tar.xz"))
}

/// The headers' kernel. The source is looked at first: a FIFO or device there is
/// refused before any work.
fn headers_target(o: &PrepareOptions) -> Result<Target> {
    if let Some(src) = o.source.as_deref().filter(|s| !s.is_dir()) {
        crate::fsutil::open_regular(src)?;
    }
    Target::from_tree(&o.headers).map_err(|e| match e {
        Error::Preflight { reason, .. } => Error::Prepare {
            headers: o.headers.clone(),
            reason: format!("not a kernel headers tree: {reason}"),
            fix: "give --headers the configured headers of the kernel (Debian: /usr/src/linux-headers-RELEASE)".into(),
        },
        e => e,
    })
}

/// Prepares (or reuses) the tree for these headers.
pub fn prepare(s: &Settings, o: &PrepareOptions, r: &dyn Reporter) -> Result<Prepared> {
    let target = headers_target(o)?;
    let headers = std::fs::canonicalize(&o.headers).map_err(|source| Error::Read {
        path: o.headers.clone(),
        source,
    })?;
    let config = target.config.as_ref().expect("a tree has its .config");
    let release = target.release.clone();
    let fail = |reason: String, fix: String| Error::Prepare {
        headers: o.headers.clone(),
        reason,
        fix,
    };
    if !config.rust() {
        return Err(fail(
            format!("{release} was built without Rust (CONFIG_RUST is off): no Rust module can load in it"),
            "build C modules against these headers as they are; for Rust, use a kernel built with CONFIG_RUST=y".into(),
        ));
    }
    if headers.join("rust/libmacros.so").exists() {
        // A built tree (`kernel build`'s): nothing to prepare.
        r.note(&format!(
            "{release}: {} has rust/ already",
            headers.display()
        ));
        return Ok(Prepared {
            kdir: headers.clone(),
            config_sha256: String::new(),
            source: headers.clone(),
            rustc: config.rustc_version_text().unwrap_or_default().into(),
            cc: config.cc_version_text().unwrap_or_default().into(),
            inputs: String::new(),
            release,
            headers,
        });
    }
    let tools = Tools::find(s, o, config).map_err(|(reason, fix)| fail(reason, fix))?;
    let source = source_for(o, &release)?;
    let config_bytes = std::fs::read(&config.path).map_err(|source| Error::Read {
        path: config.path.clone(),
        source,
    })?;
    let config_sha256 = hex::encode(openssl::sha::sha256(&config_bytes));
    let inputs = inputs_hash(&headers, &config_bytes, &source, &tools)?;
    let base = prepared_dir(s);
    let final_dir = base.join(format!("{release}-{inputs}"));
    if let Some(p) = load(&final_dir) {
        r.note(&format!(
            "{release}: already prepared: {}",
            p.kdir.display()
        ));
        return Ok(p);
    }
    // One prepare per tree at a time (DKMS may build several modules at once): the
    // second waits, then finds the first one's tree.
    let _lock = crate::fsutil::lock(&base, &format!("{release}-{inputs}"))?;
    if let Some(p) = load(&final_dir) {
        r.note(&format!(
            "{release}: prepared meanwhile: {}",
            p.kdir.display()
        ));
        return Ok(p);
    }
    // Built under its final name (Kbuild writes absolute paths); finished only once
    // the metadata is written, and a refusal removes it whole.
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::create_dir_all(&final_dir).map_err(|source| Error::Write {
        path: final_dir.clone(),
        source,
    })?;
    let result = build(s, o, &tools, config, &source, &final_dir, r);
    let kdir = match result {
        Ok(kdir) => kdir,
        Err(e) => {
            if matches!(e, Error::Prepare { .. }) {
                let _ = std::fs::remove_dir_all(&final_dir);
            }
            return Err(e);
        }
    };
    let p = Prepared {
        release,
        kdir,
        headers,
        config_sha256,
        source,
        rustc: tools.rustc_version.clone(),
        cc: tools
            .cc
            .as_ref()
            .map(|c| c.version_text.clone())
            .unwrap_or_default(),
        inputs,
    };
    crate::cache::PREPARED.finish(&final_dir, &p)?;
    Ok(p)
}

/// The kernel's source: given, or Debian's linux-source of the headers' version; a
/// tarball of another generation is refused before a minute of unpacking.
fn source_for(o: &PrepareOptions, release: &str) -> Result<PathBuf> {
    let version = Version::of(release);
    let fail = |reason: String, fix: String| Error::Prepare {
        headers: o.headers.clone(),
        reason,
        fix,
    };
    let source = o.source.clone().unwrap_or_else(|| default_source(&version));
    if !source.exists() {
        let (maj, min) = version.major_minor();
        return Err(fail(
            format!(
                "the kernel's source is needed and {} does not exist",
                source.display()
            ),
            format!(
                "apt-get install linux-source-{maj}.{min} (of the same Debian version as the headers), or pass --source TARBALL|DIR"
            ),
        ));
    }
    // A tarball of another generation is refused before a minute of unpacking.
    if let Some(top) = tarball_top_dir(&source) {
        let named = top
            .trim_start_matches("linux-source-")
            .trim_start_matches("linux-");
        if named.starts_with(|c: char| c.is_ascii_digit())
            && Version::of(named).major_minor() != version.major_minor()
        {
            return Err(fail(
                format!(
                    "the headers are {release} and the source {} is {top}",
                    source.display()
                ),
                format!(
                    "give the source of the same version (Debian: linux-source-{}.{} of the headers' Debian version)",
                    version.major_minor().0,
                    version.major_minor().1
                ),
            ));
        }
    }
    Ok(source)
}

/// The kernel's own compilers, found here.
struct Tools {
    rustc: PathBuf,
    rustc_version: String,
    bindgen: PathBuf,
    cc: Option<KernelCc>,
}

impl Tools {
    /// Each must be the one the kernel names; `Err((reason, fix))` names both sides.
    fn find(
        s: &Settings,
        o: &PrepareOptions,
        config: &Config,
    ) -> std::result::Result<Tools, (String, String)> {
        let want = config.rustc_version_text().unwrap_or_default();
        let candidates = o
            .rustc
            .iter()
            .cloned()
            .chain(s.rustc.clone())
            .chain(which(s, "rustc"));
        let rustc = match (
            o.rustc.as_ref(),
            toolchain::matching_rustc(want, candidates),
        ) {
            (_, Ok(r)) if toolchain::has_rust_src(&r) => r,
            (_, Ok(r)) => {
                return Err((
                    format!(
                        "{} matches the kernel's `{want}` but has no library source (rust-src)",
                        r.display()
                    ),
                    "apt-get install rust-src (of the same version as rustc)".into(),
                ));
            }
            (Some(given), Err(_)) => {
                let have = toolchain::tool_version(given, "--version")
                    .unwrap_or_else(|| "not runnable".into());
                return Err((
                    format!("the kernel was built by `{want}`; --rustc {} is `{have}`", given.display()),
                    "give the rustc that built the kernel (Debian: the rustc package of the kernel's suite)".into(),
                ));
            }
            (None, Err(seen)) => {
                return Err((
                    format!("the kernel was built by `{want}`; here: {seen}"),
                    "install the rustc that built the kernel (Debian: the rustc package of the kernel's suite) or pass --rustc".into(),
                ));
            }
        };
        let bindgen = o
            .bindgen
            .clone()
            .or_else(|| which(s, "bindgen"))
            .or_else(|| Some(crate::cache::tools(s).join("bin/bindgen")).filter(|p| p.is_file()));
        let Some(bindgen) = bindgen else {
            return Err((
                "bindgen is not installed (the kernel's Rust bindings are generated by it)".into(),
                "apt-get install bindgen libclang-dev".into(),
            ));
        };
        if let Some(want) = config.bindgen_version_text() {
            let have = toolchain::tool_version(&bindgen, "--version")
                .unwrap_or_else(|| "not runnable".into());
            if have.lines().next() != Some(want) {
                return Err((
                    format!("the kernel was built with `{want}`; {} is `{have}`", bindgen.display()),
                    "install the bindgen that built the kernel (Debian: the bindgen package of the kernel's suite) or pass --bindgen".into(),
                ));
            }
        }
        let cc = KernelCc::find(s, config)?;
        if config.enabled("CONFIG_DEBUG_INFO_BTF_MODULES") && which(s, "pahole").is_none() {
            return Err((
                "the kernel has BTF for its modules (CONFIG_DEBUG_INFO_BTF_MODULES) and pahole is not installed".into(),
                "apt-get install dwarves".into(),
            ));
        }
        let mut missing: Vec<&str> = toolchain::missing_build_tools(s)
            .into_iter()
            .map(|(_, pkg)| pkg)
            .collect();
        // A distribution's config has BTF, whose resolve_btfids build runs python.
        if which(s, "python3").is_none() {
            missing.push("python3");
        }
        if !missing.is_empty() {
            return Err((
                format!(
                    "the kernel's build needs tools that are not installed ({})",
                    missing.join(", ")
                ),
                format!("apt-get install {}", missing.join(" ")),
            ));
        }
        Ok(Tools {
            rustc_version: toolchain::tool_version(&rustc, "--version").unwrap_or_default(),
            rustc,
            bindgen,
            cc,
        })
    }

    fn vars(&self) -> MakeVars {
        let mut v = MakeVars {
            rustc: Some(self.rustc.clone()),
            hostrustc: Some(self.rustc.clone()),
            bindgen: Some(self.bindgen.clone()),
            ..Default::default()
        };
        if let Some(cc) = &self.cc {
            cc.apply(&mut v);
        }
        v
    }
}

/// Hash of everything that decides the prepared tree.
fn inputs_hash(headers: &Path, config: &[u8], source: &Path, tools: &Tools) -> Result<String> {
    let mut h = openssl::sha::Sha256::new();
    let mut feed = |label: &str, bytes: &[u8]| {
        h.update(label.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    feed("tool", env!("CARGO_PKG_VERSION").as_bytes());
    // By content, not path: the same headers installed or fetched are one input.
    feed("config", config);
    for f in ["Module.symvers", "include/config/kernel.release"] {
        feed(f, &std::fs::read(headers.join(f)).unwrap_or_default());
    }
    feed("source", crate::kernel::source_identity(source)?.as_bytes());
    feed("rustc", tools.rustc_version.as_bytes());
    feed("bindgen", tools.bindgen.as_os_str().as_encoded_bytes());
    if let Some(cc) = &tools.cc {
        feed("cc", cc.version_text.as_bytes());
    }
    Ok(hex::encode(&h.finish()[..6]))
}

/// Makes the tree in `dir` from the source: copied or unpacked, checked to be the
/// headers' version, configured with their `.config`, its `prepare` and
/// `modules_prepare` built; returns it.
fn build(
    s: &Settings,
    o: &PrepareOptions,
    tools: &Tools,
    config: &Config,
    source: &Path,
    dir: &Path,
    r: &dyn Reporter,
) -> Result<PathBuf> {
    let started = std::time::Instant::now();
    let mut t = Work::new(s, o, dir)?;
    t.copy_source(source, r)?;
    let release = t.check_version(source)?;
    // The headers' config, unchanged; Debian's `.kernelvariables` names the compiler
    // and the release for every later `make`.
    copy_from_headers(&o.headers, &t.kdir, &[".config", ".kernelvariables"])?;
    t.vars = tools.vars();
    t.vars.arch = target_arch(config);
    t.configure(config, &release, r)?;
    t.compile(&release, o.jobs.max(1), started, r)?;
    // The kernel's own symbol table and BTF base, as the headers ship them.
    copy_from_headers(&o.headers, &t.kdir, &["Module.symvers", "vmlinux"])?;
    let got = crate::target::tree_release(&t.kdir).unwrap_or_default();
    if got != release {
        return Err(t.fail(
            format!("the prepared tree says it is {got}, the headers {release}"),
            "report this: the source's Makefile sets another release".into(),
        ));
    }
    r.note(&format!(
        "prepared {release} in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        t.kdir.display()
    ));
    Ok(t.kdir)
}

/// A tree being prepared: where, its log, what `make` is told.
struct Work<'a> {
    s: &'a Settings,
    headers: &'a Path,
    kdir: PathBuf,
    log: std::fs::File,
    log_path: PathBuf,
    vars: toolchain::MakeVars,
}

impl<'a> Work<'a> {
    fn new(s: &'a Settings, o: &'a PrepareOptions, dir: &Path) -> Result<Work<'a>> {
        let werr = |path: &Path, source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        let log_path = dir.join("prepare.log");
        let log = std::fs::File::create(&log_path).map_err(|e| werr(&log_path, e))?;
        let kdir = dir.join("src");
        std::fs::create_dir_all(&kdir).map_err(|e| werr(&kdir, e))?;
        Ok(Work {
            s,
            headers: &o.headers,
            kdir,
            log,
            log_path,
            vars: Default::default(),
        })
    }

    fn fail(&self, reason: String, fix: String) -> Error {
        Error::Prepare {
            headers: self.headers.to_path_buf(),
            reason,
            fix,
        }
    }

    fn run(&mut self, cmd: &mut std::process::Command, step: &str) -> Result<String> {
        crate::kernel::run_logged(cmd, step, &mut self.log, &self.log_path)
    }

    fn copy_source(&mut self, source: &Path, r: &dyn Reporter) -> Result<()> {
        if source.is_dir() {
            r.note(&format!("copying {}", source.display()));
            let mut cp = std::process::Command::new("cp");
            cp.arg("-a").arg(source.join(".")).arg(&self.kdir);
            self.run(&mut cp, "copy of the source")?;
        } else {
            r.note(&format!("unpacking {} (about a minute)", source.display()));
            let mut tar = std::process::Command::new("tar");
            tar.arg("-xf")
                .arg(source)
                .arg("-C")
                .arg(&self.kdir)
                .arg("--strip-components=1");
            self.run(&mut tar, "unpack")?;
        }
        Ok(())
    }

    /// The headers' release, refused unless the source's Makefile is its version.
    fn check_version(&self, source: &Path) -> Result<String> {
        let release = crate::target::tree_release(self.headers).unwrap_or_default();
        let src_version = makefile_release(&self.kdir).unwrap_or_else(|| "no version".into());
        let (maj, min) = Version::of(&release).major_minor();
        if !release.starts_with(&format!("{src_version}+"))
            && !release.starts_with(&format!("{src_version}-"))
            && release != src_version
        {
            return Err(self.fail(
                format!(
                    "the headers are {release} and the source {} is {src_version}",
                    source.display()
                ),
                format!(
                    "give the source of the same version (Debian: linux-source-{maj}.{min} of the headers' Debian version)"
                ),
            ));
        }
        Ok(release)
    }

    fn make(&self, release: &str, targets: &[&str]) -> std::process::Command {
        let mut c = toolchain::make(self.s, &self.kdir, &self.vars);
        c.arg(format!("KERNELRELEASE={release}"));
        c.args(targets);
        c
    }

    /// olddefconfig with the tools here must change nothing in the headers' `.config`.
    fn configure(&mut self, config: &Config, release: &str, r: &dyn Reporter) -> Result<()> {
        r.note("configuring with the headers' .config (olddefconfig must change nothing)");
        self.run(&mut self.make(release, &["olddefconfig"]), "configuration")?;
        let after = std::fs::read_to_string(self.kdir.join(".config")).unwrap_or_default();
        let changed = config_changes(
            &std::fs::read_to_string(&config.path).unwrap_or_default(),
            &after,
        );
        if changed.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = changed.iter().take(4).map(String::as_str).collect();
        Err(self.fail(
            format!(
                "olddefconfig would change the kernel's configuration with the tools here ({}{})",
                shown.join(", "),
                if changed.len() > shown.len() { ", ..." } else { "" }
            ),
            "install the tools the kernel was built with (its .config names them: CONFIG_CC_VERSION_TEXT, CONFIG_RUSTC_VERSION_TEXT, CONFIG_BINDGEN_VERSION_TEXT, CONFIG_PAHOLE_VERSION; openssl for CONFIG_OPENSSL_*)".into(),
        ))
    }

    /// `prepare` and `modules_prepare`: rust/ and the scripts modules are built with.
    fn compile(
        &mut self,
        release: &str,
        jobs: usize,
        started: std::time::Instant,
        r: &dyn Reporter,
    ) -> Result<()> {
        r.note(&format!(
            "building rust/ and scripts with {jobs} jobs (3-5 CPU-minutes; log: {})",
            self.log_path.display()
        ));
        let jobs = format!("-j{jobs}");
        for step in ["prepare", "modules_prepare"] {
            let mut c = self.make(release, &[&jobs, step]);
            let log = &mut self.log;
            let _ = std::io::Write::write_fmt(log, format_args!("$ {c:?}\n"));
            toolchain::run_step(&mut c, 25, |line| {
                let _ = std::io::Write::write_fmt(log, format_args!("{line}\n"));
                r.progress(&format!(
                    "[{:.0} s] {line}",
                    started.elapsed().as_secs_f64()
                ));
            })
            .map_err(|tail| Error::KernelBuild {
                step: step.into(),
                log: self.log_path.clone(),
                tail,
            })?;
        }
        Ok(())
    }
}

/// Those of `files` the headers have, copied into the tree.
fn copy_from_headers(headers: &Path, kdir: &Path, files: &[&str]) -> Result<()> {
    for f in files {
        let from = headers.join(f);
        if from.exists() {
            std::fs::copy(&from, kdir.join(f)).map_err(|source| Error::Write {
                path: kdir.join(f),
                source,
            })?;
        }
    }
    Ok(())
}

/// The first directory of a kernel source tarball (`linux-source-7.2`, `linux-7.2.13`),
/// read by decompressing only its first header.
fn tarball_top_dir(path: &Path) -> Option<String> {
    let f = crate::fsutil::open_regular(path).ok()?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    let reader: Box<dyn std::io::Read> = if name.ends_with(".tar.xz") {
        Box::new(liblzma::read::XzDecoder::new(f))
    } else if name.ends_with(".tar.gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if name.ends_with(".tar.zst") {
        Box::new(zstd::stream::read::Decoder::new(f).ok()?)
    } else {
        return None;
    };
    let mut archive = tar::Archive::new(reader);
    let first = archive.entries().ok()?.next()?.ok()?;
    let path = first.path().ok()?.into_owned();
    let top = path
        .components()
        .find(|c| matches!(c, std::path::Component::Normal(_)))?;
    Some(top.as_os_str().to_string_lossy().into_owned())
}

/// `ARCH=` for the tree: the headers' architecture.
fn target_arch(config: &Config) -> Option<String> {
    config.arch().map(|a| a.kbuild().to_string())
}

/// The options whose values differ between two `.config`s (set, unset or changed);
/// comments other than `# CONFIG_X is not set` do not count.
fn config_changes(before: &str, after: &str) -> Vec<String> {
    fn options(text: &str) -> std::collections::BTreeMap<&str, &str> {
        text.lines()
            .filter_map(|l| {
                if let Some(k) = l
                    .strip_prefix("# ")
                    .and_then(|r| r.strip_suffix(" is not set"))
                {
                    Some((k, "n"))
                } else if l.starts_with("CONFIG_") {
                    l.split_once('=')
                } else {
                    None
                }
            })
            .collect()
    }
    let (b, a) = (options(before), options(after));
    let mut keys: Vec<&str> = b.keys().chain(a.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(k) != a.get(k))
        .map(|k| match (b.get(k), a.get(k)) {
            (Some(x), Some(y)) => format!("{k} {x} -> {y}"),
            (Some(x), None) => format!("{k}={x} dropped"),
            (None, Some(y)) => format!("{k}={y} added"),
            (None, None) => unreachable!("key from one side"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_changes_name_each_option() {
        let before = "#\n# Linux/x86 7.2.13 Kernel Configuration\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\nCONFIG_OPENSSL_SUPPORTS_ML_DSA=y\n";
        let after = "#\n# Linux/x86 7.2.13 Kernel Configuration (another header)\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"y\"\nCONFIG_D=m\n";
        assert_eq!(
            config_changes(before, after),
            [
                "CONFIG_C \"x\" -> \"y\"",
                "CONFIG_D=m added",
                "CONFIG_OPENSSL_SUPPORTS_ML_DSA=y dropped"
            ]
        );
        assert!(config_changes(before, before).is_empty());
    }
}
