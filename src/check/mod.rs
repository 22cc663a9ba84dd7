//! Will this module load on that kernel? Answered offline, in the order the kernel's
//! loader decides (kernel/module/main.c `load_module`, version.c, signing.c): the
//! signature, the ELF header, `struct module`'s size, symbol versions, vermagic, the
//! taints, then every symbol (exported? GPL-only? namespace imported? CRC equal?).

pub mod btf;
pub mod facts;
pub mod symvers;

pub use facts::KernelFacts;

use crate::modfile::{ModuleFile, elf};
use crate::verify::{self, Verdict};
use std::path::PathBuf;

pub use crate::loader::Refusal;

/// One thing the loader looks at, and what it would find.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Outcome {
    /// Loads; `taints` are the letters it adds (`/proc/sys/kernel/tainted`'s order).
    Loads { taints: String },
    /// Refused, with the kernel's own message.
    Refused { refusal: Refusal, message: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Loads { taints } if taints.is_empty() => f.write_str("loads"),
            Outcome::Loads { taints } => write!(f, "loads, taints ({taints})"),
            Outcome::Refused { message, .. } => write!(f, "refused: {message}"),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub module: PathBuf,
    pub name: String,
    pub kernel: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Modules of the kernel's tree that must be loaded first, in the order
    /// `modprobe --show-depends` prints them.
    pub load_first: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn refused(&self) -> bool {
        matches!(self.outcome, Outcome::Refused { .. })
    }
}

/// Licenses the kernel counts as GPL-compatible (include/linux/license.h).
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// A module loaded before this one (given earlier on the command line), whose
/// exports count as the kernel's.
pub struct Loaded {
    pub name: String,
    pub exports: Vec<elf::Export>,
}

/// Judges `modules` on `k` in load order. Those marked `named` (given as files, not
/// found in a directory) that export symbols are loaded in that order, when they load:
/// their exports count for the ones after them. Results keep the order given.
pub fn check_all(
    k: &KernelFacts,
    modules: &[PathBuf],
    named: &[bool],
    jobs: usize,
    max_module_bytes: u64,
    r: &dyn crate::report::Reporter,
) -> Vec<crate::Result<Report>> {
    let mut loaded: Vec<(usize, Loaded)> = Vec::new();
    for (i, m) in modules.iter().enumerate().filter(|(i, _)| named[*i]) {
        let Ok(f) = ModuleFile::read(m, max_module_bytes) else {
            continue;
        };
        let Ok(view) = f.elf().map(|e| e.loader_view()) else {
            continue;
        };
        if view.exports.is_empty() {
            continue;
        }
        let before: Vec<&Loaded> = loaded.iter().map(|(_, l)| l).collect();
        if let Ok(rep) = check(k, &f, &before)
            && !rep.refused()
        {
            loaded.push((
                i,
                Loaded {
                    name: rep.name,
                    exports: view.exports,
                },
            ));
        }
    }
    let indexed: Vec<(usize, &PathBuf)> = modules.iter().enumerate().collect();
    crate::tree::par_map(&indexed, jobs, r, "checking", |(i, m)| {
        let before: Vec<&Loaded> = loaded
            .iter()
            .filter(|(j, _)| j < i)
            .map(|(_, l)| l)
            .collect();
        // check() parses the ELF once, refusing what is not a module.
        ModuleFile::read(m, max_module_bytes).and_then(|f| check(k, &f, &before))
    })
}

