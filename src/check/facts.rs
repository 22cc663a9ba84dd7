//! What a kernel's loader compares a module with, gathered once per target from
//! what the user has: a build tree or headers package (`.config`, release,
//! `Module.symvers`, `vmlinux`'s BTF), its image (the builtin keyring), and its
//! module tree (other modules' exports and dependencies, `struct module`'s size).

use super::symvers::{self, Symbol};
use crate::error::{Error, Result};
use crate::modtree::ModuleTree;
use crate::target::{Arch, Config, Target};
use crate::verify::Keyring;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The kernel's `struct module` size and where it was read.
#[derive(Debug, Clone)]
pub struct StructModule {
    pub size: u64,
    pub source: String,
}

pub struct KernelFacts {
    pub target: Target,
    pub arch: Arch,
    pub symbols: HashMap<String, Symbol>,
    pub struct_module: Option<StructModule>,
    /// The kernel's `VERMAGIC_STRING`, None when it cannot be known (RANDSTRUCT's
    /// seed missing).
    pub vermagic: Option<String>,
    pub keyring: Keyring,
    /// What became of the `--mok` certificates: those the kernel would not check
    /// modules against (in `.platform`, say), and why.
    pub moks_left_out: Vec<String>,
    /// The kernel's module tree, when there is one.
    pub modules: Option<ModuleTree>,
    /// Symbol → module, from depmod's `modules.symbols`: also the modules that
    /// Module.symvers does not know (DKMS's `updates/`, `extra/`).
    installed: HashMap<String, String>,
    /// Their exports, read from the module when first needed.
    installed_exports: Mutex<HashMap<String, Vec<crate::modfile::elf::Export>>>,
}

impl KernelFacts {
    /// `target` must have a tree (or headers) with `.config` and `Module.symvers`.
    /// `modules_dir` defaults to `/lib/modules/<release>` when that exists.
    pub fn resolve(
        target: Target,
        modules_dir: Option<&Path>,
        certs: &[PathBuf],
        moks: &[PathBuf],
    ) -> Result<KernelFacts> {
        let tree = target.tree.clone().ok_or_else(|| Error::KernelFacts {
            path: target.image.clone().unwrap_or_default(),
            reason: "no build tree or headers: the kernel's exported symbols (Module.symvers) and .config are not known".into(),
            fix: "give --kdir (a built tree, or the headers package: Debian linux-headers-<release>)".into(),
        })?;
        let config = target.config.as_ref().expect("a tree has a .config");
        let arch = target.known_arch("check")?;
        let symvers_path = target.symvers().ok_or_else(|| Error::KernelFacts {
            path: tree.join("Module.symvers"),
            reason: "missing: without it no symbol can be checked".into(),
            fix: "give a built tree (`make modules` writes Module.symvers) or the kernel's headers package, which ships it".into(),
        })?;
        let symbols = symvers::read(&symvers_path)?;
        let modules = match modules_dir {
            Some(d) => Some(ModuleTree::open(d)?),
            None => ModuleTree::installed(&target.release)?,
        };
        let installed = modules
            .as_ref()
            .map(|t| installed_symbols(&t.dir.join("modules.symbols")))
            .unwrap_or_default();
        let mut keyring = crate::verify::Keyring::of(&target)?;
        for c in certs {
            keyring.add_path(c)?;
        }
        // A MOK counts only where this kernel would put it in a keyring it checks
        // modules against.
        let mut moks_left_out = Vec::new();
        if !moks.is_empty() {
            let rules = crate::firmware_keys::Rules::of_target(&target);
            for p in moks {
                for c in crate::pki::cert::load_certs(p)? {
                    let at = rules.place(crate::firmware_keys::Source::Mok, &c);
                    if at.signs_modules {
                        keyring.certs.push(c);
                    } else {
                        moks_left_out.push(format!(
                            "{}: {} ({}): it does not count for modules on {}",
                            p.display(),
                            at.why,
                            at.keyring.as_deref().unwrap_or("no keyring"),
                            target.name()
                        ));
                    }
                }
            }
        }
        keyring.restrict(target.crypto());
        let struct_module = struct_module(&tree, &target, modules.as_ref());
        let vermagic = vermagic(&target, config, arch, &tree);
        Ok(KernelFacts {
            arch,
            symbols,
            struct_module,
            vermagic,
            keyring,
            moks_left_out,
            modules,
            installed,
            installed_exports: Mutex::default(),
            target,
        })
    }

