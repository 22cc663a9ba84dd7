//! `cargo kmod package --rpm` and `--srpm`: kmod RPMs as Fedora/RHEL ship out-of-tree
//! modules (kmodtool naming: `kmod-<name>-<kernel release>`), built by the real
//! `rpmbuild` from the spec templates in `templates/files/rpm/`, in a temporary top
//! directory that is removed afterwards.

use super::install::{kernel_compression, modules_bytes};
use super::run_tool;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::settings::Settings;
use crate::sign::Signing;
use crate::target::Target;
use std::path::{Path, PathBuf};

/// RPM names take letters, digits and `-._+`; anything else becomes `_`.
pub fn package_name(project: &Project, release: &str) -> String {
    super::name_chars(&format!("kmod-{}-{release}", project.name), "-._+", '_')
}

/// A Cargo (semver) version as RPM orders it: a pre-release (`1.0.0-rc.1`) sorts
/// before the release with `~`, build metadata (`+git`) after with `^`.
pub fn rpm_version(cargo: &str) -> String {
    cargo.replace('-', "~").replace('+', "^")
}

/// $SOURCE_DATE_EPOCH, else now (seconds since 1970).
fn build_time(s: &Settings) -> i64 {
    s.source_date_epoch.map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        },
        |s| s as i64,
    )
}

/// The `%changelog` date: `Tue Dec 01 2026`.
fn changelog_date(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {day:02} {year}",
        WD[days.rem_euclid(7) as usize],
        MON[(month - 1) as usize]
    )
}

/// Cargo.toml's license, else the one the built module declares (`MODULE_LICENSE`,
/// as SPDX).
fn license(s: &Settings, project: &Project, module: Option<&Path>) -> Result<String> {
    if let Some(l) = &project.license {
        return Ok(l.clone());
    }
    let declared = module
        .and_then(|m| crate::modfile::ModuleFile::open(m, s.max_module_bytes).ok())
        .and_then(|m| {
            let info = m.elf().ok()?;
            crate::modfile::elf::modinfo_fields(info.modinfo)
                .into_iter()
                .find_map(|(k, v)| (k == "license").then_some(v))
        });
    declared
        .and_then(|l| {
            crate::templates::LICENSES
                .iter()
                .find(|(k, _)| *k == l)
                .map(|(_, spdx)| spdx.to_string())
        })
        .ok_or_else(|| Error::Package {
            path: project.dir.join("Cargo.toml"),
            reason: "no license: RPM needs one".into(),
            fix: "add `license = \"GPL-2.0-only\"` (SPDX) to [package] in Cargo.toml".into(),
        })
}

fn summary(project: &Project) -> String {
    project
        .description
        .as_deref()
        .and_then(|d| d.lines().next())
        .map(|l| l.trim().trim_end_matches('.').to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| format!("The {} kernel module", project.name))
}

/// What both spec files say of the project.
#[derive(serde::Serialize)]
pub struct SpecCommon {
    pub name: String,
    pub version: String,
    pub rpm_version: String,
    pub summary: String,
    pub description: String,
    pub license: String,
    pub packager: String,
    pub url: Option<String>,
    pub date: String,
}

fn spec_common(s: &Settings, project: &Project, license: String) -> SpecCommon {
    SpecCommon {
        name: project.name.clone(),
        version: project.version.clone(),
        rpm_version: rpm_version(&project.version),
        summary: summary(project),
        description: project
            .description
            .clone()
            .unwrap_or_else(|| summary(project)),
        license,
        packager: project.maintainer().to_string(),
        url: project.url.clone(),
        date: changelog_date(build_time(s)),
    }
}

impl SpecCommon {
    fn example() -> Self {
        SpecCommon {
            name: "hello".into(),
            version: "0.1.0-rc.1".into(),
            rpm_version: "0.1.0~rc.1".into(),
            summary: "Hello".into(),
            description: "Hello, 100%.\nSecond line.".into(),
            license: "GPL-2.0-only".into(),
            packager: "Jane Dev <jane@example.org>".into(),
            url: Some("https://example.org".into()),
            date: "Wed Dec 02 2026".into(),
        }
    }
}

/// `kmod-<name>-<release>.spec`: one kernel's binary package.
#[derive(serde::Serialize)]
pub struct KmodSpec {
    pub package: String,
    pub release: String,
    pub kernel_requires: bool,
    pub arch: String,
    /// The module files, as installed (`hello.ko.xz`).
    pub files: Vec<String>,
    /// Their names without `.ko` (for `Provides: kmod(<name>.ko)`).
    pub modules: Vec<String>,
    #[serde(flatten)]
    pub common: SpecCommon,
}

