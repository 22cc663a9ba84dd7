//! Crafted module signatures, each built here byte by byte (independently of the code
//! under test), booted in the test kernel all at once: `verify`'s verdict must be the
//! kernel's for every one. Cases from an adversarial review, where `verify` and the
//! kernel used to disagree, plus controls.

use crate::common::*;
use crate::fixtures::{TRUSTED, boot, built_module, test_key};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// DER, and the BER variants the kernel also reads.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut v = vec![tag];
    match n {
        0..=0x7f => v.push(n as u8),
        0x80..=0xff => v.extend([0x81, n as u8]),
        _ => v.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(content);
    v
}
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &cat(parts))
}
fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x31, &cat(parts))
}
fn int(v: &[u8]) -> Vec<u8> {
    tlv(0x02, v)
}
fn octets(v: &[u8]) -> Vec<u8> {
    tlv(0x04, v)
}
fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut v = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut groups = vec![(a & 0x7f) as u8];
        let mut rest = a >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        v.extend(groups.iter().rev());
    }
    tlv(0x06, &v)
}

/// The children of a DER element (definite lengths).
fn children(der: &[u8]) -> Vec<&[u8]> {
    let (_, mut rest) = split(der);
    let mut v = Vec::new();
    while !rest.is_empty() {
        let n = element_len(rest);
        v.push(&rest[..n]);
        rest = &rest[n..];
    }
    v
}
fn element_len(d: &[u8]) -> usize {
    let (hdr, len) = header(d);
    hdr + len
}
fn header(d: &[u8]) -> (usize, usize) {
    match d[1] {
        n @ 0..=0x7f => (2, n as usize),
        0x81 => (3, d[2] as usize),
        0x82 => (4, (d[2] as usize) << 8 | d[3] as usize),
        b => panic!("length form {b:02x}"),
    }
}
/// (header, content) of a DER element.
fn split(d: &[u8]) -> (&[u8], &[u8]) {
    let (hdr, len) = header(d);
    (&d[..hdr], &d[hdr..hdr + len])
}

struct Signer {
    key: PKey<Private>,
    /// The certificate's issuer Name (whole element) and serial (content).
    issuer: Vec<u8>,
    serial: Vec<u8>,
    rsa: bool,
}

impl Signer {
    fn from_cert(key: PKey<Private>, cert_der: &[u8]) -> Signer {
        let tbs = children(cert_der)[0];
        let f = children(tbs);
        let f = if f[0][0] == 0xa0 { &f[1..] } else { &f[..] };
        Signer {
            rsa: key.rsa().is_ok(),
            key,
            serial: split(f[0]).1.to_vec(),
            issuer: f[2].to_vec(),
        }
    }

    fn load(name: &str) -> Signer {
        let k = test_key(name);
        let key = PKey::private_key_from_pem(&std::fs::read(&k.key).unwrap()).unwrap();
        let cert = openssl::x509::X509::from_pem(&std::fs::read(&k.cert).unwrap()).unwrap();
        Signer::from_cert(key, &cert.to_der().unwrap())
    }

    fn sign(&self, body: &[u8]) -> Vec<u8> {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        s.sign_oneshot_to_vec(body).unwrap()
    }

    fn sig_alg(&self) -> Vec<u8> {
        if self.rsa {
            seq(&[&oid("1.2.840.113549.1.1.1"), &[0x05, 0x00]])
        } else {
            seq(&[&oid("1.2.840.10045.4.3.2")])
        }
    }

    fn issuer_serial(&self) -> Vec<u8> {
        seq(&[&self.issuer, &int(&self.serial)])
    }
}

fn sha256_alg() -> Vec<u8> {
    seq(&[&oid("2.16.840.1.101.3.4.2.1")])
}

/// The parts of a SignedData, each replaceable.
struct Parts {
    version: Vec<u8>,
    digest_algs: Vec<u8>,
    content_info: Vec<u8>,
    certs: Vec<u8>,
    signer_infos: Vec<u8>,
}

fn signer_info(version: u8, sid: &[u8], s: &Signer, sig: &[u8], extra: &[u8]) -> Vec<u8> {
    seq(&[
        &int(&[version]),
        sid,
        &sha256_alg(),
        &s.sig_alg(),
        &octets(sig),
        extra,
    ])
}

