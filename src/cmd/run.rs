use crate::cli::{MessageFormat, RunArgs};
use cargo_kmod::target::Target;
use cargo_kmod::{Error, qemu};

pub fn run(a: RunArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let (console, format, timeout) = (a.console, a.message_format, a.timeout);
    let o = options(a, cx)?;
    let rep = qemu::run(&o, &cx.ui.reporter())?;
    if console {
        eprintln!("{}", rep.console);
    }
    if format == MessageFormat::Json {
        outln!(
            "{}",
            serde_json::to_string(&rep).expect("report serializes")
        );
        return Ok(rep.exit_code());
    }
    print(&rep, timeout);
    note!(cx.ui, "guest ran {:.1} s ({})", rep.seconds, rep.accel);
    Ok(rep.exit_code())
}

/// The boot the arguments ask for: the kernel resolved, the project built against it
/// when no module is named, the modules' dependencies from the kernel's module tree.
fn options(a: RunArgs, cx: &super::Ctx) -> cargo_kmod::Result<qemu::RunOptions> {
    let mut files = Vec::new();
    for f in &a.files {
        let (host, guest) = match f.split_once('=') {
            Some((h, g)) => (std::path::PathBuf::from(h), g.to_string()),
            None => {
                let name = std::path::Path::new(f).file_name().unwrap_or_default();
                (f.into(), format!("/bin/{}", name.to_string_lossy()))
            }
        };
        if !guest.starts_with('/') || guest.split('/').any(|p| p == "..") {
            return Err(Error::usage(
                format!("--file {f}: the guest path must be absolute, without `..`"),
                "give --file HOST=/path/in/guest",
            ));
        }
        files.extend(qemu::with_libraries(&cx.cwd.join(host), &guest)?);
    }
    let target = match (&a.kernel, &a.kdir) {
        (Some(k), _) if k.to_str().is_some_and(cargo_kmod::distro::is_name) => cx.kernel(k),
        (Some(k), _) => Target::from_image(k),
        (None, Some(d)) => Target::from_tree(d),
        (None, None) => cargo_kmod::kernel::newest(&cx.settings).ok_or_else(|| {
            Error::usage(
                "no kernel given and none cached",
                format!(
                    "pass --kernel IMAGE or --kdir DIR, or build one: {}",
                    cargo_kmod::kernel::build_hint()
                ),
            )
        }),
    };
    let (target, arch) = target.and_then(|t| t.known_arch("booting").map(|a| (t, a)))?;
    let Some(image) = target.image.clone() else {
        let tree = target.tree.clone().unwrap_or_default();
        return Err(Error::Run {
            path: tree.join(arch.image_in_tree()),
            reason: "the tree has no built kernel image to boot".into(),
        });
    };
    let modules = if a.modules.is_empty() {
        build_project(a.manifest_path.as_deref(), &a.signing, &target, cx)?
    } else {
        a.modules
    };
    // An image's modules are where its distribution installs them; a build tree's
    // test kernel has none there.
    use cargo_kmod::modtree::ModuleTree;
    let tree = match (&a.modules_from, &a.kernel) {
        (Some(d), _) => ModuleTree::open(d).map(Some),
        (None, Some(_)) if target.modules.is_some() => {
            ModuleTree::open(target.modules.as_deref().expect("checked")).map(Some)
        }
        (None, Some(_)) => ModuleTree::installed(&target.release),
        (None, None) => Ok(None),
    };
    let dependencies = tree.and_then(|t| match t {
        Some(t) => qemu::dependencies(
            &modules,
            &t,
            cx.settings.max_module_bytes,
            &cx.ui.reporter(),
        ),
        None => Ok(Vec::new()),
    })?;
    let mut append = a.append;
    if a.enforce {
        append.push("module.sig_enforce=1".into());
    }
    let busybox = a
        .busybox
        .map_or_else(|| qemu::default_busybox(&cx.settings, arch), Ok)?;
    Ok(qemu::RunOptions {
        secure_boot: a.secure_boot.map(|mode| qemu::uefi::SecureBoot {
            mok: a.mok,
            db: a.db,
            off: mode == crate::cli::OnOff::Off,
            untrusted_mok: a.untrusted_mok,
            path: cx.settings.path.clone(),
        }),
        image,
        arch,
        modules,
        dependencies,
        append,
        params: a.params,
        before: a.before,
        exec: a.exec,
        files,
        timeout: std::time::Duration::from_secs(a.timeout),
        busybox,
        accel: a.accel.into(),
        max_module_bytes: cx.settings.max_module_bytes,
    })
}

