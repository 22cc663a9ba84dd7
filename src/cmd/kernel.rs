use crate::cli::KernelCommand;
use crate::cli::MessageFormat;
use cargo_kmod::{distro, kernel};

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
            let (headers, source) = match (a.headers, a.kernel) {
                (Some(h), _) => (h, a.source),
                (None, Some(name)) => {
                    let spec = distro::Spec::parse(&name, None, None)?;
                    let f =
                        distro::fetch(&cx.settings, &spec, Default::default(), &cx.ui.reporter())?;
                    (f.kdir, a.source.or(f.source))
                }
                (None, None) => unreachable!("clap requires --headers or --kernel"),
            };
            let o = cargo_kmod::prepare::PrepareOptions {
                headers,
                source,
                rustc: a.rustc,
                bindgen: a.bindgen,
                jobs: a.jobs.unwrap_or_else(cargo_kmod::tree::default_jobs),
            };
            let p = cargo_kmod::prepare::prepare(&cx.settings, &o, &cx.ui.reporter())?;
            // The path alone: DKMS's MAKE line takes it as `$(...)`.
            outln!("{}", p.kdir.display());
            Ok(0)
        }
        KernelCommand::Fetch(a) => {
            let spec = distro::Spec::parse(&a.name, a.flavour.as_deref(), a.release.as_deref())?;
            let o = distro::FetchOptions { refresh: a.refresh };
            let mut f = distro::fetch(&cx.settings, &spec, o, &cx.ui.reporter())?;
            f.audit_again(&cx.settings);
            for finding in &f.audit {
                warning!(cx.ui, "{}: {finding}", f.release);
            }
            if a.message_format == MessageFormat::Json {
                outln!(
                    "{}",
                    serde_json::to_string(&f).expect("a record serialises")
                );
            } else {
                outln!("{}: {}", f.name, f.release);
                outln!("kdir:    {}", f.kdir.display());
                outln!("image:   {}", f.image.display());
                outln!("modules: {}", f.modules.display());
                if let Some(src) = &f.source {
                    outln!("source:  {}", src.display());
                }
            }
            Ok(0)
        }
        KernelCommand::Remove { what } => {
            for f in distro::remove(&cx.settings, &what)? {
                note!(cx.ui, "removed {} {}", f.name, f.release);
            }
            Ok(0)
        }
        KernelCommand::List => {
            let list = kernel::list(&cx.settings);
            let fetched = distro::list(&cx.settings);
            if list.is_empty() && fetched.is_empty() {
                note!(
                    cx.ui,
                    "no kernels in {}; make one with `cargo kmod kernel build --source ...`",
                    cargo_kmod::cache::kernels(&cx.settings).display()
                );
            }
            let mut rows: Vec<[String; 7]> = list
                .iter()
                .map(|k| {
                    [
                        k.release.clone(),
                        k.arch.name().to_string(),
                        "-".into(),
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
            rows.extend(fetched.iter().map(|f| {
                let config = cargo_kmod::target::Config::read(&f.kdir.join(".config")).ok();
                let rust = config.as_ref().is_some_and(|c| c.rust());
                [
                    f.release.clone(),
                    f.arch.name().to_string(),
                    f.name.clone(),
                    if rust { "yes" } else { "no" }.into(),
                    config
                        .as_ref()
                        .and_then(|c| c.rustc_version_text())
                        .and_then(|t| t.split_whitespace().nth(1))
                        .filter(|_| rust)
                        .unwrap_or("-")
                        .to_string(),
                    f.kdir.display().to_string(),
                    "(the distribution's keys)".into(),
                ]
            }));
            let head = [
                "RELEASE", "ARCH", "DISTRO", "RUST", "RUSTC", "KDIR", "TRUSTED",
            ]
            .map(String::from);
            let w: Vec<usize> = (0..6)
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
                let cols: String = (0..6)
                    .map(|i| format!("{:<w$}  ", r[i], w = w[i]))
                    .collect();
                outln!("{cols}{}", r[6]);
            }
            Ok(0)
        }
    }
}
