//! `cargo kmod package --deb`: one binary package per kernel release, holding the
//! (signed) module under /lib/modules/<R>/updates/ and running depmod.

use super::install::{kernel_compression, modules_bytes};
use super::run_tool;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::settings::Settings;
use crate::sign::Signing;
use crate::target::Target;
use std::path::{Path, PathBuf};

/// Debian package names: lowercase letters, digits, `+ - .`.
pub fn package_name(project: &Project, release: &str) -> String {
    super::name_chars(
        &format!("{}-modules-{}", project.name, release).to_ascii_lowercase(),
        "+-.",
        '-',
    )
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
    s: &Settings,
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
    super::out_dir(out)?;
    let staging = tempfile::tempdir_in(out).map_err(|e| werr(out, e))?;
    let root = staging.path().join("root");
    let compression = kernel_compression(Path::new("/"), target);
    for (dir, file, bytes) in modules_bytes(s, project, target, compression, signing, "updates")? {
        let moddir = root.join(format!("lib/modules/{release}/{dir}"));
        std::fs::create_dir_all(&moddir).map_err(|e| werr(&moddir, e))?;
        std::fs::write(moddir.join(&file), bytes).map_err(|e| werr(&moddir, e))?;
    }
    let debian = root.join("DEBIAN");
    std::fs::create_dir_all(&debian).map_err(|e| werr(&debian, e))?;
    let arch = match target.arch {
        Some(a) => a.package_names().deb.to_string(),
        None => run_tool(
            std::process::Command::new("dpkg").arg("--print-architecture"),
            out,
        )?,
    };
    let pkg = package_name(project, release);
    let control = crate::templates::render(&Control {
        package: pkg.clone(),
        version: deb_version(&project.version),
        arch: arch.trim().to_string(),
        depends: image_package(release),
        maintainer: project.maintainer().to_string(),
        name: project.name.clone(),
        release: release.to_string(),
    });
    std::fs::write(debian.join("control"), control).map_err(|e| werr(&debian, e))?;
    for (script, when) in [("postinst", "configure"), ("postrm", "remove|purge")] {
        let p = debian.join(script);
        let text = crate::templates::render(&Maintscript {
            when: when.into(),
            release: release.into(),
        });
        std::fs::write(&p, text).map_err(|e| werr(&p, e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| werr(&p, e))?;
    }
    let deb = out.join(format!(
        "{pkg}_{}_{}.deb",
        deb_version(&project.version),
        arch.trim()
    ));
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

/// `DEBIAN/control`.
#[derive(serde::Serialize)]
pub struct Control {
    pub package: String,
    pub version: String,
    pub arch: String,
    pub depends: Option<String>,
    pub maintainer: String,
    pub name: String,
    pub release: String,
}

impl crate::templates::Generated for Control {
    const TEMPLATE: &'static str = "deb/control";
    fn example() -> Self {
        Control {
            package: "hello-6.1.0-57-amd64".into(),
            version: "0.1.0~rc.1".into(),
            arch: "amd64".into(),
            depends: Some("linux-image-6.1.0-57-amd64".into()),
            maintainer: "Jane Dev <jane@example.org>".into(),
            name: "hello".into(),
            release: "6.1.0-57-amd64".into(),
        }
    }
}

/// `DEBIAN/postinst` and `postrm`: depmod when the kernel's modules are there.
#[derive(serde::Serialize)]
pub struct Maintscript {
    /// The maintainer-script arguments it acts on (a `case` pattern).
    pub when: String,
    pub release: String,
}

impl crate::templates::Generated for Maintscript {
    const TEMPLATE: &'static str = "deb/maintscript";
    fn example() -> Self {
        Maintscript {
            when: "configure".into(),
            release: "6.1.0-57-amd64".into(),
        }
    }
}

/// A Cargo (SemVer) version as dpkg orders it: a pre-release sorts before its release
/// only with `~` (`0.1.0~rc.1` < `0.1.0`); with `-`, dpkg reads a Debian revision.
pub fn deb_version(cargo: &str) -> String {
    cargo.replace('-', "~")
}

#[cfg(test)]
mod tests {
    /// Regression: `0.1.0-rc.1` sorted after `0.1.0` for dpkg. Judged by dpkg itself.
    #[test]
    fn pre_releases_sort_before_their_release_for_dpkg() {
        let lt = |a: &str, b: &str| {
            std::process::Command::new("dpkg")
                .args(["--compare-versions", a, "lt", b])
                .status()
                .expect("dpkg runs")
                .success()
        };
        assert!(lt(
            &super::deb_version("0.1.0-rc.1"),
            &super::deb_version("0.1.0")
        ));
        assert!(lt(
            &super::deb_version("0.1.0-alpha"),
            &super::deb_version("0.1.0-beta")
        ));
        assert!(lt(
            &super::deb_version("0.1.0"),
            &super::deb_version("0.1.1-rc.1")
        ));
        assert!(
            !lt("0.1.0-rc.1", "0.1.0"),
            "the old form sorted after the release"
        );
    }
}
