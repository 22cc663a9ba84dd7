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

/// Chatter on stderr (progress, next steps): silent with `-q`.
macro_rules! note {
    ($($t:tt)*) => {{
        if !crate::cmd::quiet() {
            eprintln!($($t)*);
        }
    }};
}

/// A warning on stderr, its `warning:` in colour when colour is on.
macro_rules! warning {
    ($($t:tt)*) => {{
        eprintln!("{} {}", crate::cmd::paint(crate::cmd::Paint::Warning), format!($($t)*));
    }};
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
    // The environment, read here once; the library reads only these settings.
    cargo_kmod::settings::init(cargo_kmod::settings::Settings::from_env(|k| {
        std::env::var_os(k)
    }));
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if argv0.as_deref() == Some("sign-file") {
        std::process::exit(cmd::sign_file(args.split_off(1)));
    }
    // `cargo kmod ...` passes "kmod" first; `cargo-kmod ...` does not.
    if args.get(1).is_none_or(|a| a != "kmod") {
        args.insert(1, "kmod".into());
    }
    let cli::Cargo::Kmod(k) = cli::Cargo::parse_from(args);
    cmd::set_output(k.output);
    std::process::exit(cmd::run(k.command));
}
