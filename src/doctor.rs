//! `cargo kmod doctor`: on the machine where a module must load, what the kernel will
//! do with it and why. Read-only, from what the running kernel and firmware show:
//! Secure Boot and setup mode (efivars), lockdown, enforcement, shim's MOK variables
//! (`MokListRT`, `MokListTrustedRT`, pending `MokNew`), the UEFI `db`, the kernel's
//! `.config` and builtin certificates, and — where this user may read them — the
//! system keyrings and the keys in each (`/proc/keys`, `keyctl read`). Where a fact
//! needs root, it is inferred the way the kernel decides, and the report says so.
//! Where the kernel puts each certificate is `firmware_keys`' to say.

use crate::efivars::{self, GLOBAL, IMAGE_SECURITY_DATABASE, SHIM_LOCK};
use crate::error::Result;
use crate::firmware_keys::Rules;
pub use crate::firmware_keys::Source;
use crate::pki::cert::Cert;
use crate::target::Target;
use crate::verify::{self, Keyring, Verdict};
use std::path::{Path, PathBuf};

/// The `.config` symbols that decide where keys go and whether signatures are enforced.
pub const CONFIG: &[&str] = &[
    "CONFIG_MODULE_SIG",
    "CONFIG_MODULE_SIG_FORCE",
    "CONFIG_SECONDARY_TRUSTED_KEYRING",
    "CONFIG_INTEGRITY_PLATFORM_KEYRING",
    "CONFIG_INTEGRITY_MACHINE_KEYRING",
    "CONFIG_INTEGRITY_CA_MACHINE_KEYRING",
    "CONFIG_LOAD_UEFI_KEYS",
];