impl Parts {
    /// What sign-file writes.
    fn standard(s: &Signer, body: &[u8]) -> Parts {
        Parts {
            version: int(&[1]),
            digest_algs: set(&[&sha256_alg()]),
            content_info: seq(&[&oid("1.2.840.113549.1.7.1")]),
            certs: Vec::new(),
            signer_infos: set(&[&signer_info(1, &s.issuer_serial(), s, &s.sign(body), &[])]),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let sd = seq(&[
            &self.version,
            &self.digest_algs,
            &self.content_info,
            &self.certs,
            &self.signer_infos,
        ]);
        seq(&[&oid("1.2.840.113549.1.7.2"), &tlv(0xa0, &sd)])
    }
}

/// `body` with `pkcs7` appended as the kernel's trailer frames it.
fn module(dir: &Path, name: &str, body: &[u8], pkcs7: &[u8]) -> PathBuf {
    let mut m = body.to_vec();
    m.extend_from_slice(pkcs7);
    m.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&(pkcs7.len() as u32).to_be_bytes());
    m.extend_from_slice(b"~Module signature appended~\n");
    let p = dir.join(format!("{name}.ko"));
    std::fs::write(&p, m).unwrap();
    p
}

/// Re-encodes DER with every length in the two-byte long form (valid BER), except
/// inside `keep` (a Name the kernel matches byte for byte).
fn long_lengths(der: &[u8], keep: &[u8]) -> Vec<u8> {
    if der == keep {
        return der.to_vec();
    }
    let (h, content) = split(der);
    let tag = h[0];
    let inner = if tag & 0x20 != 0 {
        let mut rest = content;
        let mut v = Vec::new();
        while !rest.is_empty() {
            let n = element_len(rest);
            v.extend(long_lengths(&rest[..n], keep));
            rest = &rest[n..];
        }
        v
    } else {
        content.to_vec()
    };
    let n = inner.len();
    cat(&[&[tag, 0x82, (n >> 8) as u8, n as u8], &inner])
}

/// The same element with an indefinite length (constructed only).
fn indefinite(der: &[u8]) -> Vec<u8> {
    let (h, content) = split(der);
    cat(&[&[h[0], 0x80], content, &[0, 0]])
}

