use super::{Status, expand};
use crate::cli::{MessageFormat, VerifyArgs};
use cargo_kmod::report::Reporter;
use cargo_kmod::verify::{self, Keyring};

pub fn run(a: VerifyArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let mut keyring = Keyring::default();
    for c in &a.cert {
        keyring.add_path(c)?;
    }
    let rep = cx.ui.reporter();
    let mut crypto = None;
    for k in &a.kernel {
        let t = cx.kernel(k)?;
        keyring.certs.extend(Keyring::of(&t)?.certs);
        crypto = Some(t.crypto());
        if let Some(c) = &t.config {
            rep.note(&format!(
                "judging digests and key types as {} does ({})",
                t.name(),
                c.path.display()
            ));
        }
    }
    if let Some(c) = crypto {
        for d in keyring.restrict(c) {
            rep.warn(&format!(
                "{d}: that kernel cannot load this certificate, so it trusts nothing by it"
            ));
        }
    }
    if keyring.certs.is_empty() {
        if a.cert.is_empty() && a.kernel.is_empty() {
            warning!(
                cx.ui,
                "no --cert or --kernel given: every signed module will be ENOKEY"
            );
        } else {
            warning!(
                cx.ui,
                "no certificate given is one the kernel can load: every signed module will be ENOKEY"
            );
        }
    }
    let mut status = Status::default();
    let modules = expand(&a.modules, &mut status, &rep);
    let results = verify::verify_modules(
        &modules,
        &keyring,
        cx.settings.max_module_bytes,
        a.tree.jobs(),
        &rep,
    );
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for (m, r) in modules.iter().zip(results) {
        let v = match r {
            Ok(v) => v,
            Err(e) => {
                *counts.entry("error").or_default() += 1;
                status.add(rep.error(&e));
                if a.tree.message_format == MessageFormat::Json {
                    // One object per module given, also for those that cannot be read.
                    outln!(
                        "{}",
                        super::json_with_error(
                            serde_json::json!({"module": m.display().to_string(), "verdict": null}),
                            &e
                        )
                    );
                }
                continue;
            }
        };
        *counts.entry(v.errno_name()).or_default() += 1;
        status.add(v.exit_code());
        match a.tree.message_format {
            MessageFormat::Json => {
                let mut obj = serde_json::to_value(&v).expect("verdict serializes");
                obj["module"] = m.display().to_string().into();
                obj["enforcing"] = v.enforced().into();
                obj["permissive"] = v.permissive().into();
                if !matches!(v, verify::Verdict::Ok { .. }) {
                    obj["reason"] = v.reason().into();
                }
                outln!("{obj}");
            }
            MessageFormat::Human => match &v {
                verify::Verdict::Ok { .. } => outln!("{}: OK: {}", m.display(), v.reason()),
                _ => outln!(
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
    if modules.len() > 1 {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        note!(cx.ui, "{} modules: {}", modules.len(), parts.join(", "));
    }
    Ok(status.code())
}
