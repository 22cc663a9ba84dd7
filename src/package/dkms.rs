//! `cargo kmod package --dkms`: a DKMS source tree (`/usr/src/<name>-<version>/` layout)
//! and a tarball for `dkms ldtarball`. A project that is a DKMS tree already keeps its
//! own dkms.conf; others get one made from `templates/files/dkms.conf`.

use super::run_tool;
use crate::error::{Error, Result};
use crate::project::Project;
use std::path::{Path, PathBuf};

/// How the DKMS build must call Kbuild for this project.
#[derive(Debug, Clone, Default)]
pub struct Toolchain {
    /// `LLVM=` value (1, or a prefix like /usr/lib/llvm-19/bin/ when clang is not on PATH).
    pub llvm: Option<String>,
    /// Directory put first on PATH: DKMS appends `CC=clang LD=ld.lld` for clang-built
    /// kernels, which only work when those are on its PATH.
    pub path: Option<PathBuf>,
    /// The rustc that matches the target kernels (Rust modules).
    pub rustc: Option<PathBuf>,
    /// This tool, called by the MAKE line of a Rust module: a distribution's headers
    /// lack rust/, and `kernel prepare` gives the tree that has it (preparing it once).
    pub prepare: Option<PathBuf>,
}

/// A path as it can stand in dkms.conf's double-quoted MAKE line, which DKMS evaluates
/// as shell: only characters no shell reads specially.
fn shell_path(p: &Path) -> Result<String> {
    let s = p.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._+-,:@%".contains(c))
    {
        return Ok(s.into_owned());
    }
    Err(Error::Package {
        path: p.to_path_buf(),
        reason: "this path would go into dkms.conf, which DKMS runs as shell, and it holds characters a shell reads specially".into(),
        fix: "use a path of letters, digits and / . _ + - (rustc, the kernel's tools, cargo-kmod itself)".into(),
    })
}

pub fn dkms_conf(project: &Project, tc: &Toolchain) -> Result<String> {
    let make = match &tc.path {
        Some(p) => format!("make PATH={}:${{PATH}}", shell_path(p)?),
        None => "make".into(),
    };
    let mut extra = String::new();
    if let Some(l) = &tc.llvm {
        extra.push_str(&format!(" LLVM={}", shell_path(Path::new(l))?));
    }
    if let Some(r) = &tc.rustc {
        extra.push_str(&format!(" RUSTC={}", shell_path(r)?));
    }
    let kdir = match &tc.prepare {
        Some(exe) => format!(
            "$({} kmod kernel prepare --headers ${{kernel_source_dir}})",
            shell_path(exe)?
        ),
        None => "${kernel_source_dir}".into(),
    };
    // The modules the newest build made, where it made them; else one named after it.
    let modules = super::built_releases(project)
        .first()
        .and_then(|r| super::built_modules(project, r).ok())
        .map(|ms| {
            ms.into_iter()
                .map(|m| DkmsModule {
                    location: m
                        .built_location
                        .filter(|l| !l.is_empty())
                        .map(|l| format!("{}/", l.trim_end_matches('/'))),
                    name: m.stem,
                })
                .collect()
        })
        .unwrap_or_else(|| {
            vec![DkmsModule {
                name: project.name.clone(),
                location: None,
            }]
        });
    Ok(crate::templates::render(&DkmsConf {
        name: project.name.clone(),
        version: project.version.clone(),
        modules,
        make,
        kdir,
        extra,
        rust: project.is_rust(),
        // A regular expression over `uname -m`, set only when the project asks.
        exclusive_arch: (!project.dkms_arch.is_empty()).then(|| {
            let names: Vec<&str> = project.dkms_arch.iter().map(|a| a.uname()).collect();
            format!("^({})$", names.join("|"))
        }),
    }))
}

/// A module in a dkms.conf: BUILT_MODULE_NAME and BUILT_MODULE_LOCATION.
#[derive(serde::Serialize)]
pub struct DkmsModule {
    pub name: String,
    pub location: Option<String>,
}

/// `dkms.conf`. `make`, `kdir` and `extra` are shell text made of checked parts.
#[derive(serde::Serialize)]
pub struct DkmsConf {
    pub name: String,
    pub version: String,
    /// Every module, and where in the tree the build makes it.
    pub modules: Vec<DkmsModule>,
    pub make: String,
    pub kdir: String,
    pub extra: String,
    pub rust: bool,
    pub exclusive_arch: Option<String>,
}

impl crate::templates::Generated for DkmsConf {
    const TEMPLATE: &'static str = "dkms.conf";
    fn example() -> Self {
        DkmsConf {
            name: "hello".into(),
            version: "0.1.0".into(),
            modules: vec![
                DkmsModule {
                    name: "hello".into(),
                    location: None,
                },
                DkmsModule {
                    name: "hello_helper".into(),
                    location: Some("helper/".into()),
                },
            ],
            make: "make PATH=/usr/lib/llvm-19/bin:${PATH}".into(),
            kdir: "${kernel_source_dir}".into(),
            extra: " LLVM=1 RUSTC=/usr/bin/rustc".into(),
            rust: true,
            exclusive_arch: Some("^(aarch64)$".into()),
        }
    }
}

/// Writes `<out>/<name>-<version>/` and `<out>/<name>-<version>.dkms.tar.gz`.
pub fn package(project: &Project, out: &Path, tc: &Toolchain) -> Result<(PathBuf, PathBuf)> {
    let werr = |p: &Path, source| Error::Write {
        path: p.to_path_buf(),
        source,
    };
    let base = format!("{}-{}", project.name, project.version);
    let tree = out.join(&base);
    // The tarball holds dkms_source_tree/, the layout `dkms ldtarball` takes.
    let staging = tempfile::tempdir_in(super::out_dir(out)?).map_err(|e| werr(out, e))?;
    let src_tree = staging.path().join("dkms_source_tree");
    match &project.source {
        // A DKMS tree already: all of it, its own dkms.conf saying how it builds.
        crate::project::Source::Dkms { .. } => {
            crate::fsutil::sync_tree(&project.dir, &src_tree, &[&project.target_dir, out])?;
            let _ = std::fs::remove_file(src_tree.join("Cargo.toml"));
        }
        crate::project::Source::Kbuild => {
            // The whole project: its modules may be built in subdirectories.
            crate::fsutil::sync_tree(&project.dir, &src_tree, &[&project.target_dir, out])?;
            std::fs::write(src_tree.join("dkms.conf"), dkms_conf(project, tc)?)
                .map_err(|e| werr(&src_tree, e))?;
        }
    }
    let tarball = out.join(format!("{base}.dkms.tar.gz"));
    let tmp_tar = staging.path().join("t.tar.gz");
    run_tool(
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tmp_tar)
            .arg("-C")
            .arg(staging.path())
            .arg("dkms_source_tree"),
        &tarball,
    )?;
    // Replace an earlier tree whole: the new one is complete before the old goes.
    let new_tree = staging.path().join("tree");
    std::fs::rename(&src_tree, &new_tree).map_err(|e| werr(&new_tree, e))?;
    let old = staging.path().join("old");
    if tree.exists() {
        std::fs::rename(&tree, &old).map_err(|e| werr(&tree, e))?;
    }
    std::fs::rename(&new_tree, &tree).map_err(|e| werr(&tree, e))?;
    std::fs::rename(&tmp_tar, &tarball).map_err(|e| werr(&tarball, e))?;
    Ok((tree, tarball))
}
