//! The kernel a command works for: resolved once (from a tree, a release, an image, a
//! `.config` or the cache) and passed down. It knows its release and version, its
//! architecture, where its tree and image are, the `.config` facts the tool acts on,
//! and what its generation of the kernel changed.

use crate::error::{Error, Result};
use crate::hash::HashAlg;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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

    /// `major.minor`, the generation.
    pub fn major_minor(&self) -> (u32, u32) {
        (
            self.numbers.first().copied().unwrap_or(0),
            self.numbers.get(1).copied().unwrap_or(0),
        )
    }

    /// This version is `major.minor` or later (a release candidate of it counts).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.major_minor() >= (major, minor)
    }
}

/// What changed between kernel generations, for one version. The one place these
/// version numbers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Features {
    /// `module!` takes `authors: [..]` (6.15; its `author:` went in 6.17).
    pub rust_authors_list: bool,
    /// `module!` takes `params: { .. }` (6.19; 7.2's samples/rust/rust_minimal.rs).
    pub rust_params: bool,
    /// A Rust parameter's `value()` returns a copy (7.3), not a reference (6.19–7.2).
    pub rust_param_value_copy: bool,
    /// Before 6.11 a kernel's Rust pinned one rustc (scripts/min-tool-version.sh is
    /// exact, not a minimum).
    pub rust_pins_rustc: bool,
    /// `MODULE_IMPORT_NS("NS")` and `EXPORT_SYMBOL_NS(sym, "NS")` take string
    /// literals (6.13; before, a bare token).
    pub ns_string_literal: bool,
    /// Modules can be signed with SHA-1 (removed in 7.0; SHA-1 signatures still verify).
    pub sha1_signing: bool,
    /// ML-DSA module signatures verify (7.0).
    pub mldsa: bool,
    /// The loader refuses a `.gnu.linkonce.this_module` whose size is not its
    /// `struct module`'s (6.4; 6.1's loader does not look).
    pub this_module_size_check: bool,
    /// `module:NAME` namespaces (EXPORT_SYMBOL_FOR_MODULES, 6.16): the named modules
    /// use them without importing, and importing one is refused.
    pub module_namespaces: bool,
    /// vermagic says `preempt_rt` before `preempt` when both are set (7.2's
    /// vermagic.h; 6.12's tests PREEMPT_BUILD first).
    pub vermagic_rt_first: bool,
}

/// The releases that brought each change.
pub mod since {
    pub const RUST_AUTHORS_LIST: (u32, u32) = (6, 15);
    pub const RUST_PARAMS: (u32, u32) = (6, 19);
    pub const RUST_PARAM_VALUE_COPY: (u32, u32) = (7, 3);
    pub const RUST_MIN_RUSTC: (u32, u32) = (6, 11);
    pub const NS_STRING_LITERAL: (u32, u32) = (6, 13);
    pub const SHA1_SIGNING_REMOVED: (u32, u32) = (7, 0);
    pub const MLDSA: (u32, u32) = (7, 0);
    pub const THIS_MODULE_SIZE_CHECK: (u32, u32) = (6, 4);
    pub const MODULE_NAMESPACES: (u32, u32) = (6, 16);
    pub const VERMAGIC_RT_FIRST: (u32, u32) = (7, 0);
}

impl Features {
    /// The facts for `version`; an unknown version gets the newest kernel's.
    pub fn of(version: Option<&Version>) -> Features {
        let at = |(maj, min)| version.is_none_or(|v| v.at_least(maj, min));
        Features {
            rust_authors_list: at(since::RUST_AUTHORS_LIST),
            rust_params: at(since::RUST_PARAMS),
            rust_param_value_copy: at(since::RUST_PARAM_VALUE_COPY),
            rust_pins_rustc: !at(since::RUST_MIN_RUSTC),
            ns_string_literal: at(since::NS_STRING_LITERAL),
            sha1_signing: !at(since::SHA1_SIGNING_REMOVED),
            mldsa: at(since::MLDSA),
            this_module_size_check: at(since::THIS_MODULE_SIZE_CHECK),
            module_namespaces: at(since::MODULE_NAMESPACES),
            vermagic_rt_first: at(since::VERMAGIC_RT_FIRST),
        }
    }
}