/// Judges `m` against `k` as its loader would, with `earlier` already loaded.
pub fn check(k: &KernelFacts, m: &ModuleFile, earlier: &[&Loaded]) -> crate::Result<Report> {
    let info = m.elf()?;
    let fields = elf::modinfo_fields(info.modinfo);
    let get = |key: &str| {
        fields
            .iter()
            .find(|(f, _)| f == key)
            .map(|(_, v)| v.as_str())
    };
    let name = get("name")
        .map(str::to_string)
        .unwrap_or_else(|| crate::modfile::name_of_path(&m.path.to_string_lossy()));
    let mut j = Judge::default();
    let mut taints = String::new();

    // 1. The signature (module_sig_check), before anything else is read.
    j.signature(k, &name, verify::verify(&m.data, &k.keyring), &mut taints);

    // 2. The ELF header and sections (elf_validity_cache_copy).
    let view = info.loader_view();
    j.elf(k, &name, &info, &view);

    // 3. Symbol versions of `struct module` itself, and vermagic (early_mod_check).
    let modversions = k.config().modversions();
    if modversions {
        j.module_layout(k, &name, &view, &mut taints);
    }
    let has_crcs = view.has_versions && modversions;
    j.vermagic(k, &name, get("vermagic"), has_crcs, &mut taints);

    // 4. Taints (module_augment_kernel_taints).
    let license = get("license").unwrap_or("unspecified");
    let gpl = license_is_gpl_compatible(license);
    if get("intree").is_none() {
        taints.push('O');
    }
    if !gpl {
        taints.push('P');
        j.note(
            "license",
            false,
            format!(
                "{name}: module license '{license}' taints kernel (no GPL-only symbols for it)"
            ),
        );
    }
    if get("staging").is_some() {
        taints.push('C');
    }
    if get("test").is_some() {
        taints.push('N');
    }

    // 5. Namespaces it imports (setup_modinfo), then every symbol (simplify_symbols).
    let imports: Vec<&str> = fields
        .iter()
        .filter(|(f, _)| f == "import_ns")
        .map(|(_, v)| v.as_str())
        .collect();
    if k.target.features().module_namespaces
        && let Some(ns) = imports.iter().find(|n| n.starts_with("module:"))
    {
        j.refuse(
            "namespaces",
            Refusal::Other("Operation not permitted".into()),
            format!("{name}: module tries to import module namespace: {ns}"),
        );
    }
    let load_first = j.symbols(k, &name, &view, gpl, &imports, earlier, modversions);

    // 6. What modprobe reads: depends=, and the load order it gives.
    let depends = crate::modtree::split_depends(get("depends").unwrap_or_default());
    k.remember_depends(&name, depends.clone());
    let order = j.dependencies(k, &depends, earlier, load_first);
    if let Some(sd) = get("softdep") {
        j.note(
            "dependencies",
            true,
            format!("softdep {sd}: modprobe loads these too (they are not needed for symbols)"),
        );
    }
    j.compression(k, m);

    let mut sorted: Vec<char> = taints.chars().collect();
    sorted.sort_by_key(|c| crate::loader::TAINT_LETTERS.find(*c));
    sorted.dedup();
    let outcome = match j.refusal {
        Some((refusal, message)) => Outcome::Refused { refusal, message },
        None => Outcome::Loads {
            taints: sorted.into_iter().collect(),
        },
    };
    Ok(Report {
        module: m.path.clone(),
        name,
        kernel: k.target.release.clone(),
        outcome,
        load_first: order,
        findings: j.findings,
    })
}

#[derive(Default)]
struct Judge {
    findings: Vec<Finding>,
    /// The first refusal in the loader's order: where it stops.
    refusal: Option<(Refusal, String)>,
}

impl Judge {
    fn note(&mut self, check: &'static str, ok: bool, detail: String) {
        self.findings.push(Finding { check, ok, detail });
    }

    fn refuse(&mut self, check: &'static str, r: Refusal, message: String) {
        self.note(check, false, message.clone());
        if self.refusal.is_none() {
            self.refusal = Some((r, message));
        }
    }

    fn signature(&mut self, k: &KernelFacts, name: &str, v: Verdict, taints: &mut String) {
        let c = k.config();
        if !c.enabled("CONFIG_MODULE_SIG") {
            self.note(
                "signature",
                true,
                format!("not checked: {} has no CONFIG_MODULE_SIG", k.target.name()),
            );
            return;
        }
        let Some(errno) = v.errno() else {
            self.note("signature", true, format!("OK: {}", v.reason()));
            return;
        };
        let r = errno.refusal();
        // Only a missing signature, key or algorithm is forgiven without enforcement
        // (kernel/module/signing.c); anything else is refused always.
        let Some(what) = errno.forgiven() else {
            self.refuse("signature", r, format!("{}: {}", v.reason(), v.enforced()));
            return;
        };
        if k.enforcing() {
            self.refuse(
                "signature",
                r,
                format!(
                    "Loading of {what} is rejected ({}: {})",
                    v.errno_name(),
                    v.reason()
                ),
            );
        } else if k.lockdown_forced() {
            self.refuse(
                "signature",
                Refusal::Lockdown,
                format!("Lockdown: insmod: unsigned module loading is restricted; see man kernel_lockdown.7 ({}: {})", v.errno_name(), v.reason()),
            );
        } else {
            taints.push('E');
            let sb = if c.enabled("CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT") {
                "; refused under Secure Boot (lockdown) or with module.sig_enforce=1"
            } else {
                "; refused with module.sig_enforce=1"
            };
            self.note(
                "signature",
                false,
                format!(
                    "{name}: {} ({}: {}){sb}",
                    crate::loader::TAINT_MESSAGE,
                    v.errno_name(),
                    v.reason()
                ),
            );
        }
    }

