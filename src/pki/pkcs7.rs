//! PKCS#7 SignedData as `pkcs7_parse_message` reads it: the grammar of
//! crypto/asymmetric_keys/pkcs7.asn1 with the checks of pkcs7_parser.c, each failing
//! with the kernel's errno, in the order the kernel meets them.

use super::ber::{self, Reader, Tlv};
use super::x509::{Certificate, SigAlgo};
use super::{Errno, key_id, oid};
use crate::hash::HashAlg;

#[derive(Debug, Clone)]
pub struct SignerInfo {
    /// SignerInfo v3 (subjectKeyIdentifier) rather than v1 (issuer and serial).
    pub by_skid: bool,
    /// `sig->auth_ids[0]`: serial‖issuer, or the key id.
    pub auth_id: Vec<u8>,
    /// The issuer Name and serial as written (for messages).
    pub issuer_tlv: Option<Vec<u8>>,
    pub serial: Option<Vec<u8>>,
    /// The digest, or the name of one the kernel knows but this tool cannot compute.
    pub hash: Result<HashAlg, &'static str>,
    pub algo: SigAlgo,
    pub has_authattrs: bool,
    /// The authenticated attributes as signed: their `[0]` retagged as a SET (what
    /// pkcs7_digest hashes, or ML-DSA signs), and the messageDigest's value.
    pub authattrs: Option<Vec<u8>>,
    pub msgdigest: Option<Vec<u8>>,
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub version: u8,
    /// `data_type`: id-data, or Authenticode's indirect data.
    pub data_is_pkcs7_data: bool,
    /// eContent present (a module signature must be detached).
    pub has_data: bool,
    pub certs: Vec<Certificate>,
    pub signers: Vec<SignerInfo>,
    pub have_authattrs: bool,
}

/// Parse state the kernel keeps across SignerInfos (pkcs7_parse_context).
#[derive(Default)]
struct Ctx<'a> {
    version: u8,
    data_type: Option<&'a [u8]>,
    raw_serial: &'a [u8],
    raw_issuer: &'a [u8],
    raw_skid: &'a [u8],
}

fn inval(r: impl Into<String>) -> Errno {
    Errno::Inval(r.into())
}
fn badmsg(r: impl Into<String>) -> Errno {
    Errno::BadMsg(r.into())
}

/// `pkcs7_parse_message`.
pub fn parse(data: &[u8]) -> Result<Message, Errno> {
    if data.len() > ber::MAX_LEN {
        return Err(Errno::MsgSize(format!(
            "PKCS#7 of {} bytes; the kernel's ASN.1 decoder takes at most 65535 (\"Message too long\")",
            data.len()
        )));
    }
    // Bytes after the ContentInfo are never looked at.
    let ci = Reader::new(data).expect(ber::SEQUENCE, "ContentInfo")?;
    let mut r = ci.reader();
    let ct = r.expect(ber::OID, "contentType")?;
    if ct.content != oid::SIGNED_DATA {
        return Err(inval(format!(
            "content type {} is not signedData (\"Only support pkcs7_signedData type\")",
            oid::dotted(ct.content)
        )));
    }
    let mut msg = Message {
        version: 0,
        data_is_pkcs7_data: false,
        has_data: false,
        certs: Vec::new(),
        signers: Vec::new(),
        have_authattrs: false,
    };
    let mut ctx = Ctx::default();
    if let Some(content) = r.optional(0xa0)? {
        let mut c = content.reader();
        let sd = c.expect(ber::SEQUENCE, "SignedData")?;
        c.finish("[0] content")?;
        signed_data(&sd, &mut ctx, &mut msg)?;
    }
    r.finish("ContentInfo")?;
    msg.data_is_pkcs7_data = ctx.data_type == Some(oid::DATA);
    // pkcs7_check_authattrs
    let Some(first) = msg.signers.first() else {
        return Err(inval(
            "no SignerInfo (\"Inconsistently supplied authAttrs\")",
        ));
    };
    let want = first.has_authattrs;
    if msg.signers.iter().any(|s| s.has_authattrs != want) {
        return Err(inval("Inconsistently supplied authAttrs"));
    }
    msg.have_authattrs = want;
    Ok(msg)
}