pub use crate::arch::{Arch, PackageArch, Qemu};

/// A kernel's `.config`: the values, and the facts the tool acts on.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub path: PathBuf,
    values: HashMap<String, String>,
    /// From the header comment: `# Linux/x86 6.12.117 Kernel Configuration`.
    header_release: Option<String>,
}

/// A `.config` is a few hundred KiB; anything beyond this is not one.
const MAX_CONFIG: u64 = 16 << 20;

impl Config {
    pub fn read(path: &Path) -> Result<Config> {
        let bytes = crate::fsutil::read_bounded(path, MAX_CONFIG)?;
        let text = String::from_utf8_lossy(&bytes);
        let c = Config::parse(path, &text);
        if c.values.is_empty() {
            return Err(Error::KernelConfig {
                path: path.to_path_buf(),
                reason: "no CONFIG_ lines: not a kernel .config".into(),
            });
        }
        Ok(c)
    }

    pub fn parse(path: &Path, text: &str) -> Config {
        let values = text
            .lines()
            .filter(|l| l.starts_with("CONFIG_"))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), unquote(v)))
            .collect();
        let header_release = text.lines().take(5).find_map(|l| {
            let rest = l.strip_prefix("# Linux/")?;
            let (_, rest) = rest.split_once(' ')?;
            rest.strip_suffix(" Kernel Configuration")
                .map(str::to_string)
        });
        Config {
            path: path.to_path_buf(),
            values,
            header_release,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Built in (`=y`).
    pub fn enabled(&self, key: &str) -> bool {
        self.get(key) == Some("y")
    }

    /// Built in or as a module: available once loaded (the crypto API loads it).
    pub fn available(&self, key: &str) -> bool {
        matches!(self.get(key), Some("y" | "m"))
    }

    pub fn rust(&self) -> bool {
        self.enabled("CONFIG_RUST")
    }

    pub fn rustc_version_text(&self) -> Option<&str> {
        self.get("CONFIG_RUSTC_VERSION_TEXT")
            .filter(|s| !s.is_empty())
    }

    pub fn bindgen_version_text(&self) -> Option<&str> {
        self.get("CONFIG_BINDGEN_VERSION_TEXT")
            .filter(|s| !s.is_empty())
    }

    pub fn cc_is_clang(&self) -> bool {
        self.enabled("CONFIG_CC_IS_CLANG")
    }

    pub fn cc_version_text(&self) -> Option<&str> {
        self.get("CONFIG_CC_VERSION_TEXT")
    }

    /// The architecture it was configured for, when the tool knows it.
    pub fn arch(&self) -> Option<Arch> {
        Arch::ALL
            .into_iter()
            .find(|a| self.enabled(a.config_symbol()))
    }

    /// Whether it sets one of the architectures' own symbols (arch/*/Kconfig), as
    /// every kernel's `.config` does, known to this tool or not.
    pub fn names_an_arch(&self) -> bool {
        [
            "CONFIG_X86",
            "CONFIG_ARM64",
            "CONFIG_ARM",
            "CONFIG_RISCV",
            "CONFIG_PPC",
            "CONFIG_S390",
            "CONFIG_MIPS",
            "CONFIG_LOONGARCH",
            "CONFIG_SPARC",
            "CONFIG_PARISC",
            "CONFIG_ALPHA",
            "CONFIG_M68K",
            "CONFIG_SUPERH",
            "CONFIG_UML",
            "CONFIG_ARC",
            "CONFIG_CSKY",
            "CONFIG_HEXAGON",
            "CONFIG_MICROBLAZE",
            "CONFIG_NIOS2",
            "CONFIG_OPENRISC",
            "CONFIG_XTENSA",
        ]
        .iter()
        .any(|k| self.enabled(k))
    }

    pub fn modversions(&self) -> bool {
        self.enabled("CONFIG_MODVERSIONS")
    }

    /// `CONFIG_MODULE_SIG_HASH`, the hash `modules_install` signs with.
    pub fn sig_hash(&self) -> Option<HashAlg> {
        self.get("CONFIG_MODULE_SIG_HASH")
            .and_then(HashAlg::from_name)
    }

    /// The compression `modules_install` applies.
    pub fn module_compression(&self) -> crate::modfile::compress::Compression {
        use crate::modfile::compress::Compression as C;
        [
            ("CONFIG_MODULE_COMPRESS_XZ", C::Xz),
            ("CONFIG_MODULE_COMPRESS_ZSTD", C::Zstd),
            ("CONFIG_MODULE_COMPRESS_GZIP", C::Gzip),
        ]
        .into_iter()
        .find(|(k, _)| self.enabled(k))
        .map_or(C::None, |(_, c)| c)
    }

    /// What this kernel can verify.
    pub fn crypto(&self) -> Crypto {
        Crypto {
            hashes: HashAlg::ALL
                .into_iter()
                .filter(|h| self.available(h.crypto_config()))
                .collect(),
            rsa: self.available(KeyType::Rsa.crypto_config()),
            ecdsa: self.available(KeyType::Ecdsa.crypto_config()),
            mldsa: self.available(KeyType::MlDsa.crypto_config()),
            mldsa_parsed: true,
            mldsa_waiver: Some(self.enabled(MLDSA_WAIVER)),
        }
    }
}

