//! The module loader's vocabulary, stated once: the errno each signature failure
//! gets (crypto/asymmetric_keys, kernel/module/signing.c), what the kernel and
//! insmod print for it, and the refusals `check` predicts and `run` reads from a
//! booted kernel's log (kernel/module/main.c). `pki` and `verify` say which errno,
//! `check` and `qemu` which refusal; the words come from here.

use crate::error::exit;

/// A signature failure: the errno the kernel returns, with what caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Errno {
    /// No signature marker (`mod_verify_sig` is not reached).
    NoData(String),
    /// No trusted key matches the signer.
    NoKey(String),
    /// Unsupported signature type, digest or key algorithm.
    NoPkg(String),
    /// The signature does not verify, or is not allowed for modules.
    KeyRejected(String),
    /// Malformed trailer or PKCS#7.
    BadMsg(String),
    /// Well-formed but a form the kernel's parser refuses.
    Inval(String),
    /// Longer than the kernel's ASN.1 decoder takes.
    MsgSize(String),
}

/// What one errno means to the loader.
struct Row {
    name: &'static str,
    exit_code: i32,
    /// strerror(), as insmod prints it.
    strerror: &'static str,
    /// `module_sig_check`'s words for the three failures it forgives without
    /// enforcement ("Loading of <what> is rejected" with it).
    forgiven: Option<&'static str>,
    refusal: Refusal,
}

impl Errno {
    fn row(&self) -> Row {
        let row = |name, exit_code, strerror, forgiven, refusal| Row {
            name,
            exit_code,
            strerror,
            forgiven,
            refusal,
        };
        const REJECTED: &str = "Key was rejected by service";
        match self {
            Errno::NoData(_) => row(
                "ENODATA",
                exit::ENODATA,
                REJECTED,
                Some("unsigned module"),
                Refusal::Unsigned,
            ),
            Errno::NoKey(_) => row(
                "ENOKEY",
                exit::ENOKEY,
                REJECTED,
                Some("module with unavailable key"),
                Refusal::UnavailableKey,
            ),
            Errno::NoPkg(_) => row(
                "ENOPKG",
                exit::ENOPKG,
                REJECTED,
                Some("module with unsupported crypto"),
                Refusal::UnsupportedCrypto,
            ),
            Errno::KeyRejected(_) => row(
                "EKEYREJECTED",
                exit::EKEYREJECTED,
                REJECTED,
                None,
                Refusal::BadSignature,
            ),
            Errno::BadMsg(_) => row(
                "EBADMSG",
                exit::EBADMSG,
                "Bad message",
                None,
                Refusal::MalformedSignature,
            ),
            Errno::Inval(_) => row(
                "EINVAL",
                exit::EINVAL,
                "Invalid argument",
                None,
                Refusal::InvalidArgument,
            ),
            Errno::MsgSize(_) => row(
                "EMSGSIZE",
                exit::EMSGSIZE,
                "Message too long",
                None,
                Refusal::SignatureTooLong,
            ),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Errno::NoData(r)
            | Errno::NoKey(r)
            | Errno::NoPkg(r)
            | Errno::KeyRejected(r)
            | Errno::BadMsg(r)
            | Errno::Inval(r)
            | Errno::MsgSize(r) => r,
        }
    }

    /// `ENOKEY`, ...
    pub fn name(&self) -> &'static str {
        self.row().name
    }

    /// The documented exit code `verify` gives it.
    pub fn exit_code(&self) -> i32 {
        self.row().exit_code
    }

    /// What insmod prints: strerror of the errno.
    pub fn strerror(&self) -> &'static str {
        self.row().strerror
    }

    /// Whether the kernel loads the module anyway without enforcement, tainting it
    /// (`module_sig_check`: only a missing signature, key or algorithm), and what it
    /// calls such a module when it refuses it.
    pub fn forgiven(&self) -> Option<&'static str> {
        self.row().forgiven
    }

    /// The refusal the kernel makes of it under enforcement.
    pub fn refusal(&self) -> Refusal {
        self.row().refusal
    }

    /// The kernel's message under enforcement, as `check` and `run` show it.
    pub fn enforced(&self) -> String {
        match self.forgiven() {
            Some(what) => format!(
                "refused: \"Loading of {what} is rejected\"; insmod: {}",
                self.strerror()
            ),
            None => format!("refused; insmod: {}", self.strerror()),
        }
    }

    /// The kernel's message without enforcement.
    pub fn permissive(&self) -> String {
        match self.forgiven() {
            Some(_) => format!("loads and taints: \"{TAINT_MESSAGE}\""),
            None => format!("refused; insmod: {}", self.strerror()),
        }
    }

    /// Every errno, for tables (the log classifier, documentation tests).
    pub fn all() -> [Errno; 7] {
        let e = String::new;
        [
            Errno::NoData(e()),
            Errno::NoKey(e()),
            Errno::NoPkg(e()),
            Errno::KeyRejected(e()),
            Errno::BadMsg(e()),
            Errno::Inval(e()),
            Errno::MsgSize(e()),
        ]
    }
}