#[derive(Clone, serde::Serialize)]
pub struct CertFact {
    pub subject: String,
    /// The key id the kernel files it under (subjectKeyIdentifier, else serial), hex.
    pub key_id: String,
    pub source: Source,
    /// Asked about with `--cert`.
    pub given: bool,
    /// The keyring it is (observed) or would be (inferred) in; none while pending.
    pub keyring: Option<String>,
    /// `keyring` read from the kernel's keyrings rather than inferred.
    pub observed: bool,
    /// The kernel checks modules against it.
    pub signs_modules: bool,
    /// Why it is where it is, when that matters.
    pub why: String,
    /// What to do, when it does not sign modules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip)]
    pub cert: Cert,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyringFact {
    pub name: String,
    /// The keys' descriptions as the kernel gives them (`subject: key id`).
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Loads,
    /// Loads, tainting the kernel (E): only without enforcement.
    LoadsTainted,
    Refused,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModuleDiagnosis {
    pub path: PathBuf,
    pub outcome: Outcome,
    /// What insmod will say, and the kernel's own line.
    pub message: String,
    pub cause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Clone, serde::Serialize)]
pub struct Report {
    pub release: String,
    /// The distribution that built the kernel, when `/proc/version` names one known.
    pub distribution: Option<String>,
    /// Booted through UEFI (`/sys/firmware/efi`).
    pub uefi: bool,
    pub secure_boot: Option<bool>,
    pub setup_mode: Option<bool>,
    pub lockdown: Option<String>,
    /// `module.sig_enforce`, as `/sys/module/module/parameters/sig_enforce` reads.
    pub sig_enforce: Option<bool>,
    /// The kernel checks module signatures at all (CONFIG_MODULE_SIG; assumed without
    /// a `.config`).
    pub checks_signatures: bool,
    /// Unsigned and unknown-key modules are refused (sig_enforce, MODULE_SIG_FORCE).
    pub enforced: bool,
    /// Unsigned modules are refused by lockdown even without enforcement.
    pub locked_down: bool,
    /// The `.config` symbols of [`CONFIG`] (`n` when unset); empty without a `.config`.
    pub config: Vec<(String, String)>,
    /// shim's `MokListTrustedRT` is there: the kernel may put MOKs in `.machine`.
    pub mok_trusted: Option<bool>,
    /// The kernel trusts `.platform` for modules (a distribution's patch).
    pub platform_signs_modules: bool,
    /// The system keyrings and their keys; None when this user may not read them.
    pub keyrings: Option<Vec<KeyringFact>>,
    pub certs: Vec<CertFact>,
    pub modules: Vec<ModuleDiagnosis>,
    /// Facts that could not be read (and why), so inferred instead.
    pub unreadable: Vec<String>,
}

impl Report {
    /// 20 when a module would be refused or a given certificate signs no module here.
    pub fn exit_code(&self) -> i32 {
        let given_useless =
            self.checks_signatures && self.certs.iter().any(|c| c.given && !c.signs_modules);
        if self.modules.iter().any(|m| m.outcome == Outcome::Refused) || given_useless {
            crate::error::exit::REFUSED
        } else {
            crate::error::exit::OK
        }
    }
}

/// What to look at: the machine under `root` (`/`), these modules and certificates.
pub struct Options {
    pub root: PathBuf,
    pub modules: Vec<PathBuf>,
    pub certs: Vec<PathBuf>,
    pub max_module_bytes: u64,
}

/// The keyrings modules are checked against (kernel/module/signing.c:
/// VERIFY_USE_SECONDARY_KEYRING; `.machine` is linked into the secondary one).
const MODULE_KEYRINGS: &[&str] = &[
    ".builtin_trusted_keys",
    ".secondary_trusted_keys",
    ".machine",
];

/// Reads the machine and judges the modules and certificates.
pub fn diagnose(o: &Options) -> Result<Report> {
    let mut given = Vec::new();
    for p in &o.certs {
        given.extend(crate::pki::cert::load_certs(p)?);
    }
    let mut modules = Vec::new();
    for p in &o.modules {
        modules.push((
            p.clone(),
            crate::modfile::ModuleFile::open(p, o.max_module_bytes)?.data,
        ));
    }
    let m = Machine { root: &o.root };
    let target = Target::running(&o.root);
    let (mut r, mok_list, distro) = observe(&m, &target);
    let cfg = |k: &str| target.config.as_ref().is_some_and(|c| c.enabled(k));
    // Without a .config, a kernel with lockdown is a distribution's: assume the
    // keyrings it would have.
    let has =
        |k: &str| cfg(k) || (target.config.is_none() && k != "CONFIG_INTEGRITY_CA_MACHINE_KEYRING");
    let rules = Rules {
        firmware: has("CONFIG_LOAD_UEFI_KEYS"),
        machine: has("CONFIG_INTEGRITY_MACHINE_KEYRING"),
        ca_only: cfg("CONFIG_INTEGRITY_CA_MACHINE_KEYRING"),
        mok_trusted: r.mok_trusted.unwrap_or(false)
            || distro.is_some_and(|d| d.moks_always_trusted),
        secure_boot_off: r.secure_boot == Some(false),
        platform_signs_modules: r.platform_signs_modules,
    };
    r.checks_signatures = target.config.is_none() || cfg("CONFIG_MODULE_SIG");
    r.certs = certificates(&m, &target, given, mok_list, &mut r.unreadable);
    for f in &mut r.certs {
        place(f, &rules, r.keyrings.as_deref());
    }
    let mut trusted = Keyring {
        certs: r
            .certs
            .iter()
            .filter(|f| f.signs_modules)
            .map(|f| f.cert.clone())
            .collect(),
        crypto: Default::default(),
    };
    if !r.checks_signatures {
        // Every module loads: no certificate is needed, and none has a fix.
        for f in r.certs.iter_mut().filter(|f| !f.signs_modules) {
            f.why += "; it does not matter here: this kernel checks no module signature (CONFIG_MODULE_SIG unset)";
            f.fix = None;
        }
    }
    let state = State {
        checks: r.checks_signatures,
        enforced: r.enforced,
        locked_down: r.locked_down,
        dropped: trusted.restrict(target.crypto()),
    };
    r.modules = modules
        .into_iter()
        .map(|(path, data)| state.judge(path, &data, &trusted, &r.certs))
        .collect();
    Ok(r)
}

/// What the running kernel and firmware show (no certificates or modules yet), and
/// shim's MokListRT as read.
fn observe(
    m: &Machine,
    target: &Target,
) -> (
    Report,
    Option<Vec<u8>>,
    Option<&'static crate::distro::Distro>,
) {
    let mut unreadable = Vec::new();
    let distro = crate::distro::of_banner(&m.text("proc/version").unwrap_or_default());
    let uefi = m.path("sys/firmware/efi").is_dir();
    let efivarfs = m.path("sys/firmware/efi/efivars");
    if uefi && m.efivar("SecureBoot", &GLOBAL).is_none() {
        unreadable.push(format!(
            "the UEFI variables ({} holds none: efivarfs not mounted? `mount -t efivarfs efivarfs {0}`): Secure Boot's state, db and pending MOKs are unknown",
            efivarfs.display()
        ));
    }
    let global = |name| {
        uefi.then(|| m.efivar(name, &GLOBAL).map(|d| d.first() == Some(&1)))
            .flatten()
    };
    let lockdown = m.text("sys/kernel/security/lockdown").and_then(|t| {
        let (_, rest) = t.split_once('[')?;
        rest.split_once(']').map(|(mode, _)| mode.to_string())
    });
    let sig_enforce = m
        .text("sys/module/module/parameters/sig_enforce")
        .map(|t| t.trim() == "Y");
    let config = match &target.config {
        Some(c) => CONFIG
            .iter()
            .map(|k| (k.to_string(), c.get(k).unwrap_or("n").to_string()))
            .collect(),
        None => {
            unreadable.push(format!(
                "the kernel's .config (/boot/config-{}, /proc/config.gz): assumed what mainline defaults to",
                target.release
            ));
            Vec::new()
        }
    };
    let forced = target
        .config
        .as_ref()
        .is_some_and(|c| c.enabled("CONFIG_MODULE_SIG_FORCE"));
    // shim's variables: the MOKvar table (root only) or efivarfs (anyone).
    let mok_table = m.path("sys/firmware/efi/mok-variables");
    let mokvar = |name: &str| -> Option<Vec<u8>> {
        crate::fsutil::read_bounded(&mok_table.join(name), 1 << 20)
            .ok()
            .or_else(|| m.efivar(name, &SHIM_LOCK))
    };
    if uefi && mok_table.is_dir() && std::fs::File::open(mok_table.join("MokListRT")).is_err() {
        unreadable.push(format!(
            "{} (root only): shim's variables read from efivarfs instead",
            mok_table.display()
        ));
    }
    let keyrings = read_keyrings(m);
    if keyrings.is_none() {
        unreadable.push("the system keyrings (/proc/keys, keyctl read: root only): where each key went is inferred".into());
    }
    let report = Report {
        release: target.release.clone(),
        distribution: distro.map(|d| d.name.to_string()),
        uefi,
        secure_boot: global("SecureBoot"),
        setup_mode: global("SetupMode"),
        checks_signatures: true,
        enforced: sig_enforce == Some(true) || forced,
        locked_down: matches!(lockdown.as_deref(), Some("integrity" | "confidentiality")),
        lockdown,
        sig_enforce,
        config,
        mok_trusted: uefi.then(|| mokvar("MokListTrustedRT").is_some()),
        platform_signs_modules: distro.is_some_and(|d| d.platform_signs_modules),
        keyrings,
        certs: Vec::new(),
        modules: Vec::new(),
        unreadable,
    };
    (report, mokvar("MokListRT"), distro)
}

/// Every certificate that matters here, once each: the kernel's builtin ones, the MOKs,
/// those waiting for MokManager, the db's, and those given.
fn certificates(
    m: &Machine,
    target: &Target,
    given: Vec<Cert>,
    mok_list: Option<Vec<u8>>,
    unreadable: &mut Vec<String>,
) -> Vec<CertFact> {
    let mut certs: Vec<CertFact> = Vec::new();
    let mut push = |c: Cert, source: Source| {
        let key_id = key_id(&c);
        match certs.iter_mut().find(|f| f.key_id == key_id) {
            // A --cert that is also enrolled is reported as what it is, once.
            Some(f) => f.given |= source == Source::Given,
            None => certs.push(CertFact {
                subject: display_name(&c),
                key_id,
                source,
                given: source == Source::Given,
                keyring: None,
                observed: false,
                signs_modules: false,
                why: String::new(),
                fix: None,
                cert: c,
            }),
        }
    };
    match &target.image {
        Some(i) => {
            for c in crate::kernel_image::certificates(i).unwrap_or_default() {
                push(c, Source::Builtin);
            }
        }
        None => unreadable.push(format!(
            "the kernel image (/boot/vmlinuz-{}): its builtin certificates are unknown",
            target.release
        )),
    }
    let der_certs = |data: Option<Vec<u8>>| -> Vec<Cert> {
        efivars::x509_certs(&data.unwrap_or_default())
            .iter()
            .filter_map(|d| Cert::from_der(Path::new("firmware"), d).ok())
            .collect()
    };
    for c in der_certs(mok_list) {
        push(c, Source::Mok);
    }
    for c in der_certs(m.efivar("MokNew", &SHIM_LOCK)) {
        push(c, Source::Pending);
    }
    for c in der_certs(m.efivar("db", &IMAGE_SECURITY_DATABASE)) {
        push(c, Source::Db);
    }
    for c in given {
        push(c, Source::Given);
    }
    certs
}

/// Where a certificate is: by the kernel's rules, then — where the keyrings can be
/// read — where the kernel actually put it.
fn place(f: &mut CertFact, rules: &Rules, keyrings: Option<&[KeyringFact]>) {
    let p = rules.place(f.source, &f.cert);
    (f.keyring, f.signs_modules, f.why) = (p.keyring, p.signs_modules, p.why);
    if let Some(rings) = keyrings {
        let id = format!(": {}", f.key_id);
        match rings
            .iter()
            .find(|r| r.keys.iter().any(|k| k.contains(&id)))
        {
            Some(r) => {
                if f.keyring.as_deref() != Some(&r.name) {
                    f.why = format!("{} (the kernel put it in {})", f.why, r.name);
                }
                f.keyring = Some(r.name.clone());
                f.signs_modules = MODULE_KEYRINGS.contains(&r.name.as_str())
                    || (r.name == ".platform" && rules.platform_signs_modules);
            }
            None if f.keyring.is_some() => {
                f.why = format!("{}; but the running kernel holds it in no keyring", f.why);
                f.keyring = None;
                f.signs_modules = false;
            }
            None => {}
        }
        f.observed = true;
    }
    f.fix = (!f.signs_modules).then(|| rules.fix(f.source));
}

/// The key id the kernel files a certificate under, as `/proc/keys` shows it.
fn key_id(c: &Cert) -> String {
    hex::encode(c.skid.as_deref().unwrap_or(&c.serial))
}

/// What decides a module's fate besides its signature.
struct State {
    /// The kernel checks signatures at all (CONFIG_MODULE_SIG).
    checks: bool,
    enforced: bool,
    locked_down: bool,
    /// Trusted certificates whose key type the kernel lacks (never in its keyring).
    dropped: Vec<String>,
}

impl State {
    fn judge(
        &self,
        path: PathBuf,
        data: &[u8],
        trusted: &Keyring,
        certs: &[CertFact],
    ) -> ModuleDiagnosis {
        let diag = |outcome, message: String, cause: String, fix: Option<String>| ModuleDiagnosis {
            path: path.clone(),
            outcome,
            message,
            cause,
            fix,
        };
        if !self.checks {
            return diag(
                Outcome::Loads,
                "loads".into(),
                "this kernel does not check module signatures (CONFIG_MODULE_SIG unset)".into(),
                None,
            );
        }
        let e = match verify::verify(data, trusted) {
            Verdict::Ok { signer, hash, .. } => {
                let ring = signed_by(data, certs.iter().filter(|f| f.signs_modules))
                    .and_then(|f| f.keyring.clone())
                    .unwrap_or_else(|| "a trusted keyring".into());
                return diag(
                    Outcome::Loads,
                    "loads".into(),
                    format!("signed by \"{signer}\" ({hash}), whose key is in {ring}"),
                    None,
                );
            }
            Verdict::Refused(e) => e,
        };
        let (cause, fix) = self.explain(&e, data, certs);
        let (outcome, message) = match e.forgiven() {
            Some(_) if self.enforced => (Outcome::Refused, e.enforced()),
            Some(_) if self.locked_down => (
                Outcome::Refused,
                "refused by lockdown: \"Lockdown: insmod: unsigned module loading is restricted; see man kernel_lockdown.7\"; insmod: Operation not permitted".into(),
            ),
            Some(_) => (Outcome::LoadsTainted, e.permissive()),
            None => (Outcome::Refused, e.enforced()),
        };
        diag(outcome, message, cause, Some(fix))
    }

