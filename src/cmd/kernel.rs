use crate::cli::KernelCommand;
use cargo_kmod::kernel;

pub fn run(c: KernelCommand, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    match c {
        KernelCommand::Build(a) => {
            let o = kernel::BuildOptions {
                source: a.source,
                out: a.out,
                fragments: a.fragments,
                trusted_certs: a.trusted_certs,
                rustc: a.rustc,
                bindgen: a.bindgen,
                jobs: a.jobs.unwrap_or_else(cargo_kmod::tree::default_jobs),
                rust: match (a.rust, a.no_rust) {
                    (true, _) => kernel::RustChoice::Yes,
                    (_, true) => kernel::RustChoice::No,
                    _ => kernel::RustChoice::Auto,
                },
                mldsa_waiver: a.mldsa_waiver,
                arch: a.arch.into(),
            };
            let info = kernel::build(&cx.settings, &o, &cx.ui.reporter())?;
            outln!("release: {}", info.release);
            outln!("kdir:    {}", info.kdir.display());
            outln!("image:   {}", info.image.display());
            Ok(0)
        }
        KernelCommand::Prepare(a) => {
            let o = cargo_kmod::prepare::PrepareOptions {
                headers: a.headers,
                source: a.source,
                rustc: a.rustc,
                bindgen: a.bindgen,
                jobs: a.jobs.unwrap_or_else(cargo_kmod::tree::default_jobs),
            };
            let p = cargo_kmod::prepare::prepare(&cx.settings, &o, &cx.ui.reporter())?;
            // The path alone: DKMS's MAKE line takes it as `$(...)`.
            outln!("{}", p.kdir.display());
            Ok(0)
        }
        KernelCommand::List => {
            let list = kernel::list(&cx.settings);
            if list.is_empty() {
                note!(
                    cx.ui,
                    "no kernels in {}; make one with `cargo kmod kernel build --source ...`",
                    cargo_kmod::cache::kernels(&cx.settings).display()
                );
            }
            let rows: Vec<[String; 6]> = list
                .iter()
                .map(|k| {
                    [
                        k.release.clone(),
                        k.arch.name().to_string(),
                        if k.rust { "yes" } else { "no" }.into(),
                        // "rustc 1.96.0 (ac68faa20 2026-05-25) (...)": the version.
                        match k.rustc.split_whitespace().nth(1) {
                            Some(v) if k.rust => v.to_string(),
                            _ => "-".into(),
                        },
                        k.kdir.display().to_string(),
                        if k.trusted.is_empty() {
                            "(build key only)".to_string()
                        } else {
                            k.trusted.join("; ")
                        },
                    ]
                })
                .collect();
            let head = ["RELEASE", "ARCH", "RUST", "RUSTC", "KDIR", "TRUSTED"].map(String::from);
            let w: Vec<usize> = (0..5)
                .map(|i| {
                    rows.iter()
                        .chain([&head])
                        .map(|r| r[i].len())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let lines = (!rows.is_empty()).then_some(&head).into_iter().chain(&rows);
            for r in lines {
                let cols: String = (0..5)
                    .map(|i| format!("{:<w$}  ", r[i], w = w[i]))
                    .collect();
                outln!("{cols}{}", r[5]);
            }
            Ok(0)
        }
    }
}
