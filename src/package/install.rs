//! `cargo kmod install`: sign (before compressing), compress like the target kernel's
//! modules, place under /lib/modules/<R>/<dir>/, and run the real depmod.

use super::{BuiltModule, built_modules, run_tool};
use crate::error::{Error, Result};
use crate::modfile::compress::Compression;
use crate::modfile::trailer;
use crate::project::Project;
use crate::settings::Settings;
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

/// The installed file name and bytes of a built module: strip → sign → compress, in
/// that order.
pub fn module_bytes(
    s: &Settings,
    built: &BuiltModule,
    target: &Target,
    compression: Compression,
    signing: Option<&Signing>,
) -> Result<(String, Vec<u8>)> {
    let hash = signing.map(|s| s.hash_for(target)).transpose()?;
    let src = &built.path;
    let m = crate::modfile::ModuleFile::open(src, s.max_module_bytes)?;
    let body = m.unsigned_body()?;
    let signed;
    let data: &[u8] = match signing.zip(hash) {
        Some((s, hash)) => {
            let cms = s
                .key
                .sign_for(hash, SignerIdKind::IssuerSerial, body, Some(src))?;
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
    Ok((format!("{}{}", built.stem, suffix(compression)), bytes))
}

/// Every built module of a release, as installed files: (directory under
/// `/lib/modules/<release>/`, file name, bytes).
pub fn modules_bytes(
    s: &Settings,
    project: &Project,
    target: &Target,
    compression: Compression,
    signing: Option<&Signing>,
    default_dir: &str,
) -> Result<Vec<(String, String, Vec<u8>)>> {
    built_modules(project, &target.release)?
        .iter()
        .map(|m| {
            let (file, bytes) = module_bytes(s, m, target, compression, signing)?;
            Ok((m.install_dir(default_dir).to_string(), file, bytes))
        })
        .collect()
}

/// Installs every module into `<root>/lib/modules/<release>/<dir>/` (`dir`: `--dir`,
/// else the module's DEST_MODULE_LOCATION, else the project's install-dir), runs `depmod -b <root> <release>`
/// and checks that modules.dep lists the module. Replaces an earlier install. Every
/// write stays under `root`; when anything fails, what was written is taken back (the
/// module, directories made for it, an earlier install, depmod's files).
pub fn install(
    s: &Settings,
    project: &Project,
    target: &Target,
    root: &Path,
    dir: Option<&str>,
    signing: Option<&Signing>,
) -> Result<Vec<PathBuf>> {
    let release = target.release.as_str();
    let default_dir = dir.unwrap_or(&project.install_dir);
    crate::names::install_dir(default_dir).map_err(|reason| {
        Error::usage(
            reason,
            "give --dir updates or extra, or a plain relative install-dir",
        )
    })?;
    let compression = kernel_compression(root, target);
    let mut files = modules_bytes(s, project, target, compression, signing, default_dir)?;
    if let Some(d) = dir {
        // --dir puts every module there, whatever the project says.
        for f in &mut files {
            f.0 = d.to_string();
        }
    }
    let moddir = root.join(format!("lib/modules/{release}"));
    let mut undo = Undo {
        limit: s.max_module_bytes,
        ..Undo::default()
    };
    let r = (|| {
        // depmod's outputs as they were, to put back if it fails half-way.
        undo.keep_all(&moddir, |n| n.starts_with("modules."))?;
        let mut installed = Vec::new();
        for (dir, file, bytes) in &files {
            let dest_dir = moddir.join(dir);
            undo.make_dirs(root, &dest_dir)?;
            let dest = dest_dir.join(file);
            undo.keep(&dest)?;
            crate::fsutil::write_atomic(&dest, bytes, Some(0o644))?;
            // A different compression from an earlier install would be a second copy.
            let stem = file.split(".ko").next().unwrap_or(file);
            for c in [
                Compression::None,
                Compression::Xz,
                Compression::Zstd,
                Compression::Gzip,
            ] {
                let other = dest_dir.join(format!("{stem}{}", suffix(c)));
                if other != dest && other.exists() {
                    undo.keep(&other)?;
                    let _ = std::fs::remove_file(&other);
                }
            }
            installed.push((dir, file, dest));
        }
        run_tool(
            std::process::Command::new("depmod")
                .arg("-b")
                .arg(root)
                .arg(release),
            &moddir,
        )?;
        let dep = std::fs::read_to_string(moddir.join("modules.dep")).unwrap_or_default();
        for (dir, file, _) in &installed {
            let entry = format!("{dir}/{file}:");
            if !dep.lines().any(|l| l.starts_with(&entry)) {
                return Err(Error::Package {
                    path: moddir.join("modules.dep"),
                    reason: format!("depmod ran but modules.dep does not list {entry}"),
                    fix: "run `depmod -b ROOT RELEASE` by hand to see why; nothing was left installed"
                        .into(),
                });
            }
        }
        Ok(installed.into_iter().map(|(_, _, d)| d).collect())
    })();
    match r {
        Ok(dests) => Ok(dests),
        Err(e) => {
            undo.roll_back(&moddir);
            Err(e)
        }
    }
}

/// A file's bytes and mode, as they were.
type Kept = (Vec<u8>, u32);

/// What an install changed, to take it back.
#[derive(Default)]
struct Undo {
    /// Directories it made, deepest last.
    made: Vec<PathBuf>,
    /// Files as they were before (None: absent).
    files: Vec<(PathBuf, Option<Kept>)>,
    /// The names a directory held before depmod ran in it.
    listed: Option<std::collections::HashSet<std::ffi::OsString>>,
    /// The largest earlier install kept (`Settings::max_module_bytes`).
    limit: u64,
}

impl Undo {
    /// Makes `dir` and its missing parents, refusing a path that leaves `root`
    /// (a `..` or a symbolic link out of it).
    fn make_dirs(&mut self, root: &Path, dir: &Path) -> Result<()> {
        let werr = |path: &Path, source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        // The root itself is made when missing (and taken back with the rest).
        let mut missing_root = Vec::new();
        let mut r = root;
        while !r.as_os_str().is_empty() && !r.exists() {
            missing_root.push(r.to_path_buf());
            r = r.parent().unwrap_or(Path::new(""));
        }
        for d in missing_root.into_iter().rev() {
            std::fs::create_dir(&d).map_err(|e| werr(&d, e))?;
            self.made.push(d);
        }
        let canon_root = root.canonicalize().map_err(|e| werr(root, e))?;
        let mut missing = Vec::new();
        let mut existing = dir;
        while !existing.exists() {
            missing.push(existing.to_path_buf());
            existing = existing.parent().unwrap_or(root);
        }
        let canon = existing.canonicalize().map_err(|e| werr(existing, e))?;
        if !canon.starts_with(&canon_root) {
            return Err(Error::Package {
                path: dir.to_path_buf(),
                reason: format!(
                    "{} leads outside --root {} (to {})",
                    existing.display(),
                    root.display(),
                    canon.display()
                ),
                fix: "remove the symbolic link, or install with another --root".into(),
            });
        }
        for d in missing.into_iter().rev() {
            std::fs::create_dir(&d).map_err(|e| werr(&d, e))?;
            self.made.push(d);
        }
        Ok(())
    }

    fn keep(&mut self, path: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let before = match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => Some((
                crate::fsutil::read_bounded(path, self.limit)?,
                m.permissions().mode() & 0o7777,
            )),
            _ => None,
        };
        self.files.push((path.to_path_buf(), before));
        Ok(())
    }

    fn keep_all(&mut self, dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let n = e.file_name();
            if wanted(&n.to_string_lossy()) {
                self.keep(&e.path())?;
            }
            names.insert(n);
        }
        self.listed = Some(names);
        Ok(())
    }

    fn roll_back(self, moddir: &Path) {
        for (path, before) in self.files.iter().rev() {
            match before {
                Some((bytes, mode)) => {
                    let _ = crate::fsutil::write_atomic(path, bytes, Some(*mode));
                }
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        // depmod's temporary files (modules.dep.<pid>.<usec>.<sec>) and new outputs.
        if let Some(before) = &self.listed {
            for e in std::fs::read_dir(moddir).into_iter().flatten().flatten() {
                let n = e.file_name();
                if !before.contains(&n)
                    && n.to_string_lossy().starts_with("modules.")
                    && e.file_type().is_ok_and(|t| t.is_file())
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        for d in self.made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
