//! Judging a module signature as the kernel does (kernel/module/signing.c,
//! crypto/asymmetric_keys/pkcs7_{parser,verify,trust}.c), in the kernel's order.

pub mod keyring;

use crate::hash::HashAlg;
use crate::modfile::trailer::{self, Trailer};
use crate::pki::cert::{self as keys, Cert};
pub use crate::pki::hex_colon;
use crate::pki::x509::SigAlgo;
use crate::pki::{Errno, pkcs7, x509};
use der::Decode;
pub use keyring::Keyring;

/// The kernel's verdict on a module's signature: accepted, or the errno it refuses
/// it with (whose words are the loader's, in [`crate::loader`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok {
        signer: String,
        hash: String,
        cert: String,
    },
    Refused(Errno),
}

/// `{"verdict": "OK", "signer", "hash", "cert"}` or `{"verdict": "ENOKEY", "reason"}`.
impl serde::Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match self {
            Verdict::Ok { signer, hash, cert } => {
                m.serialize_entry("verdict", "OK")?;
                m.serialize_entry("signer", signer)?;
                m.serialize_entry("hash", hash)?;
                m.serialize_entry("cert", cert)?;
            }
            Verdict::Refused(e) => {
                m.serialize_entry("verdict", e.name())?;
                m.serialize_entry("reason", e.reason())?;
            }
        }
        m.end()
    }
}

impl Verdict {
    pub fn errno_name(&self) -> &'static str {
        match self {
            Verdict::Ok { .. } => "OK",
            Verdict::Refused(e) => e.name(),
        }
    }

    /// Documented exit codes 10..=15 and 19; 0 for OK.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Ok { .. } => crate::error::exit::OK,
            Verdict::Refused(e) => e.exit_code(),
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Verdict::Ok { signer, hash, .. } => format!("signed by \"{signer}\" with {hash}"),
            Verdict::Refused(e) => e.reason().into(),
        }
    }

    /// What the kernel does at `insmod` with signature enforcement
    /// (MODULE_SIG_FORCE, module.sig_enforce=1, lockdown/Secure Boot).
    pub fn enforced(&self) -> String {
        match self {
            Verdict::Ok { .. } => "loads".into(),
            Verdict::Refused(e) => e.enforced(),
        }
    }

    /// What the kernel does without enforcement.
    pub fn permissive(&self) -> String {
        match self {
            Verdict::Ok { .. } => "loads".into(),
            Verdict::Refused(e) => e.permissive(),
        }
    }

    /// The errno it is refused with, if it is.
    pub fn errno(&self) -> Option<&Errno> {
        match self {
            Verdict::Ok { .. } => None,
            Verdict::Refused(e) => Some(e),
        }
    }
}

impl From<Errno> for Verdict {
    fn from(e: Errno) -> Verdict {
        Verdict::Refused(e)
    }
}

/// Judges `data` (a decompressed module, signature included) against `keyring`, step
/// by step as `mod_verify_sig` → `verify_pkcs7_signature` does: parse, detached data,
/// `pkcs7_verify` (signatures, and certificate chains inside the message), then
/// `pkcs7_validate_trust` against the trusted keys.
pub fn verify(data: &[u8], keyring: &Keyring) -> Verdict {
    let (body, cms_der) = match trailer::parse(data) {
        Trailer::Unsigned => return Errno::NoData("module is not signed".into()).into(),
        Trailer::Malformed(r) => return Errno::BadMsg(r.into()).into(),
        Trailer::NotPkcs7(t) => {
            return Errno::NoPkg(format!("signature type {t} is not PKCS#7")).into();
        }
        Trailer::Signed { body, cms, .. } => (body, cms),
    };
    match judge(body, cms_der, keyring) {
        Ok(v) => v,
        Err(e) => e.into(),
    }
}

/// `cargo kmod verify` of many modules, `jobs` at once: each read (at most
/// `max_module_bytes`) and judged against `keyring`; results in the order given.
pub fn verify_modules(
    modules: &[std::path::PathBuf],
    keyring: &Keyring,
    max_module_bytes: u64,
    jobs: usize,
    r: &dyn crate::report::Reporter,
) -> Vec<crate::Result<Verdict>> {
    crate::tree::par_map(modules, jobs, r, "verifying", |m| {
        crate::modfile::ModuleFile::open(m, max_module_bytes)
            .map(|module| verify(&module.data, keyring))
    })
}

