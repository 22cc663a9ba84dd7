use super::{StderrReporter, report_error};
use crate::cli::KernelCommand;
use cargo_kmod::kernel;

pub fn run(c: KernelCommand) -> i32 {
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
            };
            match kernel::build(&o, &StderrReporter::new()) {
                Ok(info) => {
                    outln!("release: {}", info.release);
                    outln!("kdir:    {}", info.kdir.display());
                    outln!("image:   {}", info.image.display());
                    0
                }
                Err(e) => report_error(&e),
            }
        }
        KernelCommand::List => {
            let list = kernel::list();
            if list.is_empty() {
                eprintln!(
                    "no kernels in {}; make one with `cargo kmod kernel build --source ...`",
                    kernel::kernels_dir().display()
                );
            }
            for k in list {
                outln!(
                    "{}\trust={}\t{}\t{}\ttrusted: {}",
                    k.release,
                    if k.rust { "yes" } else { "no" },
                    k.rustc,
                    k.kdir.display(),
                    if k.trusted.is_empty() {
                        "(build key only)".to_string()
                    } else {
                        k.trusted.join("; ")
                    }
                );
            }
            0
        }
    }
}