/// A tree's release as Kbuild takes it: a `KERNELRELEASE` override in Debian's
/// `.kernelvariables`, else `UTS_RELEASE` (what vermagic and `uname -r` say), else
/// `include/config/kernel.release`. Debian 12's 6.1 headers say `6.1.192` in the last
/// and `6.1.0-57-amd64` in the first two.
pub fn tree_release(kdir: &Path) -> Option<String> {
    let read = |f: &str| crate::fsutil::read_bounded(&kdir.join(f), 1 << 20).ok();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let overridden = read(".kernelvariables").map(text).and_then(|t| {
        t.lines().find_map(|l| {
            let v = l.trim().strip_prefix("override")?.trim_start();
            let v = v.strip_prefix("KERNELRELEASE")?.trim_start();
            Some(
                v.strip_prefix(":=")
                    .or(v.strip_prefix('='))?
                    .trim()
                    .to_string(),
            )
        })
    });
    let uts = || {
        read("include/generated/utsrelease.h")
            .map(text)
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let v = l.trim().strip_prefix("#define")?.trim_start();
                    let v = v.strip_prefix("UTS_RELEASE")?.trim();
                    Some(v.strip_prefix('"')?.strip_suffix('"')?.to_string())
                })
            })
    };
    let file = || read("include/config/kernel.release").map(|b| text(b).trim().to_string());
    overridden
        .or_else(uts)
        .or_else(file)
        .filter(|r| !r.is_empty())
}

/// Lets ML-DSA module signatures carry signed attributes (7.0+; sign-file writes them
/// with OpenSSL before 4.0).
pub const MLDSA_WAIVER: &str = "CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA";

/// For Debian's `linux-headers-<R>-common`: the configured `linux-headers-<R>-<flavour>`
/// trees beside it.
fn common_flavours(dir: &Path) -> Vec<PathBuf> {
    let Some(prefix) = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix("-common"))
    else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> =
        dir.parent()
            .and_then(|p| std::fs::read_dir(p).ok())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&format!("{prefix}-")) && !n.ends_with("-common")
                }) && p.join(".config").is_file()
            })
            .collect();
    v.sort();
    v
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}

/// Public-key types of module signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ecdsa,
    MlDsa,
}