/// What pkcs7_verify and pkcs7_validate_trust learn about one SignerInfo.
struct Signer {
    /// Index into the message's certificates of the signer's certificate.
    cert: Option<usize>,
    /// Why its crypto is unsupported (ENOPKG), if it is.
    unsupported: Option<String>,
}

fn judge(body: &[u8], cms_der: &[u8], keyring: &Keyring) -> Result<Verdict, Errno> {
    let msg = pkcs7::parse(cms_der)?;
    if msg.has_data {
        return Err(Errno::BadMsg(
            "PKCS#7 signature with non-detached data (it carries its content)".into(),
        ));
    }
    if !msg.data_is_pkcs7_data {
        return Err(Errno::KeyRejected(
            "Invalid module sig (not pkcs7-data)".into(),
        ));
    }
    if !keyring.crypto.mldsa_parsed
        && let Some(si) = msg
            .signers
            .iter()
            .find(|s| matches!(s.algo, SigAlgo::MlDsa(_)))
    {
        return Err(Errno::NoPkg(format!(
            "{} signature, and ML-DSA came in Linux 7.0 (\"Unsupported pkey algo\")",
            algo_name(si)
        )));
    }
    if msg.have_authattrs {
        const REFUSED: &str = "Invalid module sig (has authattrs)";
        // The waiver covers a message whose first signer is ML-DSA (pkcs7_check_authattrs).
        let waivable = matches!(msg.signers[0].algo, SigAlgo::MlDsa(_));
        match keyring.crypto.mldsa_waiver {
            Some(true) if waivable => {} // "Waived invalid module sig (has authattrs)"
            None if waivable => {
                // No .config says: give both outcomes.
                let mut waived = keyring.clone();
                waived.crypto.mldsa_waiver = Some(true);
                let with = match judge(body, cms_der, &waived) {
                    Ok(v) => format!("{}: {}", v.errno_name(), v.reason()),
                    Err(e) => format!("{}: {}", e.name(), e.reason()),
                };
                return Err(Errno::KeyRejected(format!(
                    "{REFUSED}: ML-DSA with signed attributes is accepted only by a kernel with {}=y (there: {with}); sign without --signed-attrs for every 7.0+ kernel",
                    crate::target::MLDSA_WAIVER
                )));
            }
            _ => return Err(Errno::KeyRejected(REFUSED.into())),
        }
    }
    // pkcs7_verify: each signature against its certificate in the message, if any.
    let mut links: Vec<Option<usize>> = vec![None; msg.certs.len()];
    let mut signers = Vec::new();
    let mut any_ok = false;
    for si in &msg.signers {
        let mut s = Signer {
            cert: None,
            unsupported: None,
        };
        match verify_one(&msg, si, body, &keyring.crypto, &mut s, &mut links) {
            Ok(()) => any_ok = true,
            Err(Errno::NoPkg(why)) => s.unsupported = Some(why),
            Err(e) => return Err(e),
        }
        signers.push(s);
    }
    if !any_ok {
        let why = signers[0].unsupported.clone().unwrap_or_default();
        return Err(Errno::NoPkg(why));
    }
    // pkcs7_validate_trust: ENOKEY unless some signer is trusted, ENOPKG beats it,
    // any other failure ends it.
    let mut verified: Vec<Option<&Cert>> = vec![None; msg.certs.len()];
    let mut seen = vec![false; msg.certs.len()];
    let mut verdict: Result<Verdict, Errno> = Err(Errno::NoKey(format!(
        "no trusted certificate matches the signer ({})",
        describe_signer(&msg.signers[0])
    )));
    for (si, s) in msg.signers.iter().zip(&signers) {
        if s.unsupported.is_some() {
            if matches!(verdict, Err(Errno::NoKey(_))) {
                verdict = Err(Errno::NoPkg("the signer's crypto is not supported".into()));
            }
            continue;
        }
        match trust_one(&msg, si, s, body, keyring, &links, &mut seen, &mut verified) {
            Ok(cert) => {
                verdict = Ok(Verdict::Ok {
                    signer: cert.issuer_cn().unwrap_or_else(|| cert.subject()),
                    hash: match (si.algo, si.has_authattrs) {
                        // ML-DSA hashes inside: name the scheme, and a digest only
                        // when signed attributes needed one.
                        (SigAlgo::MlDsa(l), false) => l.name().into(),
                        (SigAlgo::MlDsa(l), true) => format!(
                            "{} (signed attributes, {})",
                            l.name(),
                            si.hash.map_or("?", |h| h.name())
                        ),
                        _ => si.hash.map_or("?", |h| h.name()).into(),
                    },
                    cert: cert.path.display().to_string(),
                })
            }
            Err(Errno::NoKey(_)) => {}
            Err(e) => return Err(e),
        }
    }
    verdict
}