impl crate::templates::Generated for KmodSpec {
    const TEMPLATE: &'static str = "rpm/kmod.spec";
    fn example() -> Self {
        KmodSpec {
            package: "kmod-hello-6.12.0".into(),
            release: "6.12.0".into(),
            kernel_requires: true,
            arch: "x86_64".into(),
            files: vec!["hello.ko.xz".into(), "hello_helper.ko.xz".into()],
            modules: vec!["hello".into(), "hello_helper".into()],
            common: SpecCommon::example(),
        }
    }
}

/// `<name>-kmod.spec`: the source RPM that rebuilds against a kernel-devel.
#[derive(serde::Serialize)]
pub struct AkmodSpec {
    pub tarball: String,
    pub rust: bool,
    /// Each module: where the build makes it in the tree (`a/x.ko`), and its file.
    pub modules: Vec<SrpmModule>,
    #[serde(flatten)]
    pub common: SpecCommon,
}

/// A module of a source RPM's build.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SrpmModule {
    pub built: String,
    pub file: String,
}

impl crate::templates::Generated for AkmodSpec {
    const TEMPLATE: &'static str = "rpm/akmod.spec";
    fn example() -> Self {
        AkmodSpec {
            tarball: "hello-0.1.0.tar.gz".into(),
            rust: true,
            modules: vec![
                SrpmModule {
                    built: "hello.ko".into(),
                    file: "hello.ko".into(),
                },
                SrpmModule {
                    built: "sub/helper.ko".into(),
                    file: "helper.ko".into(),
                },
            ],
            common: SpecCommon::example(),
        }
    }
}

/// rpmbuild in a fresh top directory; returns the one package it wrote, moved to `out`.
/// With `gpg_key`, the package is signed by `rpmsign` with that gpg key (name or id),
/// as repositories require.
fn rpmbuild(
    s: &Settings,
    top: &Path,
    spec: &Path,
    args: &[&str],
    out: &Path,
    gpg_key: Option<&str>,
) -> Result<PathBuf> {
    let mut cmd = std::process::Command::new("rpmbuild");
    cmd.args(args)
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        // The host's ~/.rpmmacros must not change what we build.
        .arg("--macros")
        .arg("/usr/lib/rpm/macros")
        .arg(spec);
    run_tool(&mut cmd, spec)?;
    let made = walkdir::WalkDir::new(top.join("RPMS"))
        .into_iter()
        .chain(walkdir::WalkDir::new(top.join("SRPMS")))
        .filter_map(|e| e.ok())
        .find(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rpm"))
        .map(|e| e.into_path())
        .ok_or_else(|| Error::Package {
            path: spec.to_path_buf(),
            reason: "rpmbuild succeeded but wrote no .rpm".into(),
            fix: "run rpmbuild on the spec by hand to see why".into(),
        })?;
    if let Some(key) = gpg_key {
        // Debian's rpm names /usr/bin/gpg2, which Debian does not ship.
        let gpg = crate::toolchain::which(s, "gpg").ok_or_else(|| Error::Toolchain {
            missing: vec!["gpg".into()],
            install: "apt-get install gpg".into(),
        })?;
        run_tool(
            std::process::Command::new("rpmsign")
                .arg("--addsign")
                .arg("--define")
                .arg(format!("__gpg {}", gpg.display()))
                .arg("--define")
                .arg(format!("_gpg_name {key}"))
                .arg(&made),
            &made,
        )?;
    }
    let dest = out.join(made.file_name().expect("a file"));
    let bytes = std::fs::read(&made).map_err(|source| Error::Read {
        path: made.clone(),
        source,
    })?;
    crate::fsutil::write_atomic(&dest, &bytes, Some(0o644))?;
    Ok(dest)
}

fn temp_top() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("cargo-kmod-rpm.")
        .tempdir()
        .map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })
}

