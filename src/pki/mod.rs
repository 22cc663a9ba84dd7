//! PKCS#7 and X.509 as the kernel reads them: its grammar (crypto/asymmetric_keys/
//! pkcs7.asn1, x509.asn1), its decoder's leniency (BER, CHOICE of SET or SEQUENCE,
//! trailing bytes), and its error codes. Used by `verify`, `certs` and `sign`.

pub mod ber;
pub mod cert;
pub mod cms;
pub mod mldsa;
pub mod oid;
pub mod pkcs7;
pub mod x509;

pub use crate::loader::Errno;

/// `asymmetric_key_generate_id(a, b)`: the two byte strings joined. Keys and signers
/// are matched by these ids, exactly.
pub fn key_id(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

/// `AB:CD:...`, uppercase as kmod prints it.
pub fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// DER DigestInfo ::= SEQUENCE { AlgorithmIdentifier { oid, NULL }, OCTET STRING digest }.
pub fn digest_info(hash: crate::hash::HashAlg, digest: &[u8]) -> Vec<u8> {
    let oid = hash.oid();
    let oid = oid.as_bytes();
    let mut alg = vec![0x06, oid.len() as u8];
    alg.extend_from_slice(oid);
    alg.extend_from_slice(&[0x05, 0x00]);
    let mut body = vec![0x30, alg.len() as u8];
    body.extend_from_slice(&alg);
    body.extend_from_slice(&[0x04, digest.len() as u8]);
    body.extend_from_slice(digest);
    let mut out = vec![0x30, body.len() as u8];
    out.extend_from_slice(&body);
    out
}
