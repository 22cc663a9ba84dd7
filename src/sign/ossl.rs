//! Key files signed through OpenSSL (the library sign-file uses), with AWS-LC taking
//! over once a command makes enough signatures to pay for its start.

use super::awslc;
use super::keys::KeyKind;
use crate::hash::HashAlg;
use openssl::pkey::{PKey, Private};

/// A private key from a file, parsed by OpenSSL.
pub struct FileKey {
    pkey: PKey<Private>,
    kind: KeyKind,
    bulk: bulk::Bulk,
}

impl FileKey {
    pub fn new(pkey: PKey<Private>, kind: KeyKind) -> FileKey {
        FileKey {
            pkey,
            kind,
            bulk: bulk::Bulk::new(None),
        }
    }

    /// `CARGO_KMOD_CRYPTO`: `openssl` never switches, `aws-lc` from the first signature.
    pub fn set_crypto(&mut self, crypto: Option<&str>) {
        self.bulk = bulk::Bulk::new(crypto);
    }

    /// The raw RSA (PKCS#1 v1.5) or ECDSA (DER) signature of a `hash` digest.
    pub fn sign_digest(&self, hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>, String> {
        if awslc::AwsKey::supports(hash)
            && let Some(fast) = self.bulk.aws(&self.pkey)
        {
            return fast.sign_digest(hash, digest);
        }
        let e = |e: openssl::error::ErrorStack| e.to_string();
        // EVP_PKEY_sign with the digest's algorithm set: RSA wraps it in the
        // DigestInfo of PKCS#1 v1.5, ECDSA signs it as is.
        let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&self.pkey).map_err(e)?;
        ctx.sign_init().map_err(e)?;
        ctx.set_signature_md(hash.md_ref()).map_err(e)?;
        if matches!(self.kind, KeyKind::Rsa(_)) {
            ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1)
                .map_err(e)?;
        }
        let mut sig = Vec::new();
        ctx.sign_to_vec(digest, &mut sig).map_err(e)?;
        Ok(sig)
    }
}

mod bulk {
    use super::awslc;
    use openssl::pkey::{PKey, Private};

    /// AWS-LC signs several times faster than OpenSSL 3.0 but seeds its random generator
    /// first (jitter entropy: about 40 ms of CPU, ten times a whole RSA-4096 signing by
    /// OpenSSL), so it only pays for many signatures. The first [`BULK_AFTER`] go through
    /// OpenSSL (a single `sign-file` call stays as fast as the kernel's), later ones through
    /// AWS-LC. RSA signatures are byte-identical either way.
    pub(super) struct Bulk {
        made: std::sync::atomic::AtomicUsize,
        aws: std::sync::OnceLock<Option<awslc::AwsKey>>,
        /// CARGO_KMOD_CRYPTO: `openssl` never switches, `aws-lc` from the first signature.
        after: usize,
    }

    pub const BULK_AFTER: usize = 32;

    impl Bulk {
        pub(super) fn new(crypto: Option<&str>) -> Bulk {
            let after = match crypto {
                Some("openssl") => usize::MAX,
                Some("aws-lc") => 0,
                _ => BULK_AFTER,
            };
            Bulk {
                made: Default::default(),
                aws: Default::default(),
                after,
            }
        }

        /// AWS-LC's copy of the key, once enough signatures were made to pay for it.
        pub(super) fn aws(&self, pkey: &PKey<Private>) -> Option<&awslc::AwsKey> {
            let n = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n < self.after {
                return None;
            }
            self.aws
                .get_or_init(|| awslc::AwsKey::from_openssl(pkey))
                .as_ref()
        }
    }
}
