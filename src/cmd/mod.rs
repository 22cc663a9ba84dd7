//! Thin glue between the command line and the library. Results go to stdout,
//! errors and chatter to stderr.

mod build;
mod certs;
mod check;
mod doctor;
mod info;
mod kernel;
mod keygen;
mod new;
mod package;
mod run;
mod session;
mod sign;
mod signfile;
mod test;
mod unsign;
mod verify;

pub use session::{Ctx, StderrReporter, Ui};

pub use signfile::run as sign_file;

use crate::cli::Command;
use cargo_kmod::Error;

/// Runs a command; an error that ends it is printed here, once.
pub fn run(cmd: Command, cx: &Ctx) -> i32 {
    let result = match cmd {
        Command::New(a) => new::run_new(a, cx),
        Command::Init(a) => new::run_init(a, cx),
        Command::Build(a) => build::run(a, cx),
        Command::Keygen(a) => keygen::run(a, cx),
        Command::Install(a) => package::install(a, cx),
        Command::Package(a) => package::package(a, cx),
        Command::Sign(a) => sign::run(a, cx),
        Command::Verify(a) => verify::run(a, cx),
        Command::Info(a) => info::run(a, cx),
        Command::Unsign(a) => unsign::run(a, cx),
        Command::SignFile(a) => Ok(signfile::run(a.args, &cx.settings)),
        Command::Kernel(c) => kernel::run(c, cx),
        Command::Certs(a) => certs::run(a),
        Command::Run(a) => run::run(a, cx),
        Command::Test(a) => test::run(a, cx),
        Command::Check(a) => check::run(a, cx),
        Command::Doctor(a) => doctor::run(a, cx),
        Command::Completions { shell } => {
            let mut c = crate::cli::binary_command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut c, "cargo-kmod", &mut buf);
            // Through outln!: `| head` must not panic.
            outln!("{}", String::from_utf8_lossy(&buf).trim_end());
            Ok(0)
        }
        Command::Man { out } => man(out.as_deref()),
    };
    result.unwrap_or_else(|e| cx.ui.error(&e))
}

/// A JSON result object with the one error shape every command uses: `error` (the
/// message), `help` and `exit_code`, beside the command's own fields.
pub fn json_with_error(mut v: serde_json::Value, e: &Error) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("error".into(), e.to_string().into());
        o.insert("help".into(), e.help().into());
        o.insert("exit_code".into(), e.exit_code().into());
    }
    v
}

/// The manual: one page to stdout, or one per command into `out`.
fn man(out: Option<&std::path::Path>) -> cargo_kmod::Result<i32> {
    let cmd = crate::cli::binary_command();
    let Some(dir) = out else {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .expect("rendering to memory");
        outln!("{}", String::from_utf8_lossy(&buf).trim_end());
        return Ok(0);
    };
    let pages = std::iter::once(cmd.clone()).chain(
        cmd.get_subcommands()
            .map(|s| s.clone().name(format!("cargo-kmod-{}", s.get_name()))),
    );
    for page in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(page.clone())
            .render(&mut buf)
            .expect("rendering to memory");
        let path = dir.join(format!("{}.1", page.get_name()));
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Write {
                path: dir.to_path_buf(),
                source,
            })
            .and_then(|_| cargo_kmod::fsutil::write_atomic(&path, &buf, None))?;
        outln!("{}", path.display());
    }
    Ok(0)
}

/// The modules `paths` name ([`cargo_kmod::tree::expand`]); a path that names none
/// is reported and counted in `status`.
pub fn expand(
    paths: &[std::path::PathBuf],
    status: &mut Status,
    rep: &StderrReporter,
) -> Vec<std::path::PathBuf> {
    expanded(cargo_kmod::tree::expand(paths, false, rep), status, rep)
}

/// [`expand`] for commands that rewrite modules: spare files a killed run left are
/// removed first.
pub fn expand_for_writing(
    paths: &[std::path::PathBuf],
    status: &mut Status,
    rep: &StderrReporter,
) -> Vec<std::path::PathBuf> {
    expanded(cargo_kmod::tree::expand(paths, true, rep), status, rep)
}

fn expanded(
    (modules, errors): (Vec<std::path::PathBuf>, Vec<Error>),
    status: &mut Status,
    rep: &StderrReporter,
) -> Vec<std::path::PathBuf> {
    for e in &errors {
        status.add(rep.error(e));
    }
    modules
}

/// One module's outcome: `module: text` (an error as `error:` and `help:`), or its
/// JSON object (`module`, `status`, `message`, `exit_code`, and the error shape).
pub fn module_row<T>(
    format: crate::cli::MessageFormat,
    module: &str,
    state: &str,
    text: &str,
    r: &cargo_kmod::Result<T>,
    rep: &StderrReporter,
) {
    match format {
        crate::cli::MessageFormat::Json => {
            let v = serde_json::json!({"module": module, "status": state, "message": text,
                    "exit_code": 0});
            match r {
                Err(e) => outln!("{}", json_with_error(v, e)),
                Ok(_) => outln!("{v}"),
            }
        }
        crate::cli::MessageFormat::Human => match r {
            Ok(_) => outln!("{module}: {text}"),
            Err(e) => {
                rep.error(e);
            }
        },
    }
}

/// The command line's signing request.
pub fn sign_request(a: &crate::cli::ProjectSignArgs) -> cargo_kmod::sign::SignRequest {
    cargo_kmod::sign::SignRequest {
        sign: a.sign,
        key: a.key.clone(),
        cert: a.cert.clone(),
        pkcs11_module: a.pkcs11_module.clone(),
        hash: a.hash.clone(),
        signer: a.signer.signer(),
    }
}

/// Exit status for a run over many modules: the highest code seen.
#[derive(Default)]
pub struct Status(i32);

impl Status {
    pub fn add(&mut self, code: i32) {
        self.0 = self.0.max(code);
    }
    pub fn code(&self) -> i32 {
        self.0
    }
}
