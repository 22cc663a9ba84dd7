//! A kernel's module tree (`/lib/modules/<release>`, or one unpacked from its
//! package): its modules by name, and their `depends:` as modprobe follows them.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct ModuleTree {
    pub dir: PathBuf,
    /// Module name (`_` for `-`) → its file.
    modules: HashMap<String, PathBuf>,
    /// `depends=` of its modules, read once each.
    depends: Mutex<HashMap<String, Vec<String>>>,
}

impl ModuleTree {
    /// Indexes every module under `dir`; of two files with one name, the one depmod
    /// keeps (its `search` order: `updates` before the kernel's own by default).
    pub fn open(dir: &Path) -> Result<ModuleTree> {
        if !dir.is_dir() {
            return Err(Error::KernelFacts {
                path: dir.to_path_buf(),
                reason: "not a directory".into(),
                fix: "give the kernel's module tree (/lib/modules/<release>, or one unpacked from its package)".into(),
            });
        }
        let search = SearchOrder::of_tree(dir);
        let mut modules: HashMap<String, (usize, PathBuf)> = HashMap::new();
        for p in crate::tree::walk(&[dir.to_path_buf()])
            .modules
            .into_iter()
            .flatten()
        {
            let rank = search.rank(p.strip_prefix(dir).unwrap_or(&p));
            let name = crate::modfile::name_of_path(&p.to_string_lossy());
            // Sorted walk: of equal rank, the first stays.
            if modules.get(&name).is_none_or(|(r, _)| rank < *r) {
                modules.insert(name, (rank, p));
            }
        }
        Ok(ModuleTree {
            dir: dir.to_path_buf(),
            modules: modules.into_iter().map(|(n, (_, p))| (n, p)).collect(),
            depends: Mutex::default(),
        })
    }

    /// A tree of no files, whose `depends:` are only those remembered (tests, fuzzing).
    pub fn empty(dir: &Path) -> ModuleTree {
        ModuleTree {
            dir: dir.to_path_buf(),
            modules: HashMap::new(),
            depends: Mutex::default(),
        }
    }

    /// `/lib/modules/<release>`, when there is one.
    pub fn installed(release: &str) -> Result<Option<ModuleTree>> {
        let d = PathBuf::from(format!("/lib/modules/{release}"));
        if release.is_empty() || !d.is_dir() {
            return Ok(None);
        }
        ModuleTree::open(&d).map(Some)
    }