    /// Why a signature is not accepted here, and what to do.
    fn explain(
        &self,
        e: &crate::loader::Errno,
        data: &[u8],
        certs: &[CertFact],
    ) -> (String, String) {
        use crate::loader::Errno;
        const SIGN: &str = "sign it with a key enrolled as a MOK: `cargo kmod sign --key MOK.priv --cert MOK.der MODULE` (`cargo kmod keygen --mok` makes one; `mokutil --import MOK.der` enrolls it)";
        match e {
            Errno::NoData(_) => ("the module is not signed".into(), SIGN.into()),
            Errno::NoKey(_) => {
                // Which known certificate signed it, trusted for modules or not.
                let signer = signed_by(data, certs.iter());
                match signer {
                    Some(f) if self.dropped.iter().any(|d| d.starts_with(&f.subject)) => (
                        format!(
                            "signed by \"{}\", whose key type this kernel cannot verify ({})",
                            f.subject,
                            self.dropped.iter().find(|d| d.starts_with(&f.subject)).cloned().unwrap_or_default()
                        ),
                        "sign with an RSA key (`cargo kmod keygen --mok` makes RSA-2048, what shim and every kernel take)".into(),
                    ),
                    Some(f) => (
                        format!(
                            "signed by \"{}\": {}{}",
                            f.subject,
                            f.why,
                            f.keyring.as_ref().map(|k| format!(" (in {k})")).unwrap_or_default()
                        ),
                        f.fix.clone().unwrap_or_else(|| SIGN.into()),
                    ),
                    None => {
                        let who = crate::modfile::modinfo::sig_block(data)
                            .map(|b| format!("\"{}\" (key {})", b.signer.unwrap_or_default(), b.sig_key))
                            .unwrap_or_default();
                        (
                            format!("signed by {who}, a key this machine does not know (not built in, not a MOK, not in db)"),
                            format!("enroll that key's certificate (`mokutil --import CERT`, reboot, confirm in MokManager; `doctor --cert CERT` tells where it would go), or {SIGN}"),
                        )
                    }
                }
            }
            Errno::NoPkg(r) => (
                format!("the kernel lacks the signature's crypto: {r}"),
                "sign with RSA and SHA-256 (what every kernel verifies)".into(),
            ),
            other => (
                format!("the signature is bad: {}", other.reason()),
                "sign it again from the unsigned module".into(),
            ),
        }
    }
}

/// Which of `certs` signed the module (its signature verifies with that key alone).
fn signed_by<'a>(
    data: &[u8],
    mut certs: impl Iterator<Item = &'a CertFact>,
) -> Option<&'a CertFact> {
    certs.find(|f| {
        let one = Keyring {
            certs: vec![f.cert.clone()],
            crypto: Default::default(),
        };
        matches!(verify::verify(data, &one), Verdict::Ok { .. })
    })
}

