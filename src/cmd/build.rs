use super::{Status, StderrReporter, report_error};
use crate::cli::{BuildArgs, MessageFormat};
use cargo_kmod::kbuild::{self, Artifact, Project, Tree};
use cargo_kmod::sign;

pub fn run(a: BuildArgs) -> i32 {
    let project = match Project::load(a.manifest_path.as_deref()) {
        Ok(p) => p,
        Err(e) => return report_error(&e),
    };
    let key = match super::project_signing(&project, &a.signing) {
        Ok(k) => k,
        Err(e) => return report_error(&e),
    };
    let hash = match project.hash() {
        Ok(h) => h,
        Err(e) => return report_error(&e),
    };
    let forced = std::env::var_os("RUSTC").map(std::path::PathBuf::from);
    let o = kbuild::BuildOptions {
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        arch: a.arch,
        cross_compile: a.cross_compile,
        verbose: a.verbose,
        rust_analyzer: a.rust_analyzer,
    };
    let rep = StderrReporter::new();
    let mut status = Status::default();
    // Preflight every tree before building any: one line per problem.
    let mut ready = Vec::new();
    for kdir in kbuild::choose_trees(&a.kdir, &a.kernel_release, &project) {
        match Tree::open(&kdir)
            .and_then(|t| kbuild::preflight(&t, &project, forced.as_deref()).map(|env| (t, env)))
        {
            Ok(x) => ready.push(x),
            Err(e) => status.add(report_error(&e)),
        }
    }
    if status.code() != 0 {
        return status.code();
    }
    for (tree, env) in &ready {
        let built = kbuild::build_one(&project, tree, env, &o, &rep).and_then(|path| {
            if let Some(k) = &key {
                let opts = sign::SignOptions {
                    hash,
                    id: sign::cms::SignerIdKind::IssuerSerial,
                    if_signed: sign::IfSigned::Replace,
                    output: sign::SigOutput::Append,
                };
                sign::sign_module_file(k, &opts, &path, None)?;
            }
            Ok(Artifact {
                release: tree.release.clone(),
                kdir: tree.kdir.clone(),
                sha256: kbuild::sha256_hex(&path)?,
                path,
                signed: key.is_some(),
            })
        });
        match built {
            Ok(art) => match a.message_format {
                MessageFormat::Json => {
                    outln!("{}", serde_json::to_string(&art).expect("serializes"))
                }
                MessageFormat::Human => outln!(
                    "{}: {}{}",
                    art.release,
                    art.path.display(),
                    if art.signed { " (signed)" } else { "" }
                ),
            },
            Err(e) => status.add(report_error(&e)),
        }
    }
    status.code()
}