/// A certificate for `subject_key`, issued by `issuer` (self-signed when None), with
/// the given serial, names and key ids.
fn certificate(
    subject_key: &PKey<Private>,
    subject: &openssl::x509::X509NameRef,
    issuer: Option<(&openssl::x509::X509, &PKey<Private>)>,
    serial: &[u8],
) -> openssl::x509::X509 {
    use openssl::x509::extension::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
    let mut b = openssl::x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = openssl::bn::BigNum::from_slice(serial).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(subject).unwrap();
    match issuer {
        Some((c, _)) => b.set_issuer_name(c.subject_name()).unwrap(),
        None => b.set_issuer_name(subject).unwrap(),
    }
    b.set_pubkey(subject_key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let skid = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
        .unwrap();
    b.append_extension(skid).unwrap();
    if issuer.is_some() {
        let akid = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .unwrap();
        b.append_extension(akid).unwrap();
    }
    b.sign(
        issuer.map_or(subject_key, |(_, k)| k),
        MessageDigest::sha256(),
    )
    .unwrap();
    b.build()
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
}

/// Keys made once for all cases.
struct Fixtures {
    intermediate_keys: [PKey<Private>; 2],
}

/// Every case, signing `body`: (name, PKCS#7).
fn cases(body: &[u8], fx: &Fixtures) -> Vec<(&'static str, Vec<u8>)> {
    let body = body.to_vec();
    let rsa = Signer::load("rsa2048");
    let ec = Signer::load("p256");
    let sig = rsa.sign(&body);
    let std_si = signer_info(1, &rsa.issuer_serial(), &rsa, &sig, &[]);
    let mut cases: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let base = Parts::standard(&rsa, &body);
    cases.push(("control-sign-file-form", base.encode()));

    let mut two = base.encode();
    two.extend([0, 0]);
    cases.push(("two-bytes-after-contentinfo", two));

    let mut p = Parts::standard(&rsa, &body);
    p.digest_algs = seq(&[&sha256_alg()]);
    cases.push(("digest-algorithms-as-sequence", p.encode()));

    let mut p = Parts::standard(&rsa, &body);
    p.signer_infos = seq(&[&std_si]);
    cases.push(("signer-infos-as-sequence", p.encode()));

    let attr = seq(&[&oid("1.2.3.4"), &set(&[&octets(b"x")])]);
    let mut p = Parts::standard(&rsa, &body);
    p.signer_infos = set(&[&signer_info(
        1,
        &rsa.issuer_serial(),
        &rsa,
        &sig,
        &tlv(0xa1, &cat(&[&attr, &attr])),
    )]);
    cases.push(("unsigned-attributes-duplicated", p.encode()));

    cases.push((
        "ber-long-form-lengths",
        long_lengths(&base.encode(), &rsa.issuer),
    ));

    let whole = base.encode();
    let inner = children(&whole);
    let sd = children(inner[1])[0];
    cases.push((
        "ber-indefinite-lengths",
        indefinite(&seq(&[inner[0], &indefinite(&tlv(0xa0, &indefinite(sd)))])),
    ));

    let mut p = Parts::standard(&rsa, &body);
    p.signer_infos = set(&[]);
    cases.push(("zero-signer-infos", p.encode()));

    let mut p = Parts::standard(&rsa, &body);
    p.content_info = seq(&[
        &oid("1.2.840.113549.1.7.1"),
        &tlv(0xa0, &octets(b"content")),
    ]);
    cases.push(("econtent-present", p.encode()));

    let skid = [0x11u8; 20];
    let mut p = Parts::standard(&rsa, &body);
    p.signer_infos = set(&[&signer_info(1, &tlv(0x80, &skid), &rsa, &sig, &[])]);
    cases.push(("v1-signer-info-with-skid", p.encode()));

    let mut p = Parts::standard(&rsa, &body);
    p.signer_infos = set(&[&signer_info(2, &rsa.issuer_serial(), &rsa, &sig, &[])]);
    cases.push(("signer-info-v2", p.encode()));

    let mut p = Parts::standard(&rsa, &body);
    p.version = int(&[7]);
    cases.push(("signed-data-v7", p.encode()));

    let mut p = Parts::standard(&rsa, &body);
    p.version = int(&[0, 1]);
    cases.push(("non-minimal-version", p.encode()));

    let ct = seq(&[
        &oid("1.2.840.113549.1.9.3"),
        &set(&[&oid("1.2.840.113549.1.7.1")]),
    ]);
    let mut p = Parts::standard(&rsa, &body);
    let si = seq(&[
        &int(&[1]),
        &rsa.issuer_serial(),
        &sha256_alg(),
        &tlv(0xa0, &ct),
        &rsa.sig_alg(),
        &octets(&sig),
    ]);
    p.signer_infos = set(&[&si]);
    cases.push(("signed-attributes-without-message-digest", p.encode()));

    // 65,535 bytes loads, one more is "Message too long": padded by an unsigned
    // attribute, its size found by trying.
    for (name, want) in [
        ("pkcs7-of-65535-bytes", 65_535usize),
        ("pkcs7-of-65536-bytes", 65_536),
    ] {
        let mut pad = want - 700;
        let enc = loop {
            let attr = seq(&[&oid("1.2.3.4"), &set(&[&octets(&vec![0x55; pad])])]);
            let mut p = Parts::standard(&rsa, &body);
            p.signer_infos = set(&[&signer_info(
                1,
                &rsa.issuer_serial(),
                &rsa,
                &sig,
                &tlv(0xa1, &attr),
            )]);
            let e = p.encode();
            if e.len() == want {
                break e;
            }
            pad += want - e.len();
        };
        assert_eq!(enc.len(), want);
        cases.push((name, enc));
    }

    // SignerInfo v3 whose key id is the trusted certificate's serial‖issuer content:
    // the kernel matches it against every id of its keys.
    let mut p = Parts::standard(&rsa, &body);
    p.version = int(&[3]);
    let id = cat(&[&rsa.serial, split(&rsa.issuer).1]);
    p.signer_infos = set(&[&signer_info(3, &tlv(0x80, &id), &rsa, &sig, &[])]);
    cases.push(("skid-equal-to-serial-and-issuer", p.encode()));

    // ECDSA: a zero byte after the Ecdsa-Sig-Value.
    let mut esig = ec.sign(&body);
    esig.push(0);
    let mut p = Parts::standard(&ec, &body);
    p.signer_infos = set(&[&signer_info(1, &ec.issuer_serial(), &ec, &esig, &[])]);
    cases.push(("ecdsa-signature-with-trailing-zero", p.encode()));

    // ECDSA: the Ecdsa-Sig-Value's SEQUENCE tagged primitive (0x10): the kernel's
    // asn1_ber_decoder ignores the constructed bit of a constructed element's tag.
    let mut esig = ec.sign(&body);
    esig[0] = 0x10;
    let mut p = Parts::standard(&ec, &body);
    p.signer_infos = set(&[&signer_info(1, &ec.issuer_serial(), &ec, &esig, &[])]);
    cases.push(("ecdsa-signature-sequence-tagged-primitive", p.encode()));

    // ECDSA: digestEncryptionAlgorithm says ecdsa-with-SHA384 over a SHA-256 digest.
    // The kernel maps every ecdsa-with-SHA* OID to "ecdsa" (pkcs7_sig_note_pkey_algo)
    // and takes the hash from digestAlgorithm alone: one bit of sign-file's OID.
    let mut p = Parts::standard(&ec, &body);
    p.signer_infos = set(&[&seq(&[
        &int(&[1]),
        &ec.issuer_serial(),
        &sha256_alg(),
        &seq(&[&oid("1.2.840.10045.4.3.3")]),
        &octets(&ec.sign(&body)),
    ])]);
    cases.push(("ecdsa-signature-algorithm-oid-says-sha384", p.encode()));

    // A certificate in the message with the trusted signer's issuer and serial, but
    // another key: the kernel checks the signature with that key.
    let trusted =
        openssl::x509::X509::from_pem(&std::fs::read(test_key("rsa2048").cert).unwrap()).unwrap();
    let other =
        PKey::private_key_from_pem(&std::fs::read(test_key("untrusted").key).unwrap()).unwrap();
    let mut b = openssl::x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(trusted.serial_number()).unwrap();
    b.set_subject_name(trusted.subject_name()).unwrap();
    b.set_issuer_name(trusted.issuer_name()).unwrap();
    b.set_pubkey(&other).unwrap();
    b.set_not_before(trusted.not_before()).unwrap();
    b.set_not_after(trusted.not_after()).unwrap();
    b.sign(&other, MessageDigest::sha256()).unwrap();
    let impostor = b.build().to_der().unwrap();
    assert_eq!(
        Signer::from_cert(other.clone(), &impostor).issuer,
        rsa.issuer
    );
    let mut p = Parts::standard(&rsa, &body);
    p.certs = tlv(0xa0, &impostor);
    cases.push((
        "embedded-cert-with-trusted-issuer-serial-other-key",
        p.encode(),
    ));

    // An intermediate in the message, issued by a trusted key (AKID names it), signs
    // the module; once with a 24-byte serial (more than RFC 5280's 20).
    let ca_key =
        PKey::private_key_from_pem(&std::fs::read(test_key("rsa3072").key).unwrap()).unwrap();
    let ca =
        openssl::x509::X509::from_pem(&std::fs::read(test_key("rsa3072").cert).unwrap()).unwrap();
    for ((name, serial), ikey) in [
        ("intermediate-chaining-to-a-trusted-key", vec![0x42u8; 8]),
        ("intermediate-with-a-24-byte-serial", vec![0x42u8; 24]),
    ]
    .into_iter()
    .zip(fx.intermediate_keys.clone())
    {
        let mut n = openssl::x509::X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", name).unwrap();
        let icert = certificate(&ikey, &n.build(), Some((&ca, &ca_key)), &serial)
            .to_der()
            .unwrap();
        let s = Signer::from_cert(ikey, &icert);
        let mut p = Parts::standard(&s, &body);
        p.certs = tlv(0xa0, &icert);
        cases.push((name, p.encode()));
    }

    cases
}

/// Every case as a module of its own name (`kmodtest` renamed in every place, so all
/// load in one boot), signed after the renaming.
fn corpus(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let base = std::fs::read(built_module("kmodtest")).unwrap();
    let fx = Fixtures {
        intermediate_keys: [rsa_key(), rsa_key()],
    };
    let n = cases(&base, &fx).len();
    (0..n)
        .map(|i| {
            let name = format!("kmc{i:05}");
            let body = replace_all(&base, b"kmodtest", name.as_bytes());
            let (case, p7) = cases(&body, &fx).swap_remove(i);
            (case, module(dir, case, &body, &p7))
        })
        .collect()
}

fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut v = data.to_vec();
    let mut i = 0;
    while let Some(at) = v[i..].windows(from.len()).position(|w| w == from) {
        v[i + at..i + at + to.len()].copy_from_slice(to);
        i += at + to.len();
    }
    v
}

