//! `cargo kmod test`: the whole proof, per kernel: build (modpost strict: an unresolved
//! symbol fails the build), sign, `check` against the kernel's own tree, image and
//! module tree, then boot that kernel and load every module, dependencies first. Each
//! module × kernel cell holds the kernel's own verdict and `check`'s prediction of it.

use crate::check::{self, Outcome};
use crate::error::{Error, Result, exit};
use crate::kbuild::{self, Artifact, BuildRequest, KernelBuild};
use crate::loader::Refusal;
use crate::project::Project;
use crate::qemu;
use crate::report::{Prefixed, Reporter};
use crate::settings::Settings;
use crate::target::Target;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the kernels are booted.
#[derive(Debug, Clone)]
pub struct Boot {
    pub timeout: Duration,
    pub accel: qemu::Accel,
    pub append: Vec<String>,
    /// Guests at once.
    pub parallel: usize,
}

/// What a module did (or would do) in a kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "refusal")]
pub enum Verdict {
    Loads,
    Refused(Refusal),
    /// The loader accepted it; its own init returned this error (what it drives is
    /// not in the guest). Beyond what `check` judges.
    InitFailed(i32),
    /// The boot gave no result for it (the guest died or timed out before).
    NoResult,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Loads => f.write_str("loads"),
            Verdict::Refused(r) => write!(
                f,
                "refused ({})",
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| r.to_string())
            ),
            Verdict::InitFailed(ret) => write!(f, "init failed ({ret})"),
            Verdict::NoResult => f.write_str("no result"),
        }
    }
}

/// One module in one kernel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cell {
    pub module: String,
    pub path: PathBuf,
    /// `check`'s prediction.
    pub check: Verdict,
    /// The booted kernel's verdict.
    pub kernel: Verdict,
    /// Whether `rmmod` took it out again (None: not loaded, or the guest ended first).
    pub unloaded: Option<bool>,
}

impl Cell {
    /// `check` judges the loader: a module whose own init fails was loadable.
    pub fn agrees(&self) -> bool {
        self.check == self.kernel
            || (self.check == Verdict::Loads && matches!(self.kernel, Verdict::InitFailed(_)))
    }
}

/// One kernel's proof.
pub struct KernelProof {
    /// What was asked for: a name (`debian/sid`) or a tree.
    pub kernel: PathBuf,
    pub release: Option<String>,
    /// The distribution name it was fetched under.
    pub distro: Option<String>,
    /// The build's failure, a kernel that cannot be checked or booted, ...
    pub result: Result<Proved>,
}

/// A kernel that was built for, checked and booted (or that the project skips).
pub struct Proved {
    pub cells: Vec<Cell>,
    /// Why the project builds nothing for this kernel (dkms.conf's BUILD_EXCLUSIVE_*).
    pub skipped: Option<String>,
    /// The boot's own report: problems, taint, time.
    pub boot: Option<qemu::RunReport>,
}

impl KernelProof {
    /// The worst of the cells, the build and the boot, as a documented exit code.
    pub fn exit_code(&self) -> i32 {
        let p = match &self.result {
            Err(e) => return e.exit_code(),
            Ok(p) => p,
        };
        let mut code = p.boot.as_ref().map_or(0, qemu::RunReport::exit_code);
        for c in &p.cells {
            if !c.agrees() {
                code = code.max(exit::FAILURE);
            }
            if c.kernel != Verdict::Loads {
                code = code.max(exit::REFUSED);
            }
        }
        code
    }
}

/// Builds for every kernel at once (a matrix build with modpost strict), then checks
/// and boots them, `boot.parallel` at a time. Results keep the order of the builds.
pub fn prove(
    s: &Settings,
    project: &Project,
    req: &BuildRequest,
    boot: &Boot,
    r: &dyn Reporter,
) -> Vec<KernelProof> {
    let builds = kbuild::build_project(s, project, req, r);
    let slots = std::sync::Mutex::new(builds.into_iter().enumerate().collect::<Vec<_>>());
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..boot.parallel.max(1) {
            sc.spawn(|| {
                loop {
                    let next = slots.lock().expect("not poisoned").pop();
                    let Some((i, kb)) = next else { break };
                    let p = prove_one(s, kb, boot, r);
                    done.lock().expect("not poisoned").push((i, p));
                }
            });
        }
    });
    let mut done = done.into_inner().expect("not poisoned");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, p)| p).collect()
}