fn signed_data<'a>(sd: &Tlv<'a>, ctx: &mut Ctx<'a>, msg: &mut Message) -> Result<(), Errno> {
    let mut r = sd.reader();
    let v = r.expect(ber::INTEGER, "SignedData version")?;
    ctx.version = match ber::small_int(&v) {
        Some(v @ (1 | 3)) => v,
        _ => {
            return Err(inval(format!(
                "SignedData version {:02x?} (\"Unsupported SignedData version\")",
                v.content
            )));
        }
    };
    msg.version = ctx.version;
    // digestAlgorithms: SET OF or SEQUENCE OF; only their structure counts.
    let algs = match r.optional(ber::SET)? {
        Some(t) => t,
        None => r.expect(ber::SEQUENCE, "digestAlgorithms")?,
    };
    for a in algs.elements("digestAlgorithms")? {
        algorithm_identifier(&a)?;
    }
    // contentInfo, then pkcs7_note_content on its type.
    let info = r.expect(ber::SEQUENCE, "contentInfo")?;
    let mut i = info.reader();
    let ty = i.expect(ber::OID, "contentType")?;
    if let Some(data) = i.optional(0xa0)? {
        data.reader().any()?;
        msg.has_data = true;
    }
    i.finish("contentInfo")?;
    if ty.content != oid::DATA && ty.content != oid::MS_INDIRECT_DATA {
        return Err(inval(format!(
            "content type {} (\"Unsupported data type\")",
            oid::dotted(ty.content)
        )));
    }
    ctx.data_type = Some(ty.content);
    // certificates [0] SET OF or [2] SEQUENCE OF; crls [1] or [3].
    if let Some(certs) = r
        .optional(0xa0)?
        .map_or_else(|| r.optional(0xa2), |c| Ok(Some(c)))?
    {
        for c in certs.elements("certificates")? {
            msg.certs.push(extract_cert(&c)?);
        }
    }
    if let Some(crls) = r
        .optional(0xa1)?
        .map_or_else(|| r.optional(0xa3), |c| Ok(Some(c)))?
    {
        // CertificateList ::= SEQUENCE OF Certificate, each parsed as one (and kept
        // nowhere), as the kernel's grammar has it.
        for list in crls.elements("crls")? {
            if list.tag & !ber::CONS != 0x10 {
                return Err(badmsg("CRL is not a SEQUENCE"));
            }
            for c in list.elements("CertificateList")? {
                extract_cert(&c)?;
            }
        }
    }
    let infos = match r.optional(ber::SET)? {
        Some(t) => t,
        None => r.expect(ber::SEQUENCE, "signerInfos")?,
    };
    for si in infos.elements("signerInfos")? {
        msg.signers.push(signer_info(&si, ctx)?);
    }
    r.finish("SignedData")
}

/// `pkcs7_extract_cert`: a SEQUENCE, parsed by `x509_cert_parse`.
fn extract_cert(c: &Tlv) -> Result<Certificate, Errno> {
    if c.tag != ber::SEQUENCE {
        return Err(badmsg(format!("certificate begins with tag {:02x}", c.tag)));
    }
    Certificate::parse(c.raw)
}

/// AlgorithmIdentifier: SEQUENCE { OID, ANY OPTIONAL }; the OID's content.
fn algorithm_identifier<'a>(a: &Tlv<'a>) -> Result<&'a [u8], Errno> {
    if a.tag & !ber::CONS != 0x10 {
        return Err(badmsg("AlgorithmIdentifier is not a SEQUENCE"));
    }
    let mut r = a.reader();
    let id = r.expect(ber::OID, "algorithm")?;
    if !r.at_end() {
        r.any()?;
    }
    r.finish("AlgorithmIdentifier")?;
    Ok(id.content)
}