/// Taint letters by bit (kernel/panic.c `taint_flags`): bit 0 is P.
pub const TAINT_LETTERS: &str = "PFSRMBUDAWCIOELKXTN";

/// Taint flags that mean something went wrong (D died, W warning, L soft lockup,
/// B bad page, M machine check); O (out-of-tree) and E (unsigned) are expected.
pub const BAD_TAINT: u64 = (1 << 7) | (1 << 9) | (1 << 14) | (1 << 5) | (1 << 4);

/// `/proc/sys/kernel/tainted` as letters, in the kernel's order.
pub fn taint_letters(t: u64) -> String {
    TAINT_LETTERS
        .chars()
        .enumerate()
        .filter(|(i, _)| t & (1 << i) != 0)
        .map(|(_, c)| c)
        .collect()
}

/// `module_sig_check`'s message for a forgiven failure, without enforcement.
pub const TAINT_MESSAGE: &str =
    "module verification failed: signature and/or required key missing - tainting kernel";

/// Why the kernel refused a module (what `run` reads from its log, and what `check`
/// predicts).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    Unsigned,
    UnavailableKey,
    UnsupportedCrypto,
    BadSignature,
    MalformedSignature,
    /// EMSGSIZE: a PKCS#7 longer than the kernel's ASN.1 decoder takes.
    SignatureTooLong,
    /// Built for another kernel: ELF machine, `struct module` size, `module_layout`'s
    /// CRC or vermagic differ (ENOEXEC).
    VersionMagic,
    /// A symbol's CRC differs from the kernel's (CONFIG_MODVERSIONS).
    SymbolVersion,
    /// A symbol from a namespace the module does not import.
    NamespaceNotImported,
    UnknownSymbol,
    InvalidParameters,
    /// EINVAL: for a signature, a form the kernel's parser refuses.
    InvalidArgument,
    /// Lockdown forbids unsigned or untrusted modules (EPERM).
    Lockdown,
    /// Not the loader: it accepted the module, and the module's own init returned this
    /// error (what it needs, hardware or configuration, is absent).
    InitFailed(i32),
    Other(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Unsigned => "unsigned module (ENODATA under enforcement)",
            Refusal::UnavailableKey => "signed with a key the kernel does not trust (ENOKEY)",
            Refusal::UnsupportedCrypto => "signature uses crypto the kernel lacks (ENOPKG)",
            Refusal::BadSignature => "bad signature (EKEYREJECTED)",
            Refusal::MalformedSignature => "malformed signature (EBADMSG)",
            Refusal::SignatureTooLong => "signature longer than the kernel takes (EMSGSIZE)",
            Refusal::VersionMagic => {
                "built for another kernel: version magic or struct module layout differs (ENOEXEC)"
            }
            Refusal::SymbolVersion => "a symbol's version (CRC) differs from the kernel's",
            Refusal::NamespaceNotImported => {
                "uses a symbol from a namespace it does not import (MODULE_IMPORT_NS)"
            }
            Refusal::UnknownSymbol => "unknown symbol",
            Refusal::InvalidParameters => "invalid module parameters",
            Refusal::InvalidArgument => {
                "invalid argument (EINVAL; for a signature: a form the kernel refuses)"
            }
            Refusal::Lockdown => "kernel lockdown refuses it (EPERM)",
            Refusal::InitFailed(ret) => {
                let e = std::io::Error::from_raw_os_error(-ret).to_string();
                let e = e.split(" (os error").next().unwrap_or_default().to_string();
                return write!(
                    f,
                    "loaded, but its own init failed: {e} ({ret}); not a load refusal"
                );
            }
            Refusal::Other(s) => s,
        })
    }
}

/// The refusal a booted kernel's log and insmod's output show: the loader's own
/// words, most specific first.
pub fn classify(kernel: &[String], tool: &[String]) -> Refusal {
    let all = |p: &str| kernel.iter().chain(tool).any(|l| l.contains(p));
    // Signature failures: the forgiven three by the kernel's words, then by strerror.
    let errnos = Errno::all();
    if let Some(e) = errnos.iter().find(|e| {
        e.forgiven()
            .is_some_and(|what| all(&format!("Loading of {what} is rejected")))
    }) {
        return e.refusal();
    }
    if let Some(e) = errnos
        .iter()
        .filter(|e| e.forgiven().is_none() && !matches!(e, Errno::Inval(_)))
        .find(|e| all(e.strerror()))
    {
        return e.refusal();
    }
    if all("invalid for parameter") || all("nvalid parameters") {
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
    } else if all(Errno::Inval(String::new()).strerror()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each errno's own words classify back to its refusal.
    #[test]
    fn every_signature_failure_reads_back_as_its_refusal() {
        for e in Errno::all() {
            let line = e.enforced();
            assert_eq!(
                classify(std::slice::from_ref(&line), &[]),
                e.refusal(),
                "{line}"
            );
        }
    }
}