/// `pkcs7_digest`: what the signature is over, and its digest algorithm (none for
/// ML-DSA without attributes, which signs the module itself). With attributes, their
/// messageDigest must be the module's; then the attributes are signed (hashed first,
/// but not for ML-DSA). A digest the kernel was built without is ENOPKG there.
fn signed_bytes<'b>(
    si: &pkcs7::SignerInfo,
    body: &'b [u8],
    crypto: &crate::target::Crypto,
) -> Result<(Option<HashAlg>, std::borrow::Cow<'b, [u8]>), Errno> {
    let mldsa = matches!(si.algo, SigAlgo::MlDsa(_));
    if mldsa && !si.has_authattrs {
        return Ok((None, body.into()));
    }
    let h = match si.hash {
        Ok(h) if !crypto.has_hash(h) => {
            return Err(Errno::NoPkg(format!(
                "the kernel has no {} ({} is not set)",
                h.name(),
                h.crypto_config()
            )));
        }
        Ok(h) => h,
        Err(name) => {
            return Err(Errno::NoPkg(format!(
                "{name} digests are not checked by this tool"
            )));
        }
    };
    let digest = h.digest(body);
    let (Some(attrs), Some(md)) = (&si.authattrs, &si.msgdigest) else {
        return Ok((Some(h), digest.into()));
    };
    if md.len() != digest.len() {
        return Err(Errno::BadMsg(format!(
            "messageDigest of {} bytes; {} gives {} (\"Invalid digest size\")",
            md.len(),
            h.name(),
            digest.len()
        )));
    }
    if *md != digest {
        return Err(Errno::KeyRejected(
            "the signed attributes' messageDigest is not the module's (\"Message digest doesn't match\")"
                .into(),
        ));
    }
    Ok((
        Some(h),
        if mldsa {
            attrs.clone().into()
        } else {
            h.digest(attrs).into()
        },
    ))
}

/// The signature scheme as users name it: "ML-DSA-65", "RSA", "ECDSA".
fn algo_name(si: &pkcs7::SignerInfo) -> &'static str {
    match si.algo {
        SigAlgo::Rsa => "RSA",
        SigAlgo::Ecdsa => "ECDSA",
        SigAlgo::MlDsa(l) => l.name(),
    }
}

/// `pkcs7_verify_one`: the digest, the signer's certificate among the message's, its
/// key over the signature (errors as they come: EINVAL, EBADMSG, EKEYREJECTED), and
/// the chain above it inside the message.
fn verify_one(
    msg: &pkcs7::Message,
    si: &pkcs7::SignerInfo,
    body: &[u8],
    crypto: &crate::target::Crypto,
    s: &mut Signer,
    links: &mut [Option<usize>],
) -> Result<(), Errno> {
    let (hash, m) = signed_bytes(si, body, crypto)?;
    let Some(i) = msg.certs.iter().position(|c| c.id() == si.auth_id) else {
        return Ok(());
    };
    s.cert = Some(i);
    x509::verify_signature(&msg.certs[i].public, si.algo, hash, &m, &si.signature)?;
    // pkcs7_verify_sig_chain
    let mut seen = vec![false; msg.certs.len()];
    let mut x = i;
    loop {
        seen[x] = true;
        let c = &msg.certs[x];
        if c.self_signed {
            if !c.unsupported_sig {
                links[x] = Some(x);
            }
            return Ok(());
        }
        let issuer = match &c.auth_ids {
            [Some(a), skid] => {
                let Some(p) = msg.certs.iter().position(|p| p.id() == *a) else {
                    return Ok(());
                };
                if let Some(k) = skid
                    && msg.certs[p].skid.as_ref() != Some(k)
                {
                    return Err(Errno::KeyRejected(
                        "X.509 chain contains auth-skid nonmatch".into(),
                    ));
                }
                p
            }
            [None, Some(k)] => match msg.certs.iter().position(|p| p.skid.as_ref() == Some(k)) {
                Some(p) => p,
                None => return Ok(()),
            },
            [None, None] => return Ok(()),
        };
        if seen[issuer] {
            return Ok(());
        }
        c.check_signed_by(&msg.certs[issuer].public)?;
        links[x] = Some(issuer);
        if x == issuer {
            return Ok(());
        }
        x = issuer;
    }
}

