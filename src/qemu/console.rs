//! The serial console of a `run`, read into its report: each line classified (a
//! mark of our `/init`, a kernel message, a tool's output), then fed to a small state
//! machine that knows whose output it is; refusals named by the kernel's own words.

use super::{ExecReport, MARK, ModuleReport, PROBLEMS, RunOptions, RunReport};

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
    /// The module's own init ran and returned this (the loader had accepted it).
    InitRet(usize, i32),
    Rmmod(usize, bool),
    /// A command run before loading (`before`) or after (`exec`), k-th of its kind.
    Exec(bool, usize),
    ExecRc(bool, usize, Option<i32>),
    Param(usize, &'a str, &'a str),
    Tainted(Option<u64>),
    Lockdown(&'a str),
    /// A system keyring and how many keys it holds.
    Keyring(&'a str, usize),
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
            (Some("initret"), Some(i)) => match ok.and_then(|r| r.parse().ok()) {
                Some(r) => Mark::InitRet(i, r),
                None => Mark::Other,
            },
            (Some(w @ ("exec" | "before")), Some(k)) => Mark::Exec(w == "before", k),
            (Some(w @ ("exec-rc" | "before-rc")), Some(k)) if ok.is_some() => {
                Mark::ExecRc(w == "before-rc", k, ok.and_then(|r| r.parse().ok()))
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
            (Some("keyring"), _) => match rest.split_whitespace().collect::<Vec<_>>()[..] {
                [_, name, n] => n.parse().map_or(Mark::Other, |n| Mark::Keyring(name, n)),
                _ => Mark::Other,
            },
            (Some("lockdown"), _) => {
                Mark::Lockdown(rest.strip_prefix("lockdown").unwrap_or_default().trim())
            }
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
    /// How many of `rep.exec` run before loading (they come first).
    befores: usize,
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
            Mark::InitRet(i, ret) => {
                if let Some(m) = rep.modules.get_mut(i) {
                    m.init_returned = Some(ret);
                }
            }
            Mark::Rmmod(i, ok) => {
                if let Some(m) = rep.modules.get_mut(i) {
                    m.unloaded = Some(ok);
                }
                self.ctx = Ctx::None;
            }
            Mark::Exec(before, k) => {
                let k = if before { k } else { self.befores + k };
                if k < rep.exec.len() {
                    self.ctx = Ctx::Exec(k);
                }
            }
            Mark::ExecRc(before, k, rc) => {
                let k = if before { k } else { self.befores + k };
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
            Mark::Keyring(name, n) => rep.keyrings.push((name.to_string(), n)),
            Mark::Lockdown(modes) => {
                // "none [integrity] confidentiality": the one in brackets is in force.
                rep.lockdown = modes
                    .split_whitespace()
                    .find_map(|m| m.strip_prefix('[')?.strip_suffix(']'))
                    .map(String::from);
            }
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

/// A console line without its terminal escapes (GRUB and OVMF print in colour).
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // CSI: ESC [ parameters final-byte.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// The certificates the kernel loads from firmware at boot, from its own lines.
#[derive(Default)]
struct FirmwareCerts {
    /// The kernel has the machine keyring (`integrity: Machine keyring initialized`).
    machine: bool,
    /// The source the next `Loaded X.509 cert` line is from.
    source: Option<String>,
    certs: Vec<super::FirmwareCert>,
}

impl FirmwareCerts {
    fn line(&mut self, text: &str) {
        if text.starts_with("integrity: Machine keyring initialized") {
            self.machine = true;
        } else if let Some(src) = text.strip_prefix("integrity: Loading X.509 certificate: UEFI:") {
            self.source = Some(src.trim().to_string());
        } else if let Some(rest) = text.strip_prefix("integrity: Loaded X.509 cert '")
            && let Some(source) = self.source.take()
        {
            // security/integrity/platform_certs/load_uefi.c: MokListRT goes to the
            // machine keyring where the kernel has one (and shim says it is trusted),
            // everything else from firmware to the platform keyring.
            let mok = source.starts_with("MokList");
            self.certs.push(super::FirmwareCert {
                name: rest.trim_end_matches('\'').to_string(),
                keyring: if mok && self.machine {
                    ".machine"
                } else {
                    ".platform"
                }
                .into(),
                source,
            });
        }
    }

    /// The keyrings' own counts correct the inference: MOKs the kernel did not trust
    /// (shim's MokListTrustedRT unset) went to .platform, leaving .machine empty.
    fn done(mut self, keyrings: &[(String, usize)]) -> Vec<super::FirmwareCert> {
        let machine = keyrings
            .iter()
            .find(|(k, _)| k == ".machine")
            .map(|(_, n)| *n);
        if machine == Some(0) {
            for c in &mut self.certs {
                c.keyring = ".platform".into();
            }
        }
        self.certs
    }
}

pub(super) fn parse_console(
    console: &str,
    mods: &[(String, Vec<u8>)],
    o: &RunOptions,
) -> RunReport {
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
            .before
            .iter()
            .chain(&o.exec)
            .enumerate()
            .map(|(k, c)| ExecReport {
                command: c.clone(),
                before: k < o.before.len(),
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
        befores: o.before.len(),
    };
    let mut certs = FirmwareCerts::default();
    let mut chain: Vec<String> = Vec::new();
    for line in console.lines() {
        // GRUB's errors, before any kernel line (it prints in colour: escapes dropped).
        let plain: String = strip_escapes(line);
        if let Some(at) = plain.find("error: ") {
            chain.push(plain[at..].trim().to_string());
        } else if plain.contains("cargo-kmod: GRUB did not boot the kernel") && !chain.is_empty() {
            c.rep.chain_refused = Some(chain.join("; "));
        }
        if let Line::Kernel(t) = classify_line(line) {
            certs.line(t);
        }
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
        // Before `begin`, only the commands run before loading have output of ours.
        if c.begun || matches!(c.ctx, Ctx::Exec(_)) {
            c.output(line, text, is_kernel);
        }
    }
    // Classified at the end: an asynchronous console may print the reason late.
    let mut rep = c.rep;
    rep.firmware_certs = certs.done(&rep.keyrings);
    for (m, _) in rep
        .modules
        .iter_mut()
        .zip(c.tried)
        .filter(|(m, t)| *t && !m.loaded)
    {
        m.refusal = Some(match m.init_returned {
            Some(ret) => crate::loader::Refusal::InitFailed(ret),
            None => crate::loader::classify(&m.kernel_log, &m.tool_output),
        });
    }
    rep
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
        assert_eq!(m("exec-rc 0 3"), "ExecRc(false, 0, Some(3))");
        assert_eq!(m("param 0 greeting=hi there"), "param 0 greeting hi there");
        assert_eq!(m("tainted 8194"), "Tainted(Some(8194))");
        assert_eq!(m("insmod x"), "Other");
        assert_eq!(m("initret 3 -22"), "InitRet(3, -22)");
        assert_eq!(m("initret 3 x"), "Other");
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
