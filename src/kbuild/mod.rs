//! `cargo kmod build`: a module project built by Kbuild against kernel trees, after
//! checks that turn Kbuild's cryptic failures into one line that says the fix.

use crate::error::{Error, Result};
pub use crate::project::{Manifest, ModuleRecord, Project};
use crate::report::Reporter;
use crate::settings::Settings;
use crate::target::Target;
pub use crate::target::running_release;
use crate::toolchain::{self, MakeVars, tool_version, which};
use std::path::{Path, PathBuf};

/// The tree to build the project against: `kdir` itself, or, for a Rust project and
/// headers without rust/, the tree `kernel prepare` made of those headers.
pub fn resolve_tree(
    s: &Settings,
    kdir: &Path,
    project: &Project,
    r: &dyn Reporter,
) -> Result<Target> {
    let t = Target::from_tree(kdir)?;
    let wants_prepared = project.is_rust()
        && t.config.as_ref().is_some_and(|c| c.rust())
        && !kdir.join("rust").is_dir();
    if wants_prepared && let Some(p) = crate::prepare::find(s, kdir) {
        r.note(&format!(
            "{}: building in the tree prepared from these headers ({})",
            t.release,
            p.kdir.display()
        ));
        return Target::from_tree(&p.kdir);
    }
    Ok(t)
}

/// Checks a tree against the project, in the order failures would surface; says
/// what `make` must be told for it.
pub fn preflight(
    s: &Settings,
    target: &Target,
    project: &Project,
    forced_rustc: Option<&Path>,
) -> Result<MakeVars> {
    let kdir = target.tree("building a module")?;
    let config = target.config.as_ref().expect("a tree has its .config");
    let fail = |reason: String, fix: String| Error::Preflight {
        kdir: kdir.to_path_buf(),
        reason,
        fix,
    };
    if !config.enabled("CONFIG_MODULES") {
        return Err(fail(
            "this kernel has no loadable module support (CONFIG_MODULES is off)".into(),
            "use a kernel built with CONFIG_MODULES=y".into(),
        ));
    }
    let mut env = MakeVars::default();
    match toolchain::KernelCc::find(s, config) {
        Ok(Some(cc)) => cc.apply(&mut env),
        // Kernels before 5.8 do not name their compiler: clang's, or Kbuild's default.
        Ok(None) => env.llvm = config.cc_is_clang(),
        Err((reason, fix)) => return Err(fail(reason, fix)),
    }
    // Another architecture's tree is cross-built: ARCH from the tree (clang needs no
    // more; gcc's CROSS_COMPILE comes from its name).
    if let Some(a) = target
        .arch
        .filter(|a| Some(*a) != crate::target::Arch::host())
    {
        env.arch = Some(a.kbuild().to_string());
    }
    if !project.is_rust() {
        return Ok(env);
    }
    if !config.rust() {
        return Err(fail(
            format!(
                "{}: these headers were built without Rust support (CONFIG_RUST is off)",
                target.release
            ),
            "use `cargo kmod kernel build` or headers with CONFIG_RUST=y".into(),
        ));
    }
    if !kdir.join("rust/libmacros.so").exists() && !kdir.join("rust").is_dir() {
        // A headers package: Debian's and others' leave rust/ out.
        return Err(fail(
            "CONFIG_RUST=y, but these headers have no rust/ (the kernel crate and macros Rust modules build against)".into(),
            format!(
                "cargo kmod kernel prepare --headers {} (builds rust/ from the kernel's source with the kernel's own compilers; `build` then finds it)",
                kdir.display()
            ),
        ));
    }
    let want = config.rustc_version_text().unwrap_or_default().to_string();
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
    let candidates = project.rustc.iter().cloned().chain(which(s, "rustc"));
    match toolchain::matching_rustc(&want, candidates) {
        Ok(rustc) => {
            env.rustc = Some(rustc);
            Ok(env)
        }
        Err(seen) => Err(fail(
            format!("no rustc matches the kernel's `{want}`; found: {seen}"),
            "install the rustc that built the kernel and set RUSTC to it (or `rustc` in [package.metadata.kmod])".into(),
        )),
    }
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub jobs: usize,
    /// When several kernels build at once: the MAKEFLAGS of their shared jobserver
    /// ([`toolchain::Jobserver`]), given to every make instead of `-j`.
    pub makeflags: Option<String>,
    pub arch: Option<String>,
    pub cross_compile: Option<String>,
    pub verbose: bool,
    pub rust_analyzer: bool,
    /// modpost refuses unresolved symbols, whatever the project's Makefile says
    /// (`KBUILD_MODPOST_WARN` emptied on every make's command line).
    pub strict_modpost: bool,
}

