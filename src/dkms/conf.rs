//! A project's `dkms.conf`, read as DKMS 3.x reads it: sourced by bash once per
//! kernel (its values may depend on the kernel's `.config`), beside DKMS's variables,
//! then defaulted and checked as `read_conf` does (`templates/files/dkms/read_conf.sh`
//! is that code). Bash runs in a clean environment (never the user's secrets such as
//! `KBUILD_SIGN_PIN`) with a time limit.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long sourcing a dkms.conf may take: DKMS's own read takes milliseconds; one
/// that reads a kernel's `.config` line by line, a second.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// What DKMS gives a dkms.conf as shell variables.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    /// `kernelver`: the kernel release.
    pub kernelver: &'a str,
    /// `arch`: `uname -m` of the kernel's machine.
    pub arch: &'a str,
    /// `kernel_source_dir`: the kernel's build tree or headers.
    pub kernel_source_dir: &'a Path,
    /// `dkms_tree`: where `<module>/<version>/build` is the build copy.
    pub dkms_tree: &'a Path,
    /// `source_tree`: where `<module>-<version>` is the source.
    pub source_tree: &'a Path,
    /// `module`, `module_version`: empty on the first read, which learns them.
    pub module: &'a str,
    pub module_version: &'a str,
    /// `PATH` for bash and what the file runs.
    pub path: &'a std::ffi::OsStr,
}

/// DKMS's variables as a script's first lines (static: the values go in its environment).
#[derive(serde::Serialize)]
pub struct VarsPrelude {}

impl crate::templates::Generated for VarsPrelude {
    const TEMPLATE: &'static str = "dkms/vars.sh";
    fn example() -> Self {
        VarsPrelude {}
    }
}

impl Vars<'_> {
    /// `bash -c` of `script` (a rendered template) after DKMS's variables, in a clean
    /// environment: `PATH` and `LC_ALL=C` only, never the user's secrets.
    pub fn bash(&self, script: &str) -> std::process::Command {
        self.bash_in(&[], script)
    }

    /// [`Vars::bash`] started through `wrapper` (a program and its arguments, which
    /// then run bash), e.g. `unshare`.
    pub fn bash_in(&self, wrapper: &[&str], script: &str) -> std::process::Command {
        let mut c = match wrapper.split_first() {
            None => std::process::Command::new("bash"),
            Some((program, args)) => {
                let mut c = std::process::Command::new(program);
                c.args(args).arg("bash");
                c
            }
        };
        c.arg("-c")
            .arg(crate::templates::render(&VarsPrelude {}) + script)
            .env_clear()
            .env("PATH", self.path)
            .env("LC_ALL", "C")
            .env("CK_KERNELVER", self.kernelver)
            .env("CK_ARCH", self.arch)
            .env("CK_KERNEL_SOURCE_DIR", self.kernel_source_dir)
            .env("CK_DKMS_TREE", self.dkms_tree)
            .env("CK_SOURCE_TREE", self.source_tree)
            .env("CK_MODULE", self.module)
            .env("CK_MODULE_VERSION", self.module_version);
        c
    }
}

/// The reader itself, a bash script (static: the values go in its environment).
#[derive(serde::Serialize)]
pub struct ReadConf {}

impl crate::templates::Generated for ReadConf {
    const TEMPLATE: &'static str = "dkms/read_conf.sh";
    fn example() -> Self {
        ReadConf {}
    }
}

/// One `BUILT_MODULE_NAME[n]` record, defaulted as DKMS does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Module {
    /// `BUILT_MODULE_NAME`: the `.ko` the build makes, without `.ko`.
    pub built_name: String,
    /// `BUILT_MODULE_LOCATION`: where in the build copy, `/`-terminated or empty.
    pub built_location: String,
    /// `DEST_MODULE_NAME`: its installed name (default: the built name).
    pub dest_name: String,
    /// `DEST_MODULE_LOCATION`: where under `/lib/modules/<release>` it installs.
    pub dest_location: String,
    /// `STRIP`: `strip -g` after the build (DKMS's default).
    pub strip: bool,
}