impl KeyType {
    pub fn crypto_config(self) -> &'static str {
        match self {
            KeyType::Rsa => "CONFIG_CRYPTO_RSA",
            KeyType::Ecdsa => "CONFIG_CRYPTO_ECDSA",
            KeyType::MlDsa => "CONFIG_CRYPTO_MLDSA",
        }
    }
}

/// The digests and key types a kernel was built with (`CONFIG_CRYPTO_*`): what it can
/// verify. A digest it lacks makes a signature `ENOPKG` there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub hashes: Vec<HashAlg>,
    pub rsa: bool,
    pub ecdsa: bool,
    pub mldsa: bool,
    /// The PKCS#7 parser knows the ML-DSA OIDs (7.0+; before, "Unsupported pkey algo").
    pub mldsa_parsed: bool,
    /// `CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA`; None when no `.config` says.
    pub mldsa_waiver: Option<bool>,
}

impl Default for Crypto {
    /// Everything this tool checks.
    fn default() -> Crypto {
        Crypto {
            hashes: HashAlg::ALL.to_vec(),
            rsa: true,
            ecdsa: true,
            mldsa: true,
            mldsa_parsed: true,
            mldsa_waiver: None,
        }
    }
}

impl Crypto {
    pub fn has_hash(&self, h: HashAlg) -> bool {
        self.hashes.contains(&h)
    }
    pub fn has_key(&self, k: KeyType) -> bool {
        match k {
            KeyType::Rsa => self.rsa,
            KeyType::Ecdsa => self.ecdsa,
            KeyType::MlDsa => self.mldsa,
        }
    }
}

/// One kernel, as far as it is known.
#[derive(Debug, Clone)]
pub struct Target {
    /// `include/config/kernel.release`, the image's version string, or the `.config`'s
    /// header; empty when nothing tells.
    pub release: String,
    pub version: Option<Version>,
    /// None for an architecture the tool does not know yet: modules still build
    /// (Kbuild knows it), but nothing is booted.
    pub arch: Option<Arch>,
    /// A configured build tree (KDIR), when there is one.
    pub tree: Option<PathBuf>,
    /// The image to boot, when known.
    pub image: Option<PathBuf>,
    pub config: Option<Config>,
    /// Its module tree (`lib/modules/<release>`), when known: what its modules export.
    pub modules: Option<PathBuf>,
    /// The name it was fetched under (`debian/sid/amd64`), for a distribution's kernel.
    pub distro: Option<String>,
}

