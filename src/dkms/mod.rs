//! Projects as they already are: DKMS trees (a `dkms.conf` read per kernel as DKMS
//! reads it, [`conf`]; built as DKMS builds them, [`build`]) and Kbuild directories,
//! loaded without a Cargo.toml or adopted by `cargo kmod init`, which writes one.

pub mod build;
pub mod conf;

use crate::error::{Error, Result};
use crate::project::{Project, Source};
use crate::settings::Settings;
use std::path::{Path, PathBuf};

/// The project for a command run in `cwd`: the one `manifest` (or a Cargo.toml in
/// `cwd` or above) describes; in a directory with a dkms.conf and no Cargo.toml, the
/// dkms.conf's package.
pub fn load_project(s: &Settings, cwd: &Path, manifest: Option<&Path>) -> Result<Project> {
    if manifest.is_none() && !cwd.join("Cargo.toml").exists() && cwd.join("dkms.conf").is_file() {
        let c = read_for_host(s, cwd)?;
        return Project::of_dkms_tree(cwd, c.package_name, c.package_version);
    }
    Project::load(cwd, manifest)
}

/// A dkms.conf read for the kernel this machine runs (its name and version do not
/// depend on the kernel in any tree seen: they name the package).
fn read_for_host(s: &Settings, dir: &Path) -> Result<conf::DkmsConf> {
    let release = crate::target::running_release();
    let ksrc = PathBuf::from(format!("/lib/modules/{release}/build"));
    conf::DkmsConf::read(
        &dir.join("dkms.conf"),
        &conf::Vars {
            kernelver: &release,
            arch: crate::arch::Arch::host().map_or("unknown", |a| a.uname()),
            kernel_source_dir: &ksrc,
            dkms_tree: &dir.join("target/kmod/build"),
            source_tree: dir.parent().unwrap_or(dir),
            module: "",
            module_version: "",
            path: &s.path,
        },
    )
}

/// The Cargo.toml `cargo kmod init` writes into an existing directory: a manifest
/// without `[package]` (plain cargo builds nothing there), its `[workspace.metadata.kmod]`.
#[derive(Debug, serde::Serialize)]
pub struct AdoptManifest {
    pub name: String,
    pub version: String,
    pub modules: Vec<String>,
    pub kdirs: Vec<String>,
    pub dkms: bool,
}

impl crate::templates::Generated for AdoptManifest {
    const TEMPLATE: &'static str = "adopt/Cargo.toml";
    fn example() -> Self {
        AdoptManifest {
            name: "jool-dkms".into(),
            version: "4.1.9".into(),
            modules: vec!["jool_common".into(), "jool".into()],
            kdirs: vec!["/usr/src/linux-headers-6.1.0-57-amd64".into()],
            dkms: true,
        }
    }
}

/// What `init` adopted.
#[derive(Debug)]
pub struct Adopted {
    pub manifest: PathBuf,
    pub values: AdoptManifest,
}

/// `cargo kmod init` in a directory that already holds a module project: writes its
/// Cargo.toml and touches no other file. Its name and version come from its dkms.conf
/// when it has one (else `name`, else the directory's name, and 0.1.0), its modules
/// from the dkms.conf's BUILT_MODULE_NAMEs or the `obj-m` lines of its Kbuild or
/// Makefile. Refused, saying why, where Kbuild has nothing to build.
pub fn adopt(s: &Settings, dir: &Path, name: Option<&str>, kdirs: &[PathBuf]) -> Result<Adopted> {
    let manifest = dir.join("Cargo.toml");
    if manifest.exists() {
        return Err(Error::Project {
            path: manifest,
            reason: "already a project: init writes a Cargo.toml only where there is none".into(),
        });
    }
    let dir_name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let values = match Source::of(dir) {
        Source::Dkms { .. } => {
            let c = read_for_host(s, dir)?;
            AdoptManifest {
                name: c.package_name,
                version: c.package_version,
                modules: c.modules.into_iter().map(|m| m.dest_name).collect(),
                kdirs: Vec::new(),
                dkms: true,
            }
        }
        Source::Kbuild => {
            let modules = kbuild_modules(dir);
            if modules.is_empty() {
                return Err(Error::Project {
                    path: dir.to_path_buf(),
                    reason: "nothing Kbuild can build here: no dkms.conf, and no Kbuild or Makefile with an obj-m line".into(),
                });
            }
            AdoptManifest {
                name: name.map_or(dir_name, str::to_string),
                version: "0.1.0".into(),
                modules,
                kdirs: Vec::new(),
                dkms: false,
            }
        }
    };
    let values = AdoptManifest {
        kdirs: kdirs.iter().map(|k| k.display().to_string()).collect(),
        ..values
    };
    let refuse = |field: &str, reason: String| Error::Project {
        path: dir.to_path_buf(),
        reason: format!("{field}: {reason}"),
    };
    crate::names::package_name(&values.name).map_err(|r| refuse("name", r))?;
    crate::names::version(&values.version).map_err(|r| refuse("version", r))?;
    for m in &values.modules {
        crate::names::package_name(m).map_err(|r| refuse("module", r))?;
    }
    crate::fsutil::write_atomic(
        &manifest,
        crate::templates::render(&values).as_bytes(),
        None,
    )?;
    Ok(Adopted { manifest, values })
}

/// The modules a Kbuild (else Makefile) names on its `obj-m`/`obj-$(CONFIG_…)` lines:
/// `foo.o` is module `foo`; a `sub/` entry (on those lines or `obj-y`) is looked into.
fn kbuild_modules(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let text = ["Kbuild", "Makefile"]
            .iter()
            .find_map(|f| crate::fsutil::read_bounded(&d.join(f), 1 << 20).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        // Continuation lines joined, as make reads them.
        let text = text.replace("\\\n", " ");
        for line in text.lines() {
            let Some((lhs, rhs)) = line.split_once('=') else {
                continue;
            };
            let lhs = lhs.trim().trim_end_matches([':', '+']).trim();
            // obj-y names the subdirectories Kbuild descends into.
            if !(lhs == "obj-m" || lhs == "obj-y" || lhs.starts_with("obj-$(")) {
                continue;
            }
            for word in rhs.split_whitespace() {
                if let Some(m) = word.strip_suffix(".o") {
                    found.push(m.to_string());
                } else if let Some(sub) = word.strip_suffix('/')
                    && !sub.contains("..")
                    && dirs.len() + found.len() < 1000
                {
                    dirs.push(d.join(sub));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}
