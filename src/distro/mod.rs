//! Distribution kernels by name: `debian/sid/arm64` becomes that suite's newest kernel
//! (its headers with their shared part, `linux-kbuild`, the signed image and its module
//! tree, and for a Rust-enabled kernel the source `kernel prepare` needs), fetched
//! through a private apt configuration under the cache ([`apt`]), unpacked once into
//! `<cache>/distro/<distro>/<suite>/<arch>/<release>/`, and resolved into a [`Target`]
//! with its tree, image and module tree. A distribution is a row of [`DISTROS`]: another
//! apt-based one (Ubuntu) differs in archive, keyring, flavours and package names only.

pub mod apt;

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::settings::Settings;
use crate::target::{Target, Version};
use std::path::{Path, PathBuf};

/// An apt-based distribution's archive and how its kernels are packaged.
pub struct Distro {
    pub name: &'static str,
    pub mirror: &'static str,
    /// The keyring apt checks the suites' signatures with, and its package.
    pub keyring: &'static str,
    pub keyring_package: &'static str,
    pub suites: &'static [&'static str],
    /// The suites a suite's users also have (its updates and security archives): the
    /// kernel they run may be in one of them.
    pub companions: fn(&str) -> Vec<(&'static str, String)>,
    /// Per architecture (its package name) the kernel flavours; the first is the default.
    pub flavours: &'static [(Arch, &'static [&'static str])],
    /// Metapackages naming a flavour's newest headers: `{}` is the flavour.
    pub headers_meta: &'static str,
    /// The packages of one release (`{}`): where the walk of their `Depends:` starts.
    pub roots: &'static [&'static str],
    /// A dependency is part of the kernel when its name starts so (others — initramfs
    /// tools, compilers — are the machine's business).
    pub parts: &'static [&'static str],
    /// Parts holding programs that run where modules are built (Kbuild's `scripts/`):
    /// taken for this machine's architecture, whatever the kernel's.
    pub host_parts: &'static [&'static str],
    /// The kernel source `kernel prepare` needs for a Rust-enabled kernel: `{}` is
    /// `<major>.<minor>`.
    pub source: &'static str,
    /// Who its kernels say built them (`/proc/version`, a bzImage's version string:
    /// `6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 ...`; a headers package's
    /// `include/generated/compile.h`: LINUX_COMPILE_BY@LINUX_COMPILE_HOST).
    pub banner: &'static str,
    /// Its kernels also accept modules signed by keys in `.platform` (UEFI db, MOKs
    /// shim does not trust): Debian carries Fedora's "KEYS: Make use of platform
    /// keyring for module signature verify"; mainline does not.
    pub platform_signs_modules: bool,
    /// Its kernels put MOKs in `.machine` whatever shim says (`MokListTrustedRT`):
    /// Debian reverts "integrity: Only use machine keyring when
    /// uefi_check_trust_mok_keys is true" (its shim did not set the variable).
    pub moks_always_trusted: bool,
}

/// The distributions `kernel fetch` knows.
pub const DISTROS: &[Distro] = &[Distro {
    name: "debian",
    mirror: "http://deb.debian.org/debian",
    keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
    keyring_package: "debian-archive-keyring",
    suites: &[
        "bookworm",
        "bookworm-backports",
        "trixie",
        "trixie-backports",
        "forky",
        "sid",
        "experimental",
    ],
    companions: |suite| match suite {
        "bookworm" | "trixie" | "forky" => vec![
            ("http://deb.debian.org/debian", format!("{suite}-updates")),
            (
                "http://deb.debian.org/debian-security",
                format!("{suite}-security"),
            ),
        ],
        _ => Vec::new(),
    },
    flavours: &[
        (Arch::X86_64, &["amd64", "cloud-amd64", "rt-amd64"]),
        (
            Arch::Arm64,
            &["arm64", "cloud-arm64", "rt-arm64", "arm64-16k"],
        ),
    ],
    headers_meta: "linux-headers-{}",
    roots: &["linux-image-{}", "linux-headers-{}"],
    parts: &[
        "linux-image-",
        "linux-binary-",
        "linux-modules-",
        "linux-headers-",
        "linux-kbuild-",
    ],
    host_parts: &["linux-kbuild-"],
    source: "linux-source-{}",
    banner: "debian-kernel@lists.debian.org",
    platform_signs_modules: true,
    moks_always_trusted: true,
}];

