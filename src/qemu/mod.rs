//! `cargo kmod run`: boot a kernel in QEMU with an initramfs of our own making, load
//! and unload modules, and read the verdicts off the serial console.

pub mod console;
pub mod cpio;
pub mod uefi;

use crate::error::{Error, Result};
use crate::modfile::{ModuleFile, elf};
use crate::report::Reporter;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Boot through UEFI Secure Boot (OVMF → shim → GRUB) with these enrolled.
    pub secure_boot: Option<uefi::SecureBoot>,
    pub image: PathBuf,
    pub arch: crate::target::Arch,
    pub modules: Vec<PathBuf>,
    /// Loaded first, without `params` (what `modules` depend on; see [`dependencies`]).
    pub dependencies: Vec<PathBuf>,
    /// Added to the kernel command line.
    pub append: Vec<String>,
    pub params: Vec<String>,
    /// Shell commands run before the modules are loaded, and after.
    pub before: Vec<String>,
    pub exec: Vec<String>,
    /// Host files put into the guest, at these absolute paths (a program with the
    /// libraries it links: [`with_libraries`]).
    pub files: Vec<(PathBuf, String)>,
    pub timeout: Duration,
    pub busybox: PathBuf,
    pub accel: Accel,
    /// The largest module read (`Settings::max_module_bytes`).
    pub max_module_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when /dev/kvm opens (falling back to TCG if the guest stays silent).
    Auto,
    Kvm,
    Tcg,
}

pub use crate::loader::Refusal;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ModuleReport {
    pub path: PathBuf,
    pub name: String,
    /// Loaded because another module depends on it.
    pub dependency: bool,
    pub loaded: bool,
    pub refusal: Option<Refusal>,
    /// Kernel log lines printed while loading and unloading it.
    pub kernel_log: Vec<String>,
    /// insmod/rmmod messages.
    pub tool_output: Vec<String>,
    pub params: Vec<(String, String)>,
    pub unloaded: Option<bool>,
    /// What its own init returned when it failed (the loader had accepted it), where
    /// the kernel tells (tracefs' initcall_finish).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_returned: Option<i32>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExecReport {
    pub command: String,
    /// Run before the modules were loaded (`--before`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub before: bool,
    pub status: Option<i32>,
    pub output: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    pub accel: &'static str,
    pub seconds: f64,
    pub modules: Vec<ModuleReport>,
    pub exec: Vec<ExecReport>,
    pub tainted: Option<u64>,
    /// Oops, BUG, WARNING or panic lines.
    pub problems: Vec<String>,
    pub timed_out: bool,
    /// The guest ran our init to its end.
    pub finished: bool,
    /// `/sys/kernel/security/lockdown` (`none [integrity] confidentiality`): the mode
    /// in brackets, when the kernel has lockdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lockdown: Option<String>,
    /// The boot chain's own words when it refused to start the kernel (`run
    /// --secure-boot`: GRUB's "error: bad shim signature.").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_refused: Option<String>,
    /// The system keyrings (`.builtin_trusted_keys`, `.machine`, `.platform`, ...) and
    /// how many keys each holds, from the guest's /proc/keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keyrings: Vec<(String, usize)>,
    /// Certificates the kernel loaded from firmware at boot, and the keyring each went to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub firmware_certs: Vec<FirmwareCert>,
    #[serde(skip)]
    pub console: String,
}

/// A certificate the kernel took from firmware (`integrity: Loading X.509 certificate:
/// UEFI:<source>`, then `Loaded X.509 cert '<name>'`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FirmwareCert {
    /// Its subject and key id, as the kernel names it.
    pub name: String,
    /// `db`, `MokListRT (MOKvar table)`, ...
    pub source: String,
    /// `.machine` (shim's MOKs, where the kernel has that keyring: those sign modules)
    /// or `.platform` (db, and MOKs elsewhere: trusted for kexec, for modules only where
    /// the distribution patched it so).
    pub keyring: String,
}

use crate::loader::BAD_TAINT;
pub use crate::loader::taint_letters;