/// The kernel's errno, from what `run` saw.
fn kernel_errno(r: &serde_json::Value) -> String {
    if r["loaded"] == true {
        return "OK".into();
    }
    match r["refusal"].as_str() {
        Some("unsigned") => "ENODATA",
        Some("unavailable-key") => "ENOKEY",
        Some("unsupported-crypto") => "ENOPKG",
        Some("bad-signature") => "EKEYREJECTED",
        Some("malformed-signature") => "EBADMSG",
        Some("invalid-argument") => "EINVAL",
        Some("signature-too-long") => "EMSGSIZE",
        _ => return format!("other: {r}"),
    }
    .into()
}

#[test]
fn verify_equals_the_booted_kernel_on_crafted_signatures() {
    let d = tempfile::tempdir().unwrap();
    let cases = corpus(d.path());
    let mods: Vec<&Path> = cases.iter().map(|(_, p)| p.as_path()).collect();
    let (_, v, err) = boot(&mods, &[]);
    assert_eq!(v["finished"], true, "{v}\n{err}");
    let mut c = kmod();
    c.args(["verify", "--message-format", "json"]);
    for n in TRUSTED {
        c.arg("--cert").arg(test_key(n).cert);
    }
    let o = c.args(&mods).output().unwrap();
    let ours: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ours.len(), cases.len(), "{}", stderr(&o));
    let mut table = String::new();
    let mut wrong = Vec::new();
    for (i, (name, _)) in cases.iter().enumerate() {
        let kernel = kernel_errno(&v["modules"][i]);
        let verdict = ours[i]["verdict"].as_str().unwrap_or("?").to_string();
        table += &format!("{name:<52} kernel {kernel:<13} verify {verdict}\n");
        if kernel != verdict {
            wrong.push(format!(
                "{name}: kernel {kernel}, verify {} ({})",
                verdict, ours[i]
            ));
        }
    }
    eprintln!("{table}");
    assert!(
        wrong.is_empty(),
        "verify differs from the kernel:\n{}\n\n{table}",
        wrong.join("\n")
    );
    // The controls and the review's "kernel loads" cases must load, so the table
    // proves both directions.
    for name in [
        "control-sign-file-form",
        "two-bytes-after-contentinfo",
        "pkcs7-of-65535-bytes",
        "intermediate-with-a-24-byte-serial",
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(name) && l.contains("kernel OK ")),
            "{name} did not load:\n{table}"
        );
    }
}