fn print(rep: &qemu::RunReport, timeout: u64) {
    if let Some(why) = &rep.chain_refused {
        outln!("BOOT CHAIN REFUSED THE KERNEL (Secure Boot): {why}");
        return;
    }
    if let Some(l) = &rep.lockdown {
        outln!("lockdown: {l}");
    }
    for c in &rep.firmware_certs {
        outln!(
            "certificate '{}' (UEFI:{}): in {}",
            c.name,
            c.source,
            c.keyring
        );
    }
    for m in &rep.modules {
        if m.loaded {
            outln!(
                "{}: loaded as {}{}",
                m.path.display(),
                m.name,
                if m.dependency { " (a dependency)" } else { "" }
            );
        } else {
            let why = m
                .refusal
                .as_ref()
                .map_or("no result".into(), |r| r.to_string());
            outln!("{}: REFUSED: {why}", m.path.display());
        }
        for l in &m.kernel_log {
            outln!("  kernel: {l}");
        }
        for l in &m.tool_output {
            outln!("  {l}");
        }
        for (k, v) in &m.params {
            outln!("  /sys/module/{}/parameters/{k} = {v}", m.name);
        }
        match m.unloaded {
            Some(true) => outln!("  unloaded"),
            Some(false) => outln!("  UNLOAD FAILED"),
            None if m.loaded => outln!("  not unloaded"),
            None => {}
        }
    }
    for e in &rep.exec {
        outln!(
            "exec `{}`: exit {}",
            e.command,
            e.status.map_or("?".into(), |s| s.to_string())
        );
        for l in &e.output {
            outln!("  {l}");
        }
    }
    for p in &rep.problems {
        outln!("PROBLEM: {p}");
    }
    if let Some(t) = rep.tainted {
        outln!("kernel taint: {t} ({})", qemu::taint_letters(t));
    }
    if rep.timed_out {
        outln!("TIMEOUT: guest killed after {timeout} s (raise --timeout, or look with --console)");
    } else if !rep.finished {
        outln!("guest did not finish its run (look with --console)");
    }
}

/// Builds the project against the kernel's tree and signs it with the tree's own
/// autogenerated key (certs/signing_key.pem) and hash, as `make modules_install` would.
fn build_project(
    manifest: Option<&std::path::Path>,
    asked: &crate::cli::ProjectSignArgs,
    target: &Target,
    cx: &super::Ctx,
) -> cargo_kmod::Result<Vec<std::path::PathBuf>> {
    use cargo_kmod::kbuild;
    let kdir = target.tree("no --module given: building the project")?;
    // The project's own signing (--sign/--key, or its metadata) first: a MOK for
    // --secure-boot, say; else the tree's build key, which only its own kernel trusts.
    let (project, own) = cx.project(manifest, asked)?;
    let forced = cx.settings.rustc.clone();
    let env = kbuild::preflight(&cx.settings, target, &project, forced.as_deref())?;
    let o = kbuild::BuildOptions {
        jobs: cargo_kmod::tree::default_jobs(),
        ..Default::default()
    };
    let key = kdir.join("certs/signing_key.pem");
    let cert = kdir.join("certs/signing_key.x509");
    let key = if own.is_none() && key.exists() && cert.exists() {
        Some(cargo_kmod::sign::SigningKey::load(
            &key,
            &cert,
            &Default::default(),
        )?)
    } else {
        None
    };
    let signing = match &own {
        Some(own) => Some(own.signing()),
        None => key
            .as_ref()
            .map(|key| cargo_kmod::sign::Signing { key, hash: None }),
    };
    let art = kbuild::build_and_sign(
        &cx.settings,
        &project,
        target,
        &env,
        &o,
        signing.as_ref(),
        &cx.ui.reporter(),
    )?;
    if let Some(why) = art.skipped {
        return Err(Error::TargetRefuses {
            target: target.release.clone(),
            reason: format!("the project builds nothing for it: {why}"),
            fix: "boot a kernel the project's dkms.conf builds for".into(),
        });
    }
    Ok(art.modules.into_iter().map(|m| m.path).collect())
}
