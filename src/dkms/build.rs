//! A DKMS tree built as DKMS 3.x builds it (dkms.in: prepare_build, actual_build), in
//! a tree of its own per kernel under `target/kmod/build/<release>/` (so kernels build
//! in parallel): the source copied to `<name>/<version>/build`, patches, PRE_BUILD,
//! CLEAN, the make command, every BUILT_MODULE_NAME checked, `strip -g`, POST_BUILD.

use super::conf::{DkmsConf, Vars};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::report::Reporter;
use crate::settings::Settings;
use crate::target::Target;
use crate::toolchain::MakeVars;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The step runner (`templates/files/dkms/step.sh`), static: values go in its environment.
#[derive(serde::Serialize)]
pub struct Step {}

impl crate::templates::Generated for Step {
    const TEMPLATE: &'static str = "dkms/step.sh";
    fn example() -> Self {
        Step {}
    }
}

/// One kernel's DKMS build.
struct Run<'a> {
    conf_path: &'a Path,
    vars: Vars<'a>,
    /// The build copy: `<dkms_tree>/<name>/<version>/build`.
    build: PathBuf,
    log: std::fs::File,
    log_path: PathBuf,
    env: Vec<(&'static str, String)>,
    /// Steps run in a private mount namespace where `/lib/modules/<release>/build` is
    /// the kernel's tree (a fetched kernel's, not installed here): DKMS projects' own
    /// Makefiles look for it there.
    private_modlib: bool,
}

/// What a build made (this DKMS build, or `kbuild`'s of a Kbuild directory): each
/// module (the built file, its installed name, its DEST_MODULE_LOCATION when the
/// project names one), or why this kernel is skipped.
pub struct Made {
    pub modules: Vec<(PathBuf, String, Option<String>)>,
    pub skipped: Option<String>,
}

/// Where DKMS keeps what it built and installed on this machine.
const DKMS_TREE: &str = "/var/lib/dkms";

/// Whether DKMS installed module `m` (any version) for the kernel, as `dkms status`
/// says `installed`: its `kernel-<release>-<arch>` link in DKMS's tree.
fn installed_by_dkms(m: &str, release: &str, arch: &str) -> bool {
    Path::new(DKMS_TREE)
        .join(m)
        .join(format!("kernel-{release}-{arch}"))
        .exists()
}

/// How many jobs, and what every make is told (MAKEFLAGS: a shared jobserver's,
/// overrides such as strict modpost).
pub struct Jobs<'a> {
    pub jobs: usize,
    /// MAKEFLAGS hold a jobserver: makes take no -j.
    pub jobserver: bool,
    pub makeflags: Option<&'a str>,
}

