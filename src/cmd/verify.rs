use super::{Status, report_error};
use crate::cli::{MessageFormat, VerifyArgs};
use cargo_kmod::modfile::ModuleFile;
use cargo_kmod::verify::{self, Keyring};

pub fn run(a: VerifyArgs) -> i32 {
    let mut keyring = Keyring::default();
    for c in &a.cert {
        if let Err(e) = keyring.add_path(c) {
            return report_error(&e);
        }
    }
    if keyring.certs.is_empty() {
        eprintln!("warning: no --cert given: every signed module will be ENOKEY");
    }
    let mut status = Status::default();
    for m in &a.modules {
        let module = match ModuleFile::open(m) {
            Ok(x) => x,
            Err(e) => {
                status.add(report_error(&e));
                continue;
            }
        };
        let v = verify::verify(&module.data, &keyring);
        status.add(v.exit_code());
        match a.message_format {
            MessageFormat::Json => {
                let mut obj = serde_json::to_value(&v).expect("verdict serializes");
                obj["module"] = m.display().to_string().into();
                obj["enforcing"] = v.enforced().into();
                obj["permissive"] = v.permissive().into();
                if !matches!(v, verify::Verdict::Ok { .. }) {
                    obj["reason"] = v.reason().into();
                }
                println!("{obj}");
            }
            MessageFormat::Human => match &v {
                verify::Verdict::Ok { .. } => println!("{}: OK: {}", m.display(), v.reason()),
                _ => println!(
                    "{}: {}: {}; with enforcement: {}; without: {}",
                    m.display(),
                    v.errno_name(),
                    v.reason(),
                    v.enforced(),
                    v.permissive()
                ),
            },
        }
    }
    status.code()
}