/// A self-signed certificate whose issuer (= subject) holds a multi-valued RDN with
/// its two values in non-DER order, re-signed after the swap (OpenSSL itself always
/// writes the DER order). And one with a 24-byte serial.
fn odd_certificates(key: &PKey<Private>) -> [(&'static str, Vec<u8>); 2] {
    let mut n = openssl::x509::X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", "cargo-kmod multi-valued")
        .unwrap();
    n.append_entry_by_text_with_type("O", "rdn", openssl::asn1::Asn1Type::UTF8STRING)
        .unwrap();
    let name = n.build();
    let plain = certificate(key, &name, None, &[0x01, 0x23])
        .to_der()
        .unwrap();
    // Make the two RDNs one multi-valued RDN with the values swapped: SET { O, CN }
    // where DER order would sort them by encoding.
    let tbs = children(&plain)[0];
    let fields = children(tbs);
    let name_der = fields[3];
    let rdns = children(name_der);
    let avas: Vec<&[u8]> = rdns.iter().map(|r| children(r)[0]).collect();
    let mut sorted = avas.clone();
    sorted.sort();
    sorted.reverse(); // the order DER forbids
    let odd_name = seq(&[&set(&sorted)]);
    let new_fields: Vec<Vec<u8>> = fields
        .iter()
        .map(|f| {
            if *f == name_der {
                odd_name.clone()
            } else {
                f.to_vec()
            }
        })
        .collect();
    let refs: Vec<&[u8]> = new_fields.iter().map(|f| f.as_slice()).collect();
    let tbs = seq(&refs);
    let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), key).unwrap();
    let sig = s.sign_oneshot_to_vec(&tbs).unwrap();
    let alg = children(&plain)[1];
    let odd = seq(&[&tbs, alg, &tlv(0x03, &cat(&[&[0], &sig]))]);
    let serial24 = certificate(key, &name, None, &[0x5a; 24]).to_der().unwrap();
    [
        ("multi-valued-rdn-out-of-order", odd),
        ("serial-of-24-bytes", serial24),
    ]
}

