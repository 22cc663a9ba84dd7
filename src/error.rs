//! Expected failures. Each variant has a documented exit code and a `help:` line;
//! anything else is a bug and panics.

use std::path::PathBuf;

/// Documented exit codes: [`exit::TABLE`] is the one list that `--help` and the
/// README's table are made from (a test holds the README to it).
pub mod exit {
    pub const OK: i32 = 0;
    /// Reserved for bugs (panics) and failures sign-file reports as 1.
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const INPUT: i32 = 3;
    pub const KEY: i32 = 4;
    pub const PIN: i32 = 5;
    pub const ALREADY_SIGNED: i32 = 6;
    pub const WRITE: i32 = 7;
    pub const TOOLCHAIN: i32 = 8;
    pub const KERNEL_BUILD: i32 = 9;
    pub const ENODATA: i32 = 10;
    pub const ENOKEY: i32 = 11;
    pub const ENOPKG: i32 = 12;
    pub const EKEYREJECTED: i32 = 13;
    pub const EBADMSG: i32 = 14;
    pub const EINVAL: i32 = 15;
    pub const PREFLIGHT: i32 = 16;
    pub const MODULE_BUILD: i32 = 17;
    pub const CHANGED: i32 = 18;
    pub const EMSGSIZE: i32 = 19;
    pub const REFUSED: i32 = 20;
    pub const UNLOAD: i32 = 21;
    pub const OOPS: i32 = 22;
    pub const HUNG: i32 = 23;
    pub const UNFINISHED: i32 = 24;
    pub const TARGET: i32 = 25;
    pub const PACKAGE: i32 = 26;
    pub const PREPARE: i32 = 27;
    pub const DISTRO: i32 = 28;
    pub const CHAIN: i32 = 29;
    pub const SIGNER: i32 = 30;
    pub const ATTACH: i32 = 31;

    /// Every code with its meaning, in order.
    pub const TABLE: &[(i32, &str)] = &[
        (OK, "success"),
        (
            FAILURE,
            "failure in `sign-file` (as the kernel's sign-file reports it); internal error",
        ),
        (USAGE, "usage error"),
        (
            INPUT,
            "input: missing or unreadable file, not a kernel module, damaged compression or trailer, larger than any module or kernel; a dkms.conf that does not read (syntax, exit, hang, DKMS's checks)",
        ),
        (
            KEY,
            "key or certificate: unreadable, unsupported, not a matching pair; unknown hash",
        ),
        (PIN, "passphrase or token PIN: missing, wrong, or locked"),
        (
            ALREADY_SIGNED,
            "module already signed (use `--replace` or `--skip-signed`)",
        ),
        (
            WRITE,
            "write failed (read-only file, disk full); the original is unchanged",
        ),
        (
            TOOLCHAIN,
            "tools missing (named, with the Debian packages to install)",
        ),
        (
            KERNEL_BUILD,
            "`kernel build`: configuration or build failed (the log's tail is shown)",
        ),
        (ENODATA, "verify: `ENODATA` — not signed"),
        (
            ENOKEY,
            "verify: `ENOKEY` — no trusted certificate matches the signer",
        ),
        (
            ENOPKG,
            "verify: `ENOPKG` — unsupported signature type or algorithm",
        ),
        (
            EKEYREJECTED,
            "verify: `EKEYREJECTED` — signature does not verify, or has signed attributes",
        ),
        (EBADMSG, "verify: `EBADMSG` — malformed trailer or PKCS#7"),
        (
            EINVAL,
            "verify: `EINVAL` — PKCS#7 in a form the kernel's parser refuses",
        ),
        (
            PREFLIGHT,
            "`build`: preflight refused a tree (the line says the fix)",
        ),
        (
            MODULE_BUILD,
            "`build`: Kbuild failed, or a step of a DKMS build (PATCH, PRE_BUILD, MAKE, a module it never made)",
        ),
        (
            CHANGED,
            "another process changed a module while `sign`/`unsign` rewrote it; it was left as that process made it",
        ),
        (
            REFUSED,
            "`run`: the kernel refused a module; `check`: a kernel would refuse one (the reason is the kernel's own message)",
        ),
        (UNLOAD, "`run`: unloading failed"),
        (
            OOPS,
            "`run`: oops, BUG, WARNING, panic, or a bad taint flag",
        ),
        (HUNG, "`run`: the guest hung and was killed at `--timeout`"),
        (UNFINISHED, "`run`: the guest did not finish its script"),
        (
            TARGET,
            "the target kernel cannot take what was asked (a hash it cannot verify, SHA-1 on 7.0+, a template feature it lacks); nothing written",
        ),
        (
            PACKAGE,
            "`install`/`package`: nothing built to package, or a packaging tool (depmod, dpkg-deb, rpmbuild, tar) failed; its output is shown, nothing written",
        ),
        (
            PREPARE,
            "`kernel prepare`: the headers, source or tools do not match the kernel (both sides named); nothing left behind",
        ),
        (
            DISTRO,
            "a kernel by name (`kernel fetch`, `--kernel debian/sid`): unknown distribution, suite, architecture, flavour or release (the known ones listed), or the archive unreachable; kernels already fetched stay usable",
        ),
        (
            CHAIN,
            "`run --secure-boot`: the boot chain refused the kernel (shim or GRUB: its signature does not verify; their words shown)",
        ),
        (
            SIGNER,
            "external signer (`--signer`): failed, timed out, printed nothing or no valid signature, or signed with another key than the certificate's; nothing written",
        ),
        (
            ATTACH,
            "`sign --export`/`--attach`: a detached signature that does not verify over the module as it is now, is not by the expected signer, or names a module the manifest does not hold; a manifest that is not one; nothing written",
        ),
    ];

