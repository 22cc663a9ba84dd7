use crate::cli::{DoctorArgs, MessageFormat};
use cargo_kmod::doctor::{self, Outcome, Report};

pub fn run(a: DoctorArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let modules = a.modules.iter().map(|m| cx.cwd.join(m)).collect();
    let certs = a.cert.iter().map(|c| cx.cwd.join(c)).collect();
    let r = doctor::diagnose(&doctor::Options {
        root: "/".into(),
        modules,
        certs,
        max_module_bytes: cx.settings.max_module_bytes,
    })?;
    match a.message_format {
        MessageFormat::Json => outln!("{}", serde_json::to_string(&r).unwrap_or_default()),
        MessageFormat::Human => print(&r),
    }
    Ok(r.exit_code())
}

fn yes_no(v: Option<bool>, yes: &str, no: &str) -> String {
    match v {
        Some(true) => yes.into(),
        Some(false) => no.into(),
        None => "unknown".into(),
    }
}

fn print(r: &Report) {
    let kernel = match &r.distribution {
        Some(d) => format!("{} ({d})", r.release),
        None => r.release.clone(),
    };
    outln!("kernel         {kernel}");
    if r.uefi {
        outln!(
            "secure boot    {}{}",
            yes_no(r.secure_boot, "on", "off"),
            if r.setup_mode == Some(true) {
                " (firmware in setup mode: no platform key)"
            } else {
                ""
            }
        );
    } else {
        outln!("secure boot    off (not booted through UEFI)");
    }
    outln!(
        "lockdown       {}",
        r.lockdown
            .as_deref()
            .unwrap_or("none (no lockdown in this kernel)")
    );
    outln!(
        "enforcement    {}",
        if r.enforced {
            "on: unsigned and unknown-key modules are refused"
        } else if r.locked_down {
            "by lockdown: unsigned modules are refused"
        } else {
            "off: unsigned and unknown-key modules load and taint the kernel (E)"
        }
    );
    if r.uefi {
        outln!(
            "MOKs           {}",
            yes_no(
                r.mok_trusted,
                "trusted by shim (MokListTrustedRT)",
                "not trusted by shim (no MokListTrustedRT): they land in .platform"
            )
        );
    }
    if !r.config.is_empty() {
        let set: Vec<String> = r
            .config
            .iter()
            .map(|(k, v)| format!("{}={v}", k.trim_start_matches("CONFIG_")))
            .collect();
        outln!("config         {}", set.join(" "));
    }
    if let Some(rings) = &r.keyrings {
        let counts: Vec<String> = rings
            .iter()
            .map(|k| format!("{} {}", k.name, k.keys.len()))
            .collect();
        outln!("keyrings       {}", counts.join(", "));
    }
    if !r.certs.is_empty() {
        outln!("certificates");
        for c in &r.certs {
            let source = c.source.name();
            outln!(
                "  {} [{source}] -> {}{}: {}",
                c.subject,
                c.keyring.as_deref().unwrap_or("no keyring"),
                if c.keyring.is_some() && !c.observed {
                    " (inferred)"
                } else {
                    ""
                },
                if c.signs_modules {
                    "signs modules"
                } else {
                    "signs no module here"
                }
            );
            if !c.signs_modules {
                outln!("      why: {}", c.why);
            }
            if let Some(f) = &c.fix {
                outln!("      fix: {f}");
            }
        }
    }
    for m in &r.modules {
        let word = match m.outcome {
            Outcome::Loads => "loads",
            Outcome::LoadsTainted => "loads, taints",
            Outcome::Refused => "REFUSED",
        };
        outln!("{}: {word}", m.path.display());
        if m.outcome != Outcome::Loads {
            outln!("      kernel: {}", m.message);
        }
        outln!("      cause: {}", m.cause);
        if let Some(f) = &m.fix {
            outln!("      fix: {f}");
        }
    }
    for u in &r.unreadable {
        outln!("note: not readable: {u}");
    }
}
