//! Judging a module signature as the kernel does (kernel/module/signing.c,
//! crypto/asymmetric_keys/pkcs7_{parser,verify,trust}.c), in the kernel's order.

pub mod kernel_image;
pub mod keyring;

use crate::hash::{HashAlg, OTHER_KERNEL_DIGESTS};
use crate::modfile::trailer::{self, Trailer};
use crate::sign::keys::{self, Cert};
use cms::signed_data::SignerIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::Encode;
pub use keyring::Keyring;

/// The kernel's verdict on a module's signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict")]
pub enum Verdict {
    #[serde(rename = "OK")]
    Ok {
        signer: String,
        hash: String,
        cert: String,
    },
    /// No signature marker.
    #[serde(rename = "ENODATA")]
    Unsigned,
    /// No trusted key matches the signer.
    #[serde(rename = "ENOKEY")]
    NoKey { reason: String },
    /// Unsupported signature type, digest or key algorithm.
    #[serde(rename = "ENOPKG")]
    NoPkg { reason: String },
    /// The signature does not verify, or is not allowed for modules.
    #[serde(rename = "EKEYREJECTED")]
    Rejected { reason: String },
    /// Malformed trailer or PKCS#7.
    #[serde(rename = "EBADMSG")]
    BadMsg { reason: String },
    /// Well-formed but a form the kernel's parser refuses.
    #[serde(rename = "EINVAL")]
    Invalid { reason: String },
}

impl Verdict {
    pub fn errno_name(&self) -> &'static str {
        match self {
            Verdict::Ok { .. } => "OK",
            Verdict::Unsigned => "ENODATA",
            Verdict::NoKey { .. } => "ENOKEY",
            Verdict::NoPkg { .. } => "ENOPKG",
            Verdict::Rejected { .. } => "EKEYREJECTED",
            Verdict::BadMsg { .. } => "EBADMSG",
            Verdict::Invalid { .. } => "EINVAL",
        }
    }

    /// Documented exit codes 10..=15; 0 for OK.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        match self {
            Verdict::Ok { .. } => exit::OK,
            Verdict::Unsigned => exit::ENODATA,
            Verdict::NoKey { .. } => exit::ENOKEY,
            Verdict::NoPkg { .. } => exit::ENOPKG,
            Verdict::Rejected { .. } => exit::EKEYREJECTED,
            Verdict::BadMsg { .. } => exit::EBADMSG,
            Verdict::Invalid { .. } => exit::EINVAL,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Verdict::Ok { signer, hash, .. } => format!("signed by \"{signer}\" with {hash}"),
            Verdict::Unsigned => "module is not signed".into(),
            Verdict::NoKey { reason }
            | Verdict::NoPkg { reason }
            | Verdict::Rejected { reason }
            | Verdict::BadMsg { reason }
            | Verdict::Invalid { reason } => reason.clone(),
        }
    }

    /// What the kernel does at `insmod` with signature enforcement
    /// (MODULE_SIG_FORCE, module.sig_enforce=1, lockdown/Secure Boot).
    pub fn enforced(&self) -> &'static str {
        match self {
            Verdict::Ok { .. } => "loads",
            Verdict::Unsigned => {
                "refused: \"Loading of unsigned module is rejected\"; insmod: Key was rejected by service"
            }
            Verdict::NoKey { .. } => {
                "refused: \"Loading of module with unavailable key is rejected\"; insmod: Key was rejected by service"
            }
            Verdict::NoPkg { .. } => {
                "refused: \"Loading of module with unsupported crypto is rejected\"; insmod: Key was rejected by service"
            }
            Verdict::Rejected { .. } => "refused; insmod: Key was rejected by service",
            Verdict::BadMsg { .. } => "refused; insmod: Bad message",
            Verdict::Invalid { .. } => "refused; insmod: Invalid argument",
        }
    }

    /// What the kernel does without enforcement.
    pub fn permissive(&self) -> &'static str {
        match self {
            Verdict::Ok { .. } => "loads",
            Verdict::Unsigned | Verdict::NoKey { .. } | Verdict::NoPkg { .. } => {
                "loads and taints: \"module verification failed: signature and/or required key missing - tainting kernel\""
            }
            Verdict::Rejected { .. } => "refused; insmod: Key was rejected by service",
            Verdict::BadMsg { .. } => "refused; insmod: Bad message",
            Verdict::Invalid { .. } => "refused; insmod: Invalid argument",
        }
    }
}

