//! Every clap type of the command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

/// `0.1.0 (abc1234 2026-12-01)` in a clone, `0.1.0` from a package (build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("CARGO_KMOD_VERSION_SUFFIX"));

#[derive(Parser, Debug)]
#[command(name = "cargo", bin_name = "cargo", version = VERSION)]
pub enum Cargo {
    Kmod(Kmod),
}

/// Build, sign, verify and inspect Linux kernel modules.
#[derive(Args, Debug)]
#[command(version = VERSION, after_help = cargo_kmod::error::exit::help())]
pub struct Kmod {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The command line as the `cargo-kmod` binary takes it (what `cargo kmod` runs):
/// for completions and the manual.
pub fn binary_command() -> clap::Command {
    use clap::Args as _;
    Kmod::augment_args(clap::Command::new("cargo-kmod").version(VERSION))
        .about("Build, sign, verify and inspect Linux kernel modules.")
        .after_help(cargo_kmod::error::exit::help())
}

/// How much the tool says, and in colour or not (every command).
#[derive(Args, Debug, Clone, Copy)]
pub struct OutputArgs {
    /// Say only warnings, errors and results (no progress or next steps).
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Output"
    )]
    pub quiet: bool,
    /// Say more: Kbuild's whole output, every finding of `check`.
    #[arg(short, long, global = true, help_heading = "Output")]
    pub verbose: bool,
    /// Colour for error:/warning:/help: (auto: on a terminal, unless NO_COLOR is set;
    /// CARGO_TERM_COLOR is the default when given).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        help_heading = "Output"
    )]
    pub color: Option<ColorWhen>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a module project (Rust or C) from a template, for the kernel it targets.
    #[command(after_help = NEW_EXAMPLES)]
    New(NewArgs),
    /// Make the current directory a project: adopt an existing one (a dkms.conf, a Kbuild
    /// or Makefile with obj-m) by writing only its Cargo.toml, or, in an empty directory,
    /// create one from a template.
    Init(InitArgs),
    /// Build the project's modules with Kbuild (as its dkms.conf says, if it has one)
    /// against one or more kernel trees, in a copy under target/kmod/.
    #[command(after_help = BUILD_EXAMPLES)]
    Build(BuildArgs),
    /// Generate a module-signing key and certificate the kernel or MOK will trust.
    #[command(after_help = KEYGEN_EXAMPLES)]
    Keygen(KeygenArgs),
    /// Install the built modules under /lib/modules/<R>/ (signed, compressed like the
    /// kernel's, where each one's record says) and run depmod; rolled back on failure.
    Install(InstallArgs),
    /// Package the project's modules: a DKMS tree, .deb, kmod RPM, SRPM (akmods style),
    /// an OCI image for KMM.
    #[command(after_help = PACKAGE_EXAMPLES)]
    Package(PackageArgs),
    /// Append a kernel module signature (PKCS#7), as the kernel's sign-file does: with a
    /// key file, a PKCS#11 token, an external signer, or in two phases (export, attach).
    #[command(after_help = SIGN_EXAMPLES)]
    Sign(SignArgs),
    /// Judge module signatures exactly as the kernel would at load time.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Show .modinfo fields and the signature, as kmod's modinfo does.
    Info(InfoArgs),
    /// Remove the appended signature.
    Unsign(UnsignArgs),
    /// List or export the builtin trusted certificates of a kernel image.
    Certs(CertsArgs),
    /// Kernels: build Rust-enabled test kernels, fetch a distribution's by name, prepare
    /// its headers for Rust, list and remove them.
    #[command(subcommand)]
    Kernel(KernelCommand),
    /// Boot a kernel in QEMU (directly, or through OVMF, shim and GRUB under Secure Boot
    /// with MOKs enrolled), load and unload modules, and report what the kernel said.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Prove the project on every kernel: build (modpost strict), sign, check against
    /// the kernel's own tree, image and module tree, boot it and load every module; a
    /// module x kernel table of the kernels' verdicts, exit code the worst.
    #[command(after_help = TEST_EXAMPLES)]
    Test(TestArgs),
    /// Will these modules load on that kernel? Answered offline, as its loader decides.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// On the machine where modules must load: will they? Secure Boot, lockdown, MOKs and
    /// keyrings read, and for each module or certificate the cause and fix. Read-only.
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor(DoctorArgs),
    /// Print shell completions (for `cargo-kmod`, the binary cargo runs).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff); with --out DIR, one page per command.
    Man {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Drop-in for the kernel's scripts/sign-file (same arguments and exit codes).
    #[command(
        name = "sign-file",
        disable_help_flag = true,
        override_usage = "cargo kmod sign-file [-dpk] <hash algo> <key> <x509> <module> [<dest>]\n       cargo kmod sign-file -s <raw sig> <hash algo> <x509> <module> [<dest>]"
    )]
    SignFile(SignFileArgs),
}

