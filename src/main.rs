/// `println!` for results: on a closed pipe (`| head`) output stops quietly and the
/// exit status stays the command's own; it never panics.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            eprintln!("error: cannot write to standard output: {e}");
        }
    }};
}

/// Chatter on stderr (progress, next steps) through a `cmd::Ui`: silent with `-q`.
macro_rules! note {
    ($ui:expr, $($t:tt)*) => {
        $ui.note(format_args!($($t)*))
    };
}

/// A warning on stderr through a `cmd::Ui`, its `warning:` in colour when colour is on.
macro_rules! warning {
    ($ui:expr, $($t:tt)*) => {
        $ui.warn(format_args!($($t)*))
    };
}

mod cli;
mod cmd;

use clap::Parser;

fn main() {
    // Lease breaks signal SIGIO; ignoring it lets sign reuse inodes (fsutil::Spares).
    cargo_kmod::fsutil::ignore_sigio();
    // Results go through outln!, which stops quietly on a closed stdout.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        eprintln!("error: internal error (a bug in cargo-kmod): {msg}");
        eprintln!("help: please report it with the command line that caused it");
        std::process::exit(cargo_kmod::error::exit::FAILURE);
    }));
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if argv0.as_deref() == Some("sign-file") {
        let settings = cargo_kmod::settings::Settings::from_env(|k| std::env::var_os(k));
        std::process::exit(cmd::sign_file(args.split_off(1), &settings));
    }
    // `cargo kmod ...` passes "kmod" first; `cargo-kmod ...` does not.
    if args.get(1).is_none_or(|a| a != "kmod") {
        args.insert(1, "kmod".into());
    }
    let cli::Cargo::Kmod(k) = cli::Cargo::parse_from(args);
    // The environment, read here once; the library reads only these settings.
    let cx = cmd::Ctx {
        settings: cargo_kmod::settings::Settings::from_env(|k| std::env::var_os(k)),
        ui: cmd::Ui::new(&k.output, |k| std::env::var(k).ok()),
        cwd: std::env::current_dir().unwrap_or_else(|_| ".".into()),
    };
    std::process::exit(cmd::run(k.command, &cx));
}
