//! Signing keys the kernel (CONFIG_SYSTEM_TRUSTED_KEYS) or shim's MOK list will trust,
//! with the extensions of the kernel's certs/default_x509.genkey.

use crate::error::{Error, Result};
use crate::pki::mldsa::MlDsa;
use crate::sign::awslc::AwsKey;
use crate::sign::keys::KeyKind;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
    /// Made by AWS-LC (OpenSSL 3.0 has no ML-DSA); the kernel verifies it from 7.0.
    MlDsa(MlDsa),
}

impl Algo {
    pub const ALL: [(&'static str, Algo); 8] = [
        ("rsa2048", Algo::Rsa2048),
        ("rsa3072", Algo::Rsa3072),
        ("rsa4096", Algo::Rsa4096),
        ("ecdsa-p256", Algo::EcdsaP256),
        ("ecdsa-p384", Algo::EcdsaP384),
        ("ml-dsa-44", Algo::MlDsa(MlDsa::L44)),
        ("ml-dsa-65", Algo::MlDsa(MlDsa::L65)),
        ("ml-dsa-87", Algo::MlDsa(MlDsa::L87)),
    ];

    /// The `--algo` names.
    pub fn names() -> [&'static str; 8] {
        Algo::ALL.map(|(n, _)| n)
    }

    fn generate(self) -> std::result::Result<PKey<Private>, openssl::error::ErrorStack> {
        match self {
            Algo::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
            Algo::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?),
            Algo::Rsa4096 => PKey::from_rsa(Rsa::generate(4096)?),
            // ML-DSA's certificate is finished by hand; OpenSSL drafts it with P-256.
            Algo::EcdsaP256 | Algo::EcdsaP384 | Algo::MlDsa(_) => {
                let nid = if self == Algo::EcdsaP384 {
                    Nid::SECP384R1
                } else {
                    Nid::X9_62_PRIME256V1
                };
                let mut group = EcGroup::from_curve_name(nid)?;
                // Named curve in the certificate, as the kernel's parser needs.
                group.set_asn1_flag(openssl::ec::Asn1Flag::NAMED_CURVE);
                PKey::from_ec_key(EcKey::generate(&group)?)
            }
        }
    }