/// Judges `data` (a decompressed module, signature included) against `keyring`.
pub fn verify(data: &[u8], keyring: &Keyring) -> Verdict {
    let (body, cms_der) = match trailer::parse(data) {
        Trailer::Unsigned => return Verdict::Unsigned,
        Trailer::Malformed(r) => return Verdict::BadMsg { reason: r.into() },
        Trailer::NotPkcs7(t) => {
            return Verdict::NoPkg {
                reason: format!("signature type {t} is not PKCS#7"),
            };
        }
        Trailer::Signed { body, cms, .. } => (body, cms),
    };
    let sd = match crate::sign::cms::parse(cms_der) {
        Ok(sd) => sd,
        Err(crate::sign::cms::ParseError::Malformed(r)) => return Verdict::BadMsg { reason: r },
        Err(crate::sign::cms::ParseError::Unsupported(r)) => return Verdict::Invalid { reason: r },
    };
    let sd_version = sd.version as u8;
    if sd_version != 1 && sd_version != 3 {
        return Verdict::Invalid {
            reason: format!("unsupported SignedData version {sd_version}"),
        };
    }
    // pkcs7_parser: every SignerInfo's algorithms are checked while parsing.
    let mut signers = Vec::new();
    for si in sd.signer_infos.0.iter() {
        let hash = match HashAlg::from_oid(&si.digest_alg.oid) {
            Some(h) => Ok(h),
            None => match OTHER_KERNEL_DIGESTS
                .iter()
                .find(|(_, o)| *o == si.digest_alg.oid)
            {
                Some((name, _)) => Err(*name),
                None => {
                    return Verdict::NoPkg {
                        reason: format!("unsupported digest algorithm {}", si.digest_alg.oid),
                    };
                }
            },
        };
        let ecdsa = HashAlg::ALL
            .iter()
            .any(|h| h.ecdsa_oid() == si.signature_algorithm.oid);
        let rsa = si.signature_algorithm.oid == rfc5912::RSA_ENCRYPTION;
        if !rsa && !ecdsa {
            return Verdict::NoPkg {
                reason: format!(
                    "unsupported signature algorithm {}",
                    si.signature_algorithm.oid
                ),
            };
        }
        let si_version = si.version as u8;
        // pkcs7_note_signerinfo_version: a v1 SignerInfo needs SignedData v1, a v3 one
        // (subjectKeyIdentifier) needs SignedData v3. Found by the flipped-bit property test.
        let id_ok = match (&si.sid, si_version) {
            (SignerIdentifier::IssuerAndSerialNumber(_), 1) => sd_version == 1,
            (SignerIdentifier::SubjectKeyIdentifier(_), 3) => sd_version == 3,
            _ => false,
        };
        if !id_ok {
            return Verdict::BadMsg {
                reason: format!(
                    "SignerInfo version {si_version} does not fit its signer identifier"
                ),
            };
        }
        signers.push((si, hash, rsa));
    }
    if sd.encap_content_info.econtent_type != rfc5911::ID_DATA {
        return Verdict::Rejected {
            reason: "Invalid module sig (not pkcs7-data)".into(),
        };
    }
    if sd.encap_content_info.econtent.is_some() {
        return Verdict::Invalid {
            reason: "PKCS#7 carries its content; a module signature must be detached".into(),
        };
    }
    if signers.iter().any(|(si, _, _)| si.signed_attrs.is_some()) {
        return Verdict::Rejected {
            reason: "Invalid module sig (has authattrs)".into(),
        };
    }
    // pkcs7_validate_trust: ENOKEY unless some signer is trusted; ENOPKG beats ENOKEY;
    // any other failure ends it.
    let mut verdict = Verdict::NoKey {
        reason: "no trusted certificate matches the signer".into(),
    };
    for (si, hash, rsa) in signers {
        let cert = match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                let issuer = ias.issuer.to_der().unwrap_or_default();
                keyring.find_by_issuer_serial(&issuer, ias.serial_number.as_bytes())
            }
            SignerIdentifier::SubjectKeyIdentifier(skid) => keyring.find_by_skid(skid.0.as_bytes()),
        };
        let Some(cert) = cert else {
            verdict = match verdict {
                Verdict::NoKey { .. } => Verdict::NoKey {
                    reason: format!(
                        "no trusted certificate matches the signer ({})",
                        describe_sid(&si.sid)
                    ),
                },
                v => v,
            };
            continue;
        };
        let hash = match hash {
            Ok(h) => h,
            Err(name) => {
                if matches!(verdict, Verdict::NoKey { .. }) {
                    verdict = Verdict::NoPkg {
                        reason: format!("{name} digests are not checked by this tool"),
                    };
                }
                continue;
            }
        };
        match check_signature(cert, hash, rsa, body, si.signature.as_bytes()) {
            Ok(()) => {
                verdict = Verdict::Ok {
                    signer: cert.issuer_cn().unwrap_or_else(|| cert.subject()),
                    hash: hash.name().into(),
                    cert: cert.path.display().to_string(),
                }
            }
            Err(reason) => return Verdict::Rejected { reason },
        }
    }
    verdict
}

