use super::{Status, expand_for_writing};
use crate::cli::SignArgs;
use cargo_kmod::Error;
use cargo_kmod::hash::HashAlg;
use cargo_kmod::sign::cms::SignerIdKind;
use cargo_kmod::sign::keys::Pin;
use cargo_kmod::sign::{
    self, IfSigned, KeySource, SigOutput, SignOptions, SignOutcome, SigningKey,
};

pub fn run(a: SignArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let hash: HashAlg = a.hash.parse()?;
    // The key is loaded (and checked against the certificate) once for all modules.
    let mut key = match (a.key.signer.signer(), &a.key.key, &a.key.cert) {
        (Some(signer), _, Some(cert)) => SigningKey::external(signer, cert)?,
        (_, Some(k), _) => {
            let pin =
                Pin::from_sources(a.key.pin_file.as_deref(), cx.settings.sign_pin.as_deref())?;
            let mut key = SigningKey::open(&KeySource {
                key: k,
                cert: a.key.cert.as_deref(),
                pin: &pin,
                pkcs11_module: a
                    .key
                    .pkcs11_module
                    .as_deref()
                    .or(cx.settings.pkcs11_module.as_deref()),
            })?;
            key.set_crypto(cx.settings.crypto.as_deref());
            key
        }
        _ => unreachable!("clap requires --key, or --signer with --cert"),
    };
    key.set_signed_attrs(a.signed_attrs)?;
    key.check_hash(hash)?;
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
        max_module_bytes: cx.settings.max_module_bytes,
    };
    let mut status = Status::default();
    let rep = cx.ui.reporter();
    let modules = expand_for_writing(&a.modules, &mut status, &rep);
    if a.output.is_some() && modules.len() != 1 {
        return Err(Error::usage(
            "-o/--output takes exactly one module",
            "sign several modules in place (without -o), or one at a time with -o",
        ));
    }
    let started = std::time::Instant::now();
    let results = sign::sign_modules(
        &key,
        &opts,
        &modules,
        a.output.as_deref(),
        a.tree.jobs(),
        &rep,
    );
    let (mut signed, mut skipped, mut failed) = (0, 0, 0);
    for (m, r) in modules.iter().zip(results) {
        let shown = a.output.as_deref().unwrap_or(m).display().to_string();
        let (state, text) = match &r {
            Ok(SignOutcome::Signed { replaced }) => {
                signed += 1;
                (
                    "signed",
                    format!(
                        "signed ({}, {}){}",
                        hash.name(),
                        key.kind(),
                        if *replaced {
                            ", old signature replaced"
                        } else {
                            ""
                        }
                    ),
                )
            }
            Ok(SignOutcome::SkippedSigned) => {
                skipped += 1;
                ("skipped", "already signed, skipped".into())
            }
            Ok(SignOutcome::Detached { p7s }) => {
                signed += 1;
                (
                    "detached",
                    format!("signature written to {}", p7s.display()),
                )
            }
            Err(e) => {
                failed += 1;
                status.add(e.exit_code());
                ("failed", e.to_string())
            }
        };
        super::module_row(a.tree.message_format, &shown, state, &text, &r, &rep);
    }
    if modules.len() > 1 {
        note!(
            cx.ui,
            "signed {signed}, skipped {skipped}, failed {failed} in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(status.code())
}