impl RunReport {
    /// Documented exit codes: 0 clean, 20 refused, 21 unload failed,
    /// 22 oops/panic/bad taint, 23 timeout, 24 guest did not finish.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        if self.chain_refused.is_some() {
            exit::CHAIN
        } else if self.timed_out {
            exit::HUNG
        } else if !self.finished {
            exit::UNFINISHED
        } else if !self.problems.is_empty() || self.tainted.is_some_and(|t| t & BAD_TAINT != 0) {
            exit::OOPS
        } else if self.modules.iter().any(|m| !m.loaded) {
            exit::REFUSED
        } else if self.modules.iter().any(|m| m.unloaded != Some(true)) {
            exit::UNLOAD
        } else {
            exit::OK
        }
    }
}

const MARK: &str = "@@KMOD";
/// Console lines that mean the kernel is in trouble.
const PROBLEMS: [&str; 5] = [
    "Oops",
    "BUG:",
    "WARNING:",
    "Kernel panic",
    "general protection fault",
];

/// A `--param NAME=VALUE` as the kernel's parser must get it to see VALUE unchanged.
/// kernel/params.c next_arg splits at spaces outside double quotes, toggles quoting at
/// every `"`, and drops a value's leading `"` and the last one: a value with spaces is
/// quoted; one with a `"` and spaces, or starting with `"`, cannot arrive intact.
fn kernel_param(p: &str) -> Result<String> {
    let (k, v) = p.split_once('=').unwrap_or((p, ""));
    let spaces = v.contains(char::is_whitespace);
    if v.starts_with('"') || (spaces && v.contains('"')) {
        return Err(Error::usage(
            format!(
                "--param {p}: the kernel cannot receive this value intact (its parser strips a leading double quote, and a double quote inside a value with spaces ends the quoting)"
            ),
            "give the value without double quotes (values with spaces are quoted for you)",
        ));
    }
    Ok(if spaces {
        format!("{k}=\"{v}\"")
    } else {
        p.to_string()
    })
}

/// The guest's `/init`: loads the modules (dependencies first, parameters for the
/// others), runs the commands, shows parameters, unloads, and reports by marked lines.
#[derive(serde::Serialize)]
pub struct GuestInit {
    pub mark: String,
    /// Module names, in loading order.
    pub modules: Vec<String>,
    /// How many of `modules` are dependencies (loaded without `params`).
    pub dependencies: usize,
    pub params: Vec<String>,
    pub befores: usize,
    pub execs: usize,
}

impl crate::templates::Generated for GuestInit {
    const TEMPLATE: &'static str = "qemu/init";
    fn example() -> Self {
        GuestInit {
            mark: MARK.into(),
            modules: vec!["xfrm_algo".into(), "af_key".into()],
            dependencies: 1,
            params: vec!["count=3".into(), "greeting=\"hi there\"".into()],
            befores: 1,
            execs: 1,
        }
    }
}

/// Builds the gzip'd initramfs: busybox, /dev/console, the modules and an /init that
/// loads them, runs the commands, shows parameters, unloads, and powers off.
pub fn initramfs(o: &RunOptions, modules: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let busybox = crate::fsutil::read_bounded(&o.busybox, 64 << 20)?;
    let mut c = cpio::Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "modules", "exec"] {
        c.dir(d);
    }
    c.char_dev("dev/console", 0o600, 5, 1);
    c.file("bin/busybox", 0o755, &busybox);
    for (i, (_, data)) in modules.iter().enumerate() {
        c.file(&format!("modules/{i}.ko"), 0o644, data);
    }
    for (k, cmd) in o.exec.iter().enumerate() {
        c.file(
            &format!("exec/{k}.sh"),
            0o755,
            format!("#!/bin/busybox sh\n{cmd}\n").as_bytes(),
        );
    }
    for (k, cmd) in o.before.iter().enumerate() {
        c.file(
            &format!("exec/before-{k}.sh"),
            0o755,
            format!("#!/bin/busybox sh\n{cmd}\n").as_bytes(),
        );
    }
    let mut made: Vec<String> = ["bin", "dev", "proc", "sys", "modules", "exec"]
        .map(String::from)
        .to_vec();
    for (host, guest) in &o.files {
        let rel = guest.trim_start_matches('/');
        let mut dir = String::new();
        for part in rel
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            dir = if dir.is_empty() {
                part.to_string()
            } else {
                format!("{dir}/{part}")
            };
            if !made.contains(&dir) {
                c.dir(&dir);
                made.push(dir.clone());
            }
        }
        let data = crate::fsutil::read_bounded(host, 256 << 20)?;
        let mode = std::fs::metadata(host).map_or(0o644, |m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        });
        c.file(rel, mode, &data);
    }
    let init = crate::templates::render(&GuestInit {
        mark: MARK.into(),
        modules: modules.iter().map(|(name, _)| name.clone()).collect(),
        dependencies: o.dependencies.len(),
        params: o
            .params
            .iter()
            .map(|p| kernel_param(p))
            .collect::<Result<Vec<_>>>()?,
        befores: o.before.len(),
        execs: o.exec.len(),
    });
    c.file("init", 0o755, init.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    use std::io::Write;
    gz.write_all(&c.finish())
        .and_then(|_| gz.finish())
        .map_err(|source| Error::Write {
            path: "initramfs".into(),
            source,
        })
}