/// The distribution whose kernel wrote this `/proc/version`, when it is one in the table.
pub fn of_banner(proc_version: &str) -> Option<&'static Distro> {
    DISTROS.iter().find(|d| proc_version.contains(d.banner))
}

/// The distribution that built a kernel: by the name it was fetched under, else who
/// its image or headers say built it.
pub fn of_target(t: &crate::target::Target) -> Option<&'static Distro> {
    if let Some(name) = &t.distro {
        return DISTROS
            .iter()
            .find(|d| name.split('/').next() == Some(d.name));
    }
    let mut text = String::new();
    if let Some(i) = &t.image
        && let Ok(head) = crate::fsutil::read_head(i, 64 << 10)
    {
        text += &String::from_utf8_lossy(&head);
    }
    if let Some(tree) = &t.tree
        && let Ok(b) =
            crate::fsutil::read_bounded(&tree.join("include/generated/compile.h"), 1 << 16)
    {
        let h = String::from_utf8_lossy(&b);
        let define = |k: &str| {
            h.lines()
                .find_map(|l| l.strip_prefix("#define ")?.strip_prefix(k))
                .map(|v| v.trim().trim_matches('"').to_string())
        };
        if let (Some(by), Some(host)) = (define("LINUX_COMPILE_BY"), define("LINUX_COMPILE_HOST")) {
            text += &format!(" {by}@{host}");
        }
    }
    of_banner(&text)
}

/// A kernel by name: `<distro>/<suite>[/<arch>]`, with a flavour and maybe a release.
#[derive(Debug, Clone)]
pub struct Spec {
    pub distro: &'static Distro,
    pub suite: String,
    pub arch: Arch,
    pub flavour: String,
    /// A release the suite must have (`6.1.0-41-amd64`); else its newest.
    pub release: Option<String>,
}