    fn elf(&mut self, k: &KernelFacts, name: &str, info: &elf::ElfInfo, v: &elf::LoaderView) {
        let (want, arch) = (k.arch, info.arch);
        if info.machine != want.object() {
            self.refuse(
                "elf",
                Refusal::VersionMagic,
                format!(
                    "Invalid architecture in ELF header: {} ({arch} module, {} kernel)",
                    v.machine,
                    want.name()
                ),
            );
        } else {
            self.note(
                "elf",
                true,
                format!("{arch} relocatable object, as the kernel"),
            );
        }
        match (k.struct_module.as_ref(), v.this_module_size) {
            (_, None) => self.refuse(
                "struct module",
                Refusal::VersionMagic,
                format!("module {name}: Exactly one .gnu.linkonce.this_module section must exist."),
            ),
            (Some(s), Some(size)) if k.target.features().this_module_size_check && s.size != size => {
                self.refuse(
                    "struct module",
                    Refusal::VersionMagic,
                    format!(
                        "module {name}: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time ({size} bytes here, {} in the kernel, from {})",
                        s.size, s.source
                    ),
                )
            }
            (Some(s), Some(size)) => self.note(
                "struct module",
                true,
                format!("{size} bytes, as the kernel's (from {})", s.source),
            ),
            (None, Some(size)) => self.note(
                "struct module",
                true,
                format!("{size} bytes; the kernel's size is not known (no BTF in its vmlinux, no module of its own to compare): not checked"),
            ),
        }
    }

    /// kernel/module/main.c try_to_force_load: what `modprobe --force` relies on. With
    /// CONFIG_MODULE_FORCE_LOAD (Debian's kernels) the module loads, tainted F;
    /// without, ENOEXEC.
    fn force_load(
        &mut self,
        k: &KernelFacts,
        check: &'static str,
        name: &str,
        reason: &str,
        taints: &mut String,
    ) {
        if k.config().enabled("CONFIG_MODULE_FORCE_LOAD") {
            taints.push('F');
            self.note(
                check,
                false,
                format!("{name}: {reason}: kernel tainted. (forced load: CONFIG_MODULE_FORCE_LOAD, taint F)"),
            );
        } else {
            self.refuse(
                check,
                Refusal::VersionMagic,
                format!("{name}: {reason}, and the kernel has no CONFIG_MODULE_FORCE_LOAD: Exec format error"),
            );
        }
    }

    fn module_layout(
        &mut self,
        k: &KernelFacts,
        name: &str,
        v: &elf::LoaderView,
        taints: &mut String,
    ) {
        let Some(crc) = k.symbols.get("module_layout").and_then(|s| s.crc) else {
            return;
        };
        if !v.has_versions {
            // check_version: "No versions at all?  modprobe --force does this."
            self.force_load(k, "modversions", name, "module_layout", taints);
            return;
        }
        match v.versions.iter().find(|(n, _)| n == "module_layout") {
            Some((_, c)) if *c != crc => self.refuse(
                "modversions",
                Refusal::VersionMagic,
                format!("{name}: disagrees about version of symbol module_layout"),
            ),
            _ => self.note("modversions", true, "module_layout's CRC matches".into()),
        }
    }