impl BuildOptions {
    /// MAKEFLAGS for every make of the build (sub-makes of a project's own Makefile,
    /// DKMS's MAKE lines): the jobserver's, and the strict modpost override.
    pub fn make_env(&self) -> Option<String> {
        let strict = self.strict_modpost.then_some("-- KBUILD_MODPOST_WARN=");
        match (self.makeflags.as_deref(), strict) {
            (None, None) => None,
            (f, st) => Some([f, st].into_iter().flatten().collect::<Vec<_>>().join(" ")),
        }
    }
}

/// One kernel's build: every module it made (signed when asked), or why this kernel
/// was skipped (a dkms.conf's `BUILD_EXCLUSIVE_*`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Artifact {
    pub release: String,
    pub kdir: PathBuf,
    /// The module named after the project (else the first): what one-module tools take.
    pub path: PathBuf,
    pub signed: bool,
    /// The hash it was signed with.
    pub hash: Option<String>,
    pub sha256: String,
    pub modules: Vec<BuiltModule>,
    /// Why this kernel builds nothing, in DKMS's words; `modules` is empty then.
    pub skipped: Option<String>,
}

/// A module a build made, in `target/kmod/<release>/`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltModule {
    /// Its name as the kernel knows it.
    pub name: String,
    pub path: PathBuf,
    /// Where it installs under `/lib/modules/<release>/`, when the project says
    /// (`DEST_MODULE_LOCATION`).
    pub dest_location: Option<String>,
    pub sha256: String,
}

/// What a build leaves in `target/kmod/<release>/`, before signing, in the order the
/// modules load.
pub struct Built {
    pub modules: Vec<(PathBuf, Option<String>)>,
    pub skipped: Option<String>,
}

/// The build → sign pipeline: the signing hash is settled for the target first (a
/// hash it cannot take is refused before anything is built or written), then every
/// module is built and signed in place; one that cannot be signed fails the kernel.
pub fn build_and_sign(
    s: &Settings,
    project: &Project,
    target: &Target,
    env: &MakeVars,
    o: &BuildOptions,
    signing: Option<&crate::sign::Signing>,
    r: &dyn Reporter,
) -> Result<Artifact> {
    let hash = signing.map(|g| g.hash_for(target)).transpose()?;
    let built = build_one(s, project, target, env, o, r)?;
    if let Some((g, hash)) = signing.zip(hash) {
        let opts = crate::sign::SignOptions {
            hash,
            id: crate::sign::cms::SignerIdKind::IssuerSerial,
            if_signed: crate::sign::IfSigned::Replace,
            output: crate::sign::SigOutput::Append,
            max_module_bytes: s.max_module_bytes,
        };
        for (path, _) in &built.modules {
            crate::sign::sign_module_file(g.key, &opts, path, None)?;
        }
    }
    let mut modules = Vec::new();
    for (path, dest_location) in built.modules {
        modules.push(BuiltModule {
            name: crate::modfile::name_of_path(&path.to_string_lossy()),
            sha256: sha256_hex(&path)?,
            path,
            dest_location,
        });
    }
    let own = crate::modfile::normalise(&project.name);
    let main = modules.iter().find(|m| m.name == own).or(modules.first());
    Ok(Artifact {
        release: target.release.clone(),
        kdir: target.tree("building a module")?.to_path_buf(),
        path: main.map(|m| m.path.clone()).unwrap_or_default(),
        sha256: main.map(|m| m.sha256.clone()).unwrap_or_default(),
        signed: hash.is_some() && !modules.is_empty(),
        hash: hash
            .filter(|_| !modules.is_empty())
            .map(|h| h.name().to_string()),
        modules,
        skipped: built.skipped,
    })
}