impl Target {
    /// A configured (and prepared) build tree: a headers package or a built kernel.
    pub fn from_tree(kdir: &Path) -> Result<Target> {
        let pre = |reason: &str, fix: &str| Error::Preflight {
            kdir: kdir.to_path_buf(),
            reason: reason.into(),
            fix: fix.into(),
        };
        if !kdir.is_dir() {
            return Err(pre(
                "kernel tree not found",
                "install the headers (Debian: linux-headers-$(uname -r)) or pass --kdir; `cargo kmod kernel build` makes a Rust-enabled tree",
            ));
        }
        let cfg_path = kdir.join(".config");
        if !cfg_path.is_file() {
            // Debian's linux-headers-<R>-common is shared by the flavours' trees, never
            // a build tree itself: name the flavours beside it.
            let flavours = common_flavours(kdir);
            if !flavours.is_empty() {
                return Err(pre(
                    "a Debian -common headers directory: it holds the shared headers, not a build tree",
                    &format!(
                        "use the tree of your kernel's flavour: {}",
                        flavours
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ));
            }
            return Err(pre(
                "not a configured kernel tree (no .config)",
                "run `make olddefconfig modules_prepare` in it, or give a headers tree",
            ));
        }
        let config = Config::read(&cfg_path)?;
        let release = tree_release(kdir).ok_or_else(|| {
            pre(
                "not a prepared kernel tree (no include/config/kernel.release)",
                "run `make modules_prepare` in it",
            )
        })?;
        // It becomes paths and lines of maintainer scripts: a release, or nothing.
        crate::names::release(&release).map_err(|r| {
            pre(
                &format!("the tree's release: {r}"),
                "give a kernel tree whose include/config/kernel.release Kbuild wrote",
            )
        })?;
        let arch = config.arch();
        let image = arch
            .map(|a| kdir.join(a.image_in_tree()))
            .filter(|p| p.is_file());
        Ok(Target {
            version: Some(Version::of(&release)),
            release,
            arch,
            tree: Some(kdir.to_path_buf()),
            image,
            config: Some(config),
            modules: None,
            distro: None,
        })
    }

    /// An installed kernel: `<root>/lib/modules/<release>/build` (else the host's),
    /// and its `boot/vmlinuz-<release>` when present. Without a tree, only the release.
    pub fn from_release(root: &Path, release: &str) -> Target {
        let trees = [
            root.join(format!("lib/modules/{release}/build")),
            PathBuf::from(format!("/lib/modules/{release}/build")),
        ];
        // A tree that says it is another release is not this kernel's.
        let mut t = trees
            .iter()
            .find_map(|k| Target::from_tree(k).ok().filter(|t| t.release == release))
            .unwrap_or_else(|| Target {
                config: Config::read(&root.join(format!("boot/config-{release}"))).ok(),
                ..Target::release_only(release)
            });
        if t.image.is_none() {
            t.image = Some(root.join(format!("boot/vmlinuz-{release}"))).filter(|p| p.is_file());
        }
        t
    }

    /// A kernel known by its release alone.
    pub fn release_only(release: &str) -> Target {
        Target {
            release: release.to_string(),
            version: Some(Version::of(release)),
            arch: Arch::host(),
            tree: None,
            image: None,
            config: None,
            modules: None,
            distro: None,
        }
    }

    /// A kernel image to boot or to take certificates from; its tree and `.config`
    /// when the image sits in a built tree (`arch/*/boot/`) or beside `config-<release>`.
    pub fn from_image(image: &Path) -> Result<Target> {
        if !image.is_file() {
            return Err(Error::Read {
                path: image.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such kernel image"),
            });
        }
        let tree = image
            .ancestors()
            .nth(4)
            .filter(|t| t.join(".config").is_file() && t.join("Makefile").is_file());
        if let Some(t) = tree.and_then(|t| Target::from_tree(t).ok()) {
            return Ok(Target {
                image: Some(image.to_path_buf()),
                ..t
            });
        }
        let release = crate::kernel_image::release(image)
            .filter(|r| crate::names::release(r).is_ok())
            .unwrap_or_default();
        let config = image
            .parent()
            .map(|d| d.join(format!("config-{release}")))
            .filter(|_| !release.is_empty())
            .and_then(|c| Config::read(&c).ok());
        Ok(Target {
            version: (!release.is_empty()).then(|| Version::of(&release)),
            release,
            arch: config
                .as_ref()
                .and_then(Config::arch)
                .or_else(|| crate::kernel_image::arch(image))
                .or_else(Arch::host),
            tree: None,
            image: Some(image.to_path_buf()),
            config,
            modules: None,
            distro: None,
        })
    }

    /// The kernel this machine runs, seen under `root` (`/`): its release
    /// (`/proc/sys/kernel/osrelease`), `.config` (`/boot/config-<release>`, else
    /// `/proc/config.gz`), image (`/boot/vmlinuz-<release>`, when readable: it holds the
    /// builtin trusted certificates) and module tree.
    pub fn running(root: &Path) -> Target {
        let release = crate::fsutil::read_bounded(&root.join("proc/sys/kernel/osrelease"), 4096)
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .ok()
            .filter(|r| crate::names::release(r).is_ok())
            .unwrap_or_default();
        let boot = root.join("boot");
        let config = Config::read(&boot.join(format!("config-{release}")))
            .ok()
            .or_else(|| {
                let gz = root.join("proc/config.gz");
                let bytes = crate::fsutil::read_bounded(&gz, MAX_CONFIG).ok()?;
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(flate2::read::GzDecoder::new(&bytes[..]), MAX_CONFIG),
                    &mut text,
                )
                .ok()?;
                Some(Config::parse(&gz, &text)).filter(|c| !c.values.is_empty())
            });
        let image = boot.join(format!("vmlinuz-{release}"));
        let modules = root.join("lib/modules").join(&release);
        Target {
            version: (!release.is_empty()).then(|| Version::of(&release)),
            arch: config.as_ref().and_then(Config::arch).or_else(Arch::host),
            tree: None,
            image: (!release.is_empty() && std::fs::File::open(&image).is_ok()).then_some(image),
            config,
            modules: (!release.is_empty() && modules.is_dir()).then_some(modules),
            distro: None,
            release,
        }
    }

