//! What the environment says, resolved once by the binary when it starts
//! (`Settings::from_env` over its own environment) and passed down to the library calls
//! that need it. The library reads these values and never the environment itself.

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `CARGO_KMOD_CACHE`, else `$HOME/.cache/cargo-kmod`.
    pub cache: PathBuf,
    /// `CARGO_KMOD_MAX_MODULE_MIB`: the most a module may hold, in bytes (512 MiB).
    pub max_module_bytes: u64,
    /// `CARGO_KMOD_CRYPTO`: `openssl`, `aws-lc`, or neither (the default switch).
    pub crypto: Option<String>,
    /// `KBUILD_SIGN_PIN`, as sign-file reads it.
    pub sign_pin: Option<Vec<u8>>,
    /// `PKCS11_MODULE_PATH`.
    pub pkcs11_module: Option<PathBuf>,
    /// `RUSTC`: the rustc to try first.
    pub rustc: Option<PathBuf>,
    /// `KDIR`: the tree to build against when nothing else names one.
    pub kdir: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH` (reproducible-builds.org).
    pub source_date_epoch: Option<u64>,
    /// `PATH`, where tools are looked for.
    pub path: OsString,
    /// `USER`: a new project's author when git names none.
    pub user: Option<String>,
}

/// The largest module by default: twenty times Debian's largest (amdgpu), room for one
/// with debug info.
pub const DEFAULT_MAX_MODULE_BYTES: u64 = 512 << 20;

impl Settings {
    /// From an environment: `var` looks a variable up (the binary passes its own).
    pub fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Settings {
        use std::os::unix::ffi::OsStringExt;
        let text = |k: &str| var(k).and_then(|v| v.into_string().ok());
        Settings {
            cache: var("CARGO_KMOD_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(var("HOME").unwrap_or_else(|| "/root".into()))
                        .join(".cache/cargo-kmod")
                }),
            max_module_bytes: text("CARGO_KMOD_MAX_MODULE_MIB")
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(DEFAULT_MAX_MODULE_BYTES, |mib| mib << 20),
            crypto: text("CARGO_KMOD_CRYPTO"),
            sign_pin: var("KBUILD_SIGN_PIN").map(OsString::into_vec),
            pkcs11_module: var("PKCS11_MODULE_PATH").map(PathBuf::from),
            rustc: var("RUSTC").map(PathBuf::from),
            kdir: var("KDIR").map(PathBuf::from),
            source_date_epoch: text("SOURCE_DATE_EPOCH").and_then(|v| v.parse().ok()),
            path: var("PATH").unwrap_or_default(),
            user: text("USER"),
        }
    }
}

impl Default for Settings {
    /// An empty environment's settings.
    fn default() -> Settings {
        Settings::from_env(|_| None)
    }
}