    /// The table for `--help`.
    pub fn help() -> String {
        let mut s = String::from("Exit codes:\n");
        for (code, meaning) in TABLE {
            s += &format!("  {code:<3} {}\n", meaning.replace('`', ""));
        }
        s + "With several modules the highest code among them is returned."
    }

    /// The table as the README shows it (Markdown).
    pub fn markdown() -> String {
        let mut s = String::from("| code | meaning |\n|---|---|\n");
        for (code, meaning) in TABLE {
            s += &format!("| {code} | {meaning} |\n");
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: is a directory holding no kernel modules (.ko, .ko.xz, .ko.zst, .ko.gz)")]
    IsDir { path: PathBuf },
    #[error("{path}: {}", Error::NOT_REGULAR)]
    NotRegular { path: PathBuf },
    #[error("{path}: not a kernel module: {reason}")]
    NotModule { path: PathBuf, reason: String },
    #[error("{path}: cannot decompress: {reason}")]
    Decompress { path: PathBuf, reason: String },
    #[error("{path}: signature trailer is malformed: {reason}")]
    BadTrailer { path: PathBuf, reason: String },
    #[error("{path}: module is not signed")]
    NotSigned { path: PathBuf },
    #[error("{path}: module is already signed")]
    AlreadySigned { path: PathBuf },
    #[error("{path}: file is read-only")]
    ReadOnly { path: PathBuf },
    #[error("{path}: cannot read key: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{path}: cannot read certificate: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("{key}: private key does not match the certificate {cert}")]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{path}: private key is encrypted and no passphrase was given")]
    PinNeeded { path: PathBuf },
    #[error("{path}: wrong passphrase or PIN for the private key")]
    WrongPin { path: PathBuf },
    #[error("{path}: {reason}")]
    Pkcs11 { path: PathBuf, reason: String },
    #[error("{path}: the token's user PIN is locked after failed logins")]
    PinLocked { path: PathBuf },
    #[error("{path}: {reason}")]
    HashForKey {
        path: PathBuf,
        reason: String,
        fix: String,
    },
    #[error("unknown hash algorithm `{name}`")]
    UnknownHash {
        name: String,
        /// The signing hashes, named by `hash` (the one list of them).
        choices: String,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: another process changed it while it was being rewritten; left as that process made it{}", .left.as_ref().map(|l| format!(" (a file it moved is at {})", l.display())).unwrap_or_default())]
    Changed {
        path: PathBuf,
        left: Option<PathBuf>,
    },
    #[error("{}signer `{command}`: {reason}", .module.as_ref().map(|m| format!("{}: ", m.display())).unwrap_or_default())]
    Signer {
        command: String,
        module: Option<PathBuf>,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Attach {
        path: PathBuf,
        reason: String,
        fix: String,
    },
    #[error("missing build tools: {}", .missing.join(", "))]
    Toolchain {
        missing: Vec<String>,
        install: String,
    },
    #[error("{path}: not a usable kernel source: {reason}")]
    KernelSource { path: PathBuf, reason: String },
    #[error("kernel {step} failed (log: {log}):\n{tail}")]
    KernelBuild {
        step: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{path}: cannot read the kernel's certificates: {reason}")]
    KernelImage { path: PathBuf, reason: String },
    #[error("{kdir}: {reason}")]
    Preflight {
        kdir: PathBuf,
        reason: String,
        fix: String,
    },
    #[error("{path}: {reason}")]
    Project { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    DkmsConf { path: PathBuf, reason: String },
    #[error("{conf}: {step} failed: {tail}")]
    DkmsBuild {
        conf: PathBuf,
        step: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{path}: {field}: {reason}")]
    Manifest {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Package {
        path: PathBuf,
        reason: String,
        fix: String,
    },
    #[error("building against {kdir} failed:\n{tail}")]
    ModuleBuild { kdir: PathBuf, tail: String },
    #[error("{path}: {reason}")]
    Run { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    KernelConfig { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    KernelFacts {
        path: PathBuf,
        reason: String,
        fix: String,
    },
    #[error("{target}: {reason}")]
    TargetRefuses {
        target: String,
        reason: String,
        fix: String,
    },
    #[error("{headers}: {reason}")]
    Prepare {
        headers: PathBuf,
        reason: String,
        fix: String,
    },
    #[error("{name}: {reason}")]
    Distro {
        name: String,
        reason: String,
        fix: String,
    },
    #[error("{reason}")]
    Usage { reason: String, fix: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        use Error::*;
        match self {
            Read { .. } | IsDir { .. } | NotModule { .. } | Decompress { .. } => exit::INPUT,
            NotRegular { .. } => exit::INPUT,
            BadTrailer { .. } | NotSigned { .. } => exit::INPUT,
            AlreadySigned { .. } => exit::ALREADY_SIGNED,
            Key { .. } | Cert { .. } | KeyMismatch { .. } | UnknownHash { .. } | Pkcs11 { .. } => {
                exit::KEY
            }
            HashForKey { .. } => exit::KEY,
            PinNeeded { .. } | WrongPin { .. } | PinLocked { .. } => exit::PIN,
            ReadOnly { .. } | Write { .. } => exit::WRITE,
            Changed { .. } => exit::CHANGED,
            Usage { .. } => exit::USAGE,
            Toolchain { .. } => exit::TOOLCHAIN,
            Signer { .. } => exit::SIGNER,
            Attach { .. } => exit::ATTACH,
            KernelSource { .. } | KernelBuild { .. } => exit::KERNEL_BUILD,
            Run { .. }
            | KernelImage { .. }
            | Project { .. }
            | DkmsConf { .. }
            | KernelConfig { .. } => exit::INPUT,
            KernelFacts { .. } | Manifest { .. } => exit::INPUT,
            TargetRefuses { .. } => exit::TARGET,
            Package { .. } => exit::PACKAGE,
            Preflight { .. } => exit::PREFLIGHT,
            Prepare { .. } => exit::PREPARE,
            Distro { .. } => exit::DISTRO,
            ModuleBuild { .. } | DkmsBuild { .. } => exit::MODULE_BUILD,
        }
    }

    /// What the user should do about it; printed as `help: ...`.
    pub fn help(&self) -> String {
        use Error::*;
        match self {
            Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                "check the path; give the module file (.ko, .ko.xz, .ko.zst, .ko.gz)".into()
            }
            Read { .. } => "check that the file exists and is readable".into(),
            NotRegular { .. } => "give a regular file: a FIFO or device is never read (it could block or never end)".into(),
            IsDir { .. } => "give module files, or a directory tree that holds some".into(),
            NotModule { .. } => "give a kernel module built by Kbuild (an ELF relocatable object with a .modinfo section)".into(),
            Decompress { .. } => "the compressed module is damaged; rebuild or re-extract it".into(),
            BadTrailer { .. } => "the appended signature is damaged; re-sign the unsigned module with `cargo kmod sign`".into(),
            NotSigned { .. } => "nothing to remove; the module has no appended signature".into(),
            AlreadySigned { .. } => "pass --replace to re-sign it, or --skip-signed to leave signed modules as they are".into(),
            ReadOnly { .. } => "make it writable (chmod u+w) or write elsewhere with -o".into(),
            Key { .. } => "give a PEM or DER private key (RSA, ECDSA P-256/P-384, or ML-DSA), e.g. one made by `cargo kmod keygen`".into(),
            Cert { .. } => "give the X.509 certificate (PEM or DER) that belongs to the signing key".into(),
            KeyMismatch { .. } => "use the certificate made for this key; the kernel would reject every module signed this way".into(),
            PinNeeded { .. } => "set KBUILD_SIGN_PIN or pass --pin-file FILE with the passphrase".into(),
            WrongPin { .. } => "check the passphrase or PIN in KBUILD_SIGN_PIN, --pin-file, or the URI's pin-value/pin-source".into(),
            Pkcs11 { .. } => "check the URI's token=, object=, id= and the module (list what the token holds: pkcs11-tool --module SO --list-objects --login)".into(),
            PinLocked { .. } => "unlock it with the security officer PIN (e.g. pkcs11-tool --init-pin --login --login-type so); nothing was signed".into(),
            UnknownHash { choices, .. } => format!("use one of {choices}"),
            Write { .. } => "check free space and permissions of the target directory; the original file is unchanged".into(),
            Usage { fix, .. } => fix.clone(),
            Changed { .. } => "run it again once nothing else (a package manager, another cargo kmod) writes these files".into(),
            Toolchain { install, .. } => install.clone(),
            Signer { .. } => "run the signer by hand: `printf %s \"$CARGO_KMOD_SIGN_DIGEST_HEX\" | xxd -r -p | COMMAND` must print the raw signature on stdout and exit 0; the module is as it was".into(),
            Attach { fix, .. } => fix.clone(),
            KernelSource { .. } => "give a kernel source tarball (e.g. /usr/src/linux-source-6.12.tar.xz from Debian's linux-source-6.12) or an unpacked source tree".into(),
            KernelBuild { log, .. } => format!("read {} for the whole output; fix the cause and run the same command again (finished steps are redone, nothing half-built is reused)", log.display()),
            Preflight { fix, .. } => fix.clone(),
            Project { .. } => "run it in a module project (one `cargo kmod new` made, or a directory with a dkms.conf, Kbuild or Makefile, which `cargo kmod init` adopts), or pass --manifest-path".into(),
            Manifest { field, .. } => format!("correct {field} in Cargo.toml; nothing was written"),
            DkmsConf { .. } => "correct the dkms.conf (DKMS sources it with bash for each kernel, with $kernelver, $kernel_source_dir, $dkms_tree, ... set); nothing was built".into(),
            ModuleBuild { .. } => "the lines above are Kbuild's; run with -v for all of them".into(),
            DkmsBuild { log, .. } => format!("read {} for the whole output (the build ran in a copy; the project's files are as they were)", log.display()),
            KernelImage { .. } => "give the kernel image that will boot (bzImage/vmlinuz, or vmlinux)".into(),
            Run { .. } => "check the path; `cargo kmod kernel build` makes a kernel to boot".into(),
            KernelConfig { .. } => "give the kernel's .config (in its build tree, or /boot/config-RELEASE)".into(),
            TargetRefuses { fix, .. } | KernelFacts { fix, .. } => fix.clone(),
            Package { fix, .. }
            | Prepare { fix, .. }
            | Distro { fix, .. }
            | HashForKey { fix, .. } => fix.clone(),
        }
    }
}

impl Error {
    const NOT_REGULAR: &str = "not a regular file (a FIFO, socket or device)";

    /// The reason alone, for callers that name the file in an error of their own.
    pub fn reason(&self) -> String {
        match self {
            Error::NotRegular { .. } => Error::NOT_REGULAR.into(),
            e => e.to_string(),
        }
    }

    /// A usage error and what to do instead.
    pub fn usage(reason: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::Usage {
            reason: reason.into(),
            fix: fix.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