    /// A kernel known by its `.config` alone (`verify --kernel .config`).
    pub fn from_config(path: &Path) -> Result<Target> {
        let config = Config::read(path)?;
        let release = config
            .header_release
            .clone()
            .filter(|r| crate::names::release(r).is_ok())
            .unwrap_or_default();
        Ok(Target {
            version: (!release.is_empty()).then(|| Version::of(&release)),
            release,
            arch: config.arch(),
            tree: None,
            image: None,
            config: Some(config),
            modules: None,
            distro: None,
        })
    }

    /// What `--kernel PATH` names: a tree (directory), a `.config`, or an image.
    pub fn from_path(path: &Path) -> Result<Target> {
        if path.is_dir() {
            return Target::from_tree(path);
        }
        let head = crate::fsutil::read_head(path, 512)?;
        if head.starts_with(b"#\n# Automatically generated file")
            || head.starts_with(b"CONFIG_")
            || head.starts_with(b"# Linux/")
        {
            return Target::from_config(path);
        }
        Target::from_image(path)
    }

    pub fn features(&self) -> Features {
        Features::of(self.version.as_ref())
    }

    /// How to name it in messages.
    pub fn name(&self) -> String {
        if self.release.is_empty() {
            "the kernel".into()
        } else {
            format!("Linux {}", self.release)
        }
    }

    /// The tree, or an error saying a tree is needed for `what`.
    pub fn tree(&self, what: &str) -> Result<&Path> {
        self.tree.as_deref().ok_or_else(|| {
            Error::usage(
                format!("{what} needs the kernel's build tree; {} has none", self.name()),
                "pass --kdir with the kernel's build tree or headers (Debian: /usr/src/linux-headers-<release>)",
            )
        })
    }

    /// Its architecture, or an error saying `what` needs one the tool knows.
    pub fn known_arch(&self, what: &str) -> Result<Arch> {
        if let Some(a) = self.arch {
            return Ok(a);
        }
        // A .config that names no architecture at all is not a kernel's.
        if let Some(c) = self.config.as_ref().filter(|c| !c.names_an_arch()) {
            return Err(Error::KernelConfig {
                path: c.path.clone(),
                reason: "names no architecture (no CONFIG_X86, CONFIG_ARM64, CONFIG_RISCV, ...): not a kernel's .config".into(),
            });
        }
        let known: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
        Err(Error::TargetRefuses {
            target: self.name(),
            reason: format!(
                "{what} needs an architecture cargo-kmod knows ({})",
                known.join(", ")
            ),
            fix: format!(
                "use a {} kernel for this; its modules still build",
                known.join(" or ")
            ),
        })
    }

    /// What the kernel can verify: from its `.config`, else everything this tool checks
    /// that its version has.
    pub fn crypto(&self) -> Crypto {
        let mut c = self.config.as_ref().map(Config::crypto).unwrap_or_default();
        if !self.features().mldsa {
            (c.mldsa, c.mldsa_parsed) = (false, false);
        }
        c
    }

