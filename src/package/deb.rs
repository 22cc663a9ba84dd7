//! `cargo kmod package --deb`: one binary package per kernel release, holding the
//! (signed) module under /lib/modules/<R>/updates/ and running depmod.

use super::install::{kernel_compression, module_bytes};
use super::run_tool;
use crate::error::{Error, Result};
use crate::kbuild::Project;
use crate::sign::Signing;
use crate::target::Target;
use std::path::{Path, PathBuf};

/// Debian package names: lowercase letters, digits, `+ - .`.
pub fn package_name(project: &Project, release: &str) -> String {
    format!("{}-modules-{}", project.name, release)
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The kernel image package, when apt or dpkg knows one for this release.
fn image_package(release: &str) -> Option<String> {
    let name = format!("linux-image-{release}");
    let known = |cmd: &mut std::process::Command| {
        cmd.output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
    };
    (known(std::process::Command::new("dpkg-query").args(["-W", "-f", "${Package}", &name]))
        || known(std::process::Command::new("apt-cache").args([
            "show",
            "--no-all-versions",
            &name,
        ])))
    .then_some(name)
}

pub fn build_deb(
    project: &Project,
    target: &Target,
    out: &Path,
    signing: Option<&Signing>,
) -> Result<PathBuf> {
    let release = target.release.as_str();
    let werr = |p: &Path, source| Error::Write {
        path: p.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out).map_err(|e| werr(out, e))?;
    let staging = tempfile::tempdir_in(out).map_err(|e| werr(out, e))?;
    let root = staging.path().join("root");
    let compression = kernel_compression(Path::new("/"), target);
    let (file, bytes) = module_bytes(project, target, compression, signing)?;
    let moddir = root.join(format!("lib/modules/{release}/updates"));
    std::fs::create_dir_all(&moddir).map_err(|e| werr(&moddir, e))?;
    std::fs::write(moddir.join(&file), bytes).map_err(|e| werr(&moddir, e))?;
    let debian = root.join("DEBIAN");
    std::fs::create_dir_all(&debian).map_err(|e| werr(&debian, e))?;
    let arch = run_tool(
        std::process::Command::new("dpkg").arg("--print-architecture"),
        out,
    )?;
    let pkg = package_name(project, release);
    let mut control = format!(
        "Package: {pkg}\nVersion: {}\nArchitecture: {}\nMaintainer: cargo-kmod <root@localhost>\nSection: kernel\nPriority: optional\n",
        project.version,
        arch.trim()
    );
    if let Some(image) = image_package(release) {
        control.push_str(&format!("Depends: {image}\n"));
    }
    control.push_str(&format!(
        "Description: {} kernel module for Linux {release}\n Built and packaged by cargo-kmod.\n",
        project.name
    ));
    std::fs::write(debian.join("control"), control).map_err(|e| werr(&debian, e))?;
    // DPKG_ROOT: set by dpkg --root with chrootless scripts.
    let depmod = format!(
        "if [ -d \"${{DPKG_ROOT:-}}/lib/modules/{release}\" ]; then depmod -b \"${{DPKG_ROOT:-/}}\" -a {release}; fi\n"
    );
    for (script, when) in [("postinst", "configure"), ("postrm", "remove|purge")] {
        let p = debian.join(script);
        let text =
            format!("#!/bin/sh\nset -e\ncase \"$1\" in\n  {when})\n    {depmod}    ;;\nesac\n");
        std::fs::write(&p, text).map_err(|e| werr(&p, e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| werr(&p, e))?;
    }
    let deb = out.join(format!("{pkg}_{}_{}.deb", project.version, arch.trim()));
    let tmp = staging.path().join("out.deb");
    run_tool(
        std::process::Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&tmp),
        &deb,
    )?;
    std::fs::rename(&tmp, &deb).map_err(|e| werr(&deb, e))?;
    Ok(deb)
}
