//! Loading signing keys (PEM or DER) and checking them against their certificate.

use crate::error::{Error, Result};
use crate::pki::cert::{Cert, contains, first_reason, is_pem};
use crate::pki::mldsa::MlDsa;
use crate::sign::awslc::AwsKey;
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
    /// `--pin-file` wins over `KBUILD_SIGN_PIN` (`from_env`, as sign-file reads it).
    pub fn from_sources(pin_file: Option<&Path>, from_env: Option<&[u8]>) -> Result<Self> {
        if let Some(f) = pin_file {
            return Ok(Pin(Some(read_pin_file(f)?)));
        }
        Ok(Pin(from_env.map(<[u8]>::to_vec)))
    }
}

/// A PIN or passphrase file's content, without the trailing newline.
pub fn read_pin_file(f: &Path) -> Result<Vec<u8>> {
    // A passphrase, not a file of any size: 64 KiB is far beyond any.
    let mut v = crate::fsutil::read_bounded(f, 64 << 10)?;
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
    MlDsa(MlDsa),
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
            KeyKind::EcP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcP384 => f.write_str("ECDSA P-384"),
            KeyKind::MlDsa(l) => f.write_str(l.name()),
        }
    }
}

/// A certificate's public key and its kind; an error names the certificate.
pub fn cert_key(cert: &Cert) -> Result<(openssl::pkey::PKey<openssl::pkey::Public>, KeyKind)> {
    let e = |reason: String| Error::Cert {
        path: cert.path.clone(),
        reason,
    };
    let public = cert.x509.public_key().map_err(|x| e(x.to_string()))?;
    let kind = key_kind(&public).map_err(e)?;
    Ok((public, kind))
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

/// A private key as loaded: by OpenSSL, or (ML-DSA, which OpenSSL 3.0 lacks) by AWS-LC.
pub enum PrivateKey {
    OpenSsl(PKey<Private>),
    MlDsa(AwsKey, MlDsa),
}

/// The PKCS#8 DER of an unencrypted ML-DSA key (PEM "PRIVATE KEY" or DER), if `data`
/// is one.
fn mldsa_pkcs8(data: &[u8]) -> Option<(Vec<u8>, MlDsa)> {
    use crate::pki::ber::{self, Reader};
    let der = pem_or_der(data, "PRIVATE KEY")?;
    let level = {
        let info = Reader::new(&der).expect(ber::SEQUENCE, "").ok()?;
        let mut r = info.reader();
        r.expect(ber::INTEGER, "").ok()?;
        let alg = r.expect(ber::SEQUENCE, "").ok()?;
        MlDsa::from_oid(alg.reader().expect(ber::OID, "").ok()?.content)?
    };
    Some((der, level))
}

/// The DER inside the first PEM block labelled `label`, or `data` itself when it is
/// not PEM.
fn pem_or_der(data: &[u8], label: &str) -> Option<Vec<u8>> {
    if !is_pem(data) {
        return Some(data.to_vec());
    }
    let text = std::str::from_utf8(data).ok()?;
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    openssl::base64::decode_block(&b64).ok()
}

/// Reads a private key: PEM (PKCS#1, PKCS#8, SEC1, encrypted) or DER (PKCS#8, PKCS#1, SEC1,
/// encrypted PKCS#8); ML-DSA as PKCS#8 with the seed, the expanded key, or both (also
/// encrypted).
pub fn load_private_key(path: &Path, pin: &Pin) -> Result<PrivateKey> {
    // A key error (exit 4, help about keys), not a module one.
    // The largest key (an ML-DSA-87 PKCS#8 with seed and expanded key, PEM) is ~7 KiB.
    let data = crate::fsutil::read_small(path, 1 << 20).map_err(|reason| Error::Key {
        path: path.to_path_buf(),
        reason,
    })?;
    if let Some((mut der, level)) = mldsa_pkcs8(&data) {
        let key = AwsKey::from_pkcs8(&der);
        der.iter_mut()
            .for_each(|b| unsafe { std::ptr::write_volatile(b, 0) });
        return match key {
            Ok(k) => Ok(PrivateKey::MlDsa(k, level)),
            Err(e) => Err(Error::Key {
                path: path.to_path_buf(),
                reason: format!(
                    "not a valid {} private key (seed, expanded key, or both): {e}",
                    level.name()
                ),
            }),
        };
    }
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
            // OpenSSL 3.0 decrypts an ML-DSA key but cannot use it; AWS-LC can.
            return match pem_or_der(&data, "ENCRYPTED PRIVATE KEY")
                .and_then(|der| AwsKey::from_encrypted_pkcs8(&der, pin.0.as_deref()?).ok())
                .and_then(|k| k.mldsa().map(|l| (k, l)))
            {
                Some((k, level)) => Ok(PrivateKey::MlDsa(k, level)),
                None => Err(Error::WrongPin {
                    path: path.to_path_buf(),
                }),
            };
        }
        Err(e) => {
            return Err(key_err(format!(
                "not a valid private key ({})",
                first_reason(&e)
            )));
        }
    };
    key_kind(&pkey).map_err(key_err)?;
    Ok(PrivateKey::OpenSsl(pkey))
}

/// Refuses a certificate that does not belong to the key: the kernel would reject
/// every module signed with such a pair.
pub fn check_pair(key: &PrivateKey, key_path: &Path, cert: &Cert) -> Result<()> {
    let cert_err = |reason: String| Error::Cert {
        path: cert.path.clone(),
        reason,
    };
    let same = match key {
        PrivateKey::OpenSsl(key) => {
            let public = cert
                .x509
                .public_key()
                .map_err(|e| cert_err(first_reason(&e)))?;
            key.public_eq(&public)
        }
        // OpenSSL 3.0 cannot read an ML-DSA certificate's key: compare the encodings.
        PrivateKey::MlDsa(key, _) => {
            use der::{Decode, Encode};
            let der = cert.x509.to_der().map_err(|e| cert_err(first_reason(&e)))?;
            let spki = x509_cert::Certificate::from_der(&der)
                .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der())
                .map_err(|e| cert_err(e.to_string()))?;
            key.public_spki().map_err(|e| Error::Key {
                path: key_path.to_path_buf(),
                reason: e,
            })? == spki
        }
    };
    if !same {
        return Err(Error::KeyMismatch {
            key: key_path.to_path_buf(),
            cert: cert.path.clone(),
        });
    }
    Ok(())
}