    pub fn config(&self) -> &Config {
        self.target
            .config
            .as_ref()
            .expect("resolved with a .config")
    }

    /// `CONFIG_MODULE_SIG_FORCE`: unsigned and untrusted modules are refused.
    pub fn enforcing(&self) -> bool {
        self.config().enabled("CONFIG_MODULE_SIG_FORCE")
    }

    /// Lockdown (integrity or confidentiality) forced at build time: the same, as EPERM.
    pub fn lockdown_forced(&self) -> bool {
        let c = self.config();
        c.enabled("CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY")
            || c.enabled("CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY")
    }

    /// Who exports `sym`: Module.symvers, else a module of the tree depmod indexed.
    pub fn lookup(&self, sym: &str) -> Option<Symbol> {
        if let Some(s) = self.symbols.get(sym) {
            return Some(s.clone());
        }
        let module = self.installed.get(sym)?;
        let mut cache = self.installed_exports.lock().expect("not poisoned");
        let exports = cache.entry(module.clone()).or_insert_with(|| {
            self.module_path(module)
                .and_then(|p| {
                    crate::modfile::ModuleFile::read(p, crate::settings::DEFAULT_MAX_MODULE_BYTES)
                        .ok()
                })
                .and_then(|m| Some(m.elf().ok()?.loader_view()))
                .map(|v| v.exports)
                .unwrap_or_default()
        });
        let e = exports.iter().find(|e| e.name == sym)?;
        Some(Symbol {
            owner: module.clone(),
            gpl_only: e.gpl_only,
            namespace: e.namespace.clone(),
            crc: e.crc,
        })
    }

    pub fn module_path(&self, name: &str) -> Option<&Path> {
        self.modules.as_ref()?.path(name)
    }

    /// Remembers a module's `depends=` (a module being checked is read anyway).
    pub fn remember_depends(&self, name: &str, depends: Vec<String>) {
        if let Some(t) = &self.modules {
            t.remember_depends(name, depends);
        }
    }

    /// `roots` and what they depend on in the module tree, dependencies first.
    pub fn load_order(
        &self,
        roots: &[String],
    ) -> std::result::Result<Vec<String>, crate::modtree::Cycle> {
        match &self.modules {
            Some(t) => t.load_order(roots),
            None => Ok(roots.to_vec()),
        }
    }
}

/// depmod's `modules.symbols`: `alias symbol:NAME MODULE` lines. Missing or
/// unreadable: none (a tree nobody ran depmod on).
fn installed_symbols(path: &Path) -> HashMap<String, String> {
    let Ok(bytes) = crate::fsutil::read_bounded(path, 256 << 20) else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("alias symbol:")?.split_once(' '))
        .map(|(sym, m)| (sym.to_string(), crate::modfile::normalise(m.trim())))
        .collect()
}

/// From `vmlinux`'s BTF (a headers package keeps it for BTF), else the running
/// kernel's, else any module of the kernel's own tree.
fn struct_module(
    tree: &Path,
    target: &Target,
    modules: Option<&ModuleTree>,
) -> Option<StructModule> {
    let vmlinux = tree.join("vmlinux");
    if let Some(size) =
        super::btf::section_of(&vmlinux).and_then(|b| super::btf::struct_size(&b, "module"))
    {
        return Some(StructModule {
            size,
            source: format!("BTF of {}", vmlinux.display()),
        });
    }
    let running = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if running.trim() == target.release
        && let Ok(b) = crate::fsutil::read_bounded(Path::new("/sys/kernel/btf/vmlinux"), 64 << 20)
        && let Some(size) = super::btf::struct_size(&b, "module")
    {
        return Some(StructModule {
            size,
            source: "/sys/kernel/btf/vmlinux".into(),
        });
    }
    // Modules of the tree itself; a few, in case one is damaged.
    let mut paths: Vec<&PathBuf> = modules.into_iter().flat_map(ModuleTree::paths).collect();
    paths.sort();
    paths.into_iter().take(3).find_map(|p| {
        let m =
            crate::modfile::ModuleFile::read(p, crate::settings::DEFAULT_MAX_MODULE_BYTES).ok()?;
        let size = m.elf().ok()?.loader_view().this_module_size?;
        Some(StructModule {
            size,
            source: p.display().to_string(),
        })
    })
}

