use super::{Status, report_error};
use crate::cli::UnsignArgs;
use cargo_kmod::Error;

pub fn run(a: UnsignArgs) -> i32 {
    if a.extract_sig.is_some() && a.modules.len() > 1 {
        return report_error(&Error::Usage("--extract-sig takes one module".into()));
    }
    let mut status = Status::default();
    for m in &a.modules {
        match cargo_kmod::sign::unsign_module_file(m, a.extract_sig.as_deref()) {
            Ok(true) => println!("{}: signature removed", m.display()),
            Ok(false) => println!("{}: not signed, unchanged", m.display()),
            Err(e) => status.add(report_error(&e)),
        }
    }
    status.code()
}