/// A key that stays elsewhere: a command that signs digests.
#[derive(Args, Debug, Clone)]
pub struct SignerArgs {
    /// Sign through this command instead of a key file (run with `sh -c` once per
    /// module, in parallel up to -j): it reads the digest on stdin and prints the raw
    /// signature (RSA PKCS#1 v1.5; ECDSA DER or r‖s); each one is checked against
    /// --cert before anything is written. Its environment: CARGO_KMOD_SIGN_HASH,
    /// _KEY_TYPE, _KEY_BITS, _INPUT, _DIGEST_HEX, _DIGEST_BASE64, _MODULE.
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["key", "pkcs11_module"], requires = "cert")]
    pub signer: Option<String>,
    /// What the signer reads on stdin: the digest's bytes, its hex, or (RSA) the DER
    /// DigestInfo that raw PKCS#1 mechanisms sign (pkcs11-tool -m RSA-PKCS).
    #[arg(long, value_enum, default_value_t = SignerInputArg::Digest, requires = "signer")]
    pub signer_input: SignerInputArg,
    /// Seconds one signature may take before the signer is killed.
    #[arg(long, default_value_t = 60, value_name = "S", requires = "signer",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub signer_timeout: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignerInputArg {
    Digest,
    DigestHex,
    DigestInfo,
}

impl From<SignerInputArg> for cargo_kmod::sign::external::SignerInput {
    fn from(a: SignerInputArg) -> Self {
        use cargo_kmod::sign::external::SignerInput;
        match a {
            SignerInputArg::Digest => SignerInput::Digest,
            SignerInputArg::DigestHex => SignerInput::DigestHex,
            SignerInputArg::DigestInfo => SignerInput::DigestInfo,
        }
    }
}

impl SignerArgs {
    pub fn signer(&self) -> Option<cargo_kmod::sign::external::ExternalSigner> {
        self.signer
            .as_ref()
            .map(|command| cargo_kmod::sign::external::ExternalSigner {
                command: command.clone(),
                input: self.signer_input.into(),
                timeout: std::time::Duration::from_secs(self.signer_timeout),
            })
    }
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    /// Private key: PEM (PKCS#1, PKCS#8, SEC1, encrypted), DER, or a pkcs11: URI (RFC 7512).
    #[arg(long, value_name = "KEY", required_unless_present_any = ["signer", "export", "attach"])]
    pub key: Option<PathBuf>,
    /// X.509 certificate of the key: PEM or DER (for a token: default, the one stored with the key).
    #[arg(long, value_name = "CERT")]
    pub cert: Option<PathBuf>,
    /// PKCS#11 module for pkcs11: keys without module-path= (default: $PKCS11_MODULE_PATH).
    #[arg(long, value_name = "SO")]
    pub pkcs11_module: Option<PathBuf>,
    /// File holding the passphrase of an encrypted key (default: $KBUILD_SIGN_PIN).
    #[arg(long, value_name = "FILE", conflicts_with = "signer")]
    pub pin_file: Option<PathBuf>,
    #[command(flatten)]
    pub signer: SignerArgs,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Digest algorithm (the kernel's default since 6.11 is sha512).
    #[arg(long, default_value = "sha512", value_name = "HASH",
          value_parser = ["sha256", "sha384", "sha512", "sha224", "sha3-256", "sha3-384", "sha3-512"])]
    pub hash: String,
    /// Name the signer by subjectKeyIdentifier (sign-file -k) instead of issuer and serial.
    #[arg(long)]
    pub key_id: bool,
    /// ML-DSA only: sign contentType + messageDigest (SHA-512) instead of the module,
    /// as sign-file does with OpenSSL 3.5. Kernels refuse that form unless built with
    /// CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA; the default form loads on every
    /// 7.0+ kernel with CONFIG_CRYPTO_MLDSA.
    #[arg(long)]
    pub signed_attrs: bool,
    /// Write only MODULE.p7s, leave the module as it is (sign-file -d).
    #[arg(long, conflicts_with = "save_sig")]
    pub detached: bool,
    /// Also write MODULE.p7s (sign-file -p).
    #[arg(long)]
    pub save_sig: bool,
    /// Write the signed module here instead of in place (one module only).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Re-sign modules that are already signed (the old signature is removed first).
    #[arg(long, conflicts_with = "skip_signed")]
    pub replace: bool,
    /// Leave modules that are already signed as they are.
    #[arg(long)]
    pub skip_signed: bool,
    /// Two-phase signing, step 1 (no key here): write into DIR each module's unsigned
    /// bytes (DIR/modules/<path>, for `sign-file -d` or a signing service) and
    /// DIR/manifest.json (paths, sizes, digests, hash; the expected signer with --cert).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["attach", "from_export", "detached", "save_sig", "output", "signer"])]
    pub export: Option<PathBuf>,
    /// Step 2, where the key is: sign every module of the export DIR detached
    /// (<path>.p7s beside each), with --key or --signer.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["attach", "detached", "save_sig", "output"])]
    pub from_export: Option<PathBuf>,
    /// Step 3: append the export's detached signatures (<path>.p7s, PKCS#7 as
    /// `sign-file -d` writes; or <path>.sig, raw) to the modules, after checking every
    /// one over the module as it is now and against the expected signer (the
    /// manifest's, or --cert). Nothing is written unless all are good.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["detached", "save_sig", "output", "signer"])]
    pub attach: Option<PathBuf>,
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Modules (.ko, .ko.xz, .ko.zst, .ko.gz) or directories to walk for them.
    #[arg(required_unless_present_any = ["attach", "from_export"], value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TreeArgs {
    /// Modules worked on at once (default: cores + 1).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Output format: human lines, or one JSON object per module.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

