use super::Status;
use crate::cli::{MessageFormat, TestArgs};
use cargo_kmod::kbuild;
use cargo_kmod::proof::{self, KernelProof};
use cargo_kmod::sign::ProjectSigning;

pub fn run(a: TestArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let (project, key) = cx.project(a.manifest_path.as_deref(), &a.signing)?;
    let signing = key.as_ref().map(ProjectSigning::signing);
    let rep = cx.ui.reporter();
    let jobs = a.jobs.unwrap_or_else(cargo_kmod::tree::default_jobs);
    let req = kbuild::BuildRequest {
        kdirs: &a.kdir,
        releases: &a.kernel_release,
        names: &a.kernel,
        options: kbuild::BuildOptions {
            jobs,
            verbose: cx.ui.verbose,
            strict_modpost: true,
            ..Default::default()
        },
        signing: signing.as_ref(),
    };
    let boot = proof::Boot {
        timeout: std::time::Duration::from_secs(a.timeout),
        accel: a.accel.into(),
        append: if a.enforce {
            vec!["module.sig_enforce=1".into()]
        } else {
            Vec::new()
        },
        // A TCG guest keeps one core busy.
        parallel: jobs,
    };
    let proofs = proof::prove(&cx.settings, &project, &req, &boot, &rep);
    let mut status = Status::default();
    for p in &proofs {
        status.add(p.exit_code());
        match &p.result {
            Err(e) => {
                if a.message_format == MessageFormat::Json {
                    outln!(
                        "{}",
                        super::json_with_error(
                            serde_json::json!({"kernel": p.kernel.display().to_string(),
                                "release": p.release}),
                            e
                        )
                    );
                } else {
                    rep.error(e);
                }
            }
            Ok(done) => {
                if let Some(run) = &done.boot {
                    for problem in &run.problems {
                        warning!(cx.ui, "{}: {problem}", label(p));
                    }
                    note!(
                        cx.ui,
                        "{}: guest ran {:.1} s ({})",
                        label(p),
                        run.seconds,
                        run.accel
                    );
                }
                if a.message_format == MessageFormat::Json {
                    for c in &done.cells {
                        outln!(
                            "{}",
                            serde_json::json!({
                                "kernel": p.kernel.display().to_string(),
                                "release": p.release,
                                "distro": p.distro,
                                "module": c.module,
                                "path": c.path,
                                "verdict": c.kernel,
                                "check": c.check,
                                "agrees": c.agrees(),
                                "unloaded": c.unloaded,
                            })
                        );
                    }
                    if let Some(why) = &done.skipped {
                        outln!(
                            "{}",
                            serde_json::json!({"kernel": p.kernel.display().to_string(),
                                "release": p.release, "skipped": why})
                        );
                    }
                }
            }
        }
    }
    if a.message_format == MessageFormat::Human {
        table(&proofs);
    }
    Ok(status.code())
}

/// The kernel as the table heads it: its name and release.
fn label(p: &KernelProof) -> String {
    match (&p.distro, &p.release) {
        (Some(d), Some(r)) => format!("{d} {r}"),
        (None, Some(r)) => r.clone(),
        _ => p.kernel.display().to_string(),
    }
}

/// Modules down, kernels across; each cell the kernel's verdict.
fn table(proofs: &[KernelProof]) {
    let mut modules: Vec<String> = Vec::new();
    for p in proofs {
        if let Ok(done) = &p.result {
            for c in &done.cells {
                if !modules.contains(&c.module) {
                    modules.push(c.module.clone());
                }
            }
        }
    }
    let cell = |p: &KernelProof, m: &str| -> String {
        match &p.result {
            Err(e) if e.exit_code() == cargo_kmod::error::exit::MODULE_BUILD => {
                "build failed".into()
            }
            Err(e) => format!("error (exit {})", e.exit_code()),
            Ok(done) => match (&done.skipped, done.cells.iter().find(|c| c.module == m)) {
                (Some(_), _) => "skipped".into(),
                (None, None) => "-".into(),
                (None, Some(c)) => {
                    let mut t = c.kernel.to_string();
                    if c.unloaded == Some(false) {
                        t += ", unload failed";
                    }
                    if !c.agrees() {
                        t += &format!(" (check said {})", c.check);
                    }
                    t
                }
            },
        }
    };
    let heads: Vec<String> = proofs.iter().map(label).collect();
    let w0 = modules.iter().map(String::len).max().unwrap_or(6).max(6);
    let widths: Vec<usize> = proofs
        .iter()
        .zip(&heads)
        .map(|(p, h)| {
            modules
                .iter()
                .map(|m| cell(p, m).len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |first: &str, rest: Vec<String>| {
        let mut l = format!("{first:<w0$}");
        for (c, w) in rest.iter().zip(&widths) {
            l += &format!("  {c:<w$}");
        }
        outln!("{}", l.trim_end());
    };
    line("module", heads.clone());
    if modules.is_empty() {
        line("(none)", proofs.iter().map(|p| cell(p, "")).collect());
    }
    for m in &modules {
        line(m, proofs.iter().map(|p| cell(p, m)).collect());
    }
}