/// What `build` is asked: the trees (or releases) named, how to build, how to sign.
pub struct BuildRequest<'a> {
    pub kdirs: &'a [PathBuf],
    pub releases: &'a [String],
    /// Kernels by name (`debian/sid`).
    pub names: &'a [String],
    pub options: BuildOptions,
    pub signing: Option<&'a crate::sign::Signing<'a>>,
}

/// One kernel's outcome: the tree it was asked for, its release when known, and the
/// module built (or why not).
pub struct KernelBuild {
    /// The kernel as asked for: a tree, or a name (`debian/sid`).
    pub asked: PathBuf,
    pub kdir: PathBuf,
    pub release: Option<String>,
    pub result: Result<Artifact>,
}

/// `cargo kmod build`: every tree chosen (in the documented order of precedence) is
/// resolved and preflighted before any is built; a refused tree is a result of its
/// own and the others still build, in parallel. Refused trees come first, then the
/// builds in the order given.
pub fn build_project(
    s: &Settings,
    project: &Project,
    req: &BuildRequest,
    r: &dyn Reporter,
) -> Vec<KernelBuild> {
    let mut out = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut asked: Vec<PathBuf> = Vec::new();
    for chosen in choose_trees(s, req.kdirs, req.releases, req.names, project) {
        let kdir = chosen.label();
        let ready = chosen.tree(s, r).and_then(|k| resolve_tree(s, &k, project, r)).and_then(|t| {
            if let Some(other) = jobs.iter().find(|j| j.target.release == t.release) {
                return Err(Error::usage(
                    format!(
                        "{} and {} are both kernel {}",
                        other.target.tree.as_ref().expect("tree").display(),
                        kdir.display(),
                        t.release
                    ),
                    "give each release once (modules of one release land in one target/kmod/<release>/)",
                ));
            }
            preflight(s, &t, project, s.rustc.as_deref()).map(|vars| Job { target: t, vars })
        });
        match ready {
            Ok(job) => {
                jobs.push(job);
                asked.push(kdir);
            }
            Err(e) => out.push(KernelBuild {
                asked: kdir.clone(),
                kdir,
                release: None,
                result: Err(e),
            }),
        }
    }
    let results = build_matrix(s, project, &jobs, &req.options, req.signing, r);
    out.extend(
        jobs.into_iter()
            .zip(results)
            .zip(asked)
            .map(|((j, result), asked)| KernelBuild {
                asked,
                kdir: j.target.tree.clone().expect("built from a tree"),
                release: Some(j.target.release),
                result,
            }),
    );
    out
}

/// One kernel of a matrix build: the target and what `make` is told for it.
pub struct Job {
    pub target: Target,
    pub vars: MakeVars,
}

/// Builds (and signs) for every kernel at once, `o.jobs` shared out among them. One
/// failing does not stop the others; results come in the order given.
pub fn build_matrix(
    s: &Settings,
    project: &Project,
    jobs: &[Job],
    o: &BuildOptions,
    signing: Option<&crate::sign::Signing>,
    r: &dyn Reporter,
) -> Vec<Result<Artifact>> {
    let results = build_all(s, project, jobs, o, signing, r);
    // What `package` takes by default: this build's releases, not every one ever built.
    let built: Vec<&str> = results
        .iter()
        .filter_map(|a| a.as_ref().ok().map(|a| a.release.as_str()))
        .collect();
    if !built.is_empty() {
        let _ = crate::fsutil::write_atomic(
            &project.last_build(),
            (built.join("\n") + "\n").as_bytes(),
            None,
        );
    }
    results
}

