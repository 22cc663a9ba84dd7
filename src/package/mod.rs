//! After the build: installing modules where modprobe finds them, DKMS source trees,
//! and .deb packages.

pub mod deb;
pub mod dkms;
pub mod install;
pub mod oci;
pub mod rpm;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::target::Target;
use std::path::{Path, PathBuf};

/// A module `cargo kmod build` made for a release.
#[derive(Debug, Clone)]
pub struct BuiltModule {
    pub path: PathBuf,
    /// Its file name without `.ko`: what it installs as.
    pub stem: String,
    /// `DEST_MODULE_LOCATION` (`/extra`), when the project says where it installs.
    pub dest_location: Option<String>,
    /// Where a Kbuild project's build made it, relative to the project (`a/`).
    pub built_location: Option<String>,
}

impl BuiltModule {
    /// The directory under `/lib/modules/<release>/` it installs into: its
    /// DEST_MODULE_LOCATION, else `default`.
    pub fn install_dir<'a>(&'a self, default: &'a str) -> &'a str {
        self.dest_location
            .as_deref()
            .map(|d| d.trim_matches('/'))
            .filter(|d| !d.is_empty())
            .unwrap_or(default)
    }
}

/// Every module `cargo kmod build` made for `release`, as its record lists them (one
/// named after the project, for a build made before there was a record).
pub fn built_modules(project: &Project, release: &str) -> Result<Vec<BuiltModule>> {
    let record = project.built_record(release);
    let Ok(text) = crate::fsutil::read_bounded(&record, 1 << 20) else {
        let path = built_module(project, release)?;
        return Ok(vec![BuiltModule {
            stem: project.name.clone(),
            path,
            dest_location: None,
            built_location: None,
        }]);
    };
    let bad = |reason: String| Error::Package {
        path: record.clone(),
        reason,
        fix: format!("run `cargo kmod build` for {release} again"),
    };
    let v: Vec<crate::project::ModuleRecord> = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("not the record build writes: {e}")))?;
    let mut out = Vec::new();
    for m in v {
        let stem = m.file.strip_suffix(".ko").unwrap_or_default();
        crate::names::package_name(stem).map_err(bad)?;
        for d in [&m.dest_location, &m.built_location].into_iter().flatten() {
            let d = d.trim_matches('/');
            if !d.is_empty() {
                crate::names::install_dir(d).map_err(bad)?;
            }
        }
        let path = project.out_dir(release).join(&m.file);
        if !path.is_file() {
            return Err(bad(format!("{} is listed but missing", path.display())));
        }
        out.push(BuiltModule {
            path,
            stem: stem.to_string(),
            dest_location: m.dest_location,
            built_location: m.built_location,
        });
    }
    if out.is_empty() {
        return Err(bad(format!("no module built for {release}")));
    }
    Ok(out)
}

/// The module `cargo kmod build` made for `release`, named after the project.
pub fn built_module(project: &Project, release: &str) -> Result<PathBuf> {
    let p = project.built_module(release);
    if !p.is_file() {
        return Err(Error::Package {
            path: p,
            reason: format!("no module built for {release}"),
            fix: format!("run `cargo kmod build` for {release} first (--kdir or --kernel-release)"),
        });
    }
    Ok(p)
}

/// The kernel a built module was made for: the tree `build` recorded beside it, else
/// what `/lib/modules/<release>` says.
pub fn built_target(project: &Project, release: &str) -> Target {
    let record = project.built_for(release);
    std::fs::read_to_string(record)
        .ok()
        .and_then(|k| Target::from_tree(Path::new(k.trim())).ok())
        .filter(|t| t.release == release)
        .unwrap_or_else(|| Target::from_release(Path::new("/"), release))
}

/// `s` with every character but ASCII letters, digits and `allowed` replaced: package
/// names and image tags each take their own set.
pub(crate) fn name_chars(s: &str, allowed: &str, replacement: char) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || allowed.contains(c) {
                c
            } else {
                replacement
            }
        })
        .collect()
}