impl std::fmt::Debug for Distro {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// True when `s` reads as a distribution kernel's name rather than a path.
pub fn is_name(s: &str) -> bool {
    s.split('/')
        .next()
        .is_some_and(|d| DISTROS.iter().any(|x| x.name == d))
        && !Path::new(s).exists()
        && s.contains('/')
}

impl Spec {
    /// Parses `debian/sid`, `debian/sid/arm64`; an unknown distribution, suite,
    /// architecture or flavour is an error listing the known ones.
    pub fn parse(name: &str, flavour: Option<&str>, release: Option<&str>) -> Result<Spec> {
        let bad = |reason: String, fix: String| Error::Distro {
            name: name.to_string(),
            reason,
            fix,
        };
        let parts: Vec<&str> = name.split('/').collect();
        let distro = DISTROS.iter().find(|d| d.name == parts[0]).ok_or_else(|| {
            bad(
                "not a distribution cargo kmod knows".into(),
                format!(
                    "name one of: {}",
                    DISTROS
                        .iter()
                        .map(|d| d.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if !(2..=3).contains(&parts.len()) {
            return Err(bad(
                "a kernel by name is <distribution>/<suite>[/<architecture>]".into(),
                format!(
                    "e.g. {0}/{1} or {0}/{1}/arm64",
                    distro.name, distro.suites[0]
                ),
            ));
        }
        let suite = parts[1];
        if !distro.suites.contains(&suite) {
            return Err(bad(
                format!(
                    "{} has no suite {suite:?} that cargo kmod knows",
                    distro.name
                ),
                format!("name one of: {}", distro.suites.join(", ")),
            ));
        }
        let archs = || {
            distro
                .flavours
                .iter()
                .map(|(a, _)| a.debian())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (arch, flavours) = match parts.get(2) {
            None => distro
                .flavours
                .iter()
                .find(|(a, _)| Some(*a) == Arch::host())
                .unwrap_or(&distro.flavours[0]),
            Some(a) => distro
                .flavours
                .iter()
                .find(|(x, _)| x.debian() == *a || x.name() == *a)
                .ok_or_else(|| {
                    bad(
                        format!("no architecture {a:?} here"),
                        format!("name one of: {}", archs()),
                    )
                })?,
        };
        let flavour = match flavour {
            None => flavours[0],
            Some(f) => *flavours.iter().find(|x| **x == f).ok_or_else(|| {
                bad(
                    format!("no flavour {f:?} for {}", arch.debian()),
                    format!("name one of: {}", flavours.join(", ")),
                )
            })?,
        };
        if let Some(r) = release {
            crate::names::release(r).map_err(|why| {
                bad(
                    format!("--release {r:?}: {why}"),
                    "give a release as `uname -r` prints it, e.g. 6.1.0-41-amd64".into(),
                )
            })?;
        }
        Ok(Spec {
            distro,
            suite: suite.to_string(),
            arch: *arch,
            flavour: flavour.to_string(),
            release: release.map(String::from),
        })
    }

    /// `debian/sid/amd64`: the name in full, as `kernel list` shows it.
    pub fn name(&self) -> String {
        format!("{}/{}/{}", self.distro.name, self.suite, self.arch.debian())
    }

    fn dir(&self, s: &Settings) -> PathBuf {
        crate::cache::distro(s)
            .join(self.distro.name)
            .join(&self.suite)
            .join(self.arch.debian())
    }

    fn apt(&self, s: &Settings) -> Result<apt::Apt> {
        let keyring = Path::new(self.distro.keyring);
        if !keyring.is_file() {
            return Err(Error::Distro {
                name: self.name(),
                reason: format!("no archive keyring {}", keyring.display()),
                fix: format!(
                    "install {} (apt checks the archive's signatures with it)",
                    self.distro.keyring_package
                ),
            });
        }
        apt::Apt::new(
            crate::cache::apt(s).join(format!(
                "{}-{}-{}",
                self.distro.name,
                self.suite,
                self.arch.debian()
            )),
            &self.name(),
            &std::iter::once((self.distro.mirror, self.suite.clone()))
                .chain((self.distro.companions)(&self.suite))
                .collect::<Vec<_>>(),
            keyring,
            self.arch.debian(),
            Arch::host().unwrap_or(self.arch).debian(),
        )
    }
}

/// Raised when fetched trees are unpacked or fixed up differently.
pub const FORMAT: u32 = 1;

/// A fetched kernel, stored as its [`crate::cache::DISTRO`] record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fetched {
    /// How the tree was unpacked ([`FORMAT`]): a record of another is redone.
    #[serde(default)]
    pub format: u32,
    /// `debian/sid/amd64`.
    pub name: String,
    pub distro: String,
    pub suite: String,
    pub arch: Arch,
    pub flavour: String,
    pub release: String,
    /// The packages, `name=version`.
    pub packages: Vec<String>,
    /// Bytes downloaded (the packages' sizes).
    pub bytes: u64,
    /// The headers tree (KDIR).
    pub kdir: PathBuf,
    pub image: PathBuf,
    /// Its module tree (`lib/modules/<release>`).
    pub modules: PathBuf,
    /// The kernel source tarball, for a Rust-enabled kernel (`kernel prepare --source`).
    pub source: Option<PathBuf>,
    /// What the headers lack to build modules here (tools, files), each with its fix.
    pub audit: Vec<String>,
}

impl Fetched {
    /// Audits the headers again, against the tools here now (they may have changed
    /// since the fetch): what `kernel fetch` shows each time.
    pub fn audit_again(&mut self, s: &Settings) {
        if let Ok(config) = crate::target::Config::read(&self.kdir.join(".config")) {
            self.audit = audit(s, &self.kdir, &config);
        }
    }

    /// The kernel as one [`Target`]: its headers tree, image and module tree.
    pub fn target(&self) -> Result<Target> {
        let mut t = Target::from_tree(&self.kdir)?;
        t.image = Some(self.image.clone());
        t.modules = Some(self.modules.clone());
        t.distro = Some(self.name.clone());
        Ok(t)
    }
}

/// What `kernel fetch` may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOptions {
    /// Ask the archive for its newest release even when one is fetched already.
    pub refresh: bool,
}

/// The kernel `spec` names: fetched already (offline), else fetched now.
pub fn fetch(s: &Settings, spec: &Spec, o: FetchOptions, r: &dyn Reporter) -> Result<Fetched> {
    let base = spec.dir(s);
    let _lock = crate::fsutil::lock(&base, "fetch")?;
    if !o.refresh
        && let Some(f) = fetched(&base, &spec.flavour, spec.release.as_deref())
    {
        return Ok(f);
    }
    let apt = spec.apt(s)?;
    if o.refresh || !apt.has_lists() {
        apt.update(r)?;
    }
    let release = resolve_release(&apt, spec)?;
    if let Some(f) = fetched(&base, &spec.flavour, Some(&release)) {
        return Ok(f);
    }
    let f = unpack_release(s, spec, &apt, &release, &base.join(&release), r)?;
    crate::cache::DISTRO.finish(&base.join(&f.release), &f)?;
    Ok(f)
}

/// Downloads and unpacks the release's packages into `dir/root` (anything there
/// before is an unfinished fetch, redone), and finds its parts.
fn unpack_release(
    s: &Settings,
    spec: &Spec,
    apt: &apt::Apt,
    release: &str,
    dir: &Path,
    r: &dyn Reporter,
) -> Result<Fetched> {
    let werr = |path: &Path, source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| werr(dir, e))?;
    }
    let root = dir.join("root");
    std::fs::create_dir_all(&root).map_err(|e| werr(&root, e))?;
    let debs = crate::cache::debs(s);
    std::fs::create_dir_all(&debs).map_err(|e| werr(&debs, e))?;
    let mut stanzas = packages(apt, spec, release)?;
    let mut bytes = 0;
    let unpack = |p: &apt::Stanza, bytes: &mut u64| -> Result<()> {
        let deb = apt.download(p, &debs, r)?;
        *bytes += p.size();
        apt.unpack(&deb, &root)
    };
    for p in &stanzas {
        unpack(p, &mut bytes)?;
    }
    let kdir = root.join(format!("usr/src/linux-headers-{release}"));
    relocate(&root, &kdir)?;
    let config = crate::target::Config::read(&kdir.join(".config"))?;
    let mut source = None;
    if config.rust() {
        // `kernel prepare` makes the Rust parts the headers lack from the source.
        let (maj, min) = Version::of(release).major_minor();
        let name = spec.distro.source.replace("{}", &format!("{maj}.{min}"));
        match apt.show(&name)? {
            Some(p) => {
                unpack(&p, &mut bytes)?;
                source = Some(root.join(format!("usr/src/{name}.tar.xz"))).filter(|t| t.is_file());
                stanzas.push(p);
            }
            None => r.warn(&format!(
                "{}: the kernel enables Rust, but the suite has no {name}: `kernel prepare` will need --source",
                spec.name()
            )),
        }
    }
    let found = |candidates: &[&str], ok: fn(&Path) -> bool| {
        candidates
            .iter()
            .map(|p| root.join(p.replace("{}", release)))
            .find(|p| ok(p))
    };
    let image = found(
        &[
            "boot/vmlinuz-{}",
            "usr/lib/modules/{}/vmlinuz",
            "lib/modules/{}/vmlinuz",
        ],
        |p| p.is_file(),
    )
    .ok_or_else(|| Error::Distro {
        name: spec.name(),
        reason: format!("the packages of {release} hold no kernel image"),
        fix: "report it: the distribution's packaging changed".into(),
    })?;
    let modules = found(&["usr/lib/modules/{}", "lib/modules/{}"], |p| {
        p.join("kernel").is_dir()
    })
    .unwrap_or_else(|| root.join(format!("lib/modules/{release}")));
    Ok(Fetched {
        format: FORMAT,
        name: spec.name(),
        distro: spec.distro.name.to_string(),
        suite: spec.suite.clone(),
        arch: spec.arch,
        flavour: spec.flavour.clone(),
        audit: audit(s, &kdir, &config),
        release: release.to_string(),
        packages: stanzas
            .iter()
            .map(|p| format!("{}={}", p.package(), p.version()))
            .collect(),
        bytes,
        kdir,
        image,
        modules,
        source,
    })
}
/// Debian's headers Makefile names the shared part and itself by their installed paths
/// (`export KBUILD_OUTPUT = /usr/src/linux-headers-<R>`, `include
/// /usr/src/linux-headers-<R>-common/Makefile`): made to name them inside `root`.
fn relocate(root: &Path, kdir: &Path) -> Result<()> {
    let mk = kdir.join("Makefile");
    let Ok(text) = crate::fsutil::read_bounded(&mk, 1 << 20) else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&text);
    let inside = format!("{}/usr/src/", root.display());
    let fixed: String = text
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                return format!("{l}\n");
            }
            let l = l
                .replace(" /usr/src/", &format!(" {inside}"))
                .replace("=/usr/src/", &format!("={inside}"));
            format!("{l}\n")
        })
        .collect();
    if fixed != text {
        crate::fsutil::write_atomic(&mk, fixed.as_bytes(), None)?;
    }
    Ok(())
}

