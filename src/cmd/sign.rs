use super::{Status, expand_for_writing};
use crate::cli::SignArgs;
use cargo_kmod::Error;
use cargo_kmod::hash::HashAlg;
use cargo_kmod::sign::cms::SignerIdKind;
use cargo_kmod::sign::keys::Pin;
use cargo_kmod::sign::{
    self, IfSigned, KeySource, SigOutput, SignOptions, SignOutcome, SigningKey, twophase,
};

pub fn run(a: SignArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    if let Some(dir) = &a.export {
        return export(&a, dir, cx);
    }
    if let Some(dir) = &a.attach {
        return attach(&a, dir, cx);
    }
    // The key is loaded (and checked against the certificate) once for all modules.
    let key = load_key(&a, cx)?;
    if let Some(dir) = &a.from_export {
        return from_export(&a, dir, &key, cx);
    }
    let hash: HashAlg = a.hash.parse()?;
    key.check_hash(hash)?;
    let opts = SignOptions {
        hash,
        id: if a.key_id {
            SignerIdKind::KeyId
        } else {
            SignerIdKind::IssuerSerial
        },
        if_signed: if_signed(&a),
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

fn load_key(a: &SignArgs, cx: &super::Ctx) -> cargo_kmod::Result<SigningKey> {
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
    Ok(key)
}

fn if_signed(a: &SignArgs) -> IfSigned {
    if a.replace {
        IfSigned::Replace
    } else if a.skip_signed {
        IfSigned::Skip
    } else {
        IfSigned::Refuse
    }
}

/// `--export DIR`: the bytes to sign and the manifest; no key.
fn export(a: &SignArgs, dir: &std::path::Path, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let hash: HashAlg = a.hash.parse()?;
    let cert = a
        .key
        .cert
        .as_deref()
        .map(cargo_kmod::pki::cert::load_cert)
        .transpose()?;
    let mut status = Status::default();
    let rep = cx.ui.reporter();
    let modules = super::expand(&a.modules, &mut status, &rep);
    let named = twophase::names(&a.modules, &modules)?;
    let m = twophase::export(
        dir,
        &named,
        &twophase::ExportOptions {
            hash,
            id: if a.key_id {
                SignerIdKind::KeyId
            } else {
                SignerIdKind::IssuerSerial
            },
            cert: cert.as_ref(),
            if_signed: if_signed(a),
            max_module_bytes: cx.settings.max_module_bytes,
        },
    )?;
    note!(
        cx.ui,
        "exported {} module(s) to {} ({}): sign {}/modules/* detached (sign-file -d, or `cargo kmod sign --from-export {}`), then `cargo kmod sign --attach {}`",
        m.modules.len(),
        dir.display(),
        m.hash,
        dir.display(),
        dir.display(),
        dir.display()
    );
    Ok(status.code())
}

/// `--from-export DIR`: each exported module signed detached, as a signing service would.
fn from_export(
    a: &SignArgs,
    dir: &std::path::Path,
    key: &SigningKey,
    cx: &super::Ctx,
) -> cargo_kmod::Result<i32> {
    let m = twophase::read_manifest(dir)?;
    let written = twophase::sign_export(
        key,
        &m,
        dir,
        a.tree.jobs(),
        cx.settings.max_module_bytes,
        &cx.ui.reporter(),
    )?;
    note!(
        cx.ui,
        "signed {} exported module(s) detached in {}/modules",
        written.len(),
        dir.display()
    );
    Ok(0)
}

/// `--attach DIR`: every signature checked first; then each module written atomically.
fn attach(a: &SignArgs, dir: &std::path::Path, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let m = twophase::read_manifest(dir)?;
    let given: Vec<std::path::PathBuf> = a.key.cert.iter().cloned().collect();
    let signers = twophase::expected_signers(&m, dir, &given)?;
    let rep = cx.ui.reporter();
    let mut status = Status::default();
    for stray in twophase::strays(&m, dir) {
        status.add(rep.error(&Error::Attach {
            path: stray,
            reason: "a signature for a module the manifest does not hold".into(),
            fix: "remove it, or export that module too".into(),
        }));
    }
    let max = cx.settings.max_module_bytes;
    let checked = cargo_kmod::tree::par_map(&m.modules, a.tree.jobs(), &rep, "checking", |e| {
        twophase::check_one(&m, dir, e, &signers, max)
    });
    let mut good = Vec::new();
    for r in checked {
        match r {
            Ok(c) => good.push(c),
            Err(e) => status.add(rep.error(&e)),
        }
    }
    if status.code() != 0 {
        note!(
            cx.ui,
            "nothing attached: {} of {} signature(s) good, the problems are above",
            good.len(),
            m.modules.len()
        );
        return Ok(status.code());
    }
    let started = std::time::Instant::now();
    for c in &good {
        let r = twophase::attach_one(c, if_signed(a), max);
        let (state, text) = match &r {
            Ok(SignOutcome::Signed { replaced: true }) => {
                ("signed", "signature attached, old one replaced".to_string())
            }
            Ok(SignOutcome::SkippedSigned) => ("skipped", "already signed, skipped".into()),
            Ok(_) => ("signed", "signature attached".into()),
            Err(e) => {
                status.add(e.exit_code());
                ("failed", e.to_string())
            }
        };
        super::module_row(
            a.tree.message_format,
            &c.entry.path.display().to_string(),
            state,
            &text,
            &r,
            &rep,
        );
    }
    if good.len() > 1 {
        note!(
            cx.ui,
            "attached {} signature(s) in {:.2} s",
            good.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(status.code())
}