/// A host program and what it links, as `ldd` names them, each at its own path in
/// the guest (`/lib/x86_64-linux-gnu/libc.so.6`, the loader `/lib64/...`), the program
/// itself at `guest`. A file that is not a dynamic program comes alone.
pub fn with_libraries(host: &Path, guest: &str) -> Result<Vec<(PathBuf, String)>> {
    let mut out = vec![(host.to_path_buf(), guest.to_string())];
    let Ok(o) = Command::new("ldd").arg(host).output() else {
        return Ok(out);
    };
    if !o.status.success() {
        return Ok(out);
    }
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-... (0x...)".
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            out.push((PathBuf::from(p), p.to_string()));
        }
    }
    Ok(out)
}

/// The static busybox for an architecture's guests: Debian's busybox-static at
/// /bin/busybox for this machine's own, else one unpacked into the cache.
pub fn default_busybox(
    s: &crate::settings::Settings,
    arch: crate::target::Arch,
) -> Result<PathBuf> {
    if crate::target::Arch::host() == Some(arch) {
        return Ok("/bin/busybox".into());
    }
    let p = crate::cache::tools(s).join(format!("busybox-{}", arch.name()));
    if p.is_file() {
        return Ok(p);
    }
    Err(Error::Toolchain {
        missing: vec![format!(
            "a static {} busybox (looked for {})",
            arch.name(),
            p.display()
        )],
        install: format!(
            "apt-get download busybox-static:{} (arm64 in a private apt configuration, or after dpkg --add-architecture {}), dpkg -x it, and copy its bin/busybox to {} or pass --busybox",
            arch.debian(),
            arch.debian(),
            p.display()
        ),
    })
}

