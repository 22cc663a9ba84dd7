//! Thin glue between the command line and the library. Results go to stdout,
//! errors and chatter to stderr.

mod info;
mod sign;
mod signfile;
mod unsign;
mod verify;

pub use signfile::run as sign_file;

use crate::cli::Command;
use cargo_kmod::Error;

pub fn run(cmd: Command) -> i32 {
    match cmd {
        Command::Sign(a) => sign::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Info(a) => info::run(a),
        Command::Unsign(a) => unsign::run(a),
        Command::SignFile(a) => signfile::run(a.args),
    }
}

/// `error: ...` and `help: ...` on stderr; returns the exit code.
pub fn report_error(e: &Error) -> i32 {
    eprintln!("error: {e}");
    eprintln!("help: {}", e.help());
    e.exit_code()
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
