//! The PKCS#7/CMS SignedData that sign-file writes, built by hand: detached id-data,
//! no certificates, no signed attributes (the `cms` builder always adds them, and the
//! kernel rejects a module signature that has them).

use crate::hash::HashAlg;
use crate::sign::keys::{Cert, KeyKind};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

/// How the SignerInfo names its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerIdKind {
    /// SignerInfo v1 (sign-file default).
    IssuerSerial,
    /// SignerInfo v3 (sign-file `-k`).
    KeyId,
}

/// The signatureAlgorithm OpenSSL's CMS code writes: `rsaEncryption` with NULL
/// parameters for RSA PKCS#1 v1.5, `ecdsa-with-<hash>` without parameters for ECDSA.
pub fn signature_algorithm(kind: KeyKind, hash: HashAlg) -> AlgorithmIdentifierOwned {
    match kind {
        KeyKind::Rsa(_) => AlgorithmIdentifierOwned {
            oid: rfc5912::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        KeyKind::EcP256 | KeyKind::EcP384 => AlgorithmIdentifierOwned {
            oid: hash.ecdsa_oid(),
            parameters: None,
        },
    }
}

/// Encodes the ContentInfo around one signature value.
pub fn build(
    cert: &Cert,
    id: SignerIdKind,
    hash: HashAlg,
    sig_alg: AlgorithmIdentifierOwned,
    signature: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let digest_alg = AlgorithmIdentifierOwned {
        oid: hash.oid(),
        parameters: None,
    };
    let tbs = &cert.parsed.tbs_certificate;
    let (version, sid) = match id {
        SignerIdKind::IssuerSerial => (
            CmsVersion::V1,
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
        ),
        SignerIdKind::KeyId => {
            let skid = cert.skid.clone().ok_or_else(|| {
                format!(
                    "{}: certificate has no subjectKeyIdentifier, needed to sign by key id",
                    cert.path.display()
                )
            })?;
            (
                CmsVersion::V3,
                SignerIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
                    OctetString::new(skid).map_err(|e| e.to_string())?,
                )),
            )
        }
    };
    let signer = SignerInfo {
        version,
        sid,
        digest_alg: digest_alg.clone(),
        signed_attrs: None,
        signature_algorithm: sig_alg,
        signature: OctetString::new(signature).map_err(|e| e.to_string())?,
        unsigned_attrs: None,
    };
    let der_err = |e: der::Error| e.to_string();
    let signed = SignedData {
        version,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: None,
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(der_err)?),
    };
    let ci = ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(der_err)?,
    };
    ci.to_der().map_err(der_err)
}

/// Why a PKCS#7 blob is unusable, in the kernel's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// ASN.1 decode failure: `-EBADMSG`.
    Malformed(String),
    /// Parsed, but a choice the kernel's parser refuses: `-EINVAL`.
    Unsupported(String),
}

/// Decodes the ContentInfo and the SignedData inside it (DER).
pub fn parse(der_bytes: &[u8]) -> Result<SignedData, ParseError> {
    let ci = ContentInfo::from_der(der_bytes)
        .map_err(|e| ParseError::Malformed(format!("PKCS#7 does not decode: {e}")))?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(ParseError::Unsupported(format!(
            "PKCS#7 content type {} is not signedData",
            ci.content_type
        )));
    }
    ci.content
        .decode_as::<SignedData>()
        .map_err(|e| ParseError::Malformed(format!("SignedData does not decode: {e}")))
}
