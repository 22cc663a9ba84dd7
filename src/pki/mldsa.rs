//! ML-DSA (FIPS 204) as the kernel verifies it since 7.0 (lib/crypto/mldsa.c): pure
//! ML-DSA with an empty context, over the data itself. The signature's encoding is
//! checked here as the kernel decodes it (its errno for each way it can be malformed);
//! the lattice arithmetic is AWS-LC's.

use super::Errno;
use aws_lc_sys as ffi;

/// The three parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlDsa {
    L44,
    L65,
    L87,
}

/// What the kernel's decoder needs of a parameter set (mldsa_parameter_sets[]).
struct Params {
    k: usize,
    l: usize,
    ctilde_len: usize,
    omega: usize,
    beta: i32,
    gamma1: i32,
}

impl MlDsa {
    pub const ALL: [MlDsa; 3] = [MlDsa::L44, MlDsa::L65, MlDsa::L87];

    /// id-ml-dsa-44/65/87 (2.16.840.1.101.3.4.3.17–19) as DER content bytes.
    pub fn oid(self) -> &'static [u8] {
        match self {
            MlDsa::L44 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11],
            MlDsa::L65 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12],
            MlDsa::L87 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13],
        }
    }

    pub fn from_oid(oid: &[u8]) -> Option<MlDsa> {
        MlDsa::ALL.into_iter().find(|m| m.oid() == oid)
    }

    /// "ML-DSA-65", as FIPS 204 and OpenSSL name it.
    pub fn name(self) -> &'static str {
        match self {
            MlDsa::L44 => "ML-DSA-44",
            MlDsa::L65 => "ML-DSA-65",
            MlDsa::L87 => "ML-DSA-87",
        }
    }

    /// The kernel's `pkey_algo` ("mldsa65").
    pub fn kernel_name(self) -> &'static str {
        match self {
            MlDsa::L44 => "mldsa44",
            MlDsa::L65 => "mldsa65",
            MlDsa::L87 => "mldsa87",
        }
    }

    pub fn public_len(self) -> usize {
        match self {
            MlDsa::L44 => 1312,
            MlDsa::L65 => 1952,
            MlDsa::L87 => 2592,
        }
    }

    pub fn signature_len(self) -> usize {
        match self {
            MlDsa::L44 => 2420,
            MlDsa::L65 => 3309,
            MlDsa::L87 => 4627,
        }
    }

    /// AWS-LC's NID for the parameter set.
    pub fn nid(self) -> i32 {
        match self {
            MlDsa::L44 => ffi::NID_MLDSA44,
            MlDsa::L65 => ffi::NID_MLDSA65,
            MlDsa::L87 => ffi::NID_MLDSA87,
        }
    }

    pub fn from_nid(nid: i32) -> Option<MlDsa> {
        MlDsa::ALL.into_iter().find(|m| m.nid() == nid)
    }

    fn params(self) -> Params {
        match self {
            MlDsa::L44 => Params {
                k: 4,
                l: 4,
                ctilde_len: 32,
                omega: 80,
                beta: 78,
                gamma1: 1 << 17,
            },
            MlDsa::L65 => Params {
                k: 6,
                l: 5,
                ctilde_len: 48,
                omega: 55,
                beta: 196,
                gamma1: 1 << 19,
            },
            MlDsa::L87 => Params {
                k: 8,
                l: 7,
                ctilde_len: 64,
                omega: 75,
                beta: 120,
                gamma1: 1 << 19,
            },
        }
    }
}

/// `mldsa_verify` with the kernel's errors: a public key or signature of the wrong
/// length, a response vector out of range or a malformed hint is EBADMSG; a signature
/// that does not verify, EKEYREJECTED.
pub fn verify(level: MlDsa, public: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), Errno> {
    if public.len() != level.public_len() || sig.len() != level.signature_len() {
        return Err(Errno::BadMsg(format!(
            "{} public key of {} bytes or signature of {} (want {} and {})",
            level.name(),
            public.len(),
            sig.len(),
            level.public_len(),
            level.signature_len()
        )));
    }
    check_encoding(level, sig)?;
    if verify_pure(level, public, msg, sig) {
        Ok(())
    } else {
        Err(Errno::KeyRejected(format!(
            "{} signature does not verify",
            level.name()
        )))
    }
}