    /// The kernel's genkey signs with SHA-512; P-256 pairs with SHA-256.
    fn digest(self) -> MessageDigest {
        match self {
            Algo::EcdsaP256 => MessageDigest::sha256(),
            Algo::EcdsaP384 => MessageDigest::sha384(),
            _ => MessageDigest::sha512(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeygenOptions {
    pub out: PathBuf,
    pub algo: Algo,
    pub cn: String,
    pub days: u32,
    pub mok: bool,
}

#[derive(Debug, Clone)]
pub struct KeyFiles {
    pub key: PathBuf,
    pub cert_pem: PathBuf,
    pub cert_der: PathBuf,
}

pub fn files(out: &Path) -> KeyFiles {
    KeyFiles {
        key: out.join("signing_key.pem"),
        cert_pem: out.join("signing_key.crt"),
        cert_der: out.join("signing_key.der"),
    }
}

/// Generates the key pair and writes the three files; refuses if any exists.
pub fn generate(o: &KeygenOptions) -> Result<KeyFiles> {
    let f = files(&o.out);
    for p in [&f.key, &f.cert_pem, &f.cert_der] {
        if crate::fsutil::name_taken(p) {
            return Err(Error::usage(
                format!("{} exists; keygen never overwrites a key", p.display()),
                "choose another --out directory, or move the old key away first",
            ));
        }
    }
    let ossl = |e: openssl::error::ErrorStack| Error::Key {
        path: o.out.clone(),
        reason: e.to_string(),
    };
    let (key_pem, cert) = match o.algo {
        Algo::MlDsa(level) => {
            let aws = |reason: String| Error::Key {
                path: o.out.clone(),
                reason,
            };
            let key = AwsKey::generate_mldsa(level).map_err(aws)?;
            let spki = key.public_spki().map_err(aws)?;
            let cert = certificate_for_key(&spki, KeyKind::MlDsa(level), o, |tbs| {
                key.sign_message(tbs).map_err(aws)
            })?;
            let mut der = key.to_pkcs8().map_err(aws)?;
            let pem = pem("PRIVATE KEY", &der);
            der.iter_mut()
                .for_each(|b| unsafe { std::ptr::write_volatile(b, 0) });
            (pem, cert)
        }
        _ => {
            let pkey = o.algo.generate().map_err(ossl)?;
            let cert = certificate(&pkey, &pkey, o).map_err(ossl)?;
            (pkey.private_key_to_pem_pkcs8().map_err(ossl)?, cert)
        }
    };
    std::fs::create_dir_all(&o.out).map_err(|source| Error::Write {
        path: o.out.clone(),
        source,
    })?;
    crate::fsutil::write_new_all(&[
        (&f.key, &key_pem, 0o600),
        (&f.cert_pem, &cert.to_pem().map_err(ossl)?, 0o644),
        (&f.cert_der, &cert.to_der().map_err(ossl)?, 0o644),
    ])?;
    Ok(f)
}

/// The certificate of `public`, signed by `pkey` (the key itself, or a stand-in whose
/// signature [`certificate_signed_by`] replaces).
fn certificate<T: openssl::pkey::HasPublic>(
    pkey: &PKey<Private>,
    public: &openssl::pkey::PKeyRef<T>,
    o: &KeygenOptions,
) -> std::result::Result<X509, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, &o.cn)?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(159, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(public)?;
    let (from, until) = (
        Asn1Time::days_from_now(0)?,
        Asn1Time::days_from_now(o.days)?,
    );
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().digital_signature().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(None, None))?;
    b.append_extension(aki)?;
    if o.mok {
        b.append_extension(ExtendedKeyUsage::new().code_signing().build()?)?;
    }
    b.sign(pkey, o.algo.digest())?;
    Ok(b.build())
}

impl Algo {
    pub fn hash(self) -> crate::hash::HashAlg {
        use crate::hash::HashAlg;
        match self {
            Algo::EcdsaP256 => HashAlg::Sha256,
            Algo::EcdsaP384 => HashAlg::Sha384,
            _ => HashAlg::Sha512,
        }
    }

    pub fn kind(self) -> KeyKind {
        match self {
            Algo::Rsa2048 => KeyKind::Rsa(2048),
            Algo::Rsa3072 => KeyKind::Rsa(3072),
            Algo::Rsa4096 => KeyKind::Rsa(4096),
            Algo::EcdsaP256 => KeyKind::EcP256,
            Algo::EcdsaP384 => KeyKind::EcP384,
            Algo::MlDsa(l) => KeyKind::MlDsa(l),
        }
    }
}

/// PEM armour, 64 columns, as OpenSSL writes it.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = openssl::base64::encode_block(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// A self-signed certificate for a key OpenSSL 3.0 cannot hold (ML-DSA): OpenSSL
/// drafts it around a stand-in key, then its key, key ids and signature algorithm
/// are replaced and `sign_tbs` signs the to-be-signed part.
fn certificate_for_key(
    spki_der: &[u8],
    kind: KeyKind,
    o: &KeygenOptions,
    sign_tbs: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<X509> {
    use der::{Decode, Encode};
    use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
    let key_err = |reason: String| Error::Key {
        path: o.out.clone(),
        reason,
    };
    let der_err = |e: der::Error| key_err(e.to_string());
    let ossl = |e: openssl::error::ErrorStack| key_err(e.to_string());
    let stand_in = o.algo.generate().map_err(ossl)?;
    let draft = certificate(&stand_in, &stand_in, o).map_err(ossl)?;
    let mut cert =
        x509_cert::Certificate::from_der(&draft.to_der().map_err(ossl)?).map_err(der_err)?;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(der_err)?;
    // The key id as OpenSSL derives it: SHA-1 of the subjectPublicKey bits.
    let key_id = der::asn1::OctetString::new(
        openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec(),
    )
    .map_err(der_err)?;
    let alg = crate::sign::cms::signature_algorithm(kind, crate::hash::HashAlg::Sha512);
    let tbs = &mut cert.tbs_certificate;
    tbs.subject_public_key_info = spki;
    tbs.signature = alg.clone();
    for ext in tbs.extensions.iter_mut().flatten() {
        let value = if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER {
            SubjectKeyIdentifier(key_id.clone()).to_der()
        } else if ext.extn_id == const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER {
            AuthorityKeyIdentifier {
                key_identifier: Some(key_id.clone()),
                ..Default::default()
            }
            .to_der()
        } else {
            continue;
        };
        ext.extn_value = der::asn1::OctetString::new(value.map_err(der_err)?).map_err(der_err)?;
    }
    cert.signature_algorithm = alg;
    let sig = sign_tbs(&cert.tbs_certificate.to_der().map_err(der_err)?)?;
    cert.signature = der::asn1::BitString::from_bytes(&sig).map_err(der_err)?;
    X509::from_der(&cert.to_der().map_err(der_err)?).map_err(ossl)
}

/// A self-signed certificate for a key whose private half we cannot hold (a token's):
/// OpenSSL builds the certificate, signed by a throwaway key of the same type (the
/// signature algorithm depends only on type and digest), then `sign_tbs` signs the
/// to-be-signed part for real.
pub fn certificate_signed_by(
    public: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
    o: &KeygenOptions,
    sign_tbs: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<X509> {
    use der::{Decode, Encode};
    let ossl = |e: openssl::error::ErrorStack| Error::Key {
        path: o.out.clone(),
        reason: e.to_string(),
    };
    let stand_in = match o.algo {
        Algo::EcdsaP256 | Algo::EcdsaP384 => Algo::EcdsaP256,
        _ => Algo::Rsa2048,
    }
    .generate()
    .map_err(ossl)?;
    let draft = certificate(&stand_in, public, o).map_err(ossl)?;
    let der_err = |e: der::Error| Error::Key {
        path: o.out.clone(),
        reason: e.to_string(),
    };
    let mut cert =
        x509_cert::Certificate::from_der(&draft.to_der().map_err(ossl)?).map_err(der_err)?;
    let tbs = cert.tbs_certificate.to_der().map_err(der_err)?;
    let sig = sign_tbs(&tbs)?;
    cert.signature = der::asn1::BitString::from_bytes(&sig).map_err(der_err)?;
    X509::from_der(&cert.to_der().map_err(der_err)?).map_err(ossl)
}

/// Writes the certificate (PEM and DER) of a key kept elsewhere; refuses existing files.
pub fn write_cert_only(out: &Path, cert: &X509) -> Result<KeyFiles> {
    let f = files(out);
    for p in [&f.cert_pem, &f.cert_der] {
        if crate::fsutil::name_taken(p) {
            return Err(Error::usage(
                format!("{} exists; keygen never overwrites", p.display()),
                "choose another --out directory, or move the old files away first",
            ));
        }
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let ossl = |e: openssl::error::ErrorStack| Error::Key {
        path: out.to_path_buf(),
        reason: e.to_string(),
    };
    crate::fsutil::write_new_all(&[
        (&f.cert_pem, &cert.to_pem().map_err(ossl)?, 0o644),
        (&f.cert_der, &cert.to_der().map_err(ossl)?, 0o644),
    ])?;
    Ok(f)
}