/// A certificate's name as the kernel shows it: the CN, else the whole subject.
fn display_name(c: &Cert) -> String {
    use der::Decode;
    x509_cert::name::Name::from_der(&c.subject_der)
        .ok()
        .and_then(|n| crate::pki::cert::common_name(&n))
        .unwrap_or_else(|| c.subject())
}

/// The machine's files, under a root.
struct Machine<'a> {
    root: &'a Path,
}

impl Machine<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn text(&self, rel: &str) -> Option<String> {
        crate::fsutil::read_bounded(&self.path(rel), 1 << 16)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// An EFI variable's data (efivarfs files start with its 4-byte attributes).
    fn efivar(&self, name: &str, vendor: &[u8; 16]) -> Option<Vec<u8>> {
        let p = self
            .path("sys/firmware/efi/efivars")
            .join(efivars::efivarfs_name(name, vendor));
        let b = crate::fsutil::read_bounded(&p, 1 << 20).ok()?;
        b.get(4..).map(<[u8]>::to_vec)
    }
}

/// The system keyrings (names starting with a dot) and their keys, from `/proc/keys`
/// and `keyctl read`; None when they are not visible to this user.
fn read_keyrings(m: &Machine) -> Option<Vec<KeyringFact>> {
    let text = m.text("proc/keys")?;
    // serial flags usage expiry perm uid gid type description...
    let mut descriptions = std::collections::HashMap::new();
    let mut rings = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..8 {
            rest = rest.trim_start();
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let desc = rest.trim();
        let Ok(serial) = i32::from_str_radix(fields[0], 16) else {
            continue;
        };
        if fields[7] == "keyring" && desc.starts_with('.') {
            let name = desc.split(':').next().unwrap_or(desc).to_string();
            rings.push((name, serial));
        }
        descriptions.insert(serial, desc.to_string());
    }
    if rings.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (name, serial) in rings {
        let keys = keyctl_read(serial)?
            .into_iter()
            .filter_map(|k| descriptions.get(&k).cloned())
            .collect();
        out.push(KeyringFact { name, keys });
    }
    Some(out)
}

/// The serials linked into a keyring (KEYCTL_READ); None when not permitted.
fn keyctl_read(serial: i32) -> Option<Vec<i32>> {
    const KEYCTL_READ: libc::c_long = 11;
    let mut buf = vec![0i32; 1024];
    // SAFETY: the buffer is valid for its length in bytes; the kernel writes at most that.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_READ,
            serial as libc::c_long,
            buf.as_mut_ptr(),
            (buf.len() * 4) as libc::c_long,
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate((n as usize / 4).min(buf.len()));
    Some(buf)
}
