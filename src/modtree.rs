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
    /// Indexes every module under `dir` (the first file of each name).
    pub fn open(dir: &Path) -> Result<ModuleTree> {
        if !dir.is_dir() {
            return Err(Error::KernelFacts {
                path: dir.to_path_buf(),
                reason: "not a directory".into(),
                fix: "give the kernel's module tree (/lib/modules/<release>, or one unpacked from its package)".into(),
            });
        }
        let mut modules = HashMap::new();
        for p in crate::tree::walk(&[dir.to_path_buf()])
            .modules
            .into_iter()
            .flatten()
        {
            modules
                .entry(crate::check::symvers::module_name(&p.to_string_lossy()))
                .or_insert(p);
        }
        Ok(ModuleTree {
            dir: dir.to_path_buf(),
            modules,
            depends: Mutex::default(),
        })
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
            .get(&name.replace('-', "_"))
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
            .and_then(|p| crate::modfile::ModuleFile::read(p).ok())
            .and_then(|m| depends_field(&m))
            .unwrap_or_default();
        self.remember_depends(name, d.clone());
        d
    }

    /// `roots` and what they depend on, dependencies first (as `modprobe
    /// --show-depends` lists them).
    pub fn load_order(&self, roots: &[String]) -> Vec<String> {
        fn visit(t: &ModuleTree, m: &str, seen: &mut Vec<String>, out: &mut Vec<String>) {
            if seen.iter().any(|s| s == m) {
                return;
            }
            seen.push(m.to_string());
            for d in t.depends_of(m) {
                visit(t, &d, seen, out);
            }
            out.push(m.to_string());
        }
        let (mut seen, mut out) = (Vec::new(), Vec::new());
        for r in roots {
            visit(self, r, &mut seen, &mut out);
        }
        out
    }
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
        .map(|s| s.replace('-', "_"))
        .collect()
}
