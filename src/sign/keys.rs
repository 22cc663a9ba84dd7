//! Loading signing keys and certificates (PEM or DER), and what the CMS needs from them.

use crate::error::{Error, Result};
use der::{Decode, Encode};
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use std::cell::Cell;
use std::path::{Path, PathBuf};

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
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
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

/// A certificate and the identifiers the kernel matches signers by.
#[derive(Clone)]
pub struct Cert {
    pub path: PathBuf,
    pub x509: X509,
    /// The issuer and subject Names, as encoded in the certificate (never re-encoded:
    /// the kernel matches them byte for byte).
    pub issuer_der: Vec<u8>,
    pub subject_der: Vec<u8>,
    /// The serialNumber INTEGER's content bytes.
    pub serial: Vec<u8>,
    pub skid: Option<Vec<u8>>,
    /// The certificate as the kernel reads it; an error when the kernel would not load
    /// it (then it is trusted for nothing).
    pub kernel: std::result::Result<crate::pki::x509::Certificate, crate::pki::Errno>,
}

impl Cert {
    pub fn from_der(path: &Path, der_bytes: &[u8]) -> std::result::Result<Cert, String> {
        let x509 = X509::from_der(der_bytes)
            .map_err(|e| format!("not a valid X.509 certificate ({})", first_reason(&e)))?;
        let kernel = crate::pki::x509::Certificate::parse(der_bytes);
        let (issuer_der, subject_der, serial, skid) = match &kernel {
            Ok(k) => (
                k.issuer_tlv.clone(),
                k.subject_tlv.clone(),
                k.serial.clone(),
                k.skid.clone(),
            ),
            // Not for the kernel (say, an unsupported curve), still one to sign with.
            Err(_) => {
                let parsed = x509_cert::Certificate::from_der(der_bytes)
                    .map_err(|e| format!("not a valid X.509 certificate ({e})"))?;
                let tbs = &parsed.tbs_certificate;
                let skid = tbs.extensions.iter().flatten().find_map(|ext| {
                    (ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
                        .then(|| {
                            der::asn1::OctetString::from_der(ext.extn_value.as_bytes())
                                .ok()
                                .map(|o| o.as_bytes().to_vec())
                        })
                        .flatten()
                });
                (
                    tbs.issuer.to_der().map_err(|e| e.to_string())?,
                    tbs.subject.to_der().map_err(|e| e.to_string())?,
                    tbs.serial_number.as_bytes().to_vec(),
                    skid,
                )
            }
        };
        Ok(Cert {
            path: path.to_path_buf(),
            x509,
            issuer_der,
            subject_der,
            serial,
            skid,
            kernel,
        })
    }

    pub fn subject(&self) -> String {
        name_text(&self.subject_der)
    }

    pub fn issuer(&self) -> String {
        name_text(&self.issuer_der)
    }

    pub fn issuer_cn(&self) -> Option<String> {
        x509_cert::name::Name::from_der(&self.issuer_der)
            .ok()
            .and_then(|n| common_name(&n))
    }
}

/// A Name as RFC 4514 text, or its bytes in hex when it does not decode as DER.
fn name_text(der_bytes: &[u8]) -> String {
    x509_cert::name::Name::from_der(der_bytes)
        .map_or_else(|_| hex::encode(der_bytes), |n| name_string(&n))
}

/// Every certificate in a file: a PEM bundle, or one DER certificate.
pub fn load_certs(path: &Path) -> Result<Vec<Cert>> {
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let cert_err = |reason: String| Error::Cert {
        path: path.to_path_buf(),
        reason,
    };
    // sign-file's rule: DER when it starts 30 81..84, else PEM.
    let ders: Vec<Vec<u8>> =
        if data.len() > 1 && data[0] == 0x30 && (0x81..=0x84).contains(&data[1]) {
            vec![data]
        } else if is_pem(&data) {
            let certs = X509::stack_from_pem(&data).map_err(|e| cert_err(first_reason(&e)))?;
            if certs.is_empty() {
                return Err(cert_err("the PEM file holds no CERTIFICATE block".into()));
            }
            certs
                .iter()
                .map(|c| c.to_der().map_err(|e| cert_err(first_reason(&e))))
                .collect::<Result<_>>()?
        } else {
            return Err(cert_err(if data.is_empty() {
                "file is empty".into()
            } else {
                "neither PEM nor DER".into()
            }));
        };
    ders.iter()
        .map(|d| Cert::from_der(path, d).map_err(cert_err))
        .collect()
}

/// The one certificate a signer uses (the first in the file).
pub fn load_cert(path: &Path) -> Result<Cert> {
    Ok(load_certs(path)?.swap_remove(0))
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

fn is_pem(data: &[u8]) -> bool {
    contains(data, b"-----BEGIN ")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|e| e.reason().map(str::to_string))
        .unwrap_or_else(|| "unreadable".into())
}

pub fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find_map(|atv| (atv.oid == const_oid::db::rfc4519::CN).then(|| attr_string(&atv.value)))
}

pub fn name_string(name: &x509_cert::name::Name) -> String {
    name.to_string()
}

fn attr_string(v: &der::Any) -> String {
    // UTF8String, PrintableString, IA5String, T61String: the bytes are the text.
    String::from_utf8_lossy(v.value()).into_owned()
}