fn signer_info<'a>(si: &Tlv<'a>, ctx: &mut Ctx<'a>) -> Result<SignerInfo, Errno> {
    if si.tag & !ber::CONS != 0x10 {
        return Err(badmsg("SignerInfo is not a SEQUENCE"));
    }
    let mut r = si.reader();
    let v = r.expect(ber::INTEGER, "SignerInfo version")?;
    // pkcs7_note_signerinfo_version
    let by_skid = match ber::small_int(&v) {
        Some(1) if ctx.version == 1 => false,
        Some(3) if ctx.version != 1 => true,
        Some(1 | 3) => {
            return Err(badmsg("SignedData-SignerInfo version mismatch"));
        }
        _ => {
            return Err(inval(format!(
                "SignerInfo version {:02x?} (\"Unsupported SignerInfo version\")",
                v.content
            )));
        }
    };
    // sid: IssuerAndSerialNumber, or [0] IMPLICIT SubjectKeyIdentifier.
    let (mut issuer_tlv, mut serial) = (None, None);
    if let Some(skid) = r.optional(0x80)? {
        ctx.raw_skid = skid.content;
    } else {
        let ias = r.expect(ber::SEQUENCE, "sid")?;
        let mut i = ias.reader();
        let issuer = i.expect(ber::SEQUENCE, "issuer")?;
        name(&issuer)?;
        let s = i.expect(ber::INTEGER, "serialNumber")?;
        i.finish("IssuerAndSerialNumber")?;
        ctx.raw_issuer = issuer.content;
        ctx.raw_serial = s.content;
        issuer_tlv = Some(issuer.raw.to_vec());
        serial = Some(s.content.to_vec());
    }
    let digest = r.expect(ber::SEQUENCE, "digestAlgorithm")?;
    let hash = digest_algorithm(algorithm_identifier(&digest)?)?;
    let (mut has_authattrs, mut authattrs, mut msgdigest) = (false, None, None);
    if let Some(aa) = r.optional(0xa0)? {
        msgdigest = Some(authenticated_attributes(&aa, ctx)?);
        has_authattrs = true;
        let mut set = aa.raw.to_vec();
        set[0] = ber::SET;
        authattrs = Some(set);
    } else if let Some(aa) = r.optional(0xa2)? {
        // [2] EXPLICIT SEQUENCE OF: parsed, but never marks the signer as having them.
        let seq = aa
            .reader()
            .expect(ber::SEQUENCE, "authenticatedAttributes")?;
        for a in seq.elements("authenticatedAttributes")? {
            attribute(&a)?;
        }
    }
    let alg = r.expect(ber::SEQUENCE, "digestEncryptionAlgorithm")?;
    let alg_oid = algorithm_identifier(&alg)?;
    let algo = if alg_oid == oid::RSA_ENCRYPTION {
        SigAlgo::Rsa
    } else if oid::is_ecdsa_with(alg_oid) {
        SigAlgo::Ecdsa
    } else if let Some(level) = super::mldsa::MlDsa::from_oid(alg_oid) {
        SigAlgo::MlDsa(level)
    } else {
        return Err(Errno::NoPkg(format!(
            "unsupported signature algorithm {} (\"Unsupported pkey algo\")",
            oid::dotted(alg_oid)
        )));
    };
    let sig = r.expect(ber::OCTET_STRING, "encryptedDigest")?;
    if let Some(ua) = r
        .optional(0xa1)?
        .map_or_else(|| r.optional(0xa3), |u| Ok(Some(u)))?
    {
        for a in ua.elements("unauthenticatedAttributes")? {
            attribute(&a)?;
        }
    }
    r.finish("SignerInfo")?;
    // pkcs7_note_signed_info
    if ctx.data_type == Some(oid::MS_INDIRECT_DATA) && !has_authattrs {
        return Err(badmsg("Authenticode requires AuthAttrs"));
    }
    let auth_id = if by_skid {
        key_id(ctx.raw_skid, b"")
    } else {
        key_id(ctx.raw_serial, ctx.raw_issuer)
    };
    Ok(SignerInfo {
        by_skid,
        auth_id,
        issuer_tlv,
        serial,
        hash,
        algo,
        has_authattrs,
        authattrs,
        msgdigest,
        signature: sig.content.to_vec(),
    })
}

/// `pkcs7_sig_note_digest_algo`: the digests the kernel names (SM3 and Streebog it
/// knows, this tool cannot compute them); others are `-ENOPKG` while parsing.
fn digest_algorithm(o: &[u8]) -> Result<Result<HashAlg, &'static str>, Errno> {
    if let Some(h) = HashAlg::ALL.into_iter().find(|h| h.oid().as_bytes() == o) {
        return Ok(Ok(h));
    }
    match o {
        oid::SM3 => Ok(Err("sm3")),
        oid::STREEBOG256 => Ok(Err("streebog256")),
        oid::STREEBOG512 => Ok(Err("streebog512")),
        _ => Err(Errno::NoPkg(format!(
            "unsupported digest algorithm {} (\"Unsupported digest algo\")",
            oid::dotted(o)
        ))),
    }
}