    fn vermagic(
        &mut self,
        k: &KernelFacts,
        name: &str,
        magic: Option<&str>,
        has_crcs: bool,
        taints: &mut String,
    ) {
        let Some(theirs) = k.vermagic.as_deref() else {
            self.note(
                "vermagic",
                true,
                "the kernel's vermagic is not known: not checked".into(),
            );
            return;
        };
        let Some(ours) = magic else {
            // check_modinfo: "This is allowed: modprobe --force will invalidate it."
            self.force_load(k, "vermagic", name, "bad vermagic", taints);
            return;
        };
        // kernel/module/version.c same_magic: with CRCs, the release is not compared.
        let tail = |s: &str| s.find(' ').map_or("", |i| &s[i..]).to_string();
        let same = if has_crcs {
            tail(ours) == tail(theirs)
        } else {
            ours == theirs
        };
        if same {
            self.note("vermagic", true, format!("'{ours}'"));
        } else {
            self.refuse(
                "vermagic",
                Refusal::VersionMagic,
                format!("{name}: version magic '{ours}' should be '{theirs}'"),
            );
        }
    }

    /// Every undefined symbol; returns the tree's modules that provide some.
    #[allow(clippy::too_many_arguments)]
    fn symbols(
        &mut self,
        k: &KernelFacts,
        name: &str,
        v: &elf::LoaderView,
        gpl: bool,
        imports: &[&str],
        earlier: &[&Loaded],
        modversions: bool,
    ) -> Vec<String> {
        let mut providers = Vec::new();
        // The kernel logs every failing symbol and fails with the last; `run` names
        // the refusal by the strongest message, in this order.
        let mut worst: Option<(u8, Refusal, String)> = None;
        let mut fail = |j: &mut Judge, rank: u8, r: Refusal, msg: String| {
            j.note("symbols", false, msg.clone());
            if worst.as_ref().is_none_or(|(w, ..)| rank > *w) {
                worst = Some((rank, r, msg));
            }
        };
        for (sym, weak) in &v.undefined {
            let from_earlier = earlier
                .iter()
                .find_map(|l| l.exports.iter().find(|e| &e.name == sym).map(|e| (l, e)));
            let (gpl_only, ns, crc, owner) = match (from_earlier, k.lookup(sym)) {
                (Some((l, e)), _) => (
                    e.gpl_only,
                    e.namespace.clone(),
                    e.crc,
                    Some((l.name.clone(), true)),
                ),
                (None, Some(s)) => (
                    s.gpl_only,
                    s.namespace.clone(),
                    s.crc,
                    s.module().map(|m| (m, false)),
                ),
                (None, None) => {
                    if !weak {
                        fail(
                            self,
                            1,
                            Refusal::UnknownSymbol,
                            format!(
                                "{name}: Unknown symbol {sym} (err -2): no kernel or module export"
                            ),
                        );
                    }
                    continue;
                }
            };
            if gpl_only && !gpl {
                fail(
                    self,
                    1,
                    Refusal::UnknownSymbol,
                    format!(
                        "{name}: Unknown symbol {sym} (err -2): exported GPL-only, and the module's license is not GPL-compatible"
                    ),
                );
                continue;
            }
            if modversions
                && let Some(want) = crc
                && let Some((_, have)) = v.versions.iter().find(|(n, _)| n == sym)
                && *have != want
            {
                fail(
                    self,
                    3,
                    Refusal::SymbolVersion,
                    format!(
                        "{name}: disagrees about version of symbol {sym} (CRC {have:#010x} here, {want:#010x} in the kernel); Unknown symbol {sym} (err -22)"
                    ),
                );
                continue;
            }
            let imported = ns.is_empty()
                || imports.contains(&ns.as_str())
                || (k.target.features().module_namespaces && module_namespace_allows(&ns, name));
            if !imported {
                let msg = format!(
                    "{name}: module uses symbol ({sym}) from namespace {ns}, but does not import it."
                );
                if k.config()
                    .enabled("CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS")
                {
                    self.note(
                        "symbols",
                        true,
                        format!("{msg} (allowed by CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS)"),
                    );
                } else {
                    fail(
                        self,
                        2,
                        Refusal::NamespaceNotImported,
                        format!("{msg} Unknown symbol {sym} (err -22)"),
                    );
                    continue;
                }
            }
            if let Some((m, false)) = owner {
                if k.modules.is_some() && k.module_path(&m).is_none() {
                    let dir = k.modules.as_ref().map(|t| t.dir.display().to_string());
                    fail(
                        self,
                        1,
                        Refusal::UnknownSymbol,
                        format!(
                            "{name}: Unknown symbol {sym} (err -2): exported by module {m}, which is not in {}",
                            dir.unwrap_or_default()
                        ),
                    );
                } else if !providers.contains(&m) {
                    providers.push(m);
                }
            }
        }
        if let Some((_, r, msg)) = worst {
            if self.refusal.is_none() {
                self.refusal = Some((r, msg));
            }
        } else {
            self.note(
                "symbols",
                true,
                format!("all {} undefined symbols resolve", v.undefined.len()),
            );
        }
        providers
    }

