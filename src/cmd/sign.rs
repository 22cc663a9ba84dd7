use super::{Status, report_error};
use crate::cli::SignArgs;
use cargo_kmod::Error;
use cargo_kmod::hash::HashAlg;
use cargo_kmod::sign::cms::SignerIdKind;
use cargo_kmod::sign::keys::Pin;
use cargo_kmod::sign::{self, IfSigned, SigOutput, SignOptions, SignOutcome, SigningKey};

pub fn run(a: SignArgs) -> i32 {
    if a.output.is_some() && a.modules.len() > 1 {
        return report_error(&Error::Usage("-o/--output takes one module".into()));
    }
    let hash: HashAlg = match a.hash.parse() {
        Ok(h) => h,
        Err(e) => return report_error(&e),
    };
    let key = match Pin::from_sources(a.key.pin_file.as_deref())
        .and_then(|pin| SigningKey::load(&a.key.key, &a.key.cert, &pin))
    {
        Ok(k) => k,
        Err(e) => return report_error(&e),
    };
    let opts = SignOptions {
        hash,
        id: if a.key_id {
            SignerIdKind::KeyId
        } else {
            SignerIdKind::IssuerSerial
        },
        if_signed: if a.replace {
            IfSigned::Replace
        } else if a.skip_signed {
            IfSigned::Skip
        } else {
            IfSigned::Refuse
        },
        output: if a.detached {
            SigOutput::Detached
        } else if a.save_sig {
            SigOutput::AppendAndSave
        } else {
            SigOutput::Append
        },
    };
    let mut status = Status::default();
    for m in &a.modules {
        match sign::sign_module_file(&key, &opts, m, a.output.as_deref()) {
            Ok(SignOutcome::Signed { replaced }) => println!(
                "{}: signed ({}, {}){}",
                a.output.as_deref().unwrap_or(m).display(),
                hash.name(),
                key.kind(),
                if replaced {
                    ", old signature replaced"
                } else {
                    ""
                }
            ),
            Ok(SignOutcome::SkippedSigned) => println!("{}: already signed, skipped", m.display()),
            Ok(SignOutcome::Detached { p7s }) => {
                println!("{}: signature written to {}", m.display(), p7s.display())
            }
            Err(e) => status.add(report_error(&e)),
        }
    }
    status.code()
}
