//! The tools Kbuild runs with, found once and named with their Debian package when
//! missing, and the one way `make` is called and its output collected (for kernel
//! builds and module builds alike).

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::target::Config;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The tools a Rust-enabled kernel build needs, found or named with their package.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub rustc: PathBuf,
    pub rustc_version: String,
    pub bindgen: PathBuf,
    /// Directory holding clang, ld.lld, llvm-ar, ... when they are not on PATH unsuffixed.
    pub llvm_bin: Option<PathBuf>,
}

impl Toolchain {
    pub fn find(s: &Settings, rustc: Option<&Path>, bindgen: Option<&Path>) -> Result<Toolchain> {
        let mut missing = Vec::new();
        let mut pkgs: Vec<&str> = Vec::new();
        let mut notes = Vec::new();

        // The kernel needs the rustc whose library source is installed (rust-src).
        let candidates: Vec<PathBuf> = match rustc {
            Some(r) => vec![r.to_path_buf()],
            None => {
                let mut v = Vec::new();
                if let Some(r) = &s.rustc {
                    v.push(r.clone());
                }
                v.push("/usr/bin/rustc".into());
                v.extend(which(s, "rustc"));
                v
            }
        };
        let mut found_rustc = None;
        for c in &candidates {
            let Some(version) = tool_version(c, "--version") else {
                // A rustc asked for by path is named when it does not run.
                if rustc.is_some() {
                    notes.push(format!("{} does not run as rustc", c.display()));
                }
                continue;
            };
            if has_rust_src(c) {
                found_rustc = Some((c.clone(), version));
                break;
            }
            notes.push(format!("{} ({version}) has no rust-src", c.display()));
        }
        if found_rustc.is_none() {
            missing.push(format!(
                "rustc with matching rust-src{}",
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(" (found: {})", notes.join("; "))
                }
            ));
            pkgs.extend(["rustc-web", "rust-web-src"]);
        }

        // A given path must exist; otherwise PATH, then our own tools directory.
        let bindgen = match bindgen {
            Some(b) => b.is_file().then(|| b.to_path_buf()),
            None => which(s, "bindgen").or_else(|| {
                let p = crate::cache::tools(s).join("bin/bindgen");
                p.exists().then_some(p)
            }),
        };
        if bindgen.is_none() {
            missing.push("bindgen (>= 0.65.1)".into());
        }

        let llvm_bin = if which(s, "clang").is_some() && which(s, "ld.lld").is_some() {
            None
        } else {
            newest_llvm_bin()
        };
        let in_llvm = |tool: &str| {
            llvm_bin.as_ref().is_some_and(|d| d.join(tool).exists()) || which(s, tool).is_some()
        };
        for (tool, pkg) in [
            ("clang", "clang-19"),
            ("ld.lld", "lld-19"),
            ("llvm-ar", "llvm-19"),
        ] {
            if !in_llvm(tool) {
                missing.push(tool.into());
                pkgs.push(pkg);
            }
        }
        let libclang = llvm_bin.as_ref().and_then(|b| b.parent()).is_some_and(|d| {
            d.join("lib/libclang.so").exists() || d.join("lib/libclang.so.1").exists()
        });
        if !libclang && llvm_bin.is_some() {
            missing.push("libclang".into());
            pkgs.push("libclang-19-dev");
        }
        for (what, pkg) in missing_build_tools(s) {
            missing.push(what.into());
            pkgs.push(pkg);
        }
        if !missing.is_empty() {
            let mut install = String::new();
            if !pkgs.is_empty() {
                install = format!("apt-get install {}", pkgs.join(" "));
            }
            if bindgen.is_none() {
                if !install.is_empty() {
                    install.push_str("; ");
                }
                install.push_str(&format!(
                    "cargo install --locked bindgen-cli --root {} (Debian 12's bindgen is too old)",
                    crate::cache::tools(s).display()
                ));
            }
            return Err(Error::Toolchain { missing, install });
        }
        let (rustc, rustc_version) = found_rustc.expect("checked");
        Ok(Toolchain {
            rustc,
            rustc_version,
            bindgen: bindgen.expect("checked"),
            llvm_bin,
        })
    }

    /// The `make` variables a Rust-enabled kernel build takes.
    pub fn vars(&self) -> MakeVars {
        MakeVars {
            llvm: true,
            rustc: Some(self.rustc.clone()),
            // Proc macros (rust/libmacros.so) must come from the same compiler.
            hostrustc: Some(self.rustc.clone()),
            bindgen: Some(self.bindgen.clone()),
            path_prefix: self.llvm_bin.clone(),
            ..Default::default()
        }
    }
}