fn build_all(
    s: &Settings,
    project: &Project,
    jobs: &[Job],
    o: &BuildOptions,
    signing: Option<&crate::sign::Signing>,
    r: &dyn Reporter,
) -> Vec<Result<Artifact>> {
    if jobs.len() == 1 {
        let j = &jobs[0];
        return vec![build_and_sign(
            s, project, &j.target, &j.vars, o, signing, r,
        )];
    }
    let total = o.jobs.max(1);
    // One jobserver for all: kept open until every build has ended.
    let server = toolchain::Jobserver::new(total).ok();
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|j| {
                let mut o = o.clone();
                o.makeflags = server.as_ref().map(toolchain::Jobserver::makeflags);
                let rep = crate::report::Prefixed {
                    inner: r,
                    prefix: j.target.release.clone(),
                };
                scope.spawn(move || {
                    build_and_sign(s, project, &j.target, &j.vars, &o, signing, &rep)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a build thread panicked"))
            .collect()
    })
}

/// Builds the project against one tree, in a copy under `target/kmod/build/<release>/`
/// (never in the project's own directory); its modules land in
/// `target/kmod/<release>/`, each once, beside a record of the tree.
pub fn build_one(
    s: &Settings,
    project: &Project,
    target: &Target,
    env: &MakeVars,
    o: &BuildOptions,
    r: &dyn Reporter,
) -> Result<Built> {
    let kdir = target.tree("building a module")?;
    r.note(&format!(
        "building {} for {} ({})",
        project.name,
        target.release,
        kdir.display()
    ));
    let built = match &project.source {
        crate::project::Source::Kbuild => kbuild_copy(s, project, target, env, o, r)?,
        crate::project::Source::Dkms { conf } => {
            let m: Made = crate::dkms::build::build(
                s,
                project,
                conf,
                target,
                env,
                crate::dkms::build::Jobs {
                    jobs: o.jobs,
                    jobserver: o.makeflags.is_some(),
                    makeflags: o.make_env().as_deref(),
                },
                r,
            )?;
            m
        }
    };
    if built.skipped.is_some() {
        return Ok(Built {
            modules: Vec::new(),
            skipped: built.skipped,
        });
    }
    let out_dir = project.out_dir(&target.release);
    std::fs::create_dir_all(&out_dir).map_err(|source| Error::Write {
        path: out_dir.clone(),
        source,
    })?;
    let mut modules = Vec::new();
    let mut records: Vec<ModuleRecord> = Vec::new();
    // Where each was in a Kbuild copy, for the dkms.conf `package --dkms` writes.
    let copy = project.build_dir(&target.release);
    for (from, dest_name, dest_location) in built.modules {
        let built_location = matches!(project.source, crate::project::Source::Kbuild)
            .then(|| from.parent()?.strip_prefix(&copy).ok())
            .flatten()
            .map(|l| l.to_string_lossy().into_owned());
        let out = out_dir.join(format!("{dest_name}.ko"));
        if modules.contains(&out) {
            return Err(Error::ModuleBuild {
                kdir: kdir.to_path_buf(),
                tail: format!(
                    "two modules are both {dest_name}.ko ({}): rename one",
                    from.display()
                ),
            });
        }
        let bytes = crate::fsutil::read_bounded(&from, s.max_module_bytes)?;
        crate::fsutil::write_atomic(&out, &bytes, None)?;
        records.push(ModuleRecord {
            file: format!("{dest_name}.ko"),
            dest_location,
            built_location,
        });
        modules.push(out);
    }
    // Modules an earlier build made and this one did not are not this build's.
    for e in std::fs::read_dir(&out_dir).into_iter().flatten().flatten() {
        let p = e.path();
        if crate::tree::is_module_name(&p) && !modules.contains(&p) {
            let _ = std::fs::remove_file(&p);
        }
    }
    // Listed in the order they load: each after those of them it needs (a cycle is
    // left as it is, for check and run to name).
    let order = crate::modtree::order_files(&modules, s.max_module_bytes).unwrap_or_default();
    let mut listed: Vec<(PathBuf, ModuleRecord)> = modules.into_iter().zip(records).collect();
    listed.sort_by_key(|(p, _)| order.iter().position(|o| o == p));
    let records: Vec<&ModuleRecord> = listed.iter().map(|(_, r)| r).collect();
    crate::fsutil::write_atomic(
        &project.built_record(&target.release),
        serde_json::to_string_pretty(&records)
            .expect("serialises")
            .as_bytes(),
        None,
    )?;
    // Packaging later resolves the same kernel (architecture, compression) from this.
    crate::fsutil::write_atomic(
        &project.built_for(&target.release),
        kdir.display().to_string().as_bytes(),
        None,
    )?;
    Ok(Built {
        modules: listed
            .into_iter()
            .map(|(p, r)| (p, r.dest_location))
            .collect(),
        skipped: None,
    })
}

use crate::dkms::build::Made;

/// A Kbuild project: the directory copied (changed files only, so Kbuild's own
/// timestamps keep rebuilds incremental), `make M=<copy> modules`, and every `.ko`
/// the build made.
fn kbuild_copy(
    s: &Settings,
    project: &Project,
    target: &Target,
    env: &MakeVars,
    o: &BuildOptions,
    r: &dyn Reporter,
) -> Result<Made> {
    let kdir = target.tree("building a module")?;
    let build_dir = project.build_dir(&target.release);
    crate::fsutil::sync_tree(&project.dir, &build_dir, &[&project.target_dir])?;
    let mut make = kbuild_make(s, kdir, env, o, &build_dir);
    make.arg("modules");
    run_streamed(&mut make, kdir, o.verbose, r)?;
    let found: Vec<PathBuf> = walkdir::WalkDir::new(&build_dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "ko"))
        .map(|e| e.into_path())
        .collect();
    if found.is_empty() {
        return Err(Error::ModuleBuild {
            kdir: kdir.to_path_buf(),
            tail: "Kbuild finished but made no module (is obj-m in Kbuild or the Makefile right?)"
                .into(),
        });
    }
    if o.rust_analyzer && project.is_rust() {
        rust_analyzer(s, project, kdir, env, o, &build_dir, r)?;
    }
    Ok(Made {
        modules: found
            .into_iter()
            .map(|p| {
                let stem = p
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                (p, stem, None)
            })
            .collect(),
        skipped: None,
    })
}