/// The newest finished kernel of the flavour under `base` (or the one of `release`).
fn fetched(base: &Path, flavour: &str, release: Option<&str>) -> Option<Fetched> {
    let mut all: Vec<Fetched> = std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| crate::cache::DISTRO.read::<Fetched>(&e.path()))
        .filter(|f| {
            f.format == FORMAT && f.flavour == flavour && release.is_none_or(|r| f.release == r)
        })
        .collect();
    all.sort_by_key(|f| Version::of(&f.release));
    all.pop()
}

/// The release the suite's newest headers are for, or the one asked for if it has it.
fn resolve_release(apt: &apt::Apt, spec: &Spec) -> Result<String> {
    let prefix = spec.distro.headers_meta.replace("{}", "");
    let suffix = format!("-{}", spec.flavour);
    let has = || -> Result<Vec<String>> {
        let mut v: Vec<String> = apt
            .names(&format!(
                "^{}.*{}$",
                regex_quote(&prefix),
                regex_quote(&suffix)
            ))?
            .into_iter()
            .filter_map(|n| n.strip_prefix(&prefix).map(String::from))
            .filter(|r| {
                r.ends_with(&suffix) && r.chars().next().is_some_and(|c| c.is_ascii_digit())
            })
            .collect();
        v.sort_by_key(|r| Version::of(r));
        Ok(v)
    };
    if let Some(r) = &spec.release {
        if apt.show(&format!("{prefix}{r}"))?.is_some() {
            return Ok(r.clone());
        }
        let list = has()?;
        return Err(Error::Distro {
            name: spec.name(),
            reason: format!("the suite has no release {r} (any more)"),
            fix: if list.is_empty() {
                "fetch without --release: the suite names no release of this flavour".into()
            } else {
                format!("name one it has: {}", list.join(", "))
            },
        });
    }
    let meta = spec.distro.headers_meta.replace("{}", &spec.flavour);
    let newest = apt
        .show(&meta)?
        .and_then(|m| {
            m.depends()
                .into_iter()
                .find_map(|d| d.strip_prefix(&prefix).map(String::from))
        })
        .or_else(|| has().ok().and_then(|mut v| v.pop()));
    newest.ok_or_else(|| Error::Distro {
        name: spec.name(),
        reason: format!("the suite has no kernel of flavour {}", spec.flavour),
        fix: "name another suite or flavour (`--flavour`)".into(),
    })
}

