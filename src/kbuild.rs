//! `cargo kmod build`: a module project built by Kbuild against kernel trees, after
//! checks that turn Kbuild's cryptic failures into one line that says the fix.

use crate::error::{Error, Result};
use crate::kernel::{newest_llvm_bin, tool_version, which};
use crate::report::Reporter;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `[package.metadata.kmod]` and where the project lives.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub target_dir: PathBuf,
    pub name: String,
    pub version: String,
    pub kdirs: Vec<PathBuf>,
    pub sign: bool,
    pub key: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub hash: Option<String>,
    pub rustc: Option<PathBuf>,
    pub install_dir: String,
}

impl Project {
    pub fn load(manifest: Option<&Path>) -> Result<Project> {
        let mut cmd = cargo_metadata::MetadataCommand::new();
        cmd.no_deps();
        if let Some(m) = manifest {
            cmd.manifest_path(m);
        }
        let shown = manifest.map_or_else(|| PathBuf::from("Cargo.toml"), Path::to_path_buf);
        let meta = cmd.exec().map_err(|e| Error::Project {
            path: shown.clone(),
            reason: format!("cannot read the project: {e}"),
        })?;
        let pkg = meta
            .root_package()
            .or_else(|| meta.packages.first())
            .ok_or_else(|| Error::Project {
                path: shown.clone(),
                reason: "no package in this manifest".into(),
            })?;
        let dir = pkg
            .manifest_path
            .parent()
            .map(|p| p.as_std_path().to_path_buf())
            .expect("manifest has a directory");
        let kmod = &pkg.metadata["kmod"];
        if kmod.is_null() {
            return Err(Error::Project {
                path: pkg.manifest_path.clone().into(),
                reason: "no [package.metadata.kmod] section: not a kernel module project".into(),
            });
        }
        // Paths are relative to the project; pkcs11: URIs stay as they are.
        let rel = |v: &serde_json::Value| {
            v.as_str().map(|s| {
                if s.starts_with("pkcs11:") {
                    PathBuf::from(s)
                } else {
                    dir.join(s)
                }
            })
        };
        Ok(Project {
            name: kmod["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| pkg.name.replace('-', "_")),
            version: pkg.version.to_string(),
            kdirs: kmod["kdir"]
                .as_array()
                .map(|a| a.iter().filter_map(rel).collect())
                .unwrap_or_default(),
            sign: kmod["sign"].as_bool().unwrap_or(false),
            key: rel(&kmod["key"]),
            cert: rel(&kmod["cert"]),
            hash: kmod["hash"].as_str().map(str::to_string),
            rustc: kmod["rustc"].as_str().map(PathBuf::from),
            install_dir: kmod["install-dir"]
                .as_str()
                .unwrap_or("updates")
                .to_string(),
            target_dir: meta.target_directory.as_std_path().to_path_buf(),
            dir,
        })
    }

    /// The signing hash from the metadata; sha512 (the kernel's default) when unset.
    pub fn hash(&self) -> Result<crate::hash::HashAlg> {
        self.hash.as_deref().unwrap_or("sha512").parse()
    }

    /// Source files Kbuild needs, at the top of the project.
    pub fn sources(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && (p.file_name().is_some_and(|n| n == "Kbuild")
                        || p.extension()
                            .is_some_and(|e| e == "c" || e == "h" || e == "rs"))
            })
            .collect();
        v.sort();
        v
    }

    pub fn is_rust(&self) -> bool {
        self.sources()
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "rs"))
    }
}

/// A configured kernel build tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub kdir: PathBuf,
    pub release: String,
    pub config: HashMap<String, String>,
}

impl Tree {
    pub fn open(kdir: &Path) -> Result<Tree> {
        let pre = |reason: &str, fix: &str| Error::Preflight {
            kdir: kdir.to_path_buf(),
            reason: reason.into(),
            fix: fix.into(),
        };
        if !kdir.is_dir() {
            return Err(pre(
                "kernel tree not found",
                "install the headers (Debian: linux-headers-$(uname -r)) or pass --kdir; `cargo kmod kernel build` makes a Rust-enabled tree",
            ));
        }
        let config = std::fs::read_to_string(kdir.join(".config")).map_err(|_| {
            pre(
                "not a configured kernel tree (no .config)",
                "run `make olddefconfig modules_prepare` in it, or give a headers tree",
            )
        })?;
        let release = std::fs::read_to_string(kdir.join("include/config/kernel.release"))
            .map(|s| s.trim().to_string())
            .map_err(|_| {
                pre(
                    "not a prepared kernel tree (no include/config/kernel.release)",
                    "run `make modules_prepare` in it",
                )
            })?;
        let config = config
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Ok(Tree {
            kdir: kdir.to_path_buf(),
            release,
            config,
        })
    }