/// Regressions: `sign` re-encoded the issuer (sorting a multi-valued RDN), so the
/// kernel could not match it (ENOKEY) while `verify` said OK; a 24-byte serial made
/// the certificate unusable (exit 4) and `certs` dropped it. sign-file copies the
/// certificate's bytes: so must we, byte for byte.
#[test]
fn certificates_the_kernel_takes_as_they_are_sign_like_sign_file() {
    let d = tempfile::tempdir().unwrap();
    let module = unsigned_module(d.path(), "dummy");
    let key = rsa_key();
    let key_pem = d.path().join("key.pem");
    std::fs::write(&key_pem, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let mut image = b"\x7fELF".to_vec();
    image.resize(256, 0);
    for (name, der) in odd_certificates(&key) {
        let cert = d.path().join(format!("{name}.der"));
        std::fs::write(&cert, &der).unwrap();
        image.extend(&der);
        let (theirs, ours) = (d.path().join("theirs.ko"), d.path().join("ours.ko"));
        run(Std::new(sign_file())
            .arg("sha256")
            .args([&key_pem, &cert, &module, &theirs]));
        let k = Key {
            key: key_pem.clone(),
            cert: cert.clone(),
        };
        let o = sign_cmd(&k, "sha256")
            .arg("-o")
            .arg(&ours)
            .arg(&module)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let t = std::fs::read(&theirs).unwrap();
        assert!(
            t == std::fs::read(&ours).unwrap(),
            "{name}: differs from sign-file"
        );
        let tbs = children(&der)[0];
        let issuer = children(tbs)[3];
        assert!(
            t.windows(issuer.len()).any(|w| w == issuer),
            "{name}: issuer re-encoded"
        );
        assert_verifies(&cert, &ours);
    }
    image.extend([0u8; 64]);
    let vmlinux = d.path().join("vmlinux");
    std::fs::write(&vmlinux, image).unwrap();
    let o = kmod().arg("certs").arg(&vmlinux).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).matches("subject:").count(), 2, "{}", stdout(&o));
}

/// Regression: a PKCS#7 with 8,000 SignerInfos (376 KB) took `verify` 29 s (a
/// quadratic SET OF decode). Past 65,535 bytes the kernel refuses it unread; the most
/// that fits (600 of these) is parsed in linear time.
#[test]
fn many_signer_infos_are_judged_in_linear_time() {
    let d = tempfile::tempdir().unwrap();
    let body = std::fs::read(built_module("kmodtest")).unwrap();
    let rsa = Signer::load("rsa2048");
    let si = signer_info(1, &rsa.issuer_serial(), &rsa, &[0x42; 8], &[]);
    for (n, verdict, code) in [(600, "EKEYREJECTED", 13), (8000, "EMSGSIZE", 19)] {
        let mut p = Parts::standard(&rsa, &body);
        p.signer_infos = tlv(0x31, &si.repeat(n));
        let m = module(d.path(), &format!("many-{n}"), &body, &p.encode());
        for cmd in ["verify", "info"] {
            let started = std::time::Instant::now();
            let mut c = kmod();
            c.arg(cmd);
            if cmd == "verify" {
                c.arg("--cert").arg(test_key("rsa2048").cert);
            }
            let o = c.arg(&m).output().unwrap();
            let secs = started.elapsed().as_secs_f64();
            eprintln!("{cmd} with {n} SignerInfos: {secs:.2} s");
            assert!(secs < 10.0, "{cmd} {n}: {secs:.1} s");
            if cmd == "verify" {
                assert_eq!(o.status.code(), Some(code), "{n}: {}", stdout(&o));
                assert!(stdout(&o).contains(verdict), "{n}: {}", stdout(&o));
            }
        }
    }
}