fn regex_quote(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = ".+*?()[]{}|^$\\".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The packages the release is made of: its roots and, following `Depends:`, every
/// package that is part of the kernel.
fn packages(apt: &apt::Apt, spec: &Spec, release: &str) -> Result<Vec<apt::Stanza>> {
    let mut todo: Vec<String> = spec
        .distro
        .roots
        .iter()
        .map(|r| r.replace("{}", release))
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let Some(p) = apt.show(&name)? else {
            return Err(Error::Distro {
                name: spec.name(),
                reason: format!("{name}: the suite's index does not have it"),
                fix: "fetch again with --refresh (the index may be older than the suite)".into(),
            });
        };
        for d in p.depends() {
            if spec.distro.parts.iter().any(|x| d.starts_with(x)) && !d.ends_with("-dbg") {
                let host = Arch::host().filter(|h| *h != spec.arch);
                match host {
                    Some(h) if spec.distro.host_parts.iter().any(|x| d.starts_with(x)) => {
                        todo.push(format!("{d}:{}", h.debian()))
                    }
                    _ => todo.push(d),
                }
            }
        }
        // A metapackage (an image that only depends on its binary and modules) is
        // still unpacked: it is small, and it is what users install.
        out.push(p);
    }
    Ok(out)
}

/// What the headers lack to build modules on this machine, each with its fix.
pub fn audit(s: &Settings, kdir: &Path, config: &crate::target::Config) -> Vec<String> {
    let mut v = Vec::new();
    if !kdir.join("Module.symvers").is_file() {
        v.push("no Module.symvers: modpost cannot check symbols (it only warns); the headers package is incomplete".into());
    }
    let tool = |path: &str| kdir.join(path).exists();
    if config.enabled("CONFIG_OBJTOOL") && !tool("tools/objtool/objtool") {
        v.push("CONFIG_OBJTOOL is set but tools/objtool/objtool is missing (the headers' linux-kbuild package)".into());
    }
    if config.enabled("CONFIG_GENDWARFKSYMS") && !tool("scripts/gendwarfksyms/gendwarfksyms") {
        v.push("CONFIG_GENDWARFKSYMS is set but scripts/gendwarfksyms/gendwarfksyms is missing (the headers' linux-kbuild package)".into());
    }
    if config.enabled("CONFIG_DEBUG_INFO_BTF_MODULES")
        && crate::toolchain::which(s, "pahole").is_none()
    {
        v.push("CONFIG_DEBUG_INFO_BTF_MODULES is set but pahole is not installed (Debian package dwarves)".into());
    }
    v.extend(changed_by_olddefconfig(s, config));
    if let Err((reason, fix)) = crate::toolchain::KernelCc::find(s, config) {
        v.push(format!("{reason} ({fix})"));
    }
    // Kbuild's own programs come with the headers, built for the suite's C library.
    let fixdep = kdir.join("scripts/basic/fixdep");
    if fixdep.exists() {
        let ran = std::process::Command::new(&fixdep).output();
        if let Ok(o) = ran {
            let err = String::from_utf8_lossy(&o.stderr);
            if err.contains("GLIBC_") || (err.contains("not found") && err.contains("version")) {
                v.push(format!(
                    "scripts/basic/fixdep does not run here ({}): the headers' Kbuild programs need the suite's newer C library; build in a system of that suite",
                    err.lines().next().unwrap_or_default().trim()
                ));
            }
        }
    }
    v
}

