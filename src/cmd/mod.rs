//! Thin glue between the command line and the library. Results go to stdout,
//! errors and chatter to stderr.

mod build;
mod certs;
mod check;
mod info;
mod kernel;
mod keygen;
mod new;
mod package;
mod run;
mod sign;
mod signfile;
mod unsign;
mod verify;

pub use signfile::run as sign_file;

use crate::cli::Command;
use cargo_kmod::Error;

/// Runs a command; an error that ends it is printed here, once.
pub fn run(cmd: Command) -> i32 {
    let result = match cmd {
        Command::New(a) => new::run_new(a),
        Command::Init(a) => new::run_init(a),
        Command::Build(a) => build::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Install(a) => package::install(a),
        Command::Package(a) => package::package(a),
        Command::Sign(a) => sign::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Info(a) => info::run(a),
        Command::Unsign(a) => unsign::run(a),
        Command::SignFile(a) => Ok(signfile::run(a.args)),
        Command::Kernel(c) => kernel::run(c),
        Command::Certs(a) => certs::run(a),
        Command::Run(a) => run::run(a),
        Command::Check(a) => check::run(a),
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
    result.unwrap_or_else(|e| report_error(&e))
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

/// `error: ...` and `help: ...` on stderr; returns the exit code.
pub fn report_error(e: &Error) -> i32 {
    eprintln!("{} {e}", paint(Paint::Error));
    eprintln!("{} {}", paint(Paint::Help), e.help());
    e.exit_code()
}

/// What `-q`, `-v` and `--color` decided, once per process.
struct Output {
    quiet: bool,
    verbose: bool,
    color: bool,
}

static OUTPUT: std::sync::OnceLock<Output> = std::sync::OnceLock::new();

pub fn set_output(a: crate::cli::OutputArgs) {
    use crate::cli::ColorWhen;
    use std::io::IsTerminal;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    // --color, else CARGO_TERM_COLOR (as cargo), else auto; NO_COLOR turns auto off.
    let when = a
        .color
        .or_else(|| match env("CARGO_TERM_COLOR").as_deref() {
            Some("always") => Some(ColorWhen::Always),
            Some("never") => Some(ColorWhen::Never),
            _ => None,
        });
    let color = match when.unwrap_or(ColorWhen::Auto) {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => env("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
    };
    let _ = OUTPUT.set(Output {
        quiet: a.quiet,
        verbose: a.verbose,
        color,
    });
}

pub fn quiet() -> bool {
    OUTPUT.get().is_some_and(|o| o.quiet)
}

pub fn verbose() -> bool {
    OUTPUT.get().is_some_and(|o| o.verbose)
}

pub enum Paint {
    Error,
    Warning,
    Help,
}

/// `error:`, `warning:`, `help:`, bold and coloured as cargo's when colour is on.
pub fn paint(p: Paint) -> &'static str {
    let color = OUTPUT.get().is_some_and(|o| o.color);
    match (p, color) {
        (Paint::Error, true) => "\x1b[1;31merror\x1b[0m\x1b[1m:\x1b[0m",
        (Paint::Warning, true) => "\x1b[1;33mwarning\x1b[0m\x1b[1m:\x1b[0m",
        (Paint::Help, true) => "\x1b[1;36mhelp\x1b[0m\x1b[1m:\x1b[0m",
        (Paint::Error, false) => "error:",
        (Paint::Warning, false) => "warning:",
        (Paint::Help, false) => "help:",
    }
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

/// Expands directories into their modules; reports paths that hold none, and the
/// symlinks inside them that are not followed.
pub fn expand(
    paths: &[std::path::PathBuf],
    status: &mut Status,
    rep: &dyn cargo_kmod::report::Reporter,
) -> Vec<std::path::PathBuf> {
    modules_of(cargo_kmod::tree::walk(paths), status, rep)
}

fn modules_of(
    w: cargo_kmod::tree::Walk,
    status: &mut Status,
    rep: &dyn cargo_kmod::report::Reporter,
) -> Vec<std::path::PathBuf> {
    for l in &w.links {
        let to = std::fs::read_link(l).unwrap_or_default();
        rep.warn(&format!(
            "{}: a symlink (to {}), not followed inside a directory; name it to include it",
            l.display(),
            to.display()
        ));
    }
    keep_ok(w.modules, status)
}

/// [`expand`] for commands that rewrite modules: spare files a killed run left in the
/// walked directories (old or partly written module bytes, never a module's name) are
/// removed first, so they never end up in a package. A running one's are kept.
pub fn expand_for_writing(
    paths: &[std::path::PathBuf],
    status: &mut Status,
    rep: &dyn cargo_kmod::report::Reporter,
) -> Vec<std::path::PathBuf> {
    let w = cargo_kmod::tree::walk(paths);
    let removed = w
        .leftovers
        .iter()
        .filter(|p| cargo_kmod::fsutil::remove_leftover_spare(p))
        .count();
    if removed > 0 {
        rep.note(&format!(
            "removed {removed} spare file(s) left by an interrupted run"
        ));
    }
    modules_of(w, status, rep)
}

fn keep_ok(
    found: Vec<cargo_kmod::Result<std::path::PathBuf>>,
    status: &mut Status,
) -> Vec<std::path::PathBuf> {
    found
        .into_iter()
        .filter_map(|r| r.map_err(|e| status.add(report_error(&e))).ok())
        .collect()
}

/// The command line's signing request.
pub fn sign_request(a: &crate::cli::ProjectSignArgs) -> cargo_kmod::sign::SignRequest {
    cargo_kmod::sign::SignRequest {
        sign: a.sign,
        key: a.key.clone(),
        cert: a.cert.clone(),
        pkcs11_module: a.pkcs11_module.clone(),
        hash: a.hash.clone(),
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

/// Chatter to stderr. Progress lines overwrite each other on a terminal and are
/// thinned out (one every two seconds) otherwise.
pub struct StderrReporter {
    tty: bool,
    last: std::sync::Mutex<Option<std::time::Instant>>,
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl StderrReporter {
    pub fn new() -> Self {
        use std::io::IsTerminal;
        StderrReporter {
            tty: std::io::stderr().is_terminal(),
            last: std::sync::Mutex::new(None),
            bar: std::sync::Mutex::new(None),
        }
    }
    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }
}

impl cargo_kmod::report::Reporter for StderrReporter {
    fn warn(&self, msg: &str) {
        self.clear();
        eprintln!("{} {msg}", paint(Paint::Warning));
    }
    fn note(&self, msg: &str) {
        if quiet() {
            return;
        }
        self.clear();
        eprintln!("{msg}");
    }
    fn start(&self, label: &str, total: u64) {
        // A bar only for real work on a terminal; pipes and CI logs stay clean.
        if !self.tty || total < 2 || quiet() {
            return;
        }
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} {rate} eta {eta}",
            )
            .expect("valid template")
            // indicatif's {per_sec} shows "202.3526/s": whole modules are enough.
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&rate(s.per_sec()));
                },
            )
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        *self.bar.lock().unwrap() = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.inc(n);
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
    fn progress(&self, line: &str) {
        if quiet() {
            return;
        }
        if self.tty {
            let width = 100;
            let shown: String = line.chars().take(width).collect();
            eprint!("\r\x1b[K{shown}");
            return;
        }
        let mut last = self.last.lock().unwrap();
        if last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(2)) {
            *last = Some(std::time::Instant::now());
            eprintln!("  {line}");
        }
    }
}

/// Items per second as the progress bar shows them: "202/s", "0.5/s".
fn rate(per_sec: f64) -> String {
    if per_sec >= 10.0 {
        format!("{per_sec:.0}/s")
    } else {
        format!("{per_sec:.1}/s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_are_short() {
        assert_eq!(super::rate(202.3526), "202/s");
        assert_eq!(super::rate(0.5), "0.5/s");
    }
}
