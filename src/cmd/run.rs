use super::{StderrReporter, report_error};
use crate::cli::{MessageFormat, RunArgs};
use cargo_kmod::{Error, kernel, qemu};

pub fn run(a: RunArgs) -> i32 {
    let image = match (&a.kernel, &a.kdir) {
        (Some(k), _) => k.clone(),
        (None, Some(d)) => qemu::image_in(d),
        (None, None) => match kernel::list().into_iter().next() {
            Some(k) => k.image,
            None => {
                return report_error(&Error::Usage(
                    "no kernel given and none cached: pass --kernel IMAGE or --kdir DIR, or run `cargo kmod kernel build`".into(),
                ));
            }
        },
    };
    let o = qemu::RunOptions {
        image,
        modules: a.modules,
        params: a.params,
        exec: a.exec,
        timeout: std::time::Duration::from_secs(a.timeout),
        busybox: a.busybox,
        accel: match a.accel {
            crate::cli::AccelArg::Auto => qemu::Accel::Auto,
            crate::cli::AccelArg::Kvm => qemu::Accel::Kvm,
            crate::cli::AccelArg::Tcg => qemu::Accel::Tcg,
        },
    };
    let rep = match qemu::run(&o, &StderrReporter::new()) {
        Ok(r) => r,
        Err(e) => return report_error(&e),
    };
    if a.console {
        eprintln!("{}", rep.console);
    }
    if a.message_format == MessageFormat::Json {
        println!(
            "{}",
            serde_json::to_string(&rep).expect("report serializes")
        );
        return rep.exit_code();
    }
    for m in &rep.modules {
        if m.loaded {
            println!("{}: loaded as {}", m.path.display(), m.name);
        } else {
            let why = m
                .refusal
                .as_ref()
                .map_or("no result".into(), |r| r.to_string());
            println!("{}: REFUSED: {why}", m.path.display());
        }
        for l in &m.kernel_log {
            println!("  kernel: {l}");
        }
        for l in &m.tool_output {
            println!("  {l}");
        }
        for (k, v) in &m.params {
            println!("  /sys/module/{}/parameters/{k} = {v}", m.name);
        }
        match m.unloaded {
            Some(true) => println!("  unloaded"),
            Some(false) => println!("  UNLOAD FAILED"),
            None if m.loaded => println!("  not unloaded"),
            None => {}
        }
    }
    for e in &rep.exec {
        println!(
            "exec `{}`: exit {}",
            e.command,
            e.status.map_or("?".into(), |s| s.to_string())
        );
        for l in &e.output {
            println!("  {l}");
        }
    }
    for p in &rep.problems {
        println!("PROBLEM: {p}");
    }
    if let Some(t) = rep.tainted {
        println!("kernel taint: {t} ({})", qemu::taint_letters(t));
    }
    if rep.timed_out {
        println!(
            "TIMEOUT: guest killed after {} s (raise --timeout, or look with --console)",
            a.timeout
        );
    } else if !rep.finished {
        println!("guest did not finish its run (look with --console)");
    }
    eprintln!("guest ran {:.1} s ({})", rep.seconds, rep.accel);
    rep.exit_code()
}