/// The `.config` lines Kconfig derives from the tools (`CONFIG_LD_VERSION`,
/// `CONFIG_AS_VERSION`, `CONFIG_PAHOLE_VERSION`) that `olddefconfig` would change with
/// the tools here: the headers ship no Kconfig files to run it, but these lines are
/// computed as Kbuild's scripts/*-version.sh compute them.
fn changed_by_olddefconfig(s: &Settings, config: &crate::target::Config) -> Vec<String> {
    if config.cc_is_clang() {
        // LLVM=1 names its own tools; the C compiler check covers them.
        return Vec::new();
    }
    // The binutils beside the kernel's gcc: `x86_64-linux-gnu-gcc-16` → `x86_64-linux-gnu-`.
    let prefix = config
        .cc_version_text()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|cc| cc.find("gcc").map(|at| cc[..at].to_string()))
        .unwrap_or_default();
    let ld = format!("{prefix}ld");
    let asm = format!("{prefix}as");
    let mut tools = vec![
        ("CONFIG_LD_VERSION", ld.as_str(), "binutils", 3),
        ("CONFIG_AS_VERSION", asm.as_str(), "binutils", 3),
    ];
    if config.enabled("CONFIG_DEBUG_INFO_BTF_MODULES") {
        tools.push(("CONFIG_PAHOLE_VERSION", "pahole", "dwarves", 2));
    }
    let mut v = Vec::new();
    for (key, tool, package, parts) in tools {
        let Some(want) = config.get(key).filter(|w| !w.is_empty() && *w != "0") else {
            continue;
        };
        let have = crate::toolchain::which(s, tool)
            .and_then(|p| crate::toolchain::tool_version(&p, "--version"))
            .and_then(|out| kconfig_version(out.lines().next()?, parts));
        match have {
            Some(h) if h.to_string() == want => {}
            Some(h) => v.push(format!(
                "{key}={want}, but {tool} here gives {h}: olddefconfig would change it (Debian package {package} of the kernel's own suite)"
            )),
            None => v.push(format!(
                "{key}={want}, but {tool} is not installed (Debian package {package})"
            )),
        }
    }
    v
}