/// The C compiler a kernel was built with (its `CONFIG_CC_VERSION_TEXT`), found here
/// and reporting that same version: its modules, and a tree prepared for them, are
/// built by it.
#[derive(Debug, Clone)]
pub struct KernelCc {
    /// gcc's name as the kernel's build called it (`x86_64-linux-gnu-gcc-16`), for
    /// `CC=`; None for clang (`LLVM=1` names the tools).
    pub gcc: Option<String>,
    /// LLVM's directory, when clang is not on PATH.
    pub path_prefix: Option<PathBuf>,
    pub version_text: String,
}

impl KernelCc {
    /// None when the config does not say (kernels before 5.8); `Err((reason, fix))`
    /// when that compiler is missing here or reports another version.
    pub fn find(
        s: &Settings,
        config: &Config,
    ) -> std::result::Result<Option<KernelCc>, (String, String)> {
        let Some(text) = config.cc_version_text().filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let built_by = format!("the kernel was built by `{text}`");
        let (program, path_prefix, package, gcc) = if config.cc_is_clang() {
            // "Debian clang version 19.1.7 (3+b1)": Debian's package is clang-19.
            let major = text
                .split("clang version ")
                .nth(1)
                .and_then(|v| v.split('.').next())
                .unwrap_or("19");
            let package = format!("clang-{major} lld-{major} llvm-{major}");
            let prefix = if which(s, "clang").is_some() && which(s, "ld.lld").is_some() {
                None
            } else {
                match newest_llvm_bin() {
                    Some(p) => Some(p),
                    None => {
                        return Err((
                            format!("{built_by}; clang and ld.lld are not installed"),
                            format!("apt-get install {package}"),
                        ));
                    }
                }
            };
            let clang = prefix
                .as_ref()
                .map_or_else(|| "clang".into(), |p| p.join("clang"));
            (clang, prefix, package, None)
        } else {
            let name = text.split_whitespace().next().unwrap_or("gcc");
            let Some(path) = which(s, name) else {
                return Err((
                    format!("{built_by}; {name} is not installed"),
                    format!("apt-get install {}", gcc_package(name)),
                ));
            };
            (path, None, gcc_package(name), Some(name.to_string()))
        };
        let have = tool_version(&program, "--version")
            .and_then(|v| v.lines().next().map(str::to_string))
            .unwrap_or_else(|| "not runnable".into());
        if !same_compiler(&have, text) {
            return Err((
                format!("{built_by}; {} here is `{have}`", program.display()),
                format!(
                    "build with the compiler that built the kernel (Debian package {package}, from the kernel's own suite)"
                ),
            ));
        }
        Ok(Some(KernelCc {
            gcc,
            path_prefix,
            version_text: text.to_string(),
        }))
    }

    /// What `make` gets: `CC=`/`HOSTCC=` for gcc, `LLVM=1` for clang.
    pub fn apply(&self, v: &mut MakeVars) {
        v.llvm = self.gcc.is_none();
        v.cc.clone_from(&self.gcc);
        // Host programs (scripts/) are built by the same gcc when it is a native one;
        // a cross gcc's binutils share its prefix.
        if let Some(g) = &self.gcc {
            let triplet = split_gcc(g).0;
            if is_native(triplet) {
                v.hostcc = Some(g.clone());
            } else {
                v.cross_compile = Some(format!("{triplet}-"));
            }
        }
        if self.path_prefix.is_some() {
            v.path_prefix.clone_from(&self.path_prefix);
        }
    }
}

/// The same compiler version, whatever the distribution's package revision says
/// (`gcc-16 (Debian 16.2.0-3) 16.2.0` builds for a kernel of `(Debian 16.2.0-4)`:
/// Kbuild itself only warns; Debian's cross compilers trail their native ones).
fn same_compiler(a: &str, b: &str) -> bool {
    let bare = |t: &str| -> String {
        let mut depth = 0;
        t.chars()
            .filter(|c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => return depth == 0,
                }
                false
            })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    bare(a) == bare(b)
}

