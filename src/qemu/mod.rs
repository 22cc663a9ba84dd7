//! `cargo kmod run`: boot a kernel in QEMU with an initramfs of our own making, load
//! and unload modules, and read the verdicts off the serial console.

pub mod cpio;

use crate::error::{Error, Result};
use crate::modfile::{ModuleFile, elf};
use crate::report::Reporter;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub image: PathBuf,
    pub arch: crate::target::Arch,
    pub modules: Vec<PathBuf>,
    /// Loaded first, without `params` (what `modules` depend on; see [`dependencies`]).
    pub dependencies: Vec<PathBuf>,
    /// Added to the kernel command line.
    pub append: Vec<String>,
    pub params: Vec<String>,
    pub exec: Vec<String>,
    pub timeout: Duration,
    pub busybox: PathBuf,
    pub accel: Accel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when /dev/kvm opens (falling back to TCG if the guest stays silent).
    Auto,
    Kvm,
    Tcg,
}

pub use crate::check::Refusal;

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
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExecReport {
    pub command: String,
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
    #[serde(skip)]
    pub console: String,
}

/// Taint flags that mean something went wrong (D died, W warning, L soft lockup,
/// B bad page, M machine check); O (out-of-tree) and E (unsigned) are expected.
const BAD_TAINT: u64 = (1 << 7) | (1 << 9) | (1 << 14) | (1 << 5) | (1 << 4);

pub fn taint_letters(t: u64) -> String {
    crate::check::TAINT_LETTERS
        .chars()
        .enumerate()
        .filter(|(i, _)| t & (1 << i) != 0)
        .map(|(_, c)| c)
        .collect()
}

