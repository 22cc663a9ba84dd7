use super::Status;
use crate::cli::{BuildArgs, MessageFormat};
use cargo_kmod::kbuild;
use cargo_kmod::sign::ProjectSigning;

pub fn run(a: BuildArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let (project, key) = cx.project(a.manifest_path.as_deref(), &a.signing)?;
    let signing = key.as_ref().map(ProjectSigning::signing);
    let rep = cx.ui.reporter();
    let o = kbuild::BuildOptions {
        jobs: a.jobs.unwrap_or_else(cargo_kmod::tree::default_jobs),
        arch: a.arch,
        cross_compile: a.cross_compile,
        verbose: cx.ui.verbose,
        rust_analyzer: a.rust_analyzer,
        makeflags: None,
        strict_modpost: false,
    };
    let req = kbuild::BuildRequest {
        kdirs: &a.kdir,
        releases: &a.kernel_release,
        names: &a.kernel,
        options: o,
        signing: signing.as_ref(),
    };
    let mut status = Status::default();
    let mut rows: Vec<Row> = Vec::new();
    for k in kbuild::build_project(&cx.settings, &project, &req, &rep) {
        match k.result {
            Ok(art) => {
                let state = if art.skipped.is_some() {
                    "skipped"
                } else {
                    "ok"
                };
                if a.message_format == MessageFormat::Json {
                    let mut v = serde_json::to_value(&art).expect("serializes");
                    v["status"] = state.into();
                    outln!("{v}");
                }
                let signed = art
                    .hash
                    .as_ref()
                    .map(|h| format!(" (signed, {h})"))
                    .unwrap_or_default();
                let detail = match (&art.skipped, art.modules.len()) {
                    (Some(why), _) => why.clone(),
                    (None, 1) => format!("{}{signed}", art.path.display()),
                    (None, n) => format!(
                        "{n} modules in {}{signed}: {}",
                        art.path.parent().unwrap_or(&art.path).display(),
                        art.modules
                            .iter()
                            .map(|m| m.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                rows.push(Row {
                    release: art.release.clone(),
                    result: state.into(),
                    detail,
                });
            }
            Err(e) => {
                status.add(rep.error(&e));
                rows.push(Row::failed(
                    &k.kdir,
                    k.release.as_deref(),
                    &e,
                    a.message_format,
                ));
            }
        }
    }
    if a.message_format == MessageFormat::Human {
        let w = rows.iter().map(|r| r.release.len()).max().unwrap_or(0);
        for r in &rows {
            outln!("{:<w$}  {:<7}  {}", r.release, r.result, r.detail);
        }
    }
    Ok(status.code())
}

/// One kernel's line of the summary.
struct Row {
    release: String,
    result: String,
    detail: String,
}

impl Row {
    /// A kernel that failed; in JSON mode its object is printed now.
    fn failed(
        kdir: &std::path::Path,
        release: Option<&str>,
        e: &cargo_kmod::Error,
        format: MessageFormat,
    ) -> Row {
        if format == MessageFormat::Json {
            outln!(
                "{}",
                super::json_with_error(
                    serde_json::json!({"status": "failed", "release": release, "kdir": kdir}),
                    e
                )
            );
        }
        Row {
            release: release.map_or_else(|| kdir.display().to_string(), str::to_string),
            result: "FAILED".into(),
            detail: format!(
                "exit {}: {}",
                e.exit_code(),
                e.to_string().lines().next().unwrap_or_default()
            ),
        }
    }
}