/// A tool's version as Kconfig records it: `2.47.50` → 24750 (ld, as: three parts),
/// `v1.24` → 124 (pahole: two).
fn kconfig_version(line: &str, parts: usize) -> Option<u64> {
    let word = line
        .split_whitespace()
        .map(|w| w.trim_start_matches('v'))
        .rfind(|w| w.split('.').count() >= 2 && w.split('.').all(|p| p.parse::<u64>().is_ok()))?;
    let n: Vec<u64> = word.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    let at = |i: usize| n.get(i).copied().unwrap_or(0);
    Some(match parts {
        3 => at(0) * 10000 + at(1) * 100 + at(2),
        _ => at(0) * 100 + at(1),
    })
}

/// Every fetched kernel, newest release first.
pub fn list(s: &Settings) -> Vec<Fetched> {
    let mut v: Vec<Fetched> = walkdir::WalkDir::new(crate::cache::distro(s))
        .min_depth(4)
        .max_depth(4)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| crate::cache::DISTRO.read::<Fetched>(e.path()))
        .filter(|f| f.format == FORMAT)
        .collect();
    v.sort_by(|a, b| {
        Version::of(&b.release)
            .cmp(&Version::of(&a.release))
            .then(a.name.cmp(&b.name))
    });
    v
}

/// The fetched kernel `what` names (its release, or `distro/suite[/arch]`: every
/// release fetched of it); removes them and says which.
pub fn remove(s: &Settings, what: &str) -> Result<Vec<Fetched>> {
    let spec = is_name(what)
        .then(|| Spec::parse(what, None, None))
        .transpose()?;
    let gone: Vec<Fetched> = list(s)
        .into_iter()
        .filter(|f| match &spec {
            Some(sp) => f.name == sp.name(),
            None => f.release == what,
        })
        .collect();
    if gone.is_empty() {
        return Err(Error::Distro {
            name: what.to_string(),
            reason: "no fetched kernel has this name or release".into(),
            fix: "`cargo kmod kernel list` shows the fetched ones".into(),
        });
    }
    for f in &gone {
        let dir = f
            .kdir
            .ancestors()
            .find(|d| d.join(crate::cache::DISTRO.file).is_file())
            .unwrap_or(&f.kdir)
            .to_path_buf();
        // The record first: a removal cut short leaves an unfinished tree, never a
        // finished one with parts missing.
        let _ = std::fs::remove_file(dir.join(crate::cache::DISTRO.file));
        std::fs::remove_dir_all(&dir).map_err(|source| Error::Write { path: dir, source })?;
    }
    Ok(gone)
}

/// A kernel by name, as commands take it: fetched on first use, offline afterwards.
pub fn target(s: &Settings, name: &str, r: &dyn Reporter) -> Result<Target> {
    // The release a name resolved to names the same kernel.
    if !is_name(name)
        && let Some(f) = list(s).into_iter().find(|f| f.release == name)
    {
        return f.target();
    }
    let spec = Spec::parse(name, None, None)?;
    let f = fetch(s, &spec, FetchOptions::default(), r)?;
    f.target()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tool_versions_as_kconfig_records_them() {
        let v = |l, p| super::kconfig_version(l, p);
        assert_eq!(v("GNU ld (GNU Binutils for Debian) 2.40", 3), Some(24000));
        assert_eq!(
            v(
                "GNU assembler (GNU Binutils for Debian) 2.47.50.20251225",
                3
            ),
            Some(24750)
        );
        assert_eq!(v("v1.24", 2), Some(124));
        assert_eq!(v("no version here", 2), None);
    }
}
