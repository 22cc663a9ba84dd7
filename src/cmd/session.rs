//! A command's session: the environment's settings and what the user sees on stderr
//! (`-q`, `-v`, colour), decided once in `main` and passed to every command as a value
//! ([`Ctx`]), never a global; and what every project command resolves first.

use cargo_kmod::Error;
use cargo_kmod::settings::Settings;

/// Everything a command is given beside its arguments: the environment's settings
/// and how to talk to the user.
pub struct Ctx {
    pub settings: Settings,
    pub ui: Ui,
    /// The directory the command runs in: where a project is looked for.
    pub cwd: std::path::PathBuf,
}

use cargo_kmod::target::Target;

impl Ctx {
    /// The project and its signing (when signing is asked for), resolved once before
    /// any work: a wrong key or hash is refused before anything is built or written.
    pub fn project(
        &self,
        manifest: Option<&std::path::Path>,
        signing: &crate::cli::ProjectSignArgs,
    ) -> cargo_kmod::Result<(
        cargo_kmod::project::Project,
        Option<cargo_kmod::sign::ProjectSigning>,
    )> {
        let p = cargo_kmod::dkms::load_project(&self.settings, &self.cwd, manifest)?;
        let key = cargo_kmod::sign::ProjectSigning::resolve(
            &self.settings,
            &p,
            &super::sign_request(signing),
        )?;
        Ok((p, key))
    }

    /// What `--kernel` names: a kernel by name (`debian/sid`, fetched on first use),
    /// else a path (an image, a `.config`, a tree).
    pub fn kernel(&self, what: &std::path::Path) -> cargo_kmod::Result<Target> {
        match what.to_str().filter(|w| cargo_kmod::distro::is_name(w)) {
            Some(name) => cargo_kmod::distro::target(&self.settings, name, &self.ui.reporter()),
            None => Target::from_path(what),
        }
    }

    /// Releases as given, then those of kernels by name (`--kernel debian/sid`).
    pub fn releases(&self, given: &[String], names: &[String]) -> cargo_kmod::Result<Vec<String>> {
        let mut v = given.to_vec();
        for n in names {
            v.push(self.kernel(std::path::Path::new(n))?.release);
        }
        Ok(v)
    }

    /// `--kernel` values split: kernels by name resolved, the rest (paths) as given.
    pub fn named_kernels(
        &self,
        given: &[std::path::PathBuf],
    ) -> cargo_kmod::Result<(Vec<Target>, Vec<std::path::PathBuf>)> {
        let mut named = Vec::new();
        let mut paths = Vec::new();
        for g in given {
            match g.to_str().filter(|w| cargo_kmod::distro::is_name(w)) {
                Some(_) => named.push(self.kernel(g)?),
                None => paths.push(g.clone()),
            }
        }
        Ok((named, paths))
    }
}

/// What `-q`, `-v` and `--color` decided.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub quiet: bool,
    pub verbose: bool,
    color: bool,
}

pub enum Paint {
    Error,
    Warning,
    Help,
}

impl Ui {
    /// `env` looks up the binary's environment: `CARGO_TERM_COLOR` (as cargo) when
    /// `--color` is not given, `NO_COLOR` turning auto off.
    pub fn new(a: &crate::cli::OutputArgs, env: impl Fn(&str) -> Option<String>) -> Ui {
        use crate::cli::ColorWhen;
        use std::io::IsTerminal;
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
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
        Ui {
            quiet: a.quiet,
            verbose: a.verbose,
            color,
        }
    }

    /// `error:`, `warning:`, `help:`, bold and coloured as cargo's when colour is on.
    pub fn paint(&self, p: Paint) -> &'static str {
        match (p, self.color) {
            (Paint::Error, true) => "\x1b[1;31merror\x1b[0m\x1b[1m:\x1b[0m",
            (Paint::Warning, true) => "\x1b[1;33mwarning\x1b[0m\x1b[1m:\x1b[0m",
            (Paint::Help, true) => "\x1b[1;36mhelp\x1b[0m\x1b[1m:\x1b[0m",
            (Paint::Error, false) => "error:",
            (Paint::Warning, false) => "warning:",
            (Paint::Help, false) => "help:",
        }
    }

    /// `error: ...` and `help: ...` on stderr; returns the exit code.
    pub fn error(&self, e: &Error) -> i32 {
        eprintln!("{} {e}", self.paint(Paint::Error));
        eprintln!("{} {}", self.paint(Paint::Help), e.help());
        e.exit_code()
    }

    /// Chatter (progress, next steps): silent with `-q`.
    pub fn note(&self, msg: std::fmt::Arguments) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A warning, its `warning:` in colour when colour is on.
    pub fn warn(&self, msg: std::fmt::Arguments) {
        eprintln!("{} {msg}", self.paint(Paint::Warning));
    }

    /// The library's reporter for one command's work.
    pub fn reporter(&self) -> StderrReporter {
        use std::io::IsTerminal;
        StderrReporter {
            ui: *self,
            tty: std::io::stderr().is_terminal(),
            last: std::sync::Mutex::new(None),
            bar: std::sync::Mutex::new(None),
        }
    }
}

/// Chatter to stderr. Progress lines overwrite each other on a terminal and are
/// thinned out (one every two seconds) otherwise.
pub struct StderrReporter {
    ui: Ui,
    tty: bool,
    last: std::sync::Mutex<Option<std::time::Instant>>,
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl StderrReporter {
    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }

    /// An error for one item of many, printed at once; returns its exit code.
    pub fn error(&self, e: &Error) -> i32 {
        self.clear();
        self.ui.error(e)
    }
}

impl cargo_kmod::report::Reporter for StderrReporter {
    fn warn(&self, msg: &str) {
        self.clear();
        self.ui.warn(format_args!("{msg}"));
    }
    fn note(&self, msg: &str) {
        if self.ui.quiet {
            return;
        }
        self.clear();
        eprintln!("{msg}");
    }
    fn start(&self, label: &str, total: u64) {
        // A bar only for real work on a terminal; pipes and CI logs stay clean.
        if !self.tty || total < 2 || self.ui.quiet {
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
        if self.ui.quiet {
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