/// The output directory, made when missing; refused when something else has its name.
pub(crate) fn out_dir(out: &Path) -> Result<&Path> {
    if out.exists() && !out.is_dir() {
        return Err(Error::Package {
            path: out.to_path_buf(),
            reason: "exists and is not a directory".into(),
            fix: "give --out a directory (packages are written into it), or remove the file".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(out)
}

/// The releases to package: those given; else those of the project's `kdir` metadata
/// that are built; else the last `build`'s; else every one built.
pub fn releases(project: &Project, given: &[String]) -> Result<Vec<String>> {
    let built = built_releases(project);
    let of_metadata: Vec<String> = project
        .kdirs
        .iter()
        .filter_map(|k| crate::target::Target::from_tree(k).ok())
        .map(|t| t.release)
        .filter(|r| built.contains(r))
        .collect();
    let last: Vec<String> = std::fs::read_to_string(project.last_build())
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .filter(|r| built.contains(r))
        .collect();
    let v = if !given.is_empty() {
        given.to_vec()
    } else if !of_metadata.is_empty() {
        of_metadata
    } else if !last.is_empty() {
        last
    } else {
        built
    };
    if v.is_empty() {
        return Err(Error::Package {
            path: project.kmod_dir(),
            reason: format!("no module of {} built yet", project.name),
            fix: "run `cargo kmod build` first".into(),
        });
    }
    Ok(v)
}

/// Releases with a built module, from `target/kmod/<release>/`.
pub fn built_releases(project: &Project) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(project.kmod_dir())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Only names a release can have: a directory made by hand is not one, and a
        // release reaches paths and maintainer scripts.
        .filter(|r| {
            crate::names::release(r).is_ok()
                && (project.built_record(r).is_file() || project.built_module(r).is_file())
        })
        .collect();
    v.sort();
    v
}

/// Runs a tool, turning failure into an error that names it and shows its output.
/// `what` is the file the tool was making.
pub(crate) fn run_tool(cmd: &mut std::process::Command, what: &Path) -> Result<String> {
    let tool = Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Toolchain {
            missing: vec![tool.clone()],
            install: format!(
                "apt-get install {}",
                debian_package(&tool).unwrap_or(tool.as_str())
            ),
        },
        _ => Error::Package {
            path: what.to_path_buf(),
            reason: format!("cannot run {tool}: {e}"),
            fix: format!("check that {tool} runs"),
        },
    })?;
    if !out.status.success() {
        return Err(Error::Package {
            path: what.to_path_buf(),
            reason: format!(
                "{tool} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
            fix: format!("the lines above are {tool}'s; nothing was written"),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Debian package that has a packaging tool.
fn debian_package(tool: &str) -> Option<&'static str> {
    Some(match tool {
        "depmod" => "kmod",
        "dpkg-deb" | "dpkg" => "dpkg",
        "rpmbuild" | "rpmsign" => "rpm",
        "tar" => "tar",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::templates::{Generated, generated_templates, render};

    fn rendered<T: Generated>() -> (String, String) {
        (T::TEMPLATE.to_string(), render(&T::example()))
    }

    /// Every file under templates/files/ has one type of values, and renders from it
    /// (strict undefined: a name the template uses but the type lacks fails here).
    #[test]
    fn every_generated_file_renders_from_its_type() {
        let all = [
            rendered::<super::deb::Control>(),
            rendered::<super::deb::Maintscript>(),
            rendered::<super::dkms::DkmsConf>(),
            rendered::<super::oci::KmmModule>(),
            rendered::<super::rpm::KmodSpec>(),
            rendered::<super::rpm::AkmodSpec>(),
            rendered::<crate::qemu::GuestInit>(),
            rendered::<crate::qemu::uefi::GrubCfg>(),
            rendered::<crate::dkms::conf::ReadConf>(),
            rendered::<crate::dkms::conf::VarsPrelude>(),
            rendered::<crate::dkms::build::Step>(),
            rendered::<crate::dkms::AdoptManifest>(),
        ];
        let mut typed: Vec<String> = all.iter().map(|(t, _)| t.clone()).collect();
        typed.sort();
        assert_eq!(
            typed,
            generated_templates(),
            "a template without a type, or a type without a template"
        );
        for (t, text) in &all {
            assert!(!text.trim().is_empty(), "{t} rendered empty");
        }
        let spec = &all[4].1;
        assert!(spec.contains("Hello, 100%%."), "RPM text escapes %: {spec}");
        assert!(
            all[2].1.contains("BUILD_EXCLUSIVE_ARCH=\"^(aarch64)$\""),
            "{}",
            all[2].1
        );
    }
}