    pub fn path(&self, name: &str) -> Option<&Path> {
        self.modules
            .get(&crate::modfile::normalise(name))
            .map(PathBuf::as_path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.modules.values()
    }

    /// Remembers a module's `depends=` (one read anyway need not be read again).
    pub fn remember_depends(&self, name: &str, depends: Vec<String>) {
        self.depends
            .lock()
            .expect("not poisoned")
            .insert(name.to_string(), depends);
    }

    fn depends_of(&self, name: &str) -> Vec<String> {
        if let Some(d) = self.depends.lock().expect("not poisoned").get(name) {
            return d.clone();
        }
        let d = self
            .path(name)
            .and_then(|p| {
                crate::modfile::ModuleFile::read(p, crate::settings::DEFAULT_MAX_MODULE_BYTES).ok()
            })
            .and_then(|m| depends_field(&m))
            .unwrap_or_default();
        self.remember_depends(name, d.clone());
        d
    }

    /// `roots` and what they depend on, dependencies first (as `modprobe
    /// --show-depends` lists them). Iterative (a chain of any depth), each module
    /// visited once. A cycle (fat -> vfat -> fat) is refused as depmod refuses it.
    pub fn load_order(&self, roots: &[String]) -> std::result::Result<Vec<String>, Cycle> {
        #[derive(PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut mark: HashMap<String, Mark> = HashMap::new();
        let mut out = Vec::new();
        for r in roots {
            if mark.contains_key(r) {
                continue;
            }
            // The path from the root to where the walk is, each with its pending depends.
            let mut path: Vec<(String, std::vec::IntoIter<String>)> = Vec::new();
            mark.insert(r.clone(), Mark::Open);
            path.push((r.clone(), self.depends_of(r).into_iter()));
            while let Some((_, pending)) = path.last_mut() {
                match pending.next() {
                    Some(d) => match mark.get(&d) {
                        Some(Mark::Done) => {}
                        Some(Mark::Open) => {
                            let from = path.iter().position(|(m, _)| *m == d).unwrap_or(0);
                            let mut chain: Vec<String> =
                                path[from..].iter().map(|(m, _)| m.clone()).collect();
                            chain.push(d);
                            return Err(Cycle(chain));
                        }
                        None => {
                            mark.insert(d.clone(), Mark::Open);
                            let deps = self.depends_of(&d).into_iter();
                            path.push((d, deps));
                        }
                    },
                    None => {
                        let (m, _) = path.pop().expect("not empty");
                        mark.insert(m.clone(), Mark::Done);
                        out.push(m);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `modules` in an order they load in: each after those of them it depends on (jool
/// after jool_common), otherwise as given; modules that depend on each other in a
/// circle are refused as depmod refuses them.
pub fn order_files(modules: &[PathBuf], max_module_bytes: u64) -> Result<Vec<PathBuf>> {
    let tree = ModuleTree::empty(Path::new("the modules given"));
    let mut names = Vec::new();
    for p in modules {
        let m = crate::modfile::ModuleFile::open(p, max_module_bytes)?;
        let name = crate::modfile::name_of_path(&p.to_string_lossy());
        tree.remember_depends(&name, depends_field(&m).unwrap_or_default());
        names.push(name);
    }
    let order = tree.load_order(&names).map_err(|cycle| Error::KernelFacts {
        path: modules.first().cloned().unwrap_or_default(),
        reason: format!("depmod: ERROR: {cycle}"),
        fix: "modules that depend on each other in a circle cannot be loaded; rebuild them so that one does not need the other".into(),
    })?;
    // Every one given stays, those of one name together.
    Ok(order
        .iter()
        .flat_map(|n| {
            names
                .iter()
                .zip(modules)
                .filter(move |(m, _)| *m == n)
                .map(|(_, p)| p.clone())
        })
        .collect())
}

/// Modules that depend on each other in a circle: the chain, its first module last too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // depmod's words: "depmod: ERROR: Cycle detected: fat -> vfat -> fat".
        write!(f, "Cycle detected: {}", self.0.join(" -> "))
    }
}

/// depmod's `search` order (depmod.d(5)): directories under the module tree, first
/// wins; `built-in` stands for every other. Without a `search` line: `updates`, then
/// `built-in` (kmod's depmod.c).
struct SearchOrder(Vec<String>);

impl SearchOrder {
    const BUILT_IN: &str = "built-in";

    /// The `search` lines of the depmod.d files of the system the tree belongs to:
    /// `<root>/lib/modules/<release>` (or `usr/lib/modules`) has its configuration
    /// under `<root>`.
    fn of_tree(dir: &Path) -> SearchOrder {
        let root = dir
            .parent()
            .filter(|p| p.ends_with("lib/modules"))
            .and_then(|p| p.parent()?.parent())
            .map(|r| {
                if r.ends_with("usr") {
                    r.parent().unwrap_or(r)
                } else {
                    r
                }
            });
        let mut entries = Vec::new();
        if let Some(root) = root {
            for text in depmod_d_files(root) {
                for line in text.lines() {
                    let mut words = line.split_whitespace();
                    if words.next() == Some("search") {
                        entries.extend(words.map(|w| w.trim_end_matches('/').to_string()));
                    }
                }
            }
        }
        if entries.is_empty() {
            entries = vec!["updates".into(), Self::BUILT_IN.into()];
        }
        SearchOrder(entries)
    }

    /// Lower is preferred: the index of the first entry the path is under, else
    /// `built-in`'s, else after all.
    fn rank(&self, rel: &Path) -> usize {
        let builtin = self.0.iter().position(|e| e == Self::BUILT_IN);
        self.0
            .iter()
            .position(|e| e != Self::BUILT_IN && rel.starts_with(e))
            .or(builtin)
            .unwrap_or(self.0.len())
    }
}

/// The depmod.d configuration of the system at `root`, in the order depmod reads it:
/// by file name, a name in an earlier directory hiding the same name in later ones.
fn depmod_d_files(root: &Path) -> Vec<String> {
    let mut by_name: std::collections::BTreeMap<std::ffi::OsString, PathBuf> = Default::default();
    for d in ["etc", "run", "usr/local/lib", "usr/lib", "lib"] {
        for e in std::fs::read_dir(root.join(d).join("depmod.d"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = e.file_name();
            if n.to_string_lossy().ends_with(".conf") {
                by_name.entry(n).or_insert(e.path());
            }
        }
    }
    by_name
        .values()
        .filter_map(|p| crate::fsutil::read_bounded(p, 1 << 20).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// A module's `depends=` field, split.
pub fn depends_field(m: &crate::modfile::ModuleFile) -> Option<Vec<String>> {
    let info = m.elf().ok()?;
    crate::modfile::elf::modinfo_fields(info.modinfo)
        .into_iter()
        .find(|(k, _)| k == "depends")
        .map(|(_, v)| split_depends(&v))
}

/// `depends=a,b-c` → `[a, b_c]`.
pub fn split_depends(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(crate::modfile::normalise)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(deps: &[(&str, &[&str])]) -> (tempfile::TempDir, ModuleTree) {
        let d = tempfile::tempdir().unwrap();
        let t = ModuleTree::empty(d.path());
        for (m, ds) in deps {
            t.remember_depends(m, ds.iter().map(|s| s.to_string()).collect());
        }
        (d, t)
    }

    /// Regression: a chain 10,000 deep overflowed the stack (SIGABRT) and took O(n²).
    #[test]
    fn a_deep_chain_loads_deepest_first() {
        let (_d, t) = tree(&[]);
        let n = 100_000;
        for i in 0..n {
            let next = if i + 1 < n {
                vec![format!("m{}", i + 1)]
            } else {
                vec![]
            };
            t.remember_depends(&format!("m{i}"), next);
        }
        let started = std::time::Instant::now();
        let order = t.load_order(&["m0".to_string()]).unwrap();
        assert_eq!(order.len(), n);
        assert_eq!(order[0], format!("m{}", n - 1));
        assert_eq!(order[n - 1], "m0");
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn a_cycle_is_named_and_no_module_is_its_own_prerequisite() {
        let (_d, t) = tree(&[("fat", &["vfat"]), ("vfat", &["fat"])]);
        let c = t.load_order(&["vfat".to_string()]).unwrap_err();
        assert_eq!(c.to_string(), "Cycle detected: vfat -> fat -> vfat");
        let (_d, t) = tree(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(t.load_order(&["a".to_string()]).unwrap(), ["c", "b", "a"]);
    }

    /// Regression: `kernel/` won over `updates/` (sorted order); depmod takes updates/.
    #[test]
    fn updates_wins_over_the_kernels_own_and_depmod_d_can_change_it() {
        let root = tempfile::tempdir().unwrap();
        let moddir = root.path().join("lib/modules/6.1.0-57-amd64");
        for d in ["kernel/fs/fat", "updates", "extra"] {
            std::fs::create_dir_all(moddir.join(d)).unwrap();
        }
        // Only the paths matter here: the walk lists files by their names.
        for f in ["kernel/fs/fat/fat.ko", "updates/fat.ko", "extra/fat.ko"] {
            std::fs::write(moddir.join(f), b"\x7fELF").unwrap();
        }
        let t = ModuleTree::open(&moddir).unwrap();
        assert_eq!(t.path("fat").unwrap(), moddir.join("updates/fat.ko"));
        std::fs::create_dir_all(root.path().join("etc/depmod.d")).unwrap();
        std::fs::write(
            root.path().join("etc/depmod.d/x.conf"),
            "# extra first\nsearch extra built-in\n",
        )
        .unwrap();
        let t = ModuleTree::open(&moddir).unwrap();
        assert_eq!(t.path("fat").unwrap(), moddir.join("extra/fat.ko"));
    }
}