impl TreeArgs {
    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(cargo_kmod::tree::default_jobs)
    }
}

const NEW_EXAMPLES: &str = "Examples:
  cargo kmod new hello                              # Rust, for the running kernel's headers
  cargo kmod new hello-c --template c-minimal --kernel-release 6.12.117+deb12-amd64
  cargo kmod new --list";
const BUILD_EXAMPLES: &str = "Examples:
  cargo kmod build                                  # the kernels in Cargo.toml, else the running one
  cargo kmod build --kdir /usr/src/linux-headers-6.12.117+deb12-amd64 --sign
  cargo kmod build --kernel-release 6.1.0-57-amd64 --kernel-release 6.12.117+deb12-amd64";
const KEYGEN_EXAMPLES: &str = "Examples:
  cargo kmod keygen --out keys                      # RSA-4096 (the kernel's default) + certificate
  cargo kmod keygen --algo rsa4096 --cn \"My modules\" --out keys";
const SIGN_EXAMPLES: &str = "Examples:
  cargo kmod sign --key keys/signing_key.pem --cert keys/signing_key.crt hello.ko
  cargo kmod sign --key keys/signing_key.pem --cert keys/signing_key.crt --skip-signed /lib/modules/$(uname -r)/updates";
const VERIFY_EXAMPLES: &str = "Examples:
  cargo kmod verify --cert keys/signing_key.crt hello.ko
  cargo kmod verify --kernel /boot/vmlinuz-$(uname -r) --kernel /boot/config-$(uname -r) /lib/modules/$(uname -r)";
const RUN_EXAMPLES: &str = "Examples:
  cargo kmod run --module hello.ko                  # the newest kernel `kernel build` made
  cargo kmod run --kernel /boot/vmlinuz-$(uname -r) --module hello.ko --param count=3 --message-format json";
const PACKAGE_EXAMPLES: &str = "Examples:
  cargo kmod package --deb --out dist
  cargo kmod package --dkms --rpm --srpm --out dist
  cargo kmod package --oci --kmm-manifest --image quay.io/me/hello --out dist";