/// `make rust-analyzer` in the copy, its paths pointed at the project's own sources.
fn rust_analyzer(
    s: &Settings,
    project: &Project,
    kdir: &Path,
    env: &MakeVars,
    o: &BuildOptions,
    build_dir: &Path,
    r: &dyn Reporter,
) -> Result<()> {
    // This target checks the whole Rust toolchain (bindgen, rust-src), like a kernel build.
    let tc = toolchain::Toolchain::find(s, env.rustc.as_deref(), None)?;
    let mut ra = toolchain::make(s, kdir, &tc.vars());
    ra.arg(format!("M={}", build_dir.display()))
        .arg("rust-analyzer");
    run_streamed(&mut ra, kdir, o.verbose, r)?;
    let json = std::fs::read_to_string(build_dir.join("rust-project.json")).map_err(|e| {
        Error::ModuleBuild {
            kdir: kdir.to_path_buf(),
            tail: format!("rust-analyzer target made no rust-project.json: {e}"),
        }
    })?;
    let json = json.replace(
        &build_dir.display().to_string(),
        &project.dir.display().to_string(),
    );
    let out = project.dir.join("rust-project.json");
    crate::fsutil::write_atomic(&out, json.as_bytes(), None)?;
    r.note(&format!("wrote {}", out.display()));
    Ok(())
}