fn check_signature(
    cert: &Cert,
    hash: HashAlg,
    rsa: bool,
    body: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let public = cert.x509.public_key().map_err(|e| e.to_string())?;
    let kind = keys::key_kind(&public)?;
    if rsa != matches!(kind, keys::KeyKind::Rsa(_)) {
        return Err(format!(
            "signature algorithm does not fit the {kind} key of {}",
            cert.path.display()
        ));
    }
    let mut v = openssl::sign::Verifier::new(hash.md(), &public).map_err(|e| e.to_string())?;
    v.update(body).map_err(|e| e.to_string())?;
    match v.verify(sig) {
        Ok(true) => Ok(()),
        _ => Err(format!(
            "signature does not verify with the key of \"{}\"",
            cert.subject()
        )),
    }
}

fn describe_sid(sid: &SignerIdentifier) -> String {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => format!(
            "issuer \"{}\", serial {}",
            keys::common_name(&ias.issuer).unwrap_or_else(|| ias.issuer.to_string()),
            hex_colon(ias.serial_number.as_bytes())
        ),
        SignerIdentifier::SubjectKeyIdentifier(skid) => {
            format!("key id {}", hex_colon(skid.0.as_bytes()))
        }
    }
}

/// `AB:CD:...`, uppercase as kmod prints it.
pub fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlg;
    use crate::sign::cms::SignerIdKind;
    use proptest::prelude::*;

    /// A signed fake module and the keyring that trusts it (a real key and certificate).
    fn fixture() -> &'static (Vec<u8>, Keyring) {
        static F: std::sync::OnceLock<(Vec<u8>, Keyring)> = std::sync::OnceLock::new();
        F.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let o = crate::sign::keygen::KeygenOptions {
                out: dir.path().to_path_buf(),
                algo: crate::sign::keygen::Algo::EcdsaP256,
                cn: "prop".into(),
                days: 1,
                mok: false,
            };
            let f = crate::sign::keygen::generate(&o).unwrap();
            let key =
                crate::sign::SigningKey::load(&f.key, &f.cert_pem, &Default::default()).unwrap();
            let body: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
            let cms = key
                .sign(HashAlg::Sha256, SignerIdKind::IssuerSerial, &body)
                .unwrap();
            let mut ring = Keyring::default();
            ring.add_path(&f.cert_pem).unwrap();
            (crate::modfile::trailer::append(&body, &cms), ring)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary bytes never panic the kernel-rules check or the modinfo view.
        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = verify(&data, &fixture().1);
            let _ = crate::modfile::modinfo::sig_block(&data);
        }

        /// Flipping any bit of a signed module never leaves it verifying as OK, except in
        /// the one field the kernel does not read: SignedData.digestAlgorithms (only the
        /// SignerInfo's own digestAlgorithm counts). Found by this test; the kernel agrees.
        #[test]
        fn any_flipped_bit_is_caught(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let (signed, ring) = fixture();
            let sha256_oid = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
            let body_len = 4096;
            let unread = signed[body_len..]
                .windows(sha256_oid.len())
                .position(|w| w == sha256_oid)
                .map(|i| body_len + i + 2..body_len + i + sha256_oid.len())
                .expect("digestAlgorithms holds sha256");
            let base_ok = matches!(verify(signed, ring), Verdict::Ok { .. });
            prop_assert!(base_ok, "the unmodified module must verify");
            let mut m = signed.clone();
            let i = pos.index(m.len());
            prop_assume!(!unread.contains(&i));
            m[i] ^= 1 << bit;
            let ok = matches!(verify(&m, ring), Verdict::Ok { .. });
            prop_assert!(!ok, "flip at {} still verifies", i);
        }
    }
}
