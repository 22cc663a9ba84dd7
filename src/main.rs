mod cli;
mod cmd;

use clap::Parser;

fn main() {
    // Lease breaks signal SIGIO; ignoring it lets sign reuse inodes (fsutil::Spares).
    cargo_kmod::fsutil::ignore_sigio();
    // SIGPIPE-safe: a closed stdout (e.g. `| head`) ends quietly.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
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
        std::process::exit(cmd::sign_file(args.split_off(1)));
    }
    // `cargo kmod ...` passes "kmod" first; `cargo-kmod ...` does not.
    if args.get(1).is_none_or(|a| a != "kmod") {
        args.insert(1, "kmod".into());
    }
    let cli::Cargo::Kmod(k) = cli::Cargo::parse_from(args);
    std::process::exit(cmd::run(k.command));
}