    pub fn enabled(&self, opt: &str) -> bool {
        self.config.get(opt).is_some_and(|v| v == "y")
    }
}

/// What Kbuild needs to be told for one tree, decided by [`preflight`].
#[derive(Debug, Clone)]
pub struct BuildEnv {
    pub llvm: bool,
    pub rustc: Option<PathBuf>,
    pub path_prefix: Option<PathBuf>,
}

/// Checks a tree against the project, in the order failures would surface.
pub fn preflight(tree: &Tree, project: &Project, forced_rustc: Option<&Path>) -> Result<BuildEnv> {
    let fail = |reason: String, fix: String| Error::Preflight {
        kdir: tree.kdir.clone(),
        reason,
        fix,
    };
    if !tree.enabled("CONFIG_MODULES") {
        return Err(fail(
            "this kernel has no loadable module support (CONFIG_MODULES is off)".into(),
            "use a kernel built with CONFIG_MODULES=y".into(),
        ));
    }
    let llvm = tree.enabled("CONFIG_CC_IS_CLANG");
    let mut env = BuildEnv {
        llvm,
        rustc: None,
        path_prefix: None,
    };
    if llvm && (which("clang").is_none() || which("ld.lld").is_none()) {
        env.path_prefix = newest_llvm_bin();
        if env.path_prefix.is_none() {
            return Err(fail(
                "this kernel was built with clang; clang and ld.lld are not installed".into(),
                "apt-get install clang-19 lld-19 llvm-19".into(),
            ));
        }
    }
    if !project.is_rust() {
        return Ok(env);
    }
    if !tree.enabled("CONFIG_RUST") {
        return Err(fail(
            format!(
                "{}: these headers were built without Rust support (CONFIG_RUST is off)",
                tree.release
            ),
            "use `cargo kmod kernel build` or headers with CONFIG_RUST=y".into(),
        ));
    }
    if !tree.kdir.join("rust/libmacros.so").exists() && !tree.kdir.join("rust").is_dir() {
        return Err(fail(
            "the tree has CONFIG_RUST=y but no rust/ build output (kernel::, macros)".into(),
            "build the kernel tree first (make), or use `cargo kmod kernel build`".into(),
        ));
    }
    let want = tree
        .config
        .get("CONFIG_RUSTC_VERSION_TEXT")
        .cloned()
        .unwrap_or_default();
    let version = |p: &Path| tool_version(p, "--version");
    if let Some(forced) = forced_rustc {
        let have = version(forced).unwrap_or_else(|| "not runnable".into());
        if have != want {
            return Err(fail(
                format!(
                    "rustc mismatch: the kernel was built with `{want}`, RUSTC={} is `{have}` (would fail with E0514/E0461)",
                    forced.display()
                ),
                "unset RUSTC or point it at the rustc that built the kernel (Debian: /usr/bin/rustc from rustc-web)".into(),
            ));
        }
        env.rustc = Some(forced.to_path_buf());
        return Ok(env);
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    candidates.extend(project.rustc.clone());
    candidates.extend(which("rustc"));
    candidates.push("/usr/bin/rustc".into());
    let mut seen = Vec::new();
    for c in candidates {
        let v = version(&c);
        if v.as_deref() == Some(want.as_str()) {
            env.rustc = Some(c);
            return Ok(env);
        }
        seen.push(format!(
            "{} is `{}`",
            c.display(),
            v.unwrap_or_else(|| "not runnable".into())
        ));
    }
    Err(fail(
        format!("no rustc matches the kernel's `{want}`; found: {}", seen.join("; ")),
        "install the rustc that built the kernel and set RUSTC to it (or `rustc` in [package.metadata.kmod])".into(),
    ))
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub jobs: usize,
    pub arch: Option<String>,
    pub cross_compile: Option<String>,
    pub verbose: bool,
    pub rust_analyzer: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Artifact {
    pub release: String,
    pub kdir: PathBuf,
    pub path: PathBuf,
    pub signed: bool,
    pub sha256: String,
}

/// Builds the project against one tree in `target/kmod/build/<release>/`; the module
/// lands at `target/kmod/<release>/<name>.ko`.
pub fn build_one(
    project: &Project,
    tree: &Tree,
    env: &BuildEnv,
    o: &BuildOptions,
    r: &dyn Reporter,
) -> Result<PathBuf> {
    let werr = |path: &Path, source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let build_dir = project.target_dir.join("kmod/build").join(&tree.release);
    std::fs::create_dir_all(&build_dir).map_err(|e| werr(&build_dir, e))?;
    for src in project.sources() {
        let dst = build_dir.join(src.file_name().expect("file"));
        // Copy only when changed, so Kbuild's own timestamps keep rebuilds incremental.
        let same = std::fs::read(&dst).ok() == std::fs::read(&src).ok();
        if !same {
            std::fs::copy(&src, &dst).map_err(|e| werr(&dst, e))?;
        }
    }
    let mut make = kbuild_make(tree, env, o, &build_dir);
    make.arg("modules");
    r.note(&format!(
        "building {} for {} ({})",
        project.name,
        tree.release,
        tree.kdir.display()
    ));
    run_streamed(&mut make, tree, o.verbose, r)?;
    let built = build_dir.join(format!("{}.ko", project.name));
    if !built.exists() {
        return Err(Error::ModuleBuild {
            kdir: tree.kdir.clone(),
            tail: format!(
                "Kbuild finished but made no {}.ko (is obj-m in Kbuild right?)",
                project.name
            ),
        });
    }
    if o.rust_analyzer && project.is_rust() {
        // This target checks the whole Rust toolchain (bindgen, rust-src), like a kernel build.
        let tc = crate::kernel::Toolchain::find(env.rustc.as_deref(), None)?;
        let mut ra = tc.make(&tree.kdir);
        ra.arg(format!("M={}", build_dir.display()))
            .arg("rust-analyzer");
        run_streamed(&mut ra, tree, o.verbose, r)?;
        let json = std::fs::read_to_string(build_dir.join("rust-project.json")).map_err(|e| {
            Error::ModuleBuild {
                kdir: tree.kdir.clone(),
                tail: format!("rust-analyzer target made no rust-project.json: {e}"),
            }
        })?;
        // Point rust-analyzer at the project's own sources, not the build copies.
        let json = json.replace(
            &build_dir.display().to_string(),
            &project.dir.display().to_string(),
        );
        let out = project.dir.join("rust-project.json");
        crate::fsutil::write_atomic(&out, json.as_bytes(), None)?;
        r.note(&format!("wrote {}", out.display()));
    }
    let out_dir = project.target_dir.join("kmod").join(&tree.release);
    std::fs::create_dir_all(&out_dir).map_err(|e| werr(&out_dir, e))?;
    let out = out_dir.join(format!("{}.ko", project.name));
    let bytes = std::fs::read(&built).map_err(|source| Error::Read {
        path: built.clone(),
        source,
    })?;
    crate::fsutil::write_atomic(&out, &bytes, None)?;
    Ok(out)
}

fn kbuild_make(tree: &Tree, env: &BuildEnv, o: &BuildOptions, m: &Path) -> Command {
    let mut c = Command::new("make");
    c.arg("-C")
        .arg(&tree.kdir)
        .arg(format!("M={}", m.display()));
    c.arg(format!("-j{}", o.jobs.max(1)));
    if env.llvm {
        c.arg("LLVM=1");
    }
    if let Some(r) = &env.rustc {
        c.arg(format!("RUSTC={}", r.display()));
    }
    if let Some(a) = &o.arch {
        c.arg(format!("ARCH={a}"));
    }
    if let Some(x) = &o.cross_compile {
        c.arg(format!("CROSS_COMPILE={x}"));
    }
    crate::kernel::kbuild_env(&mut c, env.path_prefix.as_deref());
    c
}

fn run_streamed(cmd: &mut Command, tree: &Tree, verbose: bool, r: &dyn Reporter) -> Result<()> {
    let (status, lines) = crate::kernel::run_lines(cmd, |l| {
        if verbose {
            r.note(l);
        } else {
            r.progress(l);
        }
    })
    .map_err(|e| Error::ModuleBuild {
        kdir: tree.kdir.clone(),
        tail: format!("cannot run make: {e} (Debian package make)"),
    })?;
    if !status.success() {
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .take(30)
            .rev()
            .map(|s| s.as_str())
            .collect();
        return Err(Error::ModuleBuild {
            kdir: tree.kdir.clone(),
            tail: tail.join("\n"),
        });
    }
    Ok(())
}

/// The trees to build against, in the documented order of precedence.
pub fn choose_trees(cli_kdirs: &[PathBuf], releases: &[String], project: &Project) -> Vec<PathBuf> {
    if !cli_kdirs.is_empty() {
        return cli_kdirs.to_vec();
    }
    if !releases.is_empty() {
        return releases
            .iter()
            .map(|r| PathBuf::from(format!("/lib/modules/{r}/build")))
            .collect();
    }
    if !project.kdirs.is_empty() {
        return project.kdirs.clone();
    }
    if let Some(k) = std::env::var_os("KDIR") {
        return vec![PathBuf::from(k)];
    }
    vec![PathBuf::from(format!(
        "/lib/modules/{}/build",
        running_release()
    ))]
}

pub fn running_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn sha256_hex(p: &Path) -> Result<String> {
    let b = std::fs::read(p).map_err(|source| Error::Read {
        path: p.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(openssl::sha::sha256(&b)))
}