/// The busybox must run on the guest: a host busybox in an arm64 initramfs would only
/// make the kernel panic ("No working init found").
fn check_busybox(o: &RunOptions) -> Result<()> {
    let head = crate::fsutil::read_head(&o.busybox, 64)?;
    let n = head.len();
    // ELF, 64-bit, little-endian: e_machine at byte 18.
    let machine = (n >= 20 && head.starts_with(b"\x7fELF") && head[4] == 2 && head[5] == 1)
        .then(|| u16::from_le_bytes([head[18], head[19]]));
    let want = o.arch.elf_machine();
    if machine != Some(want) {
        return Err(Error::Run {
            path: o.busybox.clone(),
            reason: format!(
                "not a 64-bit {} program; the guest's /init runs it on an {} kernel",
                o.arch.name(),
                o.arch.name()
            ),
        });
    }
    Ok(())
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// What `modules` need from `tree` (their `depends:`, and those modules' own), in the
/// order modprobe loads them. A dependency not in the tree (nor among `modules`) is
/// warned about; the kernel then judges the module without it (unknown symbols).
pub fn dependencies(
    modules: &[PathBuf],
    tree: &crate::modtree::ModuleTree,
    max_module_bytes: u64,
    r: &dyn Reporter,
) -> Result<Vec<PathBuf>> {
    let mut given = Vec::new();
    let mut wanted = Vec::new();
    for p in modules {
        let m = ModuleFile::open(p, max_module_bytes)?;
        given.push(crate::modfile::name_of_path(&p.to_string_lossy()));
        wanted.push((p, crate::modtree::depends_field(&m).unwrap_or_default()));
    }
    for (p, deps) in &wanted {
        for d in deps
            .iter()
            .filter(|d| tree.path(d).is_none() && !given.contains(d))
        {
            r.warn(&format!(
                "{}: it depends on {d}, which is not in {}: loading it without",
                p.display(),
                tree.dir.display()
            ));
        }
    }
    let roots: Vec<String> = wanted.into_iter().flat_map(|(_, d)| d).collect();
    let order = tree.load_order(&roots).map_err(|cycle| Error::KernelFacts {
        path: tree.dir.clone(),
        reason: format!("depmod: ERROR: {cycle}"),
        fix: "a module tree whose modules depend on each other in a circle cannot be loaded by modprobe; rebuild them so that one does not need the other".into(),
    })?;
    Ok(order
        .into_iter()
        .filter(|n| !given.contains(n))
        .filter_map(|n| tree.path(&n).map(Path::to_path_buf))
        .collect())
}

/// Boots, loads, unloads, and reports.
pub fn run(o: &RunOptions, r: &dyn Reporter) -> Result<RunReport> {
    if !o.image.is_file() {
        return Err(Error::Run {
            path: o.image.clone(),
            reason: "kernel image not found".into(),
        });
    }
    // KVM runs guests of this machine's own architecture only.
    let native = crate::target::Arch::host() == Some(o.arch);
    if o.accel == Accel::Kvm && !native {
        return Err(Error::TargetRefuses {
            target: o.image.display().to_string(),
            reason: format!(
                "an {} kernel cannot run under KVM on this {} machine",
                o.arch.name(),
                std::env::consts::ARCH
            ),
            fix: "use --accel tcg (or auto), which emulates it".into(),
        });
    }
    check_busybox(o)?;
    let mut mods = Vec::new();
    for p in o.dependencies.iter().chain(&o.modules) {
        let m = ModuleFile::open(p, o.max_module_bytes)?;
        // Refused before booting: the kernel would only say "Exec format error".
        let info = m.elf()?;
        let arch = info.arch;
        if info.machine != o.arch.object() {
            return Err(Error::TargetRefuses {
                target: p.display().to_string(),
                reason: format!(
                    "an {arch} module; the kernel to boot ({}) is {}",
                    o.image.display(),
                    o.arch.name()
                ),
                fix: format!(
                    "build the module for {} (cargo kmod build --kdir with that kernel's tree)",
                    o.arch.name()
                ),
            });
        }
        let name = elf::modinfo_fields(m.elf()?.modinfo)
            .into_iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v)
            .unwrap_or_else(|| {
                let f = p.file_name().unwrap_or_default().to_string_lossy();
                crate::modfile::normalise(f.split('.').next().unwrap_or_default())
            });
        mods.push((name, m.data));
    }
    // An unnamed file (unlinked at once): QEMU opens it through /proc/self/fd, so a
    // run killed at any moment leaves nothing in the temp directory.
    let werr = |source| Error::Write {
        path: std::env::temp_dir(),
        source,
    };
    let initramfs = initramfs(o, &mods)?;
    let mut initrd = tempfile::tempfile().map_err(werr)?;
    std::io::Write::write_all(&mut initrd, &initramfs).map_err(werr)?;
    let firmware = match &o.secure_boot {
        Some(sb) => Some(uefi::prepare(o, sb, cmdline(o), &initramfs)?),
        None => None,
    };

    let kvm = match o.accel {
        Accel::Tcg => false,
        Accel::Kvm => true,
        Accel::Auto => native && kvm_usable(),
    };
    r.note(&format!(
        "booting {} with {} module(s) ({})",
        o.image.display(),
        mods.len(),
        if kvm { "KVM" } else { "TCG" }
    ));
    let started = Instant::now();
    // Nested or half-working KVM can leave a guest silent: auto falls back to TCG.
    let silent_limit = (o.accel == Accel::Auto && kvm).then_some(Duration::from_secs(3));
    let fw = firmware.as_ref();
    let mut kvm = kvm;
    // KVM that QEMU cannot use for this machine (no SMM under a nested hypervisor, for
    // Secure Boot's q35): auto boots under TCG instead.
    let mut boot = match boot(o, &initrd, fw, kvm, silent_limit) {
        Err(Error::Run { reason, .. }) if o.accel == Accel::Auto && kvm => {
            let why = reason
                .lines()
                .find(|l| l.contains("not supported"))
                .unwrap_or("QEMU exited at once")
                .trim_start_matches("qemu-system-x86_64: ")
                .to_string();
            r.warn(&format!(
                "KVM cannot run this guest here ({why}); booting under TCG (use --accel tcg to skip KVM)"
            ));
            kvm = false;
            self::boot(o, &initrd, fw, false, None)?
        }
        other => other?,
    };
    if boot.silent {
        r.warn(
            "the KVM guest printed nothing; booting again under TCG (use --accel tcg to skip KVM)",
        );
        kvm = false;
        boot = self::boot(o, &initrd, fw, false, None)?;
    }
    let Boot {
        console, timed_out, ..
    } = boot;
    let mut report = console::parse_console(&console, &mods, o);
    report.accel = if kvm { "kvm" } else { "tcg" };
    report.seconds = started.elapsed().as_secs_f64();
    report.timed_out = timed_out;
    report.console = console;
    Ok(report)
}