/// A dkms.conf's values for one kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DkmsConf {
    pub package_name: String,
    pub package_version: String,
    pub modules: Vec<Module>,
    /// The make command for this kernel (`MAKE`/`MAKE_MATCH`, DKMS's default), as the
    /// shell will `eval` it.
    pub make: String,
    pub clean: String,
    /// `PATCH[n]` whose `PATCH_MATCH[n]` takes this kernel, in order.
    pub patches: Vec<String>,
    pub pre_build: Option<String>,
    pub post_build: Option<String>,
    /// Why `BUILD_EXCLUSIVE_*` rules this kernel out; empty when it builds.
    pub excluded: Vec<String>,
    pub autoinstall: bool,
    pub build_depends: Vec<String>,
}

impl DkmsConf {
    /// Reads `conf` for one kernel. A file bash cannot parse, that exits, hangs or
    /// fails DKMS's checks is an `Error::DkmsConf` naming it and saying why.
    pub fn read(conf: &Path, v: &Vars) -> Result<DkmsConf> {
        Self::read_within(conf, v, READ_LIMIT)
    }

    fn read_within(conf: &Path, v: &Vars, limit: Duration) -> Result<DkmsConf> {
        let fail = |reason: String| Error::DkmsConf {
            path: conf.to_path_buf(),
            reason,
        };
        // Bounded before bash sees it: a dkms.conf is a few lines of shell.
        crate::fsutil::read_bounded(conf, 1 << 20)?;
        syntax_check(conf, v.path).map_err(&fail)?;
        let mut cmd = v.bash(&crate::templates::render(&ReadConf {}));
        cmd.env("CK_CONF", conf)
            .current_dir(conf.parent().unwrap_or(Path::new("/")));
        let out = crate::toolchain::output_within(&mut cmd, limit).map_err(|e| {
            fail(match e {
                crate::toolchain::Bounded::TimedOut => format!(
                    "sourcing it did not finish in {} s (DKMS would hang here too)",
                    limit.as_secs_f64()
                ),
                crate::toolchain::Bounded::Spawn(e) => format!("cannot run bash: {e}"),
            })
        })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(6)..].join("; ");
            return Err(fail(if tail.is_empty() {
                format!("reading it failed (exit status {})", out.status)
            } else {
                tail
            }));
        }
        parse(&out.stdout).map_err(fail)
    }

    /// Whether this kernel builds it (no `BUILD_EXCLUSIVE_*` rule rules it out).
    pub fn builds(&self) -> bool {
        self.excluded.is_empty()
    }

    /// Why it is skipped, in DKMS's words and the rules that said so.
    pub fn skip_reason(&self) -> Option<String> {
        (!self.excluded.is_empty()).then(|| {
            format!(
                "dkms.conf includes a BUILD_EXCLUSIVE directive which does not match this kernel/arch/config ({})",
                self.excluded.join("; ")
            )
        })
    }
}

/// `bash -n`: a syntax error is named before anything in the file runs.
fn syntax_check(conf: &Path, path: &std::ffi::OsStr) -> std::result::Result<(), String> {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-n")
        .arg(conf)
        .env_clear()
        .env("PATH", path)
        .env("LC_ALL", "C");
    let out = crate::toolchain::output_within(&mut cmd, READ_LIMIT)
        .map_err(|_| "bash -n did not finish".to_string())?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "not valid bash: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// The driver's NUL-separated records: a key, then its fields (a module has five).
fn parse(out: &[u8]) -> std::result::Result<DkmsConf, String> {
    let mut fields = out
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let mut c = DkmsConf::default();
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| format!("reading it stopped inside a {what} record"))
    };
    loop {
        let key = match next("") {
            Ok(k) if k.is_empty() => break,
            Ok(k) => k,
            Err(_) => break,
        };
        match key.as_str() {
            "name" => c.package_name = next("name")?,
            "version" => c.package_version = next("version")?,
            "module" => c.modules.push(Module {
                built_name: next("module")?,
                built_location: next("module")?,
                dest_name: next("module")?,
                dest_location: next("module")?,
                strip: next("module")? != "no",
            }),
            "make" => c.make = next("make")?,
            "clean" => c.clean = next("clean")?,
            "patch" => c.patches.push(next("patch")?),
            "pre_build" => c.pre_build = Some(next("pre_build")?),
            "post_build" => c.post_build = Some(next("post_build")?),
            "excluded" => c.excluded.push(next("excluded")?),
            "autoinstall" => c.autoinstall = next("autoinstall")? == "yes",
            "build_depends" => c.build_depends.push(next("build_depends")?),
            other => return Err(format!("unknown record {other:?} (a bug in cargo-kmod)")),
        }
    }
    Ok(c)
}