/// Debian's package for a gcc the kernel names: `x86_64-linux-gnu-gcc-16` (native)
/// is in `gcc-16`, `aarch64-linux-gnu-gcc-16` (a cross compiler) in
/// `gcc-16-aarch64-linux-gnu`.
pub fn gcc_package(name: &str) -> String {
    let (triplet, gcc) = split_gcc(name);
    if is_native(triplet) {
        gcc.to_string()
    } else {
        format!("{gcc}-{triplet}")
    }
}

/// `x86_64-linux-gnu-gcc-16` → (`x86_64-linux-gnu`, `gcc-16`).
fn split_gcc(name: &str) -> (&str, &str) {
    let at = name.find("gcc").unwrap_or(0);
    (name[..at].trim_end_matches('-'), &name[at..])
}

fn is_native(triplet: &str) -> bool {
    triplet.is_empty() || triplet == format!("{}-linux-gnu", std::env::consts::ARCH)
}

/// What `make` is told about the toolchain (and, for cross builds, the architecture).
#[derive(Debug, Clone, Default)]
pub struct MakeVars {
    /// `LLVM=1`: the kernel was (or is) built with clang.
    pub llvm: bool,
    /// `CC=`: the gcc the kernel was built with.
    pub cc: Option<String>,
    pub hostcc: Option<String>,
    pub rustc: Option<PathBuf>,
    pub hostrustc: Option<PathBuf>,
    pub bindgen: Option<PathBuf>,
    /// LLVM's directory, first on PATH, when clang is not on it.
    pub path_prefix: Option<PathBuf>,
    pub arch: Option<String>,
    pub cross_compile: Option<String>,
}

/// `make -C dir` with these variables, in an environment free of our own Cargo/rustup
/// variables (they would leak into Kbuild's rustc).
pub fn make(s: &Settings, dir: &Path, v: &MakeVars) -> Command {
    let mut c = Command::new("make");
    c.arg("-C").arg(dir);
    if v.llvm {
        c.arg("LLVM=1");
    }
    for (var, cc) in [("CC", &v.cc), ("HOSTCC", &v.hostcc)] {
        if let Some(cc) = cc {
            c.arg(format!("{var}={cc}"));
        }
    }
    for (var, tool) in [
        ("RUSTC", &v.rustc),
        ("HOSTRUSTC", &v.hostrustc),
        ("BINDGEN", &v.bindgen),
    ] {
        if let Some(t) = tool {
            c.arg(format!("{var}={}", t.display()));
        }
    }
    if let Some(a) = &v.arch {
        c.arg(format!("ARCH={a}"));
    }
    if let Some(x) = &v.cross_compile {
        c.arg(format!("CROSS_COMPILE={x}"));
    }
    if let Some(bin) = &v.path_prefix {
        let mut paths = vec![bin.clone()];
        paths.extend(std::env::split_paths(&s.path));
        c.env("PATH", std::env::join_paths(paths).expect("valid PATH"));
    }
    for var in [
        "RUSTC",
        "RUSTFLAGS",
        "RUSTUP_TOOLCHAIN",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs a build step: each output line to `on_line`; all lines on success, else the
/// last `tail` lines (or why it could not start).
pub fn run_step(
    cmd: &mut Command,
    tail: usize,
    on_line: impl FnMut(&str),
) -> std::result::Result<Vec<String>, String> {
    let (status, lines) =
        run_lines(cmd, on_line).map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        return Ok(lines);
    }
    let from = lines.len().saturating_sub(tail);
    Err(lines[from..].join("\n"))
}

/// What every kernel build runs, missing here: (tool or header, Debian package).
pub fn missing_build_tools(s: &Settings) -> Vec<(&'static str, &'static str)> {
    let tools = [
        ("make", "make"),
        ("flex", "flex"),
        ("bison", "bison"),
        ("bc", "bc"),
        ("tar", "tar"),
        ("xz", "xz-utils"),
        ("openssl", "openssl"),
    ]
    .into_iter()
    .filter(|(tool, _)| which(s, tool).is_none());
    let headers = [
        ("/usr/include/gelf.h", "libelf-dev"),
        ("/usr/include/openssl/evp.h", "libssl-dev"),
    ]
    .into_iter()
    .filter(|(header, _)| !Path::new(header).exists());
    tools.chain(headers).collect()
}

/// The first of these rustcs (then Debian's /usr/bin/rustc) whose `--version` is
/// `want`; else what each one is, for the error.
pub fn matching_rustc(
    want: &str,
    candidates: impl IntoIterator<Item = PathBuf>,
) -> std::result::Result<PathBuf, String> {
    let mut seen: Vec<String> = Vec::new();
    let mut tried: Vec<PathBuf> = Vec::new();
    for c in candidates.into_iter().chain(["/usr/bin/rustc".into()]) {
        if tried.contains(&c) {
            continue;
        }
        let v = tool_version(&c, "--version");
        if v.as_deref() == Some(want) {
            return Ok(c);
        }
        seen.push(format!(
            "{} is `{}`",
            c.display(),
            v.unwrap_or_else(|| "not runnable".into())
        ));
        tried.push(c);
    }
    Err(seen.join("; "))
}

/// `tool` on `PATH` as the settings give it.
pub fn which(s: &Settings, tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&s.path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

pub fn tool_version(tool: &Path, flag: &str) -> Option<String> {
    let o = Command::new(tool)
        .arg(flag)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

pub fn has_rust_src(rustc: &Path) -> bool {
    let Some(sysroot) = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
    else {
        return false;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    sysroot
        .join("lib/rustlib/src/rust/library/core/src/lib.rs")
        .exists()
}

pub fn newest_llvm_bin() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let v: u32 = n.strip_prefix("llvm-")?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("clang").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, d)| d)
}

/// Runs `cmd`, handing each line of its stdout and stderr (interleaved) to `on_line`;
/// returns the exit status and every line.
pub fn run_lines(
    cmd: &mut Command,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<(std::process::ExitStatus, Vec<String>)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ]
    .into_iter()
    .map(|pipe| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                let _ = tx.send(l);
            }
        })
    })
    .collect();
    drop(tx);
    let mut lines = Vec::new();
    for line in rx {
        on_line(&line);
        lines.push(line);
    }
    for t in readers {
        let _ = t.join();
    }
    Ok((child.wait()?, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcc_packages_are_debians_names() {
        let native = format!("{}-linux-gnu", std::env::consts::ARCH);
        assert_eq!(gcc_package(&format!("{native}-gcc-16")), "gcc-16");
        assert_eq!(gcc_package("gcc-12"), "gcc-12");
        assert_eq!(gcc_package("gcc"), "gcc");
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                gcc_package("aarch64-linux-gnu-gcc-16"),
                "gcc-16-aarch64-linux-gnu"
            );
            assert_eq!(
                gcc_package("aarch64-linux-gnu-gcc"),
                "gcc-aarch64-linux-gnu"
            );
        }
    }
}