const CHECK_EXAMPLES: &str = "Examples:
  cargo kmod check --kdir /lib/modules/$(uname -r)/build hello.ko
  cargo kmod check --kdir /usr/src/linux-headers-7.2.13+deb14-amd64 \\
      --kernel vmlinuz-7.2.13+deb14-amd64 --modules-dir /lib/modules/7.2.13+deb14-amd64 hello.ko
  cargo kmod check --kdir tree-6.12 --kdir tree-7.2 --message-format json target/kmod/*/*.ko

Verdicts: `loads`, `loads, taints (LETTERS)`, or `refused: <the kernel's own message>`;
exit status 20 when any module would be refused.";

const DOCTOR_EXAMPLES: &str = "Examples:
  cargo kmod doctor                                  # the machine's state
  cargo kmod doctor /lib/modules/$(uname -r)/updates/dkms/hello.ko
  cargo kmod doctor --cert mok.der --message-format json

Run as root to see the keyrings themselves (/proc/keys, keyctl); without, where each
key went is inferred as the kernel decides. Exit status 20 when a module would be
refused or a given certificate signs no module here.";

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// A certificate to look for: enrolled? in which keyring? does it sign modules here?
    /// (repeatable).
    #[arg(long, value_name = "CERT")]
    pub cert: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
    /// Modules to judge: will this kernel load them, and if not, why.
    #[arg(value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

/// `check`: the targets and the modules.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A kernel build tree or headers package: .config, release, Module.symvers, vmlinux
    /// (repeatable: a module x kernel table).
    #[arg(long, value_name = "DIR")]
    pub kdir: Vec<PathBuf>,
    /// An installed kernel, by release: /lib/modules/RELEASE/build (repeatable).
    #[arg(long, value_name = "RELEASE", value_parser = release_arg)]
    pub kernel_release: Vec<String>,
    /// The kernel image (bzImage/vmlinuz), for its builtin trusted certificates; goes
    /// with the --kdir of its release (repeatable). Or a kernel by name (debian/sid):
    /// its headers, image and module tree at once.
    #[arg(long, value_name = "IMAGE|NAME")]
    pub kernel: Vec<PathBuf>,
    /// The kernel's module tree: other modules' exports and dependencies (default
    /// /lib/modules/RELEASE; goes with the kernel of its release, repeatable).
    #[arg(long, value_name = "DIR")]
    pub modules_dir: Vec<PathBuf>,
    /// More certificates the kernel trusts (its secondary keyring), repeatable.
    #[arg(long, value_name = "CERT")]
    pub cert: Vec<PathBuf>,
    /// A certificate enrolled as a MOK (`mokutil --import`), repeatable: it counts only
    /// where the kernel would put it in a keyring it checks modules against (`.machine`;
    /// `.platform` on distributions that patched it so), as under Secure Boot.
    #[arg(long, value_name = "CERT")]
    pub mok: Vec<PathBuf>,
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Modules, in load order (a later one may use an earlier one's exports), or
    /// directories to walk for them.
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Trusted certificates: PEM bundles, DER files, or directories of them (repeatable).
    #[arg(long, value_name = "CERT")]
    pub cert: Vec<PathBuf>,
    /// Judge as this kernel does (repeatable): an image (bzImage/vmlinuz or vmlinux) gives
    /// its builtin certificates; its .config, or a build tree, also the digests and key
    /// types it was built with (a digest it lacks is ENOPKG there); a kernel by name
    /// (debian/sid), all of these.
    #[arg(long, value_name = "IMAGE|CONFIG|TREE|NAME")]
    pub kernel: Vec<PathBuf>,
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Modules or directories to walk for them.
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MessageFormat {
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Print only this field's values, as modinfo -F does.
    #[arg(short = 'F', long, value_name = "FIELD")]
    pub field: Option<String>,
    /// `json`: one object per module (as `--json`).
    #[arg(long, value_enum, default_value_t = MessageFormat::Human, conflicts_with = "field")]
    pub message_format: MessageFormat,
    /// Same as --message-format json.
    #[arg(long, conflicts_with = "field")]
    pub json: bool,
    /// Modules read at once (default: cores + 1).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Modules or directories to walk for them.
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UnsignArgs {
    /// Save the removed PKCS#7 signature (DER) here (one module only).
    #[arg(long, value_name = "FILE")]
    pub extract_sig: Option<PathBuf>,
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Modules or directories to walk for them.
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SignFileArgs {
    /// sign-file's own arguments, parsed as sign-file parses them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
pub enum KernelCommand {
    /// Configure and build a kernel (tinyconfig + modules + signature enforcement + Rust where it builds), cached by its inputs.
    Build(KernelBuildArgs),
    /// Make a distribution's headers (which lack rust/) into a tree that builds Rust
    /// modules for that very kernel: its source, its .config unchanged, its compilers.
    #[command(after_help = PREPARE_EXAMPLES)]
    Prepare(KernelPrepareArgs),
    /// Fetch a distribution's kernel by name: headers, kbuild, signed image, module tree
    /// (and for a Rust-enabled kernel its source), through a private apt configuration
    /// under the cache; never installed. Offline once fetched.
    #[command(after_help = FETCH_EXAMPLES)]
    Fetch(KernelFetchArgs),
    /// List the cached kernels: built ones and fetched ones (DISTRO column).
    List,
    /// Remove a fetched kernel (by name: every release fetched of it; or by release).
    Remove {
        /// `debian/sid[/arm64]` or a release (`7.2.13+deb14-amd64`).
        #[arg(value_name = "NAME|RELEASE")]
        what: String,
    },
}

const FETCH_EXAMPLES: &str = "\
Examples:
  cargo kmod kernel fetch debian/bookworm              # Debian 12's 6.1
  cargo kmod kernel fetch debian/bookworm-backports    # its 6.12
  cargo kmod kernel fetch debian/sid/arm64             # sid's newest, for arm64
  cargo kmod kernel fetch debian/bookworm --release 6.1.0-41-amd64
  cargo kmod build --kernel debian/sid                 # any command takes the name

Names: <distribution>/<suite>[/<architecture>]; the architecture defaults to this
machine's. The newest release of the suite is fetched once; later uses are offline
(--refresh asks the archive again). Kernels live under $CARGO_KMOD_CACHE/distro.";

#[derive(Args, Debug)]
pub struct KernelFetchArgs {
    /// `debian/<suite>[/<arch>]`: suites bookworm, bookworm-backports, trixie,
    /// trixie-backports, forky, sid, experimental; arch amd64 or arm64.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Kernel flavour (default: the architecture's own, amd64 or arm64; also e.g. cloud-amd64, rt-amd64).
    #[arg(long, value_name = "F")]
    pub flavour: Option<String>,
    /// A release the suite has (default: its newest).
    #[arg(long, value_name = "R")]
    pub release: Option<String>,
    /// Ask the archive for the suite's newest release even when one is fetched.
    #[arg(long)]
    pub refresh: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

const PREPARE_EXAMPLES: &str = "\
Examples:
  # Debian sid's Rust-enabled 7.2 (needs linux-source-7.2, rustc, rust-src, bindgen, gcc-16, dwarves)
  cargo kmod kernel prepare --headers /usr/src/linux-headers-$(uname -r)
  # then `cargo kmod build --kdir /usr/src/linux-headers-$(uname -r)` finds the prepared tree

The tree is cached by its inputs under $CARGO_KMOD_CACHE/prepared (without it
~/.cache/cargo-kmod/prepared); a second call reuses it. stdout: the tree's path.";

#[derive(Args, Debug)]
pub struct KernelPrepareArgs {
    /// The distribution's headers tree (e.g. /usr/src/linux-headers-7.2.13+deb14-amd64).
    #[arg(long, value_name = "DIR", required_unless_present = "kernel")]
    pub headers: Option<PathBuf>,
    /// A fetched kernel by name (`debian/sid`): its headers, and its source as the default.
    #[arg(long, value_name = "NAME", conflicts_with = "headers")]
    pub kernel: Option<String>,
    /// The kernel's source: a tarball or an unpacked tree (default:
    /// /usr/src/linux-source-<major>.<minor>.tar.xz, Debian's linux-source package).
    #[arg(long, value_name = "TARBALL_OR_DIR")]
    pub source: Option<PathBuf>,
    /// The rustc to build with: must be the kernel's own (CONFIG_RUSTC_VERSION_TEXT).
    /// Default: RUSTC, PATH, then /usr/bin/rustc, the first that matches.
    #[arg(long, value_name = "PATH")]
    pub rustc: Option<PathBuf>,
    /// The bindgen to use (default: PATH): must be the kernel's (CONFIG_BINDGEN_VERSION_TEXT).
    #[arg(long, value_name = "PATH")]
    pub bindgen: Option<PathBuf>,
    /// Parallel jobs (default: all cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
pub struct KernelBuildArgs {
    /// Kernel source: a tarball (e.g. /usr/src/linux-source-6.12.tar.xz) or an unpacked tree.
    #[arg(long, value_name = "TARBALL_OR_DIR")]
    pub source: PathBuf,
    /// Parent directory of the build (default: $CARGO_KMOD_CACHE/kernels, without it
    /// ~/.cache/cargo-kmod/kernels).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Extra Kconfig fragment merged after cargo-kmod's own (repeatable).
    #[arg(long = "config", value_name = "FRAGMENT")]
    pub fragments: Vec<PathBuf>,
    /// Certificate (PEM, may hold several) the kernel trusts for module signatures (repeatable).
    #[arg(long = "trusted-cert", value_name = "PEM")]
    pub trusted_certs: Vec<PathBuf>,
    /// The rustc to build with (must have its rust-src; default: the first that has it).
    #[arg(long, value_name = "PATH")]
    pub rustc: Option<PathBuf>,
    /// The bindgen to use (default: PATH, then $CARGO_KMOD_CACHE/tools/bin, without it
    /// ~/.cache/cargo-kmod/tools/bin).
    #[arg(long, value_name = "PATH")]
    pub bindgen: Option<PathBuf>,
    /// Require Rust: refused for a kernel whose Rust this toolchain cannot build (6.1
    /// pins rustc 1.62). Default: Rust where it can be built, else without, saying why.
    #[arg(long, conflicts_with = "no_rust")]
    pub rust: bool,
    /// Build without Rust.
    #[arg(long)]
    pub no_rust: bool,
    /// Also accept ML-DSA module signatures that carry signed attributes (what
    /// sign-file writes with OpenSSL 3.5): CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA
    /// (7.0+).
    #[arg(long)]
    pub mldsa_waiver: bool,
    /// The architecture to build for (arm64: cross-built with LLVM, for QEMU's virt machine).
    #[arg(long, value_enum, default_value_t = ArchArg::X86_64)]
    pub arch: ArchArg,
    /// Parallel jobs (default: all cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ArchArg {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
}

impl From<ArchArg> for cargo_kmod::target::Arch {
    fn from(a: ArchArg) -> Self {
        match a {
            ArchArg::X86_64 => cargo_kmod::target::Arch::X86_64,
            ArchArg::Arm64 => cargo_kmod::target::Arch::Arm64,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Kernel image (bzImage) to boot, or a kernel by name (debian/sid: its image and
    /// module tree).
    #[arg(long, value_name = "IMAGE|NAME", conflicts_with = "kdir")]
    pub kernel: Option<PathBuf>,
    /// Kernel build tree whose arch/x86/boot/bzImage to boot (default: newest cached kernel).
    #[arg(long, value_name = "DIR")]
    pub kdir: Option<PathBuf>,
    /// Module to load, in order (repeatable). Default: build the project in the current
    /// directory against the kernel's tree and sign it with that tree's own build key.
    #[arg(long = "module", value_name = "KO")]
    pub modules: Vec<PathBuf>,
    /// Project manifest, when building the module first.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Module parameter NAME=VALUE passed to insmod (repeatable; applies to every module).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Shell command run in the guest after loading (repeatable).
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Vec<String>,
    /// Seconds before a hanging guest is killed.
    #[arg(long, default_value_t = 60, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Show the whole guest console.
    #[arg(long)]
    pub console: bool,
    /// Accelerator: kvm when /dev/kvm works, else tcg (software emulation).
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,
    /// Static busybox to put in the initramfs, built for the kernel's architecture
    /// (default: /bin/busybox for this machine's, $CARGO_KMOD_CACHE/tools/busybox-<arch>
    /// for another, e.g. busybox-arm64).
    #[arg(long, value_name = "PATH")]
    pub busybox: Option<PathBuf>,
    /// Add to the kernel command line (repeatable), e.g. `--append module.sig_enforce=1`.
    #[arg(long, value_name = "ARG")]
    pub append: Vec<String>,
    /// Enforce module signatures: appends module.sig_enforce=1 (for kernels without
    /// CONFIG_MODULE_SIG_FORCE, such as distributions').
    #[arg(long)]
    pub enforce: bool,
    /// Boot through UEFI Secure Boot as machines do: OVMF (Microsoft's keys enrolled) →
    /// the distribution's signed shim → its signed GRUB → the (signed) kernel. Needs
    /// Debian's ovmf, shim-signed, grub-efi-amd64-signed and mtools. `--secure-boot=off`:
    /// the same chain with Secure Boot switched off in the firmware (keys kept).
    #[arg(long, value_enum, value_name = "on|off", num_args = 0..=1, require_equals = true, default_missing_value = "on")]
    pub secure_boot: Option<OnOff>,
    /// With --secure-boot: shim told not to trust MOKs (`MokListTrusted` set, as after
    /// `mokutil --untrust-mok`), so the kernel puts them in .platform.
    #[arg(long, requires = "secure_boot")]
    pub untrusted_mok: bool,
    /// Shell command run in the guest before the modules are loaded (repeatable).
    #[arg(long = "before", value_name = "CMD")]
    pub before: Vec<String>,
    /// A host file put into the guest: HOST, or HOST=GUEST (an absolute path; default
    /// /bin/<name>). A program brings the libraries it links, as ldd names them
    /// (repeatable).
    #[arg(long = "file", value_name = "HOST[=GUEST]")]
    pub files: Vec<String>,
    /// With --secure-boot: a certificate enrolled as a MOK (shim's MokList, what
    /// `mokutil --import` does), repeatable.
    #[arg(long, value_name = "CERT", requires = "secure_boot")]
    pub mok: Vec<PathBuf>,
    /// With --secure-boot: a certificate added to the UEFI db, repeatable.
    #[arg(long, value_name = "CERT", requires = "secure_boot")]
    pub db: Vec<PathBuf>,
    /// Without --module: sign the project's build with this key (or the metadata's),
    /// instead of the kernel tree's own build key.
    #[command(flatten)]
    pub signing: ProjectSignArgs,
    /// The kernel's module tree: modules that --module ones depend on (`depends:`) are
    /// loaded from it first, as modprobe would (default with --kernel:
    /// /lib/modules/<release> when it exists).
    #[arg(long, value_name = "DIR")]
    pub modules_from: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
pub struct CertsArgs {
    /// Kernel image: bzImage/vmlinuz or vmlinux.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Print the certificates as one PEM bundle.
    #[arg(long, conflicts_with = "der_dir")]
    pub pem: bool,
    /// Write each certificate as DER into this directory.
    #[arg(long, value_name = "DIR")]
    pub der_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

impl From<AccelArg> for cargo_kmod::qemu::Accel {
    fn from(a: AccelArg) -> Self {
        match a {
            AccelArg::Auto => cargo_kmod::qemu::Accel::Auto,
            AccelArg::Kvm => cargo_kmod::qemu::Accel::Kvm,
            AccelArg::Tcg => cargo_kmod::qemu::Accel::Tcg,
        }
    }
}

#[derive(Args, Debug)]
pub struct TemplateArgs {
    /// Module name (default: the directory name, '-' as '_').
    #[arg(long)]
    pub name: Option<String>,
    /// Template (`cargo kmod new --list` shows them).
    #[arg(long, default_value = "rust-minimal")]
    pub template: String,
    /// MODULE_LICENSE.
    #[arg(long, default_value = "GPL")]
    pub license: String,
    /// Author (default: git's user.name, else $USER).
    #[arg(long)]
    pub author: Option<String>,
    /// One-line description.
    #[arg(long, default_value = "A Linux kernel module")]
    pub description: String,
    /// Kernel tree the code must compile on (decides e.g. `module!` syntax).
    #[arg(long, value_name = "DIR", conflicts_with = "kernel_release")]
    pub kdir: Option<PathBuf>,
    /// Kernel release whose /lib/modules/R/build to target (default: the running kernel's).
    #[arg(long, value_name = "R", value_parser = release_arg)]
    pub kernel_release: Option<String>,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    /// Directory to create (must be new or empty).
    #[arg(required_unless_present = "list")]
    pub path: Option<PathBuf>,
    /// List the templates.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub t: TemplateArgs,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub t: TemplateArgs,
}

#[derive(Args, Debug)]
pub struct ProjectSignArgs {
    /// Sign with the key in [package.metadata.kmod] (or --key/--cert); `sign = true` there does too.
    #[arg(long)]
    pub sign: bool,
    /// Signing key (overrides the metadata).
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,
    /// Signing certificate (overrides the metadata).
    #[arg(long, value_name = "CERT")]
    pub cert: Option<PathBuf>,
    /// PKCS#11 module for pkcs11: keys (default: $PKCS11_MODULE_PATH).
    #[arg(long, value_name = "SO")]
    pub pkcs11_module: Option<PathBuf>,
    /// Signing hash (overrides the metadata; default: the kernel's CONFIG_MODULE_SIG_HASH).
    #[arg(long, value_name = "HASH")]
    pub hash: Option<String>,
    #[command(flatten)]
    pub signer: SignerArgs,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Directory for signing_key.pem (0600), signing_key.crt (PEM) and signing_key.der.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out: PathBuf,
    /// Key algorithm (the kernel's own default is rsa4096).
    #[arg(long, default_value = "rsa4096", value_parser = cargo_kmod::sign::keygen::Algo::names())]
    pub algo: String,
    /// Certificate common name.
    #[arg(long, default_value = "cargo-kmod module signing key")]
    pub cn: String,
    /// Validity in days (the kernel does not check it).
    #[arg(long, default_value_t = 36500)]
    pub days: u32,
    /// Add extendedKeyUsage codeSigning, as DKMS's MOK key has.
    #[arg(long)]
    pub mok: bool,
    /// Generate the key pair inside this PKCS#11 token (pkcs11:token=..;object=..): only
    /// the certificate is written (and stored on the token beside the key).
    #[arg(long, value_name = "URI")]
    pub pkcs11: Option<String>,
    /// PKCS#11 module when the URI has no module-path= (default: $PKCS11_MODULE_PATH).
    #[arg(long, value_name = "SO")]
    pub pkcs11_module: Option<PathBuf>,
    /// File holding the token PIN (default: $KBUILD_SIGN_PIN or the URI's pin-value).
    #[arg(long, value_name = "FILE", requires = "pkcs11")]
    pub pin_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Path to the project's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Kernel release to install for (repeatable; default: those of the kdir metadata, else the last build's).
    #[arg(long, value_name = "R", value_parser = release_arg)]
    pub kernel_release: Vec<String>,
    /// A kernel by name (debian/sid): its release (repeatable; fetched on first use).
    #[arg(long, value_name = "NAME", value_parser = kernel_name_arg)]
    pub kernel: Vec<String>,
    /// Install under this root instead of /.
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Directory under /lib/modules/<R>/ (default: install-dir in the metadata, else updates).
    #[arg(long, value_parser = ["updates", "extra"])]
    pub dir: Option<String>,
    #[command(flatten)]
    pub signing: ProjectSignArgs,
}

#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("kind")
        .required(true)
        .multiple(true)
        .args(["dkms", "deb", "rpm", "srpm", "oci"])
))]
pub struct PackageArgs {
    /// Path to the project's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// A DKMS source tree <out>/<name>-<version>/ and a tarball for `dkms ldtarball`.
    #[arg(long)]
    pub dkms: bool,
    /// One binary .deb per kernel release.
    #[arg(long)]
    pub deb: bool,
    /// One binary kmod RPM per kernel release (kmod-<name>-<release>), made by rpmbuild.
    #[arg(long)]
    pub rpm: bool,
    /// A source RPM that rebuilds the module against an installed kernel-devel (akmods style).
    #[arg(long)]
    pub srpm: bool,
    /// With --rpm/--srpm: sign the packages with this gpg key (name or id), via rpmsign.
    #[arg(long, value_name = "KEY")]
    pub gpg_key: Option<String>,
    /// A Kubernetes KMM module image: an OCI layout <out>/<name>-oci/ and <name>-oci.tar,
    /// one image per kernel release, tagged with the release.
    #[arg(long)]
    pub oci: bool,
    /// With --oci: also <out>/<name>-module.yaml, a KMM `Module` mapping each kernel to its image.
    #[arg(long, requires = "oci")]
    pub kmm_manifest: bool,
    /// With --oci: the repository the images will be pushed to, as the `Module` names them.
    #[arg(long, value_name = "REPO", requires = "oci", value_parser = repository_arg)]
    pub image: Option<String>,
    /// With --oci: the static busybox that gives the image the `cp` KMM's worker runs.
    #[arg(
        long,
        default_value = "/bin/busybox",
        value_name = "PATH",
        requires = "oci"
    )]
    pub busybox: PathBuf,
    /// Output directory (default: target/kmod/package).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Kernel release for --deb, --rpm and --oci (repeatable; default: those of the kdir metadata, else the last build's).
    #[arg(long, value_name = "R", value_parser = release_arg)]
    pub kernel_release: Vec<String>,
    /// A kernel by name (debian/sid): its release (repeatable; fetched on first use).
    #[arg(long, value_name = "NAME", value_parser = kernel_name_arg)]
    pub kernel: Vec<String>,
    #[command(flatten)]
    pub signing: ProjectSignArgs,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Path to the project's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Kernel build tree (repeatable); first in precedence.
    #[arg(long, value_name = "DIR")]
    pub kdir: Vec<PathBuf>,
    /// Kernel release, meaning /lib/modules/R/build (repeatable).
    #[arg(long, value_name = "R", value_parser = release_arg)]
    pub kernel_release: Vec<String>,
    /// A distribution's kernel by name, e.g. debian/sid or debian/bookworm/arm64
    /// (repeatable; fetched on first use, see `cargo kmod kernel fetch`).
    #[arg(long, value_name = "NAME", value_parser = kernel_name_arg)]
    pub kernel: Vec<String>,
    #[command(flatten)]
    pub signing: ProjectSignArgs,
    /// Parallel Kbuild jobs (default: all cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Also write rust-project.json for rust-analyzer (Rust projects).
    #[arg(long)]
    pub rust_analyzer: bool,
    /// ARCH for Kbuild.
    #[arg(long)]
    pub arch: Option<String>,
    /// CROSS_COMPILE prefix for Kbuild.
    #[arg(long)]
    pub cross_compile: Option<String>,
    /// Output format: human lines, or one JSON object per built module.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

const TEST_EXAMPLES: &str = "\
Examples:
  cargo kmod test --kernel debian/bookworm --kernel debian/bookworm-backports --kernel debian/sid
  cargo kmod test          # the kernels of [package.metadata.kmod] kernels = [...]

Each cell is the booted kernel's own verdict; `check`'s prediction is shown beside it
when they differ (exit 1: a cargo-kmod bug). Distribution kernels do not enforce
signatures unless --enforce is given.";

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Path to the project's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// A distribution's kernel by name, e.g. debian/sid or debian/bookworm/arm64 (repeatable).
    #[arg(long, value_name = "NAME", value_parser = kernel_name_arg)]
    pub kernel: Vec<String>,
    /// Kernel build tree with its image (repeatable), e.g. one `kernel build` made.
    #[arg(long, value_name = "DIR")]
    pub kdir: Vec<PathBuf>,
    /// An installed kernel: /lib/modules/R/build, /boot/vmlinuz-R, /lib/modules/R (repeatable).
    #[arg(long, value_name = "R", value_parser = release_arg)]
    pub kernel_release: Vec<String>,
    #[command(flatten)]
    pub signing: ProjectSignArgs,
    /// Parallel Kbuild jobs (default: all cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Seconds before a hanging guest is killed.
    #[arg(long, default_value_t = 180, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Accelerator: kvm when /dev/kvm works, else tcg.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,
    /// Enforce module signatures in the guests (module.sig_enforce=1).
    #[arg(long)]
    pub enforce: bool,
    /// Output format: a table, or one JSON object per module x kernel.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
}

/// `--kernel-release`: a release as `uname -r` prints it (it becomes a path).
fn release_arg(s: &str) -> Result<String, String> {
    cargo_kmod::names::release(s).map(|()| s.to_string())
}

/// `--kernel NAME`: a kernel by name (which ones exist, `kernel fetch` says).
fn kernel_name_arg(s: &str) -> Result<String, String> {
    cargo_kmod::names::kernel_name(s).map(|()| s.to_string())
}

/// `--image`: an OCI repository (it lands in the KMM YAML and the image names).
fn repository_arg(s: &str) -> Result<String, String> {
    cargo_kmod::names::oci_repository(s).map(|()| s.to_string())
}