impl RunReport {
    /// Documented exit codes: 0 clean, 20 refused, 21 unload failed,
    /// 22 oops/panic/bad taint, 23 timeout, 24 guest did not finish.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        if self.timed_out {
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
    let init = crate::templates::render(&GuestInit {
        mark: MARK.into(),
        modules: modules.iter().map(|(name, _)| name.clone()).collect(),
        dependencies: o.dependencies.len(),
        params: o
            .params
            .iter()
            .map(|p| kernel_param(p))
            .collect::<Result<Vec<_>>>()?,
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

/// The static busybox for an architecture's guests: Debian's busybox-static at
/// /bin/busybox for this machine's own, else one unpacked into the cache.
pub fn default_busybox(arch: crate::target::Arch) -> Result<PathBuf> {
    if crate::target::Arch::host() == Some(arch) {
        return Ok("/bin/busybox".into());
    }
    let p = crate::cache::tools().join(format!("busybox-{}", arch.name()));
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
    r: &dyn Reporter,
) -> Result<Vec<PathBuf>> {
    let mut given = Vec::new();
    let mut wanted = Vec::new();
    for p in modules {
        let m = ModuleFile::open(p)?;
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
        let m = ModuleFile::open(p)?;
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
    let mut initrd = tempfile::tempfile().map_err(werr)?;
    std::io::Write::write_all(&mut initrd, &initramfs(o, &mods)?).map_err(werr)?;

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
    let mut boot = boot(o, &initrd, kvm, silent_limit)?;
    let mut kvm = kvm;
    if boot.silent {
        r.warn(
            "the KVM guest printed nothing; booting again under TCG (use --accel tcg to skip KVM)",
        );
        kvm = false;
        boot = self::boot(o, &initrd, false, None)?;
    }
    let Boot {
        console, timed_out, ..
    } = boot;
    let mut report = parse_console(&console, &mods, o);
    report.accel = if kvm { "kvm" } else { "tcg" };
    report.seconds = started.elapsed().as_secs_f64();
    report.timed_out = timed_out;
    report.console = console;
    Ok(report)
}

/// One console line, classified: a mark of our `/init`, a kernel message (its
/// timestamp cut off), or what a tool printed.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Mark(Mark<'a>),
    Kernel(&'a str),
    Tool(&'a str),
}

/// The marks `templates/files/qemu/init` prints, with their module or command index.
#[derive(Debug, PartialEq)]
enum Mark<'a> {
    Begin,
    /// Loading or unloading module i: what follows is its.
    Module(usize),
    Insmod(usize, bool),
    Rmmod(usize, bool),
    Exec(usize),
    ExecRc(usize, Option<i32>),
    Param(usize, &'a str, &'a str),
    Tainted(Option<u64>),
    End,
    Other,
}

fn classify_line(line: &str) -> Line<'_> {
    if let Some(rest) = line.strip_prefix(MARK).map(str::trim) {
        let mut w = rest.split_whitespace();
        let word = w.next();
        let i = w.next().and_then(|v| v.parse::<usize>().ok());
        let ok = w.next();
        let mark = match (word, i) {
            (Some("begin"), _) => Mark::Begin,
            (Some("load" | "unload"), Some(i)) => Mark::Module(i),
            (Some("insmod"), Some(i)) if ok.is_some() => Mark::Insmod(i, ok == Some("0")),
            (Some("rmmod"), Some(i)) if ok.is_some() => Mark::Rmmod(i, ok == Some("0")),
            (Some("exec"), Some(k)) => Mark::Exec(k),
            (Some("exec-rc"), Some(k)) if ok.is_some() => {
                Mark::ExecRc(k, ok.and_then(|r| r.parse().ok()))
            }
            // "param <i> <name>=<value, may hold spaces>"
            (Some("param"), Some(i)) => {
                match rest.splitn(3, ' ').nth(2).and_then(|kv| kv.split_once('=')) {
                    Some((k, v)) => Mark::Param(i, k, v),
                    None => Mark::Other,
                }
            }
            (Some("tainted"), _) => {
                Mark::Tainted(rest.split_whitespace().nth(1).and_then(|t| t.parse().ok()))
            }
            (Some("end"), _) => Mark::End,
            _ => Mark::Other,
        };
        return Line::Mark(mark);
    }
    match line.strip_prefix('[') {
        Some(_) => Line::Kernel(line.split_once("] ").map_or(line, |(_, t)| t)),
        None => Line::Tool(line),
    }
}

/// Whose output the console is printing, as the marks say.
#[derive(Clone, Copy)]
enum Ctx {
    None,
    Module(usize),
    Exec(usize),
}

/// The report, built line by line.
struct Console {
    rep: RunReport,
    ctx: Ctx,
    begun: bool,
    /// Modules whose insmod ran.
    tried: Vec<bool>,
}

impl Console {
    fn mark(&mut self, m: Mark<'_>) {
        let rep = &mut self.rep;
        match m {
            Mark::Begin => self.begun = true,
            Mark::Module(i) if i < rep.modules.len() => self.ctx = Ctx::Module(i),
            Mark::Insmod(i, ok) => {
                if let Some(m) = rep.modules.get_mut(i) {
                    m.loaded = ok;
                    self.tried[i] = true;
                }
                self.ctx = Ctx::None;
            }
            Mark::Rmmod(i, ok) => {
                if let Some(m) = rep.modules.get_mut(i) {
                    m.unloaded = Some(ok);
                }
                self.ctx = Ctx::None;
            }
            Mark::Exec(k) if k < rep.exec.len() => self.ctx = Ctx::Exec(k),
            Mark::ExecRc(k, rc) => {
                if let Some(e) = rep.exec.get_mut(k) {
                    e.status = rc;
                }
                self.ctx = Ctx::None;
            }
            Mark::Param(i, k, v) => {
                if let Some(m) = rep.modules.get_mut(i) {
                    m.params.push((k.to_string(), v.to_string()));
                }
            }
            Mark::Tainted(t) => rep.tainted = t,
            Mark::End => rep.finished = true,
            _ => {}
        }
    }

    /// A line that is not a mark: the module's or the command's being run, or nobody's.
    fn output(&mut self, line: &str, text: &str, is_kernel: bool) {
        let rep = &mut self.rep;
        // A line prefixed with a module's name is that module's, wherever the console
        // put it: kernels that print asynchronously (7.3) deliver a module's lines
        // after the next step of the script has begun.
        // Of several copies with one name (a module tried twice), the one being loaded,
        // else the last one tried.
        let ctx = self.ctx;
        let tried = &self.tried;
        let owner = (0..rep.modules.len())
            .filter(|&j| text.starts_with(&format!("{}: ", rep.modules[j].name)))
            .max_by_key(|&j| (matches!(ctx, Ctx::Module(i) if i == j), tried[j], j));
        if is_kernel && let Some(m) = owner.map(|j| &mut rep.modules[j]) {
            if m.kernel_log.last().map(String::as_str) != Some(text) {
                m.kernel_log.push(text.to_string());
            }
            return;
        }
        match ctx {
            Ctx::Module(i) => {
                let m = &mut rep.modules[i];
                if is_kernel {
                    // Only what concerns the module, not other subsystems' chatter
                    // (clocksource, ...) that happens to print meanwhile; busybox insmod
                    // tries two syscalls, so a refusal is printed twice: keep one.
                    let ours = text.contains("module")
                        || text.contains("Unknown symbol")
                        || PROBLEMS.iter().any(|p| text.contains(p));
                    if ours && m.kernel_log.last().map(String::as_str) != Some(text) {
                        m.kernel_log.push(text.to_string());
                    }
                } else if !text.trim().is_empty() {
                    m.tool_output.push(text.to_string());
                }
            }
            Ctx::Exec(k) => rep.exec[k].output.push(line.to_string()),
            Ctx::None => {}
        }
    }
}

fn parse_console(console: &str, mods: &[(String, Vec<u8>)], o: &RunOptions) -> RunReport {
    let rep = RunReport {
        modules: mods
            .iter()
            .zip(o.dependencies.iter().chain(&o.modules))
            .enumerate()
            .map(|(i, ((name, _), path))| ModuleReport {
                path: path.clone(),
                name: name.clone(),
                dependency: i < o.dependencies.len(),
                ..Default::default()
            })
            .collect(),
        exec: o
            .exec
            .iter()
            .map(|c| ExecReport {
                command: c.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut c = Console {
        tried: vec![false; rep.modules.len()],
        rep,
        ctx: Ctx::None,
        begun: false,
    };
    for line in console.lines() {
        let (text, is_kernel) = match classify_line(line) {
            Line::Mark(m) => {
                c.mark(m);
                continue;
            }
            Line::Kernel(t) => (t, true),
            Line::Tool(t) => (t, false),
        };
        for pat in PROBLEMS {
            if text.contains(pat) {
                c.rep.problems.push(text.to_string());
            }
        }
        if c.begun {
            c.output(line, text, is_kernel);
        }
    }
    // Classified at the end: an asynchronous console may print the reason late.
    let mut rep = c.rep;
    for (m, _) in rep
        .modules
        .iter_mut()
        .zip(c.tried)
        .filter(|(m, t)| *t && !m.loaded)
    {
        m.refusal = Some(classify(&m.kernel_log, &m.tool_output));
    }
    rep
}

fn classify(kernel: &[String], tool: &[String]) -> Refusal {
    let all = |p: &str| kernel.iter().chain(tool).any(|l| l.contains(p));
    if all("Loading of unsigned module is rejected") {
        Refusal::Unsigned
    } else if all("Loading of module with unavailable key is rejected") {
        Refusal::UnavailableKey
    } else if all("Loading of module with unsupported crypto is rejected") {
        Refusal::UnsupportedCrypto
    } else if all("Key was rejected by service") {
        Refusal::BadSignature
    } else if all("Bad message") {
        Refusal::MalformedSignature
    } else if all("Message too long") {
        Refusal::SignatureTooLong
    } else if all("invalid for parameter") || all("nvalid parameters") {
        // kernel/params.c parse_one: "'x' invalid for parameter 'y'" (EINVAL); busybox
        // insmod says "invalid parameters", kmod's "Invalid parameters".
        Refusal::InvalidParameters
    } else if all("version magic")
        || all("disagrees about version of symbol module_layout")
        || all("section size must match")
        || all("invalid module format")
    {
        // Built for another kernel: 6.12 checks struct module's size before vermagic.
        Refusal::VersionMagic
    } else if all("disagrees about version of symbol") {
        Refusal::SymbolVersion
    } else if all("but does not import it") {
        Refusal::NamespaceNotImported
    } else if all("Unknown symbol") {
        Refusal::UnknownSymbol
    } else if all("Unknown parameter") || all("unknown parameter") {
        Refusal::InvalidParameters
    } else if all("Invalid argument") {
        Refusal::InvalidArgument
    } else if all("Lockdown:") {
        Refusal::Lockdown
    } else {
        Refusal::Other(
            tool.last()
                .or(kernel.last())
                .cloned()
                .unwrap_or_else(|| "insmod failed without a message".into()),
        )
    }
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

/// QEMU's command line for this run: no display, the serial console on stdio, no
/// network, no reboot.
fn qemu_command(o: &RunOptions, initrd: &std::fs::File, kvm: bool) -> Command {
    let crate::target::Qemu {
        binary: qemu,
        console,
        machine,
        ..
    } = o.arch.qemu();
    let mut q = Command::new(qemu);
    q.args(machine);
    q.arg("-kernel").arg(&o.image);
    pass_initrd(&mut q, initrd);
    let mut cmdline = format!("console={console} panic=-1 printk.time=1 loglevel=8");
    for a in &o.append {
        cmdline.push(' ');
        cmdline.push_str(a);
    }
    q.arg("-append").arg(cmdline);
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
        "-m",
        "256",
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
    kvm: bool,
    silent_limit: Option<Duration>,
) -> Result<Boot> {
    let crate::target::Qemu {
        binary: qemu,
        package: qemu_pkg,
        ..
    } = o.arch.qemu();
    let mut q = qemu_command(o, initrd, kvm);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_classified() {
        let m = |l: &str| {
            let line = format!("{MARK} {l}");
            match classify_line(&line) {
                Line::Mark(Mark::Param(i, k, v)) => format!("param {i} {k} {v}"),
                Line::Mark(mark) => format!("{mark:?}"),
                other => format!("{other:?}"),
            }
        };
        assert_eq!(m("begin"), "Begin");
        assert_eq!(m("load 2"), "Module(2)");
        assert_eq!(m("insmod 1 0"), "Insmod(1, true)");
        assert_eq!(m("rmmod 1 1"), "Rmmod(1, false)");
        assert_eq!(m("exec-rc 0 3"), "ExecRc(0, Some(3))");
        assert_eq!(m("param 0 greeting=hi there"), "param 0 greeting hi there");
        assert_eq!(m("tainted 8194"), "Tainted(Some(8194))");
        assert_eq!(m("insmod x"), "Other");
        assert_eq!(
            classify_line("[    1.5] dummy: loaded"),
            Line::Kernel("dummy: loaded")
        );
        assert_eq!(
            classify_line("insmod: can't insert"),
            Line::Tool("insmod: can't insert")
        );
    }
}