/// include/linux/vermagic.h's `VERMAGIC_STRING` for this configuration.
fn vermagic(target: &Target, c: &Config, arch: Arch, tree: &Path) -> Option<String> {
    let mut s = format!("{} ", target.release);
    if c.enabled("CONFIG_SMP") {
        s += "SMP ";
    }
    let (rt, build) = (
        c.enabled("CONFIG_PREEMPT_RT"),
        c.enabled("CONFIG_PREEMPT_BUILD"),
    );
    if rt && (!build || target.features().vermagic_rt_first) {
        s += "preempt_rt ";
    } else if build {
        s += "preempt ";
    } else if rt {
        s += "preempt_rt ";
    }
    if c.enabled("CONFIG_MODULE_UNLOAD") {
        s += "mod_unload ";
    }
    if c.modversions() {
        s += "modversions ";
    }
    s += arch.vermagic();
    if c.enabled("CONFIG_RANDSTRUCT_FULL") || c.enabled("CONFIG_RANDSTRUCT_PERFORMANCE") {
        let h = std::fs::read_to_string(tree.join("include/generated/randstruct_hash.h")).ok()?;
        let seed = h
            .lines()
            .find_map(|l| l.strip_prefix("#define RANDSTRUCT_HASHED_SEED"))?
            .trim()
            .trim_matches('"');
        s += "RANDSTRUCT_";
        s += seed;
    }
    Some(s)
}

/// The kernels `check` was asked about: one per `--kdir` and `--kernel-release`; each
/// image and module tree goes with the kernel of its release (or with the only kernel).
pub fn targets(
    named: Vec<Target>,
    kdirs: &[PathBuf],
    releases: &[String],
    images: &[PathBuf],
    modules_dirs: &[PathBuf],
    certs: &[PathBuf],
    moks: &[PathBuf],
) -> Result<Vec<KernelFacts>> {
    let facts_err = |e: Error| match e {
        // `check` is not `build`: the same findings, as input errors.
        Error::Preflight { kdir, reason, fix } => Error::KernelFacts {
            path: kdir,
            reason,
            fix: format!(
                "{fix} (check reads .config, include/config/kernel.release and Module.symvers)"
            ),
        },
        e => e,
    };
    // Kernels by name come whole: tree, image and module tree.
    let mut ts = named;
    for k in kdirs {
        ts.push(Target::from_tree(k).map_err(facts_err)?);
    }
    for r in releases {
        let t = Target::from_release(Path::new("/"), r);
        if t.tree.is_none() {
            return Err(Error::KernelFacts {
                path: PathBuf::from(format!("/lib/modules/{r}/build")),
                reason: "no build tree or headers for this release".into(),
                fix: format!(
                    "install its headers (Debian: apt-get install linux-headers-{r}) or give --kdir"
                ),
            });
        }
        ts.push(t);
    }
    let mut image_of: Vec<Option<PathBuf>> = vec![None; ts.len()];
    for i in images {
        let release = crate::kernel_image::release(i).ok_or_else(|| Error::KernelImage {
            path: i.clone(),
            reason: "no Linux version string in it: not a kernel image".into(),
        })?;
        let at = if let Some(at) = ts.iter().position(|t| t.release == release) {
            at
        } else if ts.len() == 1 && image_of[0].is_none() {
            0
        } else {
            // An image of its own: the tree installed for its release, if any.
            let t = Target::from_release(Path::new("/"), &release);
            if t.tree.is_none() {
                return Err(Error::KernelFacts {
                    path: i.clone(),
                    reason: format!("Linux {release}: no build tree or headers given for it"),
                    fix: "give its --kdir (a built tree or its headers package) too".into(),
                });
            }
            ts.push(t);
            image_of.push(None);
            ts.len() - 1
        };
        image_of[at] = Some(i.clone());
    }
    let mut out = Vec::new();
    for (mut t, image) in ts.into_iter().zip(image_of) {
        if image.is_some() {
            t.image = image;
        }
        let dir = modules_dirs
            .iter()
            .find(|d| {
                d.file_name()
                    .is_some_and(|n| n.to_string_lossy() == t.release)
            })
            .or((modules_dirs.len() == 1).then(|| &modules_dirs[0]))
            .cloned()
            .or(t.modules.clone());
        out.push(KernelFacts::resolve(t, dir.as_deref(), certs, moks)?);
    }
    if out.is_empty() {
        return Err(Error::usage(
            "check needs a kernel",
            "pass --kdir DIR (a build tree or headers package), --kernel-release RELEASE, or --kernel IMAGE",
        ));
    }
    Ok(out)
}