/// Builds `project` (whose dkms.conf is `conf_path`) for `target` with `jobs`.
pub fn build(
    s: &Settings,
    project: &Project,
    conf_path: &Path,
    target: &Target,
    make_vars: &MakeVars,
    jobs: Jobs,
    r: &dyn Reporter,
) -> Result<Made> {
    let kdir = target.tree("building a module")?;
    let dkms_tree = project.build_dir(&target.release);
    let pkg = dkms_tree.join(&project.name).join(&project.version);
    let werr = |path: &Path, source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    // DKMS reads the dkms.conf of the source it registered: a link to the project.
    let _ = std::fs::remove_dir_all(&pkg);
    std::fs::create_dir_all(&pkg).map_err(|e| werr(&pkg, e))?;
    let dir = std::fs::canonicalize(&project.dir).map_err(|source| Error::Read {
        path: project.dir.clone(),
        source,
    })?;
    std::os::unix::fs::symlink(&dir, pkg.join("source")).map_err(|e| werr(&pkg, e))?;
    let source_tree = dir.parent().unwrap_or(&dir).to_path_buf();
    let arch = target
        .arch
        .or(crate::arch::Arch::host())
        .map_or("unknown", |a| a.uname());
    let vars = Vars {
        kernelver: &target.release,
        arch,
        kernel_source_dir: kdir,
        dkms_tree: &dkms_tree,
        source_tree: &source_tree,
        module: &project.name,
        module_version: &project.version,
        path: &s.path,
    };
    let conf = DkmsConf::read(&pkg.join("source/dkms.conf"), &vars)?;
    if (conf.package_name.as_str(), conf.package_version.as_str())
        != (project.name.as_str(), project.version.as_str())
    {
        return Err(Error::DkmsConf {
            path: conf_path.to_path_buf(),
            reason: format!(
                "it names {} {} for {}, the project is {} {}",
                conf.package_name,
                conf.package_version,
                target.release,
                project.name,
                project.version
            ),
        });
    }
    if let Some(why) = conf.skip_reason() {
        let _ = std::fs::remove_dir_all(&pkg);
        return Ok(Made {
            modules: Vec::new(),
            skipped: Some(why),
        });
    }
    // DKMS 3.x aborts a build whose BUILD_DEPENDS are not installed for the kernel
    // (exit 13): the modules it needs must be there first.
    let missing: Vec<&str> = conf
        .build_depends
        .iter()
        .map(String::as_str)
        .filter(|bd| !installed_by_dkms(bd, &target.release, arch))
        .collect();
    if !missing.is_empty() {
        let _ = std::fs::remove_dir_all(&pkg);
        return Err(Error::Preflight {
            kdir: kdir.to_path_buf(),
            reason: format!(
                "{}'s BUILD_DEPENDS are not installed by DKMS for {} ({arch}): {} (DKMS aborts this build too)",
                conf_path.display(),
                target.release,
                missing.join(" ")
            ),
            fix: format!(
                "install them for this kernel first (dkms install -m {} -k {})",
                missing[0], target.release
            ),
        });
    }
    let build = pkg.join("build");
    crate::fsutil::sync_tree(&dir, &build, &[&project.target_dir])?;
    let log_path = build.join("make.log");
    let log = std::fs::File::create(&log_path).map_err(|e| werr(&log_path, e))?;
    // What DKMS exports (CC, from the kernel's compiler), and what a cross build needs.
    let mut env: Vec<(&'static str, String)> = Vec::new();
    let mut path = std::ffi::OsString::new();
    if let Some(p) = &make_vars.path_prefix {
        path.push(p);
        path.push(":");
    }
    path.push(&s.path);
    env.push(("PATH", path.to_string_lossy().into_owned()));
    if let Some(flags) = jobs.makeflags {
        env.push(("MAKEFLAGS", flags.to_string()));
    }
    for (k, v) in [
        ("CC", &make_vars.cc),
        ("ARCH", &make_vars.arch),
        ("CROSS_COMPILE", &make_vars.cross_compile),
    ] {
        if let Some(v) = v {
            env.push((k, v.clone()));
        }
    }
    let installed = std::fs::canonicalize(format!("/lib/modules/{}/build", target.release)).ok();
    let private_modlib = installed != std::fs::canonicalize(kdir).ok();
    if private_modlib {
        env.push(("CK_MODLIB_RELEASE", target.release.clone()));
        env.push(("CK_MODLIB_BUILD", kdir.display().to_string()));
    }
    let mut run = Run {
        conf_path,
        vars,
        build,
        log,
        log_path,
        env,
        private_modlib,
    };
    for p in &conf.patches {
        if !run.build.join("patches").join(p).is_file() {
            return Err(run.fail(
                "PATCH",
                format!("patches/{p}, named in dkms.conf, is not in the project"),
            ));
        }
        run.step("PATCH", &format!("patch -p1 < ./patches/{p}"), false, r)?;
    }
    if let Some(pre) = &conf.pre_build {
        run.step("PRE_BUILD", pre, true, r)?;
    }
    // DKMS cleans first and goes on whatever the clean says.
    let _ = run.step("CLEAN", &conf.clean, false, r);
    // DKMS's own rewrite of a leading `make`; a jobserver's makes take no -j.
    let make = match (conf.make.strip_prefix("make"), jobs.jobserver) {
        (Some(rest), false) => format!(
            "make -j{} KERNELRELEASE={}{rest}",
            jobs.jobs.max(1),
            target.release
        ),
        (Some(rest), true) => format!("make KERNELRELEASE={}{rest}", target.release),
        (None, _) => conf.make.clone(),
    };
    run.step("MAKE", &make, false, r)?;
    let mut modules = Vec::new();
    for m in &conf.modules {
        let built = run
            .build
            .join(format!("{}{}.ko", m.built_location, m.built_name));
        if !built.is_file() {
            return Err(run.fail(
                "MAKE",
                format!(
                    "the build made no {}{}.ko, which BUILT_MODULE_NAME/BUILT_MODULE_LOCATION name",
                    m.built_location, m.built_name
                ),
            ));
        }
        if m.strip {
            run.step(
                "STRIP",
                // One shell word, whatever the project's path holds.
                &format!(
                    "strip -g '{}'",
                    built.display().to_string().replace('\'', r"'\''")
                ),
                false,
                r,
            )?;
        }
        modules.push((built, m.dest_name.clone(), Some(m.dest_location.clone())));
    }
    if let Some(post) = &conf.post_build {
        run.step("POST_BUILD", post, true, r)?;
    }
    Ok(Made {
        modules,
        skipped: None,
    })
}

impl Run<'_> {
    fn fail(&self, step: &str, tail: String) -> Error {
        Error::DkmsBuild {
            conf: self.conf_path.to_path_buf(),
            step: step.into(),
            log: self.log_path.clone(),
            tail,
        }
    }

    /// Runs one step in the build copy, its output into make.log.
    fn step(&mut self, step: &str, command: &str, script: bool, r: &dyn Reporter) -> Result<()> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let wrapper: &[&str] = match (self.private_modlib, root) {
            (false, _) => &[],
            (true, true) => &["unshare", "--mount", "--propagation", "private", "--"],
            (true, false) => &[
                "unshare",
                "--map-root-user",
                "--mount",
                "--propagation",
                "private",
                "--",
            ],
        };
        let mut c = self
            .vars
            .bash_in(wrapper, &crate::templates::render(&Step {}));
        c.envs(self.env.iter().map(|(k, v)| (*k, v)))
            .env("CK_DIR", &self.build)
            .env("CK_COMMAND", command)
            .env("CK_SCRIPT", if script { "1" } else { "" });
        let _ = writeln!(self.log, "$ {step}: {command}");
        let log = &mut self.log;
        crate::toolchain::run_step(&mut c, 20, |line| {
            let _ = writeln!(log, "{line}");
            r.progress(line);
        })
        .map(drop)
        .map_err(|tail| self.fail(step, tail))
    }
}