/// Name ::= SEQUENCE OF SET OF SEQUENCE { OID, ANY }: structure only.
fn name(n: &Tlv) -> Result<(), Errno> {
    let mut r = n.reader();
    while !r.at_end() {
        let rdn = r.expect(ber::SET, "RelativeDistinguishedName")?;
        for ava in rdn.elements("RelativeDistinguishedName")? {
            if ava.tag & !ber::CONS != 0x10 {
                return Err(badmsg("AttributeValueAssertion is not a SEQUENCE"));
            }
            let mut a = ava.reader();
            a.expect(ber::OID, "attributeType")?;
            a.any()?;
            a.finish("AttributeValueAssertion")?;
        }
    }
    Ok(())
}

/// Attribute ::= SEQUENCE { type OID, values SET OF ANY }; its type and values.
fn attribute<'a>(a: &Tlv<'a>) -> Result<(&'a [u8], Vec<Tlv<'a>>), Errno> {
    if a.tag & !ber::CONS != 0x10 {
        return Err(badmsg("Attribute is not a SEQUENCE"));
    }
    let mut r = a.reader();
    let ty = r.expect(ber::OID, "attribute type")?;
    let values = r.expect(ber::SET, "attribute values")?;
    r.finish("Attribute")?;
    Ok((ty.content, values.elements("attribute values")?))
}

/// `[0] IMPLICIT SET OF AuthenticatedAttribute`, with the checks of
/// `pkcs7_sig_note_authenticated_attr` and `pkcs7_sig_note_set_of_authattrs`; the
/// messageDigest's value.
fn authenticated_attributes(aa: &Tlv, ctx: &Ctx) -> Result<Vec<u8>, Errno> {
    let (mut content_type, mut time, mut caps, mut opus, mut statement) =
        (false, false, false, false, false);
    let mut digest = None;
    let repeated = || Errno::KeyRejected("Repeated/multivalue AuthAttrs not permitted".into());
    let indirect = ctx.data_type == Some(oid::MS_INDIRECT_DATA);
    for a in aa.elements("authenticatedAttributes")? {
        let (ty, values) = attribute(&a)?;
        for v in values {
            let seen = |flag: &mut bool| std::mem::replace(flag, true);
            match ty {
                oid::CONTENT_TYPE => {
                    if seen(&mut content_type) {
                        return Err(repeated());
                    }
                    if v.tag != ber::OID || Some(v.content) != ctx.data_type {
                        return Err(badmsg("contentType attribute differs from the content's"));
                    }
                }
                oid::SIGNING_TIME if seen(&mut time) => return Err(repeated()),
                oid::MESSAGE_DIGEST => {
                    if digest.is_some() {
                        return Err(repeated());
                    }
                    if v.tag != ber::OCTET_STRING {
                        return Err(badmsg("messageDigest is not an OCTET STRING"));
                    }
                    digest = Some(v.content.to_vec());
                }
                oid::SMIME_CAPS => {
                    if seen(&mut caps) {
                        return Err(repeated());
                    }
                    if !indirect {
                        return Err(Errno::KeyRejected(
                            "S/MIME Caps only allowed with Authenticode".into(),
                        ));
                    }
                }
                oid::MS_OPUS_INFO | oid::MS_STATEMENT_TYPE => {
                    let flag = if ty == oid::MS_OPUS_INFO {
                        &mut opus
                    } else {
                        &mut statement
                    };
                    if seen(flag) {
                        return Err(repeated());
                    }
                    if !indirect {
                        return Err(Errno::KeyRejected(
                            "Authenticode AuthAttrs only allowed with Authenticode".into(),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    let Some(digest) = digest.filter(|_| content_type) else {
        return Err(badmsg(
            "Missing required AuthAttr (contentType and messageDigest)",
        ));
    };
    if !indirect && opus {
        return Err(badmsg("Unexpected Authenticode AuthAttr"));
    }
    Ok(digest)
}