    /// The hash to sign its modules with: the one asked for, else the kernel's
    /// `CONFIG_MODULE_SIG_HASH`, else `fallback`. Refused (before anything is written)
    /// when this kernel could not verify it or no longer signs with it.
    pub fn signing_hash(&self, asked: Option<HashAlg>, fallback: HashAlg) -> Result<HashAlg> {
        let h = asked
            .or_else(|| self.config.as_ref().and_then(Config::sig_hash))
            .unwrap_or(fallback);
        let refuse = |reason: String, fix: String| Error::TargetRefuses {
            target: self.name(),
            reason,
            fix,
        };
        if h == HashAlg::Sha1 && !self.features().sha1_signing {
            return Err(refuse(
                "7.0 removed SHA-1 module signing; this kernel takes no new SHA-1 signatures"
                    .into(),
                format!(
                    "sign with {} (its CONFIG_MODULE_SIG_HASH) or another SHA-2/SHA-3 hash",
                    self.config
                        .as_ref()
                        .and_then(Config::sig_hash)
                        .unwrap_or(fallback)
                        .name()
                ),
            ));
        }
        if let Some(c) = &self.config
            && !c.available(h.crypto_config())
        {
            return Err(refuse(
                format!(
                    "it cannot verify {} signatures: {} is not set in {}",
                    h.name(),
                    h.crypto_config(),
                    c.path.display()
                ),
                format!(
                    "use a hash it has ({}), or a kernel built with {}=y",
                    c.crypto()
                        .hashes
                        .iter()
                        .map(|h| h.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    h.crypto_config()
                ),
            ));
        }
        Ok(h)
    }

    /// `Module.symvers` of its tree.
    pub fn symvers(&self) -> Option<PathBuf> {
        self.tree
            .as_ref()
            .map(|t| t.join("Module.symvers"))
            .filter(|p| p.is_file())
    }
}

/// The release of the kernel this machine runs.
pub fn running_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
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

    #[test]
    fn generations() {
        let f = |r: &str| Features::of(Some(&Version::of(r)));
        assert!(!f("6.12.117").rust_authors_list && f("6.15").rust_authors_list);
        assert!(!f("6.18").rust_params && f("7.2.13").rust_params);
        assert!(!f("7.2.13").rust_param_value_copy && f("7.3.0-rc7").rust_param_value_copy);
        assert!(!f("6.12").ns_string_literal && f("6.13").ns_string_literal);
        assert!(f("6.19").sha1_signing && !f("7.0-rc1").sha1_signing);
        assert!(f("6.1.158").rust_pins_rustc && !f("6.12").rust_pins_rustc);
        assert_eq!(Features::of(None), f("99.0"));
    }

    #[test]
    fn config_facts() {
        let c = Config::parse(
            Path::new(".config"),
            "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 7.2.13 Kernel Configuration\n#\n\
             CONFIG_X86_64=y\nCONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT=\"rustc 1.97.1 (x)\"\n\
             CONFIG_MODULE_SIG_HASH=\"sha384\"\nCONFIG_CRYPTO_SHA512=m\nCONFIG_CRYPTO_ECDSA=y\n\
             # CONFIG_CRYPTO_RSA is not set\nCONFIG_MODULE_COMPRESS_XZ=y\n",
        );
        assert_eq!(c.header_release.as_deref(), Some("7.2.13"));
        assert!(c.rust());
        assert_eq!(c.rustc_version_text(), Some("rustc 1.97.1 (x)"));
        assert_eq!(c.sig_hash(), Some(HashAlg::Sha384));
        let k = c.crypto();
        assert_eq!(k.hashes, vec![HashAlg::Sha384, HashAlg::Sha512]);
        assert!(k.ecdsa && !k.rsa);
        assert_eq!(
            c.module_compression(),
            crate::modfile::compress::Compression::Xz
        );
    }
}