/// decode_z and decode_hint_vector: what makes the kernel's decoder give up.
fn check_encoding(level: MlDsa, sig: &[u8]) -> Result<(), Errno> {
    const N: usize = 256;
    let p = level.params();
    let width = if p.l == 4 { 18 } else { 20 };
    let z = &sig[p.ctilde_len..p.ctilde_len + p.l * N * width / 8];
    let mut acc = 0u64;
    let mut bits = 0;
    let mut bytes = z.iter();
    for _ in 0..p.l * N {
        while bits < width {
            acc |= u64::from(*bytes.next().expect("length checked")) << bits;
            bits += 8;
        }
        let raw = (acc & ((1 << width) - 1)) as i32;
        acc >>= width;
        bits -= width;
        let c = p.gamma1 - raw;
        if c <= -(p.gamma1 - p.beta) || c >= p.gamma1 - p.beta {
            return Err(Errno::BadMsg(format!(
                "{} signature's response vector is out of range",
                level.name()
            )));
        }
    }
    let y = &sig[p.ctilde_len + z.len()..];
    let bad_hint = || {
        Errno::BadMsg(format!(
            "{} signature's hint vector is malformed",
            level.name()
        ))
    };
    let mut index = 0;
    for i in 0..p.k {
        let count = usize::from(y[p.omega + i]);
        if count < index || count > p.omega {
            return Err(bad_hint());
        }
        let mut prev: Option<u8> = None;
        for &v in &y[index..count] {
            if prev.is_some_and(|p| p >= v) {
                return Err(bad_hint());
            }
            prev = Some(v);
        }
        index = count;
    }
    if y[index..p.omega].iter().any(|&b| b != 0) {
        return Err(bad_hint());
    }
    Ok(())
}

/// Pure ML-DSA verification (empty context) by AWS-LC.
fn verify_pure(level: MlDsa, public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    // SAFETY: key and context are freed on every path; the slices outlive the calls.
    unsafe {
        let key =
            ffi::EVP_PKEY_pqdsa_new_raw_public_key(level.nid(), public.as_ptr(), public.len());
        if key.is_null() {
            ffi::ERR_clear_error();
            return false;
        }
        let ctx = ffi::EVP_MD_CTX_new();
        let ok = !ctx.is_null()
            && ffi::EVP_DigestVerifyInit(
                ctx,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null_mut(),
                key,
            ) == 1
            && ffi::EVP_DigestVerify(ctx, sig.as_ptr(), sig.len(), msg.as_ptr(), msg.len()) == 1;
        ffi::EVP_MD_CTX_free(ctx);
        ffi::EVP_PKEY_free(key);
        ffi::ERR_clear_error();
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::awslc::AwsKey;

    fn public_key(key: &AwsKey) -> Vec<u8> {
        // SubjectPublicKeyInfo: the key is the BIT STRING's content after its pad byte.
        let spki = key.public_spki().unwrap();
        let seq = super::super::ber::Reader::new(&spki)
            .expect(super::super::ber::SEQUENCE, "spki")
            .unwrap();
        let mut r = seq.reader();
        r.any().unwrap();
        r.expect(0x03, "key").unwrap().content[1..].to_vec()
    }

    #[test]
    fn each_way_a_signature_fails_has_the_kernels_errno() {
        for level in MlDsa::ALL {
            let key = AwsKey::generate_mldsa(level).unwrap();
            assert_eq!(key.mldsa(), Some(level));
            let pk = public_key(&key);
            assert_eq!(pk.len(), level.public_len());
            let msg = b"module bytes";
            let sig = key.sign_message(msg).unwrap();
            assert_eq!(sig.len(), level.signature_len());
            assert_eq!(verify(level, &pk, msg, &sig), Ok(()));
            // Another message, or a flipped commitment hash: rejected.
            assert!(matches!(
                verify(level, &pk, b"other", &sig),
                Err(Errno::KeyRejected(_))
            ));
            let mut s = sig.clone();
            s[0] ^= 1;
            assert!(matches!(
                verify(level, &pk, msg, &s),
                Err(Errno::KeyRejected(_))
            ));
            // Wrong length, a response coefficient at gamma1, a hint count beyond omega.
            assert!(matches!(
                verify(level, &pk, msg, &sig[1..]),
                Err(Errno::BadMsg(_))
            ));
            let p = level.params();
            let mut s = sig.clone();
            s[p.ctilde_len..p.ctilde_len + 3].fill(0);
            assert!(
                matches!(verify(level, &pk, msg, &s), Err(Errno::BadMsg(_))),
                "{level:?}"
            );
            let mut s = sig.clone();
            *s.last_mut().unwrap() = 0xff;
            assert!(
                matches!(verify(level, &pk, msg, &s), Err(Errno::BadMsg(_))),
                "{level:?}"
            );
            // The seed form round-trips.
            let again = AwsKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
            assert_eq!(public_key(&again), pk);
        }
    }
}