/// `find_asymmetric_key(trusted, id_0, id_1)`: exact match of the first id given
/// against any id of a key; with both, the key's subjectKeyIdentifier must be the
/// second. An empty id is the key search's `-EINVAL`.
fn find_trusted<'k>(
    keyring: &'k Keyring,
    id_0: Option<&[u8]>,
    id_1: Option<&[u8]>,
) -> Result<(&'k Cert, &'k x509::Certificate), Errno> {
    let lookup = id_0.or(id_1).unwrap_or_default();
    if lookup.is_empty() {
        return Err(Errno::Inval(
            "empty key id (the keyring search refuses it)".into(),
        ));
    }
    let found = keyring.certs.iter().find_map(|c| {
        let k = c.kernel.as_ref().ok()?;
        k.ids()
            .iter()
            .any(|id| id.as_deref() == Some(lookup))
            .then_some((c, k))
    });
    let Some((c, k)) = found else {
        return Err(Errno::NoKey(
            "no trusted certificate matches the signer".into(),
        ));
    };
    if let (Some(_), Some(skid)) = (id_0, id_1)
        && k.skid.as_deref() != Some(skid)
    {
        return Err(Errno::KeyRejected(
            "key found, but its key id differs".into(),
        ));
    }
    Ok((c, k))
}

