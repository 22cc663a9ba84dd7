//! Where the kernel files certificates from firmware and shim, and whether it checks
//! modules against them (security/integrity/platform_certs/load_uefi.c,
//! machine_keyring.c, kernel/module/signing.c): modules are checked against
//! `.builtin_trusted_keys` and `.secondary_trusted_keys`, which links `.machine`; a MOK
//! goes to `.machine` only when the kernel has that keyring, Secure Boot is on, shim
//! says MOKs are trusted (`MokListTrustedRT`, where the kernel asks) and, with
//! `CONFIG_INTEGRITY_CA_MACHINE_KEYRING`, it is a CA; anything else from firmware goes
//! to `.platform`, which mainline trusts for kexec only and some distributions' kernels
//! also for modules. Used by `doctor` (a running machine) and `check --mok` (a kernel).

use crate::pki::cert::Cert;
use crate::target::Target;

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Built into the kernel image.
    Builtin,
    /// Enrolled with shim (`MokListRT`).
    Mok,
    /// Waiting for MokManager at the next boot (`MokNew`).
    Pending,
    /// The UEFI signature database.
    Db,
    /// Given with `--cert`, found nowhere else.
    Given,
}

impl Source {
    /// As the JSON report spells it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Builtin => "builtin",
            Source::Mok => "mok",
            Source::Pending => "pending",
            Source::Db => "db",
            Source::Given => "given",
        }
    }
}

/// Where a certificate goes, and whether modules may be signed by it there.
#[derive(Debug, Clone)]
pub struct Placement {
    /// None when the kernel does not load it (pending, not enrolled, MOKs without
    /// Secure Boot).
    pub keyring: Option<String>,
    pub signs_modules: bool,
    pub why: String,
}

/// Where the kernel puts firmware certificates (load_uefi.c, machine_keyring.c).
pub struct Rules {
    /// The kernel reads certificates from firmware at all (CONFIG_LOAD_UEFI_KEYS).
    pub firmware: bool,
    pub machine: bool,
    pub ca_only: bool,
    /// shim said so (`MokListTrustedRT`), or the kernel trusts MOKs regardless.
    pub mok_trusted: bool,
    /// The kernel reads no MOK without Secure Boot ("the MOK/MOKx can not be trusted
    /// when secure boot is disabled").
    pub secure_boot_off: bool,
    pub platform_signs_modules: bool,
}

impl Rules {
    pub fn place(&self, source: Source, cert: &Cert) -> Placement {
        let platform = |why: &str| {
            (
                Some(".platform".to_string()),
                self.platform_signs_modules,
                format!(
                    "{why}; {}",
                    if self.platform_signs_modules {
                        "this distribution's kernel also checks modules against .platform"
                    } else {
                        "the kernel checks modules against .platform only where a distribution patched it so"
                    }
                ),
            )
        };
        let (keyring, signs_modules, why) = match source {
            Source::Builtin => (
                Some(".builtin_trusted_keys".to_string()),
                true,
                "built into the kernel".to_string(),
            ),
            Source::Mok | Source::Db if !self.firmware => (
                None,
                false,
                "this kernel loads no certificate from firmware (CONFIG_LOAD_UEFI_KEYS unset)"
                    .to_string(),
            ),
            Source::Mok if self.secure_boot_off => (
                None,
                false,
                "a MOK, but Secure Boot is off and the kernel loads MOKs only under Secure Boot"
                    .to_string(),
            ),
            Source::Mok if !self.machine => platform(
                "a MOK, and this kernel has no .machine keyring (CONFIG_INTEGRITY_MACHINE_KEYRING)",
            ),
            Source::Mok if !self.mok_trusted => platform(
                "a MOK, but shim does not tell the kernel to trust MOKs (no MokListTrustedRT: `mokutil --untrust-mok` was used)",
            ),
            Source::Mok if self.ca_only && !is_ca(cert) => platform(
                "a MOK, but not a CA certificate, and this kernel's .machine keyring takes CAs only (CONFIG_INTEGRITY_CA_MACHINE_KEYRING)",
            ),
            Source::Mok => (
                Some(".machine".to_string()),
                true,
                "a MOK that shim trusts".to_string(),
            ),
            Source::Pending => (
                None,
                false,
                "enrolment requested (MokNew), not yet confirmed in MokManager".to_string(),
            ),
            Source::Db => platform("in the UEFI db"),
            Source::Given => (None, false, "not enrolled".to_string()),
        };
        Placement {
            keyring,
            signs_modules,
            why,
        }
    }

