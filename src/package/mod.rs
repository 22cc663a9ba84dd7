//! After the build: installing modules where modprobe finds them, DKMS source trees,
//! and .deb packages.

pub mod deb;
pub mod dkms;
pub mod install;

use crate::error::{Error, Result};
use crate::kbuild::Project;
use std::path::{Path, PathBuf};

/// The module `cargo kmod build` made for `release`.
pub fn built_module(project: &Project, release: &str) -> Result<PathBuf> {
    let p = project
        .target_dir
        .join("kmod")
        .join(release)
        .join(format!("{}.ko", project.name));
    if !p.is_file() {
        return Err(Error::Project {
            path: p,
            reason: format!("no module built for {release}"),
        });
    }
    Ok(p)
}

/// Releases with a built module, from `target/kmod/<release>/`.
pub fn built_releases(project: &Project) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(project.target_dir.join("kmod"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "build")
        .filter(|e| e.path().join(format!("{}.ko", project.name)).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs a tool, turning failure into an error that names it and shows its output.
pub(crate) fn run_tool(cmd: &mut std::process::Command, what: &Path) -> Result<String> {
    let out = cmd.output().map_err(|e| Error::Project {
        path: what.to_path_buf(),
        reason: format!("cannot run {:?}: {e}", cmd.get_program()),
    })?;
    if !out.status.success() {
        return Err(Error::Project {
            path: what.to_path_buf(),
            reason: format!(
                "{:?} failed: {}{}",
                cmd.get_program(),
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
