//! `cargo kmod install`: sign (before compressing), compress like the target kernel's
//! modules, place under /lib/modules/<R>/<dir>/, and run the real depmod.

use super::{built_module, run_tool};
use crate::error::{Error, Result};
use crate::kbuild::Project;
use crate::modfile::compress::Compression;
use crate::modfile::trailer;
use crate::sign::{Signing, cms::SignerIdKind};
use crate::target::Target;
use std::path::{Path, PathBuf};

/// The compression the kernel uses for its modules: its CONFIG_MODULE_COMPRESS_*,
/// else the suffix of its installed modules under `root`.
pub fn kernel_compression(root: &Path, target: &Target) -> Compression {
    if let Some(c) = &target.config {
        return c.module_compression();
    }
    let installed = root.join(format!("lib/modules/{}/kernel", target.release));
    walkdir::WalkDir::new(installed)
        .into_iter()
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".ko.xz") {
                Some(Compression::Xz)
            } else if n.ends_with(".ko.zst") {
                Some(Compression::Zstd)
            } else if n.ends_with(".ko.gz") {
                Some(Compression::Gzip)
            } else if n.ends_with(".ko") {
                Some(Compression::None)
            } else {
                None
            }
        })
        .unwrap_or(Compression::None)
}

pub fn suffix(c: Compression) -> &'static str {
    match c {
        Compression::None => ".ko",
        Compression::Xz => ".ko.xz",
        Compression::Zstd => ".ko.zst",
        Compression::Gzip => ".ko.gz",
    }
}

/// The installed file name and bytes: strip → sign → compress, in that order.
pub fn module_bytes(
    project: &Project,
    target: &Target,
    compression: Compression,
    signing: Option<&Signing>,
) -> Result<(String, Vec<u8>)> {
    let hash = signing.map(|s| s.hash_for(target)).transpose()?;
    let src = built_module(project, &target.release)?;
    let m = crate::modfile::ModuleFile::open(&src)?;
    let body = m.unsigned_body()?;
    let signed;
    let data: &[u8] = match signing.zip(hash) {
        Some((s, hash)) => {
            let cms = s.key.sign(hash, SignerIdKind::IssuerSerial, body)?;
            signed = trailer::append(body, &cms);
            &signed
        }
        None => &m.data,
    };
    let bytes = compression
        .compress(&[data])
        .map_err(|source| Error::Write {
            path: src.clone(),
            source,
        })?;
    Ok((format!("{}{}", project.name, suffix(compression)), bytes))
}

/// Installs into `<root>/lib/modules/<release>/<dir>/`, runs `depmod -b <root> <release>`
/// and checks that modules.dep lists the module. Replaces an earlier install.
pub fn install(
    project: &Project,
    target: &Target,
    root: &Path,
    dir: &str,
    signing: Option<&Signing>,
) -> Result<PathBuf> {
    let release = target.release.as_str();
    let compression = kernel_compression(root, target);
    let (file, bytes) = module_bytes(project, target, compression, signing)?;
    let moddir = root.join(format!("lib/modules/{release}"));
    let dest_dir = moddir.join(dir);
    std::fs::create_dir_all(&dest_dir).map_err(|source| Error::Write {
        path: dest_dir.clone(),
        source,
    })?;
    let dest = dest_dir.join(&file);
    crate::fsutil::write_atomic(&dest, &bytes, Some(0o644))?;
    // A different compression from an earlier install would be a second copy.
    for c in [
        Compression::None,
        Compression::Xz,
        Compression::Zstd,
        Compression::Gzip,
    ] {
        let other = dest_dir.join(format!("{}{}", project.name, suffix(c)));
        if other != dest && other.exists() {
            let _ = std::fs::remove_file(&other);
        }
    }
    run_tool(
        std::process::Command::new("depmod")
            .arg("-b")
            .arg(root)
            .arg(release),
        &moddir,
    )?;
    let dep = std::fs::read_to_string(moddir.join("modules.dep")).unwrap_or_default();
    let entry = format!("{dir}/{file}:");
    if !dep.lines().any(|l| l.starts_with(&entry)) {
        return Err(Error::Project {
            path: moddir.join("modules.dep"),
            reason: format!("depmod ran but modules.dep does not list {entry}"),
        });
    }
    Ok(dest)
}
