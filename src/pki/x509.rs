//! X.509 certificates as the kernel keeps them (x509_cert_parser.c): the raw bytes of
//! serial, issuer and subject (never re-encoded: a Name is matched byte for byte), the
//! key ids it is found by, its public key, and the kernel's signature check.

use super::ber::{self, Reader, Tlv};
use super::mldsa::{self, MlDsa};
use super::{Errno, key_id, oid};
use crate::hash::HashAlg;

/// A public key the kernel can verify with.
#[derive(Debug, Clone)]
pub enum PublicKey {
    /// Modulus and exponent, big-endian without sign byte.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The curve's NID and the uncompressed point.
    Ec {
        nid: openssl::nid::Nid,
        point: Vec<u8>,
    },
    /// The parameter set and the encoded key (7.0+).
    MlDsa { level: MlDsa, key: Vec<u8> },
}

/// What a signature claims: its key type and digest (from the algorithm OIDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlgo {
    Rsa,
    Ecdsa,
    /// Over the data itself, no digest first.
    MlDsa(MlDsa),
}

impl SigAlgo {
    /// Whether a key of this type makes such signatures (`public_key_verify_signature`
    /// compares the two `pkey_algo`s: EKEYREJECTED when they differ).
    pub fn fits(self, key: &PublicKey) -> bool {
        match (self, key) {
            (SigAlgo::Rsa, PublicKey::Rsa { .. }) | (SigAlgo::Ecdsa, PublicKey::Ec { .. }) => true,
            (SigAlgo::MlDsa(a), PublicKey::MlDsa { level, .. }) => a == *level,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Certificate {
    /// The whole certificate, as found.
    pub der: Vec<u8>,
    pub serial: Vec<u8>,
    /// The issuer Name: whole element and content.
    pub issuer_tlv: Vec<u8>,
    pub issuer: Vec<u8>,
    pub subject_tlv: Vec<u8>,
    pub subject: Vec<u8>,
    pub skid: Option<Vec<u8>>,
    /// From the authorityKeyIdentifier: serial‖issuer, and the key id.
    pub auth_ids: [Option<Vec<u8>>; 2],
    pub public: PublicKey,
    /// The certificate's own signature: algorithm, digest (if the kernel has it) of
    /// the TBS bytes (none for ML-DSA, which signs them directly), and value.
    pub sig_algo: SigAlgo,
    pub sig_hash: Option<HashAlg>,
    pub tbs: Vec<u8>,
    pub signature: Vec<u8>,
    pub self_signed: bool,
    /// Self-signed, but with crypto the kernel lacks (its signature unchecked).
    pub unsupported_sig: bool,
}

impl Certificate {
    /// The ids the kernel files the key under (x509_key_preparse): serial‖issuer, the
    /// subjectKeyIdentifier, and the subject.
    pub fn ids(&self) -> [Option<Vec<u8>>; 3] {
        [
            Some(self.id()),
            self.skid.clone(),
            Some(key_id(&self.subject, b"")),
        ]
    }

    /// `cert->id`: serial‖issuer.
    pub fn id(&self) -> Vec<u8> {
        key_id(&self.serial, &self.issuer)
    }

    /// Parses as `x509_cert_parse` does, self-signature check included.
    pub fn parse(der: &[u8]) -> Result<Certificate, Errno> {
        let mut cert = Certificate::parse_unchecked(der)?;
        cert.check_self_signed()?;
        Ok(cert)
    }

    /// The same without the self-signature check (one signature verification): for a
    /// signer's own certificate, whose names and ids are all signing needs.
    pub fn parse_unchecked(der: &[u8]) -> Result<Certificate, Errno> {
        if der.len() > ber::MAX_LEN {
            return Err(Errno::MsgSize("certificate longer than 65535 bytes".into()));
        }
        let cert = Reader::new(der).expect(ber::SEQUENCE, "Certificate")?;
        let mut c = cert.reader();
        let tbs = c.expect(ber::SEQUENCE, "TBSCertificate")?;
        let outer_alg = c.expect(ber::SEQUENCE, "signatureAlgorithm")?;
        let sig = c.expect(0x03, "signature")?;
        c.finish("Certificate")?;
        let mut t = tbs.reader();
        t.optional(0xa0)?;
        let serial = t.expect(ber::INTEGER, "serialNumber")?;
        t.expect(ber::SEQUENCE, "signature")?;
        let issuer = t.expect(ber::SEQUENCE, "issuer")?;
        let validity = t.expect(ber::SEQUENCE, "validity")?;
        let mut v = validity.reader();
        v.any()?;
        v.any()?;
        v.finish("validity")?;
        let subject = t.expect(ber::SEQUENCE, "subject")?;
        let spki = t.expect(ber::SEQUENCE, "subjectPublicKeyInfo")?;
        t.optional(0x81)?;
        t.optional(0x82)?;
        let mut skid = None;
        let mut auth_ids = [None, None];
        if let Some(exts) = t.optional(0xa3)? {
            let list = exts.reader().expect(ber::SEQUENCE, "extensions")?;
            for ext in list.elements("extensions")? {
                let mut e = ext.reader();
                let id = e.expect(ber::OID, "extnID")?;
                e.optional(0x01)?;
                let value = e.expect(ber::OCTET_STRING, "extnValue")?;
                e.finish("Extension")?;
                if id.content == oid::SUBJECT_KEY_ID {
                    let k = Reader::new(value.content).expect(ber::OCTET_STRING, "SKID")?;
                    skid = Some(key_id(k.content, b""));
                } else if id.content == oid::AUTHORITY_KEY_ID {
                    auth_ids = akid(value.content)?;
                }
            }
        }
        t.finish("TBSCertificate")?;
        let (sig_algo, sig_hash) = signature_algorithm(&outer_alg)?;
        let public = public_key(&spki)?;
        // BIT STRING: the unused-bits byte, then the signature.
        let signature = sig.content.get(1..).unwrap_or_default().to_vec();
        let cert = Certificate {
            der: cert.raw.to_vec(),
            serial: serial.content.to_vec(),
            issuer_tlv: issuer.raw.to_vec(),
            issuer: issuer.content.to_vec(),
            subject_tlv: subject.raw.to_vec(),
            subject: subject.content.to_vec(),
            skid,
            auth_ids,
            public,
            sig_algo,
            sig_hash,
            tbs: tbs.raw.to_vec(),
            signature,
            self_signed: false,
            unsupported_sig: false,
        };
        Ok(cert)
    }

    /// x509_check_for_self_signed: issuer and subject the same bytes, the AKID (if
    /// any) naming this certificate, and then its signature must verify.
    fn check_self_signed(&mut self) -> Result<(), Errno> {
        if self.issuer != self.subject {
            return Ok(());
        }
        if let Some(a) = &self.auth_ids[0]
            && *a != self.id()
        {
            return Ok(());
        }
        if let Some(a) = &self.auth_ids[1]
            && Some(a) != self.skid.as_ref()
        {
            return Ok(());
        }
        if !self.sig_algo.fits(&self.public) {
            return Err(Errno::KeyRejected(
                "self-signed certificate's signature algorithm does not fit its key".into(),
            ));
        }
        if self.sig_supported() {
            self.check_signed_by(&self.public)?;
        } else {
            self.unsupported_sig = true;
        }
        self.self_signed = true;
        Ok(())
    }

    /// Whether this tool can check the certificate's signature (its digest is known).
    pub fn sig_supported(&self) -> bool {
        matches!(self.sig_algo, SigAlgo::MlDsa(_)) || self.sig_hash.is_some()
    }

    /// The certificate's signature checked with `issuer`'s key: over the digest of the
    /// TBS bytes, or (ML-DSA) over the bytes themselves.
    pub fn check_signed_by(&self, issuer: &PublicKey) -> Result<(), Errno> {
        match (self.sig_algo, self.sig_hash) {
            (SigAlgo::MlDsa(_), _) => {
                verify_signature(issuer, self.sig_algo, None, &self.tbs, &self.signature)
            }
            (_, Some(h)) => verify_signature(
                issuer,
                self.sig_algo,
                Some(h),
                &h.digest(&self.tbs),
                &self.signature,
            ),
            (_, None) => Err(Errno::NoPkg("certificate digest not supported".into())),
        }
    }
}

/// authorityKeyIdentifier: keyIdentifier [0], authorityCertIssuer [1] (a
/// directoryName [4]), authorityCertSerialNumber [2].
fn akid(value: &[u8]) -> Result<[Option<Vec<u8>>; 2], Errno> {
    let seq = Reader::new(value).expect(ber::SEQUENCE, "AuthorityKeyIdentifier")?;
    let mut r = seq.reader();
    let keyid = r.optional(0x80)?.map(|k| key_id(k.content, b""));
    let mut name = None;
    if let Some(names) = r.optional(0xa1)? {
        for gn in names.elements("GeneralNames")? {
            if gn.tag == 0xa4 {
                name = Some(gn.reader().expect(ber::SEQUENCE, "directoryName")?.content);
            }
        }
    }
    let serial = r.optional(0x82)?;
    let id0 = match (serial, name) {
        (Some(s), Some(n)) => Some(key_id(s.content, n)),
        _ => None,
    };
    Ok([id0, keyid])
}

/// The certificate's signature algorithm: key type and digest (None: a digest the
/// kernel knows but this tool cannot compute). Others are `-ENOPKG`.
fn signature_algorithm(alg: &Tlv) -> Result<(SigAlgo, Option<HashAlg>), Errno> {
    let id = alg.reader().expect(ber::OID, "algorithm")?;
    let o = id.content;
    const RSA_WITH: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const RSA_WITH_SHA3: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
    let hash_of =
        |names: &[(u8, HashAlg)], last: u8| names.iter().find(|(n, _)| *n == last).map(|(_, h)| *h);
    if o.len() == RSA_WITH.len() + 1 && o.starts_with(RSA_WITH) {
        let h = [
            (5, HashAlg::Sha1),
            (11, HashAlg::Sha256),
            (12, HashAlg::Sha384),
            (13, HashAlg::Sha512),
            (14, HashAlg::Sha224),
        ];
        if let Some(h) = hash_of(&h, o[8]) {
            return Ok((SigAlgo::Rsa, Some(h)));
        }
    }
    if o.len() == RSA_WITH_SHA3.len() + 1 && o.starts_with(RSA_WITH_SHA3) {
        let h = [
            (14, HashAlg::Sha3_256),
            (15, HashAlg::Sha3_384),
            (16, HashAlg::Sha3_512),
        ];
        if let Some(h) = hash_of(&h, o[8]) {
            return Ok((SigAlgo::Rsa, Some(h)));
        }
    }
    if oid::is_ecdsa_with(o) {
        let h = HashAlg::ALL
            .into_iter()
            .find(|h| h.ecdsa_oid().as_bytes() == o);
        return Ok((SigAlgo::Ecdsa, h));
    }
    if let Some(level) = MlDsa::from_oid(o) {
        return Ok((SigAlgo::MlDsa(level), None));
    }
    Err(Errno::NoPkg(format!(
        "certificate signature algorithm {} is not supported",
        oid::dotted(o)
    )))
}

fn public_key(spki: &Tlv) -> Result<PublicKey, Errno> {
    let mut r = spki.reader();
    let alg = r.expect(ber::SEQUENCE, "algorithm")?;
    let bits = r.expect(0x03, "subjectPublicKey")?;
    let key = bits.content.get(1..).unwrap_or_default();
    let mut a = alg.reader();
    let id = a.expect(ber::OID, "algorithm")?;
    if id.content == oid::RSA_ENCRYPTION {
        let seq = Reader::new(key).expect(ber::SEQUENCE, "RSAPublicKey")?;
        let mut k = seq.reader();
        let n = k.expect(ber::INTEGER, "modulus")?;
        let e = k.expect(ber::INTEGER, "publicExponent")?;
        let strip = |b: &[u8]| {
            let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
            b[i..].to_vec()
        };
        return Ok(PublicKey::Rsa {
            n: strip(n.content),
            e: strip(e.content),
        });
    }
    if id.content == oid::EC_PUBLIC_KEY {
        let curve = a.expect(ber::OID, "namedCurve")?;
        let nid = match curve.content {
            [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01] => openssl::nid::Nid::X9_62_PRIME192V1,
            [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => openssl::nid::Nid::X9_62_PRIME256V1,
            [0x2b, 0x81, 0x04, 0x00, 0x22] => openssl::nid::Nid::SECP384R1,
            other => {
                return Err(Errno::NoPkg(format!(
                    "EC curve {} is not supported",
                    oid::dotted(other)
                )));
            }
        };
        return Ok(PublicKey::Ec {
            nid,
            point: key.to_vec(),
        });
    }
    if let Some(level) = MlDsa::from_oid(id.content) {
        return Ok(PublicKey::MlDsa {
            level,
            key: key.to_vec(),
        });
    }
    Err(Errno::NoPkg(format!(
        "public key algorithm {} is not supported",
        oid::dotted(id.content)
    )))
}

/// `public_key_verify_signature` over `m`, with the kernel's error for each way it can
/// fail (crypto/rsa-pkcs1pad.c, crypto/rsa.c, crypto/ecdsa.c, lib/crypto/mldsa.c).
/// `m` is the digest made with `hash` (RSA's DigestInfo names it), or for ML-DSA the
/// signed bytes themselves.
pub fn verify_signature(
    key: &PublicKey,
    algo: SigAlgo,
    hash: Option<HashAlg>,
    m: &[u8],
    sig: &[u8],
) -> Result<(), Errno> {
    if !algo.fits(key) {
        return Err(Errno::KeyRejected(
            "the signature's key type differs from the key's".into(),
        ));
    }
    let no_hash = || Errno::Inval("no digest named for the signature".into());
    match key {
        PublicKey::Rsa { n, e } => rsa_pkcs1(n, e, hash.ok_or_else(no_hash)?, m, sig),
        PublicKey::Ec { nid, point } => ecdsa(*nid, point, m, sig),
        PublicKey::MlDsa { level, key } => {
            // crypto_mldsa_set_pub_key refuses a key of the wrong size.
            if key.len() != level.public_len() {
                return Err(Errno::Inval(format!(
                    "{} public key of {} bytes (want {})",
                    level.name(),
                    key.len(),
                    level.public_len()
                )));
            }
            // software_key_determine_akcipher: "none" or "sha512" only.
            if let Some(h) = hash.filter(|h| *h != HashAlg::Sha512) {
                return Err(Errno::Inval(format!(
                    "{} with {} (the kernel takes ML-DSA with sha512 or no digest)",
                    level.name(),
                    h.name()
                )));
            }
            mldsa::verify(*level, key, m, sig)
        }
    }
}

fn rsa_pkcs1(n: &[u8], e: &[u8], hash: HashAlg, digest: &[u8], sig: &[u8]) -> Result<(), Errno> {
    use openssl::bn::{BigNum, BigNumContext};
    let inval = |r: &str| Errno::Inval(r.into());
    let bn = |b: &[u8]| BigNum::from_slice(b).map_err(|e| inval(&e.to_string()));
    let k = n.len();
    if sig.len() != k {
        return Err(inval("RSA signature length differs from the key's"));
    }
    let (n, e, s) = (bn(n)?, bn(e)?, bn(sig)?);
    // rsa_check_payload: 1 < s < n - 1.
    let mut n1 = bn(&[])?;
    n1.checked_sub(&n, &BigNum::from_u32(1).expect("small"))
        .map_err(|e| inval(&e.to_string()))?;
    if s <= BigNum::from_u32(1).expect("small") || s >= n1 {
        return Err(inval("RSA signature out of range"));
    }
    let mut m = bn(&[])?;
    let mut ctx = BigNumContext::new().map_err(|e| inval(&e.to_string()))?;
    m.mod_exp(&s, &e, &n, &mut ctx)
        .map_err(|e| inval(&e.to_string()))?;
    let em = m
        .to_vec_padded(k as i32)
        .map_err(|e| inval(&e.to_string()))?;
    // pkcs1pad_verify_complete on the k-byte block.
    if em[0] != 0 {
        return Err(inval("RSA block does not start with 00"));
    }
    let em = &em[1..];
    let badmsg = || Errno::BadMsg("RSA PKCS#1 padding is wrong".into());
    if em[0] != 0x01 {
        return Err(badmsg());
    }
    let pos = 1 + em[1..].iter().take_while(|&&b| b == 0xff).count();
    if pos < 9 || pos == em.len() || em[pos] != 0 {
        return Err(badmsg());
    }
    let rest = &em[pos + 1..];
    let info = crate::pki::digest_info(hash, &vec![0; digest.len()]);
    let prefix = &info[..info.len() - digest.len()];
    if prefix.len() > rest.len() || rest[..prefix.len()] != prefix[..] {
        return Err(badmsg());
    }
    if &rest[prefix.len()..] != digest {
        return Err(Errno::KeyRejected(
            "RSA signature does not match the digest".into(),
        ));
    }
    Ok(())
}

fn ecdsa(nid: openssl::nid::Nid, point: &[u8], digest: &[u8], sig: &[u8]) -> Result<(), Errno> {
    use openssl::bn::{BigNum, BigNumContext};
    let inval = |r: String| Errno::Inval(r);
    let group = openssl::ec::EcGroup::from_curve_name(nid).map_err(|e| inval(e.to_string()))?;
    let mut ctx = BigNumContext::new().map_err(|e| inval(e.to_string()))?;
    let pt = openssl::ec::EcPoint::from_bytes(&group, point, &mut ctx)
        .map_err(|e| Errno::BadMsg(format!("EC point: {e}")))?;
    let key = openssl::ec::EcKey::from_public_key(&group, &pt).map_err(|e| inval(e.to_string()))?;
    let mut order = BigNum::new().map_err(|e| inval(e.to_string()))?;
    group
        .order(&mut order, &mut ctx)
        .map_err(|e| inval(e.to_string()))?;
    let size = order.num_bytes() as usize;
    // ecdsasignature.asn1 through the kernel's decoder: trailing bytes are ignored.
    let seq = Reader::new(sig).expect(ber::SEQUENCE, "ECDSA-Sig-Value")?;
    let mut r = seq.reader();
    let (rv, sv) = (r.expect(ber::INTEGER, "r")?, r.expect(ber::INTEGER, "s")?);
    r.finish("ECDSA-Sig-Value")?;
    let words = size.div_ceil(8) * 8;
    let int = |t: Tlv| -> Result<BigNum, Errno> {
        let mut v = t.content;
        if v.is_empty() || v.len() > words + 1 {
            return Err(Errno::Inval("ECDSA integer of the wrong size".into()));
        }
        if v.len() > words {
            if v[0] != 0 {
                return Err(Errno::Inval("ECDSA integer of the wrong size".into()));
            }
            v = &v[1..];
        }
        BigNum::from_slice(v).map_err(|e| inval(e.to_string()))
    };
    let (rn, sn) = (int(rv)?, int(sv)?);
    let zero = BigNum::new().map_err(|e| inval(e.to_string()))?;
    if rn == zero || rn >= order || sn == zero || sn >= order {
        return Err(Errno::BadMsg("ECDSA r or s out of range".into()));
    }
    let esig = openssl::ecdsa::EcdsaSig::from_private_components(rn, sn)
        .map_err(|e| inval(e.to_string()))?;
    // The kernel takes the digest's first curve-size bytes, as OpenSSL does.
    match esig.verify(digest, &key) {
        Ok(true) => Ok(()),
        _ => Err(Errno::KeyRejected("ECDSA signature does not verify".into())),
    }
}