/// The directory DKMS builds in for `conf`'s package: `<dkms_tree>/<name>/<version>/build`.
pub fn build_dir(dkms_tree: &Path, c: &DkmsConf) -> PathBuf {
    dkms_tree
        .join(&c.package_name)
        .join(&c.package_version)
        .join("build")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in(text: &str, config: &str, limit: Duration) -> Result<DkmsConf> {
        let d = tempfile::tempdir().unwrap();
        let ksrc = d.path().join("kernel");
        std::fs::create_dir_all(&ksrc).unwrap();
        std::fs::write(ksrc.join(".config"), config).unwrap();
        let conf = d.path().join("dkms.conf");
        std::fs::write(&conf, text).unwrap();
        let v = Vars {
            kernelver: "6.1.0-57-amd64",
            arch: "x86_64",
            kernel_source_dir: &ksrc,
            dkms_tree: Path::new("/var/lib/dkms"),
            source_tree: Path::new("/usr/src"),
            module: "m",
            module_version: "1.0",
            path: std::ffi::OsStr::new("/usr/bin:/bin"),
        };
        DkmsConf::read_within(&conf, &v, limit)
    }

    fn read(text: &str) -> Result<DkmsConf> {
        read_in(text, "CONFIG_MODULES=y\n", READ_LIMIT)
    }

    #[test]
    fn defaults_are_dkms_defaults() {
        let c = read("PACKAGE_NAME=m\nPACKAGE_VERSION=1.0\nDEST_MODULE_LOCATION[0]=/updates\n")
            .unwrap();
        assert_eq!(c.modules.len(), 1);
        assert_eq!(
            c.modules[0].built_name, "m",
            "one record: the package's name"
        );
        assert_eq!(c.modules[0].dest_name, "m");
        assert!(c.modules[0].strip, "STRIP defaults to yes");
        assert!(c.make.starts_with("make -C ") && c.make.ends_with("M=/var/lib/dkms/m/1.0/build"));
        assert!(c.clean.ends_with("M=/var/lib/dkms/m/1.0/build clean"));
        assert!(c.builds());
    }

    #[test]
    fn values_are_expanded_twice_as_dkms_does_and_see_only_dkms_variables() {
        let c = read(concat!(
            "PACKAGE_NAME=m\nPACKAGE_VERSION=1.0\n",
            "BUILT_MODULE_NAME[0]=a\nBUILT_MODULE_LOCATION[0]=sub\nDEST_MODULE_LOCATION[0]=/extra\n",
            "BUILT_MODULE_NAME[1]=b\nDEST_MODULE_NAME[1]=bee\nDEST_MODULE_LOCATION[1]=/extra\nSTRIP[1]=no\n",
            "MAKE[0]=\"make KVER=\\$kernelver HOME=$HOME ARCH=$arch\"\n",
            "MAKE[1]=\"make other\"\nMAKE_MATCH[1]=\"^6\\.1\\.\"\n",
        ))
        .unwrap();
        assert_eq!(c.modules[0].built_location, "sub/");
        assert_eq!(c.modules[1].dest_name, "bee");
        assert!(!c.modules[1].strip);
        // MAKE_MATCH[1] takes 6.1: the later match wins.
        assert_eq!(c.make, "make other");
        let c = read(concat!(
            "PACKAGE_NAME=m\nPACKAGE_VERSION=1.0\nDEST_MODULE_LOCATION[0]=/extra\n",
            "MAKE[0]=\"make KVER=\\$kernelver HOME=$HOME ARCH=$arch\"\n",
        ))
        .unwrap();
        assert_eq!(c.make, "make KVER=6.1.0-57-amd64 HOME= ARCH=x86_64");
    }

    #[test]
    fn build_exclusive_rules_say_which_rule_and_why() {
        let base = "PACKAGE_NAME=m\nPACKAGE_VERSION=1.0\nDEST_MODULE_LOCATION[0]=/extra\n";
        let cases = [
            ("BUILD_EXCLUSIVE_KERNEL=\"^5\\.\"", "BUILD_EXCLUSIVE_KERNEL"),
            (
                "BUILD_EXCLUSIVE_KERNEL_MIN=6.2",
                "older than BUILD_EXCLUSIVE_KERNEL_MIN",
            ),
            (
                "BUILD_EXCLUSIVE_KERNEL_MAX=5.15",
                "newer than BUILD_EXCLUSIVE_KERNEL_MAX",
            ),
            ("BUILD_EXCLUSIVE_ARCH=aarch64", "BUILD_EXCLUSIVE_ARCH"),
            (
                "BUILD_EXCLUSIVE_CONFIG=\"CONFIG_RUST\"",
                "CONFIG_RUST is not set",
            ),
            (
                "BUILD_EXCLUSIVE_CONFIG=\"!CONFIG_MODULES\"",
                "CONFIG_MODULES is set",
            ),
        ];
        for (rule, why) in cases {
            let c = read(&format!("{base}{rule}\n")).unwrap();
            let reason = c.skip_reason().unwrap_or_default();
            assert!(reason.contains(why), "{rule}: {reason}");
        }
        let c = read(&format!(
            "{base}BUILD_EXCLUSIVE_KERNEL_MIN=6.1\nBUILD_EXCLUSIVE_CONFIG=CONFIG_MODULES\n"
        ))
        .unwrap();
        assert!(c.builds(), "{:?}", c.excluded);
    }

    #[test]
    fn values_may_depend_on_the_kernels_config() {
        let conf = concat!(
            "PACKAGE_NAME=m\nPACKAGE_VERSION=1.0\nDEST_MODULE_LOCATION[0]=/extra\n",
            ". $kernel_source_dir/.config\n",
            "if [ \"$CONFIG_VIDEO_V4L2\" = \"\" ]; then BUILD_EXCLUSIVE_KERNEL=\"REQUIRES CONFIG_VIDEO_V4L2\"; fi\n",
        );
        let c = read_in(conf, "CONFIG_VIDEO_V4L2=m\n", READ_LIMIT).unwrap();
        assert!(c.builds());
        let c = read_in(conf, "CONFIG_MODULES=y\n", READ_LIMIT).unwrap();
        assert!(
            c.skip_reason()
                .unwrap()
                .contains("REQUIRES CONFIG_VIDEO_V4L2")
        );
    }

    #[test]
    fn a_bad_file_is_named_with_why() {
        let base = "PACKAGE_NAME=m\nPACKAGE_VERSION=1.0\nDEST_MODULE_LOCATION[0]=/extra\n";
        let e = read(&format!("{base}if then\n")).unwrap_err().to_string();
        assert!(
            e.contains("dkms.conf") && e.contains("not valid bash"),
            "{e}"
        );
        let e = read(&format!("exit 3\n{base}")).unwrap_err().to_string();
        assert!(e.contains("ended early (exit status 3)"), "{e}");
        let e = read("PACKAGE_VERSION=1.0\n").unwrap_err().to_string();
        assert!(e.contains("No 'PACKAGE_NAME'"), "{e}");
        let e = read(&format!("{base}BUILT_MODULE_NAME[0]=m.ko\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends in '.o' or '.ko'"), "{e}");
        let started = std::time::Instant::now();
        let e = read_in(
            &format!("{base}sleep 60 & wait\n"),
            "",
            Duration::from_millis(500),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("did not finish"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "killed with its children"
        );
    }
}
