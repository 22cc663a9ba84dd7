use super::{Status, expand};
use crate::cli::{CheckArgs, MessageFormat};
use cargo_kmod::check::{self, KernelFacts, Report};
use cargo_kmod::report::Reporter;

pub fn run(a: CheckArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let rep = cx.ui.reporter();
    let (named, images) = cx.named_kernels(&a.kernel)?;
    let kernels = check::facts::targets(
        named,
        &a.kdir,
        &a.kernel_release,
        &images,
        &a.modules_dir,
        &a.cert,
        &a.mok,
    )?;
    for k in &kernels {
        rep.note(&describe(k));
        for w in &k.moks_left_out {
            rep.warn(w);
        }
    }
    let mut status = Status::default();
    let modules = expand(&a.modules, &mut status, &rep);
    let named: Vec<bool> = modules.iter().map(|m| a.modules.contains(m)).collect();
    let mut table: Vec<Vec<Option<Report>>> = Vec::new();
    let (mut loads, mut refused) = (0, 0);
    for k in &kernels {
        let results = check::check_all(
            k,
            &modules,
            &named,
            a.tree.jobs(),
            cx.settings.max_module_bytes,
            &rep,
        );
        let mut column = Vec::new();
        for (m, r) in modules.iter().zip(results) {
            match r {
                Ok(r) => {
                    if r.refused() {
                        refused += 1;
                        status.add(cargo_kmod::error::exit::REFUSED);
                    } else {
                        loads += 1;
                    }
                    print(&r, kernels.len() > 1, a.tree.message_format, cx.ui.verbose);
                    column.push(Some(r));
                }
                Err(e) => {
                    status.add(rep.error(&e));
                    if a.tree.message_format == MessageFormat::Json {
                        outln!(
                            "{}",
                            super::json_with_error(
                                serde_json::json!({"module": m.display().to_string(),
                                    "kernel": k.target.release, "verdict": null}),
                                &e
                            )
                        );
                    }
                    column.push(None);
                }
            }
        }
        table.push(column);
    }
    if kernels.len() > 1 && a.tree.message_format == MessageFormat::Human {
        print_table(&modules, &kernels, &table);
    }
    if modules.len() * kernels.len() > 1 {
        note!(
            cx.ui,
            "{} module(s) x {} kernel(s): {loads} load, {refused} refused",
            modules.len(),
            kernels.len()
        );
    }
    Ok(status.code())
}

fn describe(k: &KernelFacts) -> String {
    let size = k
        .struct_module
        .as_ref()
        .map_or("struct module size unknown".into(), |s| {
            format!("struct module {} bytes", s.size)
        });
    format!(
        "{}: {} exported symbols, {}, {} trusted certificate(s), signatures {}{}",
        k.target.name(),
        k.symbols.len(),
        size,
        k.keyring.certs.len(),
        if k.enforcing() {
            "enforced"
        } else {
            "not enforced"
        },
        k.modules
            .as_ref()
            .map(|t| format!(", modules in {}", t.dir.display()))
            .unwrap_or_default()
    )
}

fn print(r: &Report, with_kernel: bool, format: MessageFormat, verbose: bool) {
    if format == MessageFormat::Json {
        outln!("{}", serde_json::to_string(r).expect("report serializes"));
        return;
    }
    let on = if with_kernel {
        format!(" on {}", r.kernel)
    } else {
        String::new()
    };
    outln!("{}{on}: {}", r.module.display(), r.outcome);
    if !r.load_first.is_empty() {
        outln!("    load first: {}", r.load_first.join(", "));
    }
    // A refused module shows everything the loader would look at; one that loads,
    // what is worth knowing (taints, missing dependencies); -v, everything.
    for f in r
        .findings
        .iter()
        .filter(|f| r.refused() || !f.ok || verbose)
    {
        outln!(
            "    {} {}: {}",
            if f.ok { "ok" } else { "!!" },
            f.check,
            f.detail
        );
    }
}

fn print_table(
    modules: &[std::path::PathBuf],
    kernels: &[KernelFacts],
    table: &[Vec<Option<Report>>],
) {
    let names: Vec<String> = modules.iter().map(|m| m.display().to_string()).collect();
    let w = names.iter().map(String::len).max().unwrap_or(6).max(6);
    let cell = |r: &Option<Report>| match r {
        None => "error".to_string(),
        Some(r) => match &r.outcome {
            check::Outcome::Loads { .. } => "loads".into(),
            check::Outcome::Refused { refusal, .. } => format!(
                "refused ({})",
                serde_json::to_value(refusal)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| "other".into())
            ),
        },
    };
    let cw = 28;
    let mut head = format!("{:<w$}", "module");
    for k in kernels {
        head += &format!("  {:<cw$}", k.target.release);
    }
    outln!("{}", head.trim_end());
    for (i, n) in names.iter().enumerate() {
        let mut line = format!("{n:<w$}");
        for col in table {
            line += &format!("  {:<cw$}", cell(&col[i]));
        }
        outln!("{}", line.trim_end());
    }
}