    fn dependencies(
        &mut self,
        k: &KernelFacts,
        depends: &[String],
        earlier: &[&Loaded],
        providers: Vec<String>,
    ) -> Vec<String> {
        let loaded = |d: &str| earlier.iter().any(|l| l.name == d);
        let mut roots: Vec<String> = Vec::new();
        let mut missing = false;
        for d in depends {
            if loaded(d) {
                continue;
            }
            if k.modules.is_none() || k.module_path(d).is_some() {
                roots.push(d.clone());
            } else {
                // depmod follows symbols, not `depends=`: modprobe fails only through
                // an unresolved symbol, which the symbol check has judged already.
                missing = true;
                self.note(
                    "dependencies",
                    true,
                    format!(
                        "depends= names {d}, which is neither in {} nor given before it: depmod takes dependencies from symbols, so only a symbol it exports can be missing (see symbols)",
                        k.modules.as_ref().map(|t| t.dir.display().to_string()).unwrap_or_default()
                    ),
                );
            }
        }
        for p in providers {
            if !roots.contains(&p) {
                roots.push(p);
            }
        }
        let order = match k.load_order(&roots) {
            Ok(o) => o,
            Err(cycle) => {
                self.note(
                    "dependencies",
                    false,
                    format!("depmod: ERROR: {cycle}: depmod leaves these out of modules.dep and modprobe cannot load them; insmod in any order fails on the symbols of the other"),
                );
                return roots;
            }
        };
        if !order.is_empty() {
            self.note(
                "dependencies",
                true,
                format!("load first: {}", order.join(", ")),
            );
        } else if !depends.is_empty() && !missing {
            self.note(
                "dependencies",
                true,
                format!("depends on {}, loaded before it", depends.join(", ")),
            );
        }
        order
    }

    fn compression(&mut self, k: &KernelFacts, m: &ModuleFile) {
        use crate::modfile::compress::Compression as C;
        if m.compression == C::None {
            return;
        }
        let c = k.config();
        let format = m.compression.name();
        let in_kernel =
            c.enabled("CONFIG_MODULE_DECOMPRESS") && c.module_compression() == m.compression;
        let detail = if in_kernel {
            format!("{format}: the kernel decompresses it itself (CONFIG_MODULE_DECOMPRESS)")
        } else {
            format!(
                "{format}: the kernel cannot decompress it; kmod's modprobe/insmod do (built with {format} support, as Debian's is)"
            )
        };
        self.note("compression", true, detail);
    }
}

/// `EXPORT_SYMBOL_FOR_MODULES`: a `module:a,b*` namespace lets the named modules use
/// it without importing (kernel/module/main.c verify_module_namespace; tail globs).
fn module_namespace_allows(ns: &str, module: &str) -> bool {
    let Some(list) = ns.strip_prefix("module:") else {
        return false;
    };
    let n = crate::modfile::normalise;
    list.split(',').any(|p| match p.strip_suffix('*') {
        Some(prefix) => n(module).starts_with(&n(prefix)),
        None => n(p) == n(module),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_namespaces_match_names_and_tail_globs() {
        assert!(module_namespace_allows(
            "module:kvm,kvm-amd,kvm-intel",
            "kvm"
        ));
        assert!(module_namespace_allows("module:kvm*", "kvm_amd"));
        assert!(module_namespace_allows("module:kvm,kvm-amd", "kvm_amd"));
        assert!(!module_namespace_allows("module:kvm", "kvm_amd"));
        assert!(!module_namespace_allows("CXL", "cxl_core"));
    }

    #[test]
    fn licenses() {
        assert!(license_is_gpl_compatible("Dual MIT/GPL"));
        assert!(!license_is_gpl_compatible("MIT"));
        assert!(!license_is_gpl_compatible("unspecified"));
    }
}