struct Boot {
    console: String,
    timed_out: bool,
    /// Killed because it printed nothing within the silence limit.
    silent: bool,
}

/// `-initrd` an unnamed file, through /proc/self/fd. SAFETY: only async-signal-safe
/// calls between fork and exec. The file stays open across exec (its close-on-exec
/// flag is cleared in the child alone), and QEMU dies with this thread: a run killed
/// by SIGTERM leaves no QEMU behind.
fn pass_initrd(q: &mut Command, initrd: &std::fs::File) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(initrd);
    q.arg("-initrd").arg(format!("/proc/self/fd/{fd}"));
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(q, move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The kernel's command line: its console, no reboot on panic, every message shown.
fn cmdline(o: &RunOptions) -> String {
    let console = o.arch.qemu().console;
    let mut cmdline = format!("console={console} panic=-1 printk.time=1 loglevel=8");
    for a in &o.append {
        cmdline.push(' ');
        cmdline.push_str(a);
    }
    cmdline
}

/// QEMU's command line for this run: no display, the serial console on stdio, no
/// network, no reboot. With firmware: the ESP it boots from instead of -kernel.
fn qemu_command(
    o: &RunOptions,
    initrd: &std::fs::File,
    firmware: Option<&uefi::Prepared>,
    kvm: bool,
) -> Command {
    let crate::target::Qemu {
        binary: qemu,
        machine,
        ..
    } = o.arch.qemu();
    let mut q = Command::new(qemu);
    match firmware {
        Some(fw) => {
            q.args(uefi::qemu_args(fw));
        }
        None => {
            q.args(machine);
            q.arg("-kernel").arg(&o.image);
            pass_initrd(&mut q, initrd);
            q.arg("-append").arg(cmdline(o));
            q.args(["-m", "256"]);
        }
    }
    q.args([
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-nic",
        "none",
    ]);
    if kvm {
        q.arg("-enable-kvm");
    }
    q.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    q
}

fn boot(
    o: &RunOptions,
    initrd: &std::fs::File,
    firmware: Option<&uefi::Prepared>,
    kvm: bool,
    silent_limit: Option<Duration>,
) -> Result<Boot> {
    let crate::target::Qemu {
        binary: qemu,
        package: qemu_pkg,
        ..
    } = o.arch.qemu();
    let mut q = qemu_command(o, initrd, firmware, kvm);
    let started = Instant::now();
    let mut child = q.spawn().map_err(|e| Error::Run {
        path: qemu.into(),
        reason: format!("cannot start: {e} (Debian package {qemu_pkg})"),
    })?;
    let mut out = child.stdout.take().expect("piped");
    let got_output = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = got_output.clone();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            v.extend_from_slice(&buf[..n]);
        }
        v
    });
    let mut err = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let (mut timed_out, mut silent) = (false, false);
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| Error::Run {
            path: qemu.into(),
            reason: e.to_string(),
        })? {
            break Some(s);
        }
        let quiet = !got_output.load(std::sync::atomic::Ordering::Relaxed);
        silent = quiet && silent_limit.is_some_and(|l| started.elapsed() > l);
        timed_out = started.elapsed() > o.timeout;
        if silent || timed_out {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).replace('\r', "");
    let qemu_err = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    if let Some(s) = status
        && !s.success()
        && !console.contains(MARK)
    {
        return Err(Error::Run {
            path: o.image.clone(),
            reason: format!("qemu failed ({s}): {}", qemu_err.trim()),
        });
    }
    Ok(Boot {
        console,
        timed_out,
        silent,
    })
}