    pub fn fix(&self, source: Source) -> String {
        match source {
            Source::Pending => "reboot and confirm the enrolment in MokManager (with the password given to `mokutil --import`)".into(),
            Source::Mok | Source::Db if !self.firmware => "sign with a key built into this kernel (CONFIG_SYSTEM_TRUSTED_KEYS), or run one that loads MOKs (CONFIG_LOAD_UEFI_KEYS, CONFIG_INTEGRITY_MACHINE_KEYRING)".into(),
            Source::Mok if self.secure_boot_off => "turn Secure Boot on in the firmware (with it off, unsigned and unknown-key modules load anyway, tainting the kernel)".into(),
            Source::Mok if !self.machine => "this kernel cannot trust MOKs for modules: sign with a key built into it, or run a kernel with CONFIG_INTEGRITY_MACHINE_KEYRING".into(),
            Source::Mok if !self.mok_trusted => "`mokutil --trust-mok`, reboot, and confirm in MokManager".into(),
            Source::Mok => "enroll a CA certificate (basicConstraints CA:TRUE, keyUsage keyCertSign) and sign modules with a key it issued".into(),
            Source::Db => "enroll the certificate as a MOK instead (`mokutil --import CERT`, reboot, confirm in MokManager)".into(),
            Source::Builtin => "the kernel does not trust its own builtin key here: its keyring did not take it".into(),
            Source::Given => "`mokutil --import CERT`, reboot, and confirm the enrolment in MokManager (DER; `cargo kmod keygen --mok` makes one)".into(),
        }
    }
}

/// A CA certificate as `restrict_link_by_ca` wants it: basicConstraints CA and
/// keyUsage keyCertSign.
pub fn is_ca(c: &Cert) -> bool {
    use der::Decode;
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
    let Ok(der) = c.x509.to_der() else {
        return false;
    };
    let Ok(parsed) = x509_cert::Certificate::from_der(&der) else {
        return false;
    };
    let exts = parsed.tbs_certificate.extensions.unwrap_or_default();
    let get = |oid| exts.iter().find(|e| e.extn_id == oid);
    let ca = get(const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|b| b.ca);
    let sign = get(const_oid::db::rfc5280::ID_CE_KEY_USAGE)
        .and_then(|e| KeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|k| k.0.contains(KeyUsages::KeyCertSign));
    ca && sign
}

impl Rules {
    /// The rules of a kernel known by its `.config` (and its distribution), booted with
    /// Secure Boot on and shim trusting MOKs, as `mokutil --import` leaves a machine.
    pub fn of_target(t: &Target) -> Rules {
        let cfg = |k: &str| t.config.as_ref().is_some_and(|c| c.enabled(k));
        let distro = crate::distro::of_target(t);
        Rules {
            firmware: cfg("CONFIG_LOAD_UEFI_KEYS"),
            machine: cfg("CONFIG_INTEGRITY_MACHINE_KEYRING"),
            ca_only: cfg("CONFIG_INTEGRITY_CA_MACHINE_KEYRING"),
            mok_trusted: true,
            secure_boot_off: false,
            platform_signs_modules: distro.is_some_and(|d| d.platform_signs_modules),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_the_json_ones() {
        for s in [
            Source::Builtin,
            Source::Mok,
            Source::Pending,
            Source::Db,
            Source::Given,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
    }
}
