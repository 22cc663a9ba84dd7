//! Loading signing keys (PEM or DER) and checking them against their certificate.

use crate::error::{Error, Result};
use crate::pki::cert::{Cert, contains, first_reason, is_pem};
use openssl::pkey::{Id, PKey, Private};
use std::cell::Cell;
use std::path::Path;

/// The passphrase for an encrypted key. Never printed.
#[derive(Clone, Default)]
pub struct Pin(Option<Vec<u8>>);

impl Pin {
    pub fn new(p: Option<Vec<u8>>) -> Self {
        Pin(p)
    }
    pub fn bytes(&self) -> Option<Vec<u8>> {
        self.0.clone()
    }
    /// `--pin-file` wins over `KBUILD_SIGN_PIN` (as sign-file reads it).
    pub fn from_sources(pin_file: Option<&Path>) -> Result<Self> {
        if let Some(f) = pin_file {
            return Ok(Pin(Some(read_pin_file(f)?)));
        }
        Ok(Pin(std::env::var_os("KBUILD_SIGN_PIN").map(|v| {
            use std::os::unix::ffi::OsStringExt;
            v.into_vec()
        })))
    }
}

/// A PIN or passphrase file's content, without the trailing newline.
pub fn read_pin_file(f: &Path) -> Result<Vec<u8>> {
    let mut v = std::fs::read(f).map_err(|source| Error::Read {
        path: f.to_path_buf(),
        source,
    })?;
    while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        v.pop();
    }
    Ok(v)
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<hidden>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa(u32),
    EcP256,
    EcP384,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
            KeyKind::EcP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcP384 => f.write_str("ECDSA P-384"),
        }
    }
}

/// The kind of a key the kernel can verify with, or why not.
pub fn key_kind<T: openssl::pkey::HasPublic>(
    pkey: &openssl::pkey::PKeyRef<T>,
) -> Result<KeyKind, String> {
    match pkey.id() {
        Id::RSA => Ok(KeyKind::Rsa(pkey.bits())),
        Id::EC => {
            let ec = pkey.ec_key().map_err(|e| e.to_string())?;
            match ec.group().curve_name() {
                Some(openssl::nid::Nid::X9_62_PRIME256V1) => Ok(KeyKind::EcP256),
                Some(openssl::nid::Nid::SECP384R1) => Ok(KeyKind::EcP384),
                other => Err(format!(
                    "ECDSA curve {} is not one the kernel verifies module signatures with (use P-256 or P-384)",
                    other.and_then(|n| n.short_name().ok()).unwrap_or("unknown")
                )),
            }
        }
        other => Err(format!(
            "key type {other:?} is not supported for module signing (use RSA or ECDSA P-256/P-384)"
        )),
    }
}

/// Reads a private key: PEM (PKCS#1, PKCS#8, SEC1, encrypted) or DER (PKCS#8, PKCS#1, SEC1,
/// encrypted PKCS#8).
pub fn load_private_key(path: &Path, pin: &Pin) -> Result<PKey<Private>> {
    // A key error (exit 4, help about keys), not a module one.
    let data = std::fs::read(path).map_err(|e| Error::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let asked = Cell::new(false);
    let cb = |buf: &mut [u8]| -> std::result::Result<usize, openssl::error::ErrorStack> {
        asked.set(true);
        match &pin.0 {
            Some(p) if p.len() <= buf.len() => {
                buf[..p.len()].copy_from_slice(p);
                Ok(p.len())
            }
            // No passphrase: fail the decode, reported as PinNeeded below.
            _ => Err(openssl::error::ErrorStack::get()),
        }
    };
    let key_err = |reason: String| Error::Key {
        path: path.to_path_buf(),
        reason,
    };
    let result = if is_pem(&data) {
        if !contains(&data, b"PRIVATE KEY-----") {
            return Err(key_err("the PEM file holds no private key".into()));
        }
        PKey::private_key_from_pem_callback(&data, cb)
    } else if data.first() == Some(&0x30) {
        PKey::private_key_from_der(&data)
            .or_else(|_| PKey::private_key_from_pkcs8_callback(&data, cb))
    } else {
        return Err(key_err(if data.is_empty() {
            "file is empty".into()
        } else {
            "neither PEM nor DER".into()
        }));
    };
    let pkey = match result {
        Ok(k) => k,
        Err(_) if asked.get() && pin.0.is_none() => {
            return Err(Error::PinNeeded {
                path: path.to_path_buf(),
            });
        }
        Err(_) if asked.get() => {
            return Err(Error::WrongPin {
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(key_err(format!(
                "not a valid private key ({})",
                first_reason(&e)
            )));
        }
    };
    key_kind(&pkey).map_err(key_err)?;
    Ok(pkey)
}

/// Refuses a certificate that does not belong to the key: the kernel would reject
/// every module signed with such a pair.
pub fn check_pair(key: &PKey<Private>, key_path: &Path, cert: &Cert) -> Result<()> {
    let public = cert.x509.public_key().map_err(|e| Error::Cert {
        path: cert.path.clone(),
        reason: first_reason(&e),
    })?;
    if !key.public_eq(&public) {
        return Err(Error::KeyMismatch {
            key: key_path.to_path_buf(),
            cert: cert.path.clone(),
        });
    }
    Ok(())
}