fn kbuild_make(
    s: &Settings,
    kdir: &Path,
    env: &MakeVars,
    o: &BuildOptions,
    m: &Path,
) -> std::process::Command {
    let mut vars = env.clone();
    // Given on the command line, they win over what preflight took from the tree.
    if o.arch.is_some() {
        vars.arch.clone_from(&o.arch);
    }
    if o.cross_compile.is_some() {
        vars.cross_compile.clone_from(&o.cross_compile);
    }
    let mut c = toolchain::make(s, kdir, &vars);
    c.arg(format!("M={}", m.display()));
    if o.makeflags.is_none() {
        c.arg(format!("-j{}", o.jobs.max(1)));
    }
    if let Some(flags) = o.make_env() {
        c.env("MAKEFLAGS", flags);
    }
    c
}

fn run_streamed(
    cmd: &mut std::process::Command,
    kdir: &Path,
    verbose: bool,
    r: &dyn Reporter,
) -> Result<()> {
    toolchain::run_step(cmd, 30, |l| {
        if verbose {
            r.note(l);
        } else {
            r.progress(l);
        }
    })
    .map(drop)
    .map_err(|tail| Error::ModuleBuild {
        kdir: kdir.to_path_buf(),
        tail,
    })
}

/// A kernel a build is asked for: a tree, or a kernel by name (fetched on first use).
#[derive(Debug, Clone)]
pub enum Chosen {
    Tree(PathBuf),
    Named(String),
}

impl Chosen {
    /// Its tree: a named kernel's headers (fetched now when they are not yet).
    pub fn tree(&self, s: &Settings, r: &dyn Reporter) -> Result<PathBuf> {
        match self {
            Chosen::Tree(k) => Ok(k.clone()),
            Chosen::Named(n) => {
                let spec = crate::distro::Spec::parse(n, None, None)?;
                Ok(crate::distro::fetch(s, &spec, Default::default(), r)?.kdir)
            }
        }
    }

    /// How to name it before it is resolved.
    pub fn label(&self) -> PathBuf {
        match self {
            Chosen::Tree(k) => k.clone(),
            Chosen::Named(n) => PathBuf::from(n),
        }
    }
}

/// The kernels to build for, in the documented order of precedence: the command
/// line's (trees, releases, names), else the manifest's (`kdir`, `kernels`), else
/// `KDIR`, else the running kernel's.
pub fn choose_trees(
    s: &Settings,
    cli_kdirs: &[PathBuf],
    releases: &[String],
    names: &[String],
    project: &Project,
) -> Vec<Chosen> {
    let release_tree = |r: &String| Chosen::Tree(PathBuf::from(format!("/lib/modules/{r}/build")));
    let cli: Vec<Chosen> = cli_kdirs
        .iter()
        .cloned()
        .map(Chosen::Tree)
        .chain(releases.iter().map(release_tree))
        .chain(names.iter().cloned().map(Chosen::Named))
        .collect();
    if !cli.is_empty() {
        return cli;
    }
    let manifest: Vec<Chosen> = project
        .kdirs
        .iter()
        .cloned()
        .map(Chosen::Tree)
        .chain(project.kernels.iter().cloned().map(Chosen::Named))
        .collect();
    if !manifest.is_empty() {
        return manifest;
    }
    if let Some(k) = &s.kdir {
        return vec![Chosen::Tree(k.clone())];
    }
    vec![release_tree(&running_release())]
}

pub fn sha256_hex(p: &Path) -> Result<String> {
    let b = std::fs::read(p).map_err(|source| Error::Read {
        path: p.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(openssl::sha::sha256(&b)))
}