fn prove_one(s: &Settings, kb: KernelBuild, boot: &Boot, r: &dyn Reporter) -> KernelProof {
    let mut distro = None;
    let result = kb.result.and_then(|art| {
        let t = booted_target(s, &kb.asked, r)?;
        distro.clone_from(&t.distro);
        check_and_boot(s, &art, &t, boot, r)
    });
    KernelProof {
        kernel: kb.asked,
        release: kb.release,
        distro,
        result,
    }
}

/// The kernel to check and boot, with its image and module tree: a kernel by name as
/// fetched, an installed release's, or a built tree's.
fn booted_target(s: &Settings, asked: &Path, r: &dyn Reporter) -> Result<Target> {
    let text = asked.to_string_lossy();
    if crate::distro::is_name(&text) {
        return crate::distro::target(s, &text, r);
    }
    let installed = asked
        .strip_prefix("/lib/modules")
        .ok()
        .filter(|rest| rest.ends_with("build"))
        .and_then(|rest| rest.parent())
        .and_then(|rel| rel.to_str());
    let mut t = match installed {
        Some(release) => Target::from_release(Path::new("/"), release),
        None => Target::from_tree(asked)?,
    };
    if t.modules.is_none() {
        t.modules = Some(PathBuf::from(format!("/lib/modules/{}", t.release)))
            .filter(|m| installed.is_some() && m.join("modules.dep").is_file());
    }
    Ok(t)
}

fn check_and_boot(
    s: &Settings,
    art: &Artifact,
    t: &Target,
    boot: &Boot,
    r: &dyn Reporter,
) -> Result<Proved> {
    if let Some(why) = &art.skipped {
        return Ok(Proved {
            cells: Vec::new(),
            skipped: Some(why.clone()),
            boot: None,
        });
    }
    let r = Prefixed {
        prefix: t.release.clone(),
        inner: r,
    };
    let paths: Vec<PathBuf> = art.modules.iter().map(|m| m.path.clone()).collect();
    let facts = check::KernelFacts::resolve(t.clone(), t.modules.as_deref(), &[], &[])?;
    let named = vec![true; paths.len()];
    let predicted = check::check_all(&facts, &paths, &named, 1, s.max_module_bytes, &r);
    let arch = t.known_arch("booting")?;
    let image = t.image.clone().ok_or_else(|| Error::Run {
        path: t
            .tree
            .clone()
            .unwrap_or_default()
            .join(arch.image_in_tree()),
        reason: "the kernel has no image to boot".into(),
    })?;
    let dependencies = match &t.modules {
        Some(dir) => qemu::dependencies(
            &paths,
            &crate::modtree::ModuleTree::open(dir)?,
            s.max_module_bytes,
            &r,
        )?,
        None => Vec::new(),
    };
    r.note(&format!(
        "booting {} with {} module(s)",
        image.display(),
        paths.len()
    ));
    let run = qemu::run(
        &qemu::RunOptions {
            secure_boot: None,
            image,
            arch,
            modules: paths.clone(),
            dependencies,
            append: boot.append.clone(),
            params: Vec::new(),
            before: Vec::new(),
            exec: Vec::new(),
            files: Vec::new(),
            timeout: boot.timeout,
            busybox: qemu::default_busybox(s, arch)?,
            accel: boot.accel,
            max_module_bytes: s.max_module_bytes,
        },
        &r,
    )?;
    let mut cells = Vec::new();
    for (m, p) in art.modules.iter().zip(predicted) {
        let check = match p?.outcome {
            Outcome::Loads { .. } => Verdict::Loads,
            Outcome::Refused { refusal, .. } => Verdict::Refused(refusal),
        };
        let booted = run
            .modules
            .iter()
            .find(|x| !x.dependency && x.path == m.path);
        let kernel = booted.map_or(Verdict::NoResult, |x| match (&x.refusal, x.loaded) {
            (_, true) => Verdict::Loads,
            (Some(Refusal::InitFailed(ret)), false) => Verdict::InitFailed(*ret),
            (Some(f), false) => Verdict::Refused(f.clone()),
            (None, false) => Verdict::NoResult,
        });
        cells.push(Cell {
            module: m.name.clone(),
            path: m.path.clone(),
            check,
            kernel,
            unloaded: booted.and_then(|b| b.unloaded),
        });
    }
    Ok(Proved {
        cells,
        skipped: None,
        boot: Some(run),
    })
}
