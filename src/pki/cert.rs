//! Certificates (PEM bundles or DER) and the identifiers the kernel matches signers
//! by: read by `sign`, `verify`, `info`, `certs` and `kernel` alike.

use crate::error::{Error, Result};
use der::{Decode, Encode};
use openssl::x509::X509;
use std::path::{Path, PathBuf};

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
        Cert::parse(path, der_bytes, crate::pki::x509::Certificate::parse)
    }

    fn parse(
        path: &Path,
        der_bytes: &[u8],
        kernel_parse: KernelParse,
    ) -> std::result::Result<Cert, String> {
        let x509 = X509::from_der(der_bytes)
            .map_err(|e| format!("not a valid X.509 certificate ({})", first_reason(&e)))?;
        let kernel = kernel_parse(der_bytes);
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

type KernelParse =
    fn(&[u8]) -> std::result::Result<crate::pki::x509::Certificate, crate::pki::Errno>;

/// Every certificate in a file: a PEM bundle, or one DER certificate.
pub fn load_certs(path: &Path) -> Result<Vec<Cert>> {
    read_certs(path, crate::pki::x509::Certificate::parse)
}

/// The one certificate a signer uses (the first in the file). Its self-signature is
/// not checked: the kernel checks it when it loads the certificate, and signing needs
/// only its names and ids (a single `sign-file` call saves a signature verification).
pub fn load_cert(path: &Path) -> Result<Cert> {
    Ok(read_certs(path, crate::pki::x509::Certificate::parse_unchecked)?.swap_remove(0))
}

fn read_certs(path: &Path, kernel_parse: KernelParse) -> Result<Vec<Cert>> {
    // A certificate error (exit 4, help about certificates), not a module one.
    // A bundle of certificates (a CA file) is well under 16 MiB.
    let data = crate::fsutil::read_small(path, 16 << 20).map_err(|reason| Error::Cert {
        path: path.to_path_buf(),
        reason,
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
        .map(|d| Cert::parse(path, d, kernel_parse).map_err(cert_err))
        .collect()
}

pub(crate) fn is_pem(data: &[u8]) -> bool {
    contains(data, b"-----BEGIN ")
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn first_reason(e: &openssl::error::ErrorStack) -> String {
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