/// `pkcs7_validate_trust_one`: the first certificate of the chain that a trusted key
/// vouches for (or the signer itself, without certificates), and that key's check of
/// the signature below it. Every failure of that check is EKEYREJECTED.
#[allow(clippy::too_many_arguments)]
fn trust_one<'k>(
    msg: &pkcs7::Message,
    si: &pkcs7::SignerInfo,
    s: &Signer,
    body: &[u8],
    keyring: &'k Keyring,
    links: &[Option<usize>],
    seen: &mut [bool],
    verified: &mut [Option<&'k Cert>],
) -> Result<&'k Cert, Errno> {
    // The signature a trusted key must verify: the module's, or a certificate's.
    enum Signed {
        Module,
        Cert(usize),
    }
    let mut signed = Signed::Module;
    let mut last = None;
    let mut x = s.cert;
    let mut chain = Vec::new();
    let mut matched = None;
    while let Some(i) = x {
        if seen[i] {
            // A chain another SignerInfo already proved (`goto verified`).
            if let Some(cert) = verified[i] {
                return Ok(cert);
            }
            return Err(Errno::NoKey(
                "no trusted certificate matches the chain".into(),
            ));
        }
        seen[i] = true;
        chain.push(i);
        let c = &msg.certs[i];
        match find_trusted(keyring, Some(&c.id()), c.skid.as_deref()) {
            Ok(k) => {
                matched = Some(k);
                break;
            }
            Err(_) if links[i] == Some(i) => {
                return Err(Errno::NoKey(
                    "the message's self-signed certificate is not trusted".into(),
                ));
            }
            Err(_) => {}
        }
        last = Some(i);
        signed = Signed::Cert(i);
        x = links[i];
    }
    if matched.is_none()
        && let Some(l) = last
        && (msg.certs[l].auth_ids[0].is_some() || msg.certs[l].auth_ids[1].is_some())
    {
        let [a0, a1] = &msg.certs[l].auth_ids;
        match find_trusted(keyring, a0.as_deref(), a1.as_deref()) {
            Ok(k) => {
                matched = Some(k);
                signed = Signed::Cert(l);
            }
            Err(Errno::NoKey(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if matched.is_none() {
        match find_trusted(keyring, Some(&si.auth_id), None) {
            Ok(k) => {
                matched = Some(k);
                signed = Signed::Module;
                chain.clear(); // the kernel marks no certificate verified this way
            }
            Err(Errno::NoKey(_)) => {
                return Err(Errno::NoKey(format!(
                    "no trusted certificate matches the signer ({})",
                    describe_signer(si)
                )));
            }
            Err(e) => return Err(e),
        }
    }
    let (cert, key) = matched.expect("set above");
    let checked = match signed {
        Signed::Module => {
            let (hash, m) = signed_bytes(si, body, &keyring.crypto)?;
            x509::verify_signature(&key.public, si.algo, hash, &m, &si.signature)
        }
        Signed::Cert(i) => msg.certs[i].check_signed_by(&key.public),
    };
    if let Err(e) = checked {
        return Err(Errno::KeyRejected(format!(
            "signature does not verify with the key of \"{}\" ({})",
            cert.subject(),
            e.reason()
        )));
    }
    for i in chain {
        verified[i] = Some(cert);
    }
    Ok(cert)
}

fn describe_signer(si: &pkcs7::SignerInfo) -> String {
    match (&si.issuer_tlv, &si.serial) {
        (Some(issuer), Some(serial)) if !si.by_skid => format!(
            "issuer \"{}\", serial {}",
            x509_cert::name::Name::from_der(issuer)
                .ok()
                .and_then(|n| keys::common_name(&n))
                .unwrap_or_else(|| hex::encode(issuer)),
            hex_colon(serial)
        ),
        _ => format!("key id {}", hex_colon(&si.auth_id)),
    }
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

    /// The (byte, bit) flips of a sign-file-shaped PKCS#7 that the kernel's grammar
    /// does not notice.
    fn indifferent(p7: &[u8]) -> std::collections::HashSet<(usize, u8)> {
        use crate::pki::ber::read_tlv;
        let mut out = std::collections::HashSet::new();
        // (offset, depth) of elements to look into: the grammar's constructed ones
        // down to the SignerInfo's fields; a Name's content is matched as bytes.
        fn walk(
            p7: &[u8],
            at: usize,
            end: usize,
            depth: usize,
            out: &mut std::collections::HashSet<(usize, u8)>,
        ) {
            let mut pos = at;
            let mut index = 0;
            while pos < end {
                let t = read_tlv(p7, pos).expect("well-formed fixture");
                if t.tag & 0x20 != 0 {
                    out.insert((pos, 5));
                }
                // In SignedData (depth 3): digestAlgorithms (field 1) and signerInfos
                // (field 3) are SET or SEQUENCE OF; digestAlgorithms' content is unread.
                if depth == 3 && (index == 1 || index == 3) {
                    out.insert((pos, 0));
                }
                if depth == 3 && index == 1 {
                    for j in pos + t.hdr..pos + t.raw.len() {
                        out.extend((0..8).map(|b| (j, b)));
                    }
                }
                if t.tag & 0x20 != 0 && depth < 6 {
                    walk(p7, pos + t.hdr, pos + t.raw.len(), depth + 1, out);
                }
                pos += t.raw.len();
                index += 1;
            }
        }
        walk(p7, 0, p7.len(), 0, &mut out);
        // The ECDSA signature ends the PKCS#7: its Ecdsa-Sig-Value's SEQUENCE tag may be
        // primitive too (the booted kernel agrees: corpus.rs,
        // ecdsa-signature-sequence-tagged-primitive).
        if let Some(q) = (0..p7.len()).find(|&q| {
            p7[q] == 0x04
                && read_tlv(p7, q)
                    .is_ok_and(|t| q + t.raw.len() == p7.len() && p7.get(q + t.hdr) == Some(&0x30))
        }) {
            out.insert((q + read_tlv(p7, q).expect("found").hdr, 5));
        }
        // ecdsa-with-SHA256's last OID byte, bit 0, makes ecdsa-with-SHA384: the kernel
        // maps every ecdsa-with-SHA* to "ecdsa" and takes the hash from digestAlgorithm
        // (corpus.rs, ecdsa-signature-algorithm-oid-says-sha384, booted).
        const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        if let Some(q) = p7
            .windows(ECDSA_SHA256.len())
            .position(|w| w == ECDSA_SHA256)
        {
            out.insert((q + ECDSA_SHA256.len() - 1, 0));
        }
        out
    }

    /// The attribute form's verdict follows the kernel's waiver; ML-DSA before 7.0 is
    /// ENOPKG whatever the form.
    #[test]
    fn mldsa_verdicts_follow_the_kernels_config() {
        let dir = tempfile::tempdir().unwrap();
        let o = crate::sign::keygen::KeygenOptions {
            out: dir.path().to_path_buf(),
            algo: crate::sign::keygen::Algo::MlDsa(crate::pki::mldsa::MlDsa::L44),
            cn: "ml".into(),
            days: 1,
            mok: false,
        };
        let f = crate::sign::keygen::generate(&o).unwrap();
        let mut key =
            crate::sign::SigningKey::load(&f.key, &f.cert_pem, &Default::default()).unwrap();
        let body = vec![7u8; 5000];
        let plain = key
            .sign(HashAlg::Sha512, SignerIdKind::IssuerSerial, &body)
            .unwrap();
        key.set_signed_attrs(true).unwrap();
        let attrs = key
            .sign(HashAlg::Sha512, SignerIdKind::KeyId, &body)
            .unwrap();
        let (plain, attrs) = (
            crate::modfile::trailer::append(&body, &plain),
            crate::modfile::trailer::append(&body, &attrs),
        );
        let mut ring = Keyring::default();
        ring.add_path(&f.cert_pem).unwrap();
        let with = |waiver: Option<bool>, parsed: bool| {
            let mut r = ring.clone();
            r.crypto.mldsa_waiver = waiver;
            r.crypto.mldsa_parsed = parsed;
            r
        };
        for waiver in [None, Some(false), Some(true)] {
            assert!(matches!(
                verify(&plain, &with(waiver, true)),
                Verdict::Ok { .. }
            ));
        }
        assert!(matches!(
            verify(&attrs, &with(Some(true), true)),
            Verdict::Ok { .. }
        ));
        let Verdict::Refused(Errno::KeyRejected(reason)) = verify(&attrs, &with(Some(false), true))
        else {
            panic!("the attribute form loads without the waiver")
        };
        assert_eq!(reason, "Invalid module sig (has authattrs)");
        let Verdict::Refused(Errno::KeyRejected(reason)) = verify(&attrs, &with(None, true)) else {
            panic!("no config: not rejected")
        };
        assert!(reason.contains("(there: OK: "), "{reason}");
        for m in [&plain, &attrs] {
            assert!(matches!(
                verify(m, &with(Some(true), false)),
                Verdict::Refused(Errno::NoPkg(_))
            ));
        }
        // The messageDigest must be the module's.
        let mut changed = attrs.clone();
        changed[10] ^= 1;
        assert!(matches!(
            verify(&changed, &with(Some(true), true)),
            Verdict::Refused(Errno::KeyRejected(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary bytes never panic the kernel-rules check or the modinfo view.
        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = verify(&data, &fixture().1);
            let _ = crate::modfile::modinfo::sig_block(&data);
        }

        /// Flipping any bit of a signed module never leaves it verifying as OK, except
        /// where the kernel's grammar does not care (each confirmed by the booted
        /// kernel in tests/cli/corpus.rs): the content of digestAlgorithms (only the
        /// SignerInfo's digest counts), SET or SEQUENCE for the two CHOICE lists, and
        /// the constructed bit of a constructed element's tag.
        #[test]
        fn any_flipped_bit_is_caught(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let (signed, ring) = fixture();
            let body_len = 4096;
            let ignored = indifferent(&signed[body_len..signed.len() - 40]);
            let base_ok = matches!(verify(signed, ring), Verdict::Ok { .. });
            prop_assert!(base_ok, "the unmodified module must verify");
            let mut m = signed.clone();
            let i = pos.index(m.len());
            prop_assume!(!i.checked_sub(body_len).is_some_and(|j| ignored.contains(&(j, bit))));
            m[i] ^= 1 << bit;
            let ok = matches!(verify(&m, ring), Verdict::Ok { .. });
            prop_assert!(!ok, "flip at {} still verifies", i);
        }
    }
}
