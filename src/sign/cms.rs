//! The PKCS#7/CMS SignedData that sign-file writes, built by hand: detached id-data,
//! no certificates, no signed attributes (the `cms` builder always adds them, and the
//! kernel rejects a module signature that has them) — except for ML-DSA when asked,
//! as sign-file must with OpenSSL before 4.0.

use crate::hash::HashAlg;
use crate::pki::cert::Cert;
use crate::sign::keys::KeyKind;
use const_oid::db::{rfc5911, rfc5912};
use der::{Any, Encode};
use spki::AlgorithmIdentifierOwned;

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
        // id-ml-dsa-*, parameters absent (RFC 9881/9882).
        KeyKind::MlDsa(level) => AlgorithmIdentifierOwned {
            oid: der::asn1::ObjectIdentifier::from_bytes(level.oid()).expect("a valid OID"),
            parameters: None,
        },
    }
}

/// The signed attributes OpenSSL's CMS writes with sign-file's flags (CMS_NOSMIMECAP,
/// CMS_NO_SIGNING_TIME) when it cannot leave them out: contentType id-data and the
/// module's messageDigest, as the DER SET that is signed (DER order: contentType's
/// encoding is the shorter, so it sorts first).
pub fn signed_attributes(hash: HashAlg, body: &[u8]) -> Vec<u8> {
    signed_attributes_of_digest(&hash.digest(body))
}

/// [`signed_attributes`] for the module's `digest`, already computed.
pub fn signed_attributes_of_digest(digest: &[u8]) -> Vec<u8> {
    use crate::pki::ber::{self, tlv};
    let oid = |o: &[u8]| tlv(ber::OID, o);
    let attr =
        |ty: &[u8], value: Vec<u8>| tlv(ber::SEQUENCE, &[oid(ty), tlv(ber::SET, &value)].concat());
    let content_type = attr(crate::pki::oid::CONTENT_TYPE, oid(crate::pki::oid::DATA));
    let digest = attr(
        crate::pki::oid::MESSAGE_DIGEST,
        tlv(ber::OCTET_STRING, digest),
    );
    let mut attrs = [content_type, digest];
    attrs.sort();
    tlv(ber::SET, &attrs.concat())
}

/// Encodes the ContentInfo around one signature value, as sign-file's OpenSSL does:
/// the issuer Name is the certificate's own bytes (a re-encoded one, say with a
/// multi-valued RDN sorted, would no longer match the certificate in the kernel).
pub fn build(
    cert: &Cert,
    id: SignerIdKind,
    hash: HashAlg,
    sig_alg: AlgorithmIdentifierOwned,
    signed_attrs: Option<&[u8]>,
    signature: Vec<u8>,
) -> Result<Vec<u8>, String> {
    use crate::pki::ber::{self, tlv};
    let der_err = |e: der::Error| e.to_string();
    let digest_alg = AlgorithmIdentifierOwned {
        oid: hash.oid(),
        parameters: None,
    }
    .to_der()
    .map_err(der_err)?;
    let (version, sid) = match id {
        SignerIdKind::IssuerSerial => (
            1u8,
            tlv(
                ber::SEQUENCE,
                &[cert.issuer_der.clone(), tlv(ber::INTEGER, &cert.serial)].concat(),
            ),
        ),
        SignerIdKind::KeyId => {
            let skid = cert.skid.clone().ok_or_else(|| {
                format!(
                    "{}: certificate has no subjectKeyIdentifier, needed to sign by key id",
                    cert.path.display()
                )
            })?;
            (3, tlv(0x80, &skid))
        }
    };
    let version = tlv(ber::INTEGER, &[version]);
    let signer = tlv(
        ber::SEQUENCE,
        &[
            version.clone(),
            sid,
            digest_alg.clone(),
            // [0] IMPLICIT: the signed SET, retagged.
            signed_attrs
                .map(|a| [&[0xa0][..], &a[1..]].concat())
                .unwrap_or_default(),
            sig_alg.to_der().map_err(der_err)?,
            tlv(ber::OCTET_STRING, &signature),
        ]
        .concat(),
    );
    let data = rfc5911::ID_DATA.to_der().map_err(der_err)?;
    let signed = tlv(
        ber::SEQUENCE,
        &[
            version,
            tlv(ber::SET, &digest_alg),
            tlv(ber::SEQUENCE, &data),
            tlv(ber::SET, &signer),
        ]
        .concat(),
    );
    let ct = rfc5911::ID_SIGNED_DATA.to_der().map_err(der_err)?;
    Ok(tlv(ber::SEQUENCE, &[ct, tlv(0xa0, &signed)].concat()))
}