/// Why [`output_within`] has no output.
#[derive(Debug)]
pub enum Bounded {
    TimedOut,
    Spawn(std::io::Error),
}

/// Runs `cmd` to its end and collects its output, killing it and everything it
/// started (its own process group) once `limit` has passed.
pub fn output_within(
    cmd: &mut Command,
    limit: std::time::Duration,
) -> std::result::Result<std::process::Output, Bounded> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(Bounded::Spawn)?;
    let read = |mut p: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = p.read_to_end(&mut v);
            v
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped")));
    let err = read(Box::new(child.stderr.take().expect("piped")));
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => {
                // SAFETY: a signal to the process group this child leads.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return Err(Bounded::TimedOut);
            }
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// A GNU make jobserver (a pipe of tokens) shared by the makes of a matrix build: the
/// kernels build at once, `jobs` slots in all (and one more per running make, each
/// make's own), so a kernel that finishes or fails early leaves its slots to the
/// others instead of idling a fixed share.
pub struct Jobserver {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
    jobs: usize,
}

impl Jobserver {
    pub fn new(jobs: usize) -> std::io::Result<Jobserver> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors we then own; without O_CLOEXEC, so that
        // every make started inherits them (as make's own jobserver pipe is inherited).
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors from pipe(2), owned here only.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let tokens = vec![b'+'; jobs.saturating_sub(1)];
        // SAFETY: a write of our own buffer to our own pipe (far below its capacity).
        let n = unsafe { libc::write(write.as_raw_fd(), tokens.as_ptr().cast(), tokens.len()) };
        if n < 0 || n as usize != tokens.len() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Jobserver { read, write, jobs })
    }

    /// MAKEFLAGS that make a make (and the makes it starts) a client of this jobserver
    /// (GNU make 4.x; with no `-j` on its command line).
    pub fn makeflags(&self) -> String {
        use std::os::fd::AsRawFd;
        format!(
            "-j{} --jobserver-auth={},{}",
            self.jobs,
            self.read.as_raw_fd(),
            self.write.as_raw_fd()
        )
    }
}