/// One binary RPM for `target`: the built module, signed when asked, compressed like
/// the kernel's own, under `/lib/modules/<R>/extra/<name>/`.
pub fn build_rpm(
    s: &Settings,
    project: &Project,
    target: &Target,
    out: &Path,
    signing: Option<&Signing>,
    gpg_key: Option<&str>,
) -> Result<PathBuf> {
    let release = target.release.as_str();
    let arch = target.known_arch("packaging an RPM")?.package_names().rpm;
    let built = super::built_modules(project, release)?;
    let license = license(s, project, Some(&built[0].path))?;
    let compression = kernel_compression(Path::new("/"), target);
    let files = modules_bytes(s, project, target, compression, signing, "")?;
    super::out_dir(out)?;
    let top = temp_top()?;
    let sources = top.path().join("SOURCES");
    let werr = |p: &Path, source| Error::Write {
        path: p.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(&sources).map_err(|e| werr(&sources, e))?;
    for (_, file, bytes) in &files {
        std::fs::write(sources.join(file), bytes).map_err(|e| werr(&sources, e))?;
    }
    let spec_text = crate::templates::render(&KmodSpec {
        package: package_name(project, release),
        release: release.to_string(),
        kernel_requires: release.matches('-').count() <= 1,
        arch: arch.to_string(),
        files: files.iter().map(|(_, f, _)| f.clone()).collect(),
        modules: built.iter().map(|m| m.stem.clone()).collect(),
        common: spec_common(s, project, license),
    });
    let spec = top
        .path()
        .join(format!("{}.spec", package_name(project, release)));
    std::fs::write(&spec, spec_text).map_err(|e| werr(&spec, e))?;
    let target_arg = format!("{arch}-linux");
    rpmbuild(
        s,
        top.path(),
        &spec,
        &["-bb", "--target", &target_arg],
        out,
        gpg_key,
    )
}

/// A source RPM whose spec rebuilds the module against an installed kernel-devel.
pub fn build_srpm(
    s: &Settings,
    project: &Project,
    out: &Path,
    gpg_key: Option<&str>,
) -> Result<PathBuf> {
    if let crate::project::Source::Dkms { conf } = &project.source {
        return Err(Error::Package {
            path: conf.clone(),
            reason: "a DKMS tree: its dkms.conf says how it builds, a source RPM's spec would not".into(),
            fix: "package it with --dkms (DKMS rebuilds it for each kernel), or --rpm for the kernels built".into(),
        });
    }
    // The modules a build made, and where in the tree: the spec installs each.
    let release = super::built_releases(project).into_iter().next();
    let built = match &release {
        Some(r) => super::built_modules(project, r)?,
        None => Vec::new(),
    };
    let license = license(s, project, built.first().map(|m| m.path.as_path()))?;
    let modules = built
        .iter()
        .map(|m| {
            let file = format!("{}.ko", m.stem);
            SrpmModule {
                built: match m.built_location.as_deref().map(|l| l.trim_matches('/')) {
                    Some(l) if !l.is_empty() => format!("{l}/{file}"),
                    _ => file.clone(),
                },
                file,
            }
        })
        .collect();
    super::out_dir(out)?;
    let top = temp_top()?;
    let sources = top.path().join("SOURCES");
    let base = format!("{}-{}", project.name, project.version);
    // The whole project: its modules may be built in subdirectories.
    crate::fsutil::sync_tree(
        &project.dir,
        &top.path().join(&base),
        &[&project.target_dir, out],
    )?;
    let tarball = format!("{base}.tar.gz");
    std::fs::create_dir_all(&sources).map_err(|source| Error::Write {
        path: sources.clone(),
        source,
    })?;
    run_tool(
        std::process::Command::new("tar")
            .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
            .arg("-czf")
            .arg(sources.join(&tarball))
            .arg("-C")
            .arg(top.path())
            .arg(&base),
        &sources.join(&tarball),
    )?;
    let spec_text = crate::templates::render(&AkmodSpec {
        tarball,
        rust: project.is_rust(),
        modules,
        common: spec_common(s, project, license),
    });
    let spec = top.path().join(format!("{}-kmod.spec", project.name));
    std::fs::write(&spec, spec_text).map_err(|source| Error::Write {
        path: spec.clone(),
        source,
    })?;
    // -bs evaluates %(uname -r) only for the BuildRequires it records; any value works.
    rpmbuild(s, top.path(), &spec, &["-bs"], out, gpg_key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_sort_as_cargo_means() {
        assert_eq!(super::rpm_version("1.2.3"), "1.2.3");
        assert_eq!(super::rpm_version("1.0.0-rc.1"), "1.0.0~rc.1");
        assert_eq!(super::rpm_version("1.0.0+git5"), "1.0.0^git5");
    }

    #[test]
    fn changelog_dates() {
        // Checked against date(1): `date -d @1796083200`.
        assert_eq!(super::changelog_date(1_796_083_200), "Tue Dec 01 2026");
        assert_eq!(super::changelog_date(951_782_400), "Tue Feb 29 2000");
        assert_eq!(super::changelog_date(0), "Thu Jan 01 1970");
    }
}
