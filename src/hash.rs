//! Digest algorithms the kernel accepts for module signatures.

use const_oid::ObjectIdentifier as Oid;
use const_oid::db::rfc5912;
use openssl::hash::MessageDigest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

const SHA3_256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.8");
const SHA3_384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.9");
const SHA3_512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.10");
/// id-sm3 and the Streebog OIDs: the kernel accepts them, we cannot check them.
pub const OTHER_KERNEL_DIGESTS: [(&str, Oid); 3] = [
    ("sm3", Oid::new_unwrap("1.2.156.10197.1.401")),
    ("streebog256", Oid::new_unwrap("1.2.643.7.1.1.2.2")),
    ("streebog512", Oid::new_unwrap("1.2.643.7.1.1.2.3")),
];

impl HashAlg {
    /// Choices for signing (SHA-1 is gone from 7.0 signing; old modules still verify).
    pub const SIGNING: [HashAlg; 7] = [
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha224,
        HashAlg::Sha3_256,
        HashAlg::Sha3_384,
        HashAlg::Sha3_512,
    ];
    pub const ALL: [HashAlg; 8] = [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha3_256,
        HashAlg::Sha3_384,
        HashAlg::Sha3_512,
    ];

    /// The kernel's (and kmod's) name for it.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha224 => "sha224",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
            HashAlg::Sha3_256 => "sha3-256",
            HashAlg::Sha3_384 => "sha3-384",
            HashAlg::Sha3_512 => "sha3-512",
        }
    }

    /// The kernel option that provides it to the crypto API.
    pub fn crypto_config(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "CONFIG_CRYPTO_SHA1",
            HashAlg::Sha224 | HashAlg::Sha256 => "CONFIG_CRYPTO_SHA256",
            HashAlg::Sha384 | HashAlg::Sha512 => "CONFIG_CRYPTO_SHA512",
            HashAlg::Sha3_256 | HashAlg::Sha3_384 | HashAlg::Sha3_512 => "CONFIG_CRYPTO_SHA3",
        }
    }

    /// Accepts the kernel's names and OpenSSL's (`sha3-256`, `SHA256`, ...), as sign-file does.
    pub fn from_name(name: &str) -> Option<HashAlg> {
        let n = name.to_ascii_lowercase().replace('_', "-");
        Self::ALL.into_iter().find(|h| h.name() == n)
    }

    pub fn oid(self) -> Oid {
        match self {
            HashAlg::Sha1 => rfc5912::ID_SHA_1,
            HashAlg::Sha224 => rfc5912::ID_SHA_224,
            HashAlg::Sha256 => rfc5912::ID_SHA_256,
            HashAlg::Sha384 => rfc5912::ID_SHA_384,
            HashAlg::Sha512 => rfc5912::ID_SHA_512,
            HashAlg::Sha3_256 => SHA3_256,
            HashAlg::Sha3_384 => SHA3_384,
            HashAlg::Sha3_512 => SHA3_512,
        }
    }

    pub fn from_oid(oid: &Oid) -> Option<HashAlg> {
        Self::ALL.into_iter().find(|h| h.oid() == *oid)
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        openssl::hash::hash(self.md(), data)
            .expect("OpenSSL computes every digest it names")
            .to_vec()
    }

    /// The same digest as the `EVP_MD` that `PkeyCtx` takes.
    pub fn md_ref(self) -> &'static openssl::md::MdRef {
        use openssl::md::Md;
        match self {
            HashAlg::Sha1 => Md::sha1(),
            HashAlg::Sha224 => Md::sha224(),
            HashAlg::Sha256 => Md::sha256(),
            HashAlg::Sha384 => Md::sha384(),
            HashAlg::Sha512 => Md::sha512(),
            HashAlg::Sha3_256 => Md::sha3_256(),
            HashAlg::Sha3_384 => Md::sha3_384(),
            HashAlg::Sha3_512 => Md::sha3_512(),
        }
    }

    pub fn md(self) -> MessageDigest {
        match self {
            HashAlg::Sha1 => MessageDigest::sha1(),
            HashAlg::Sha224 => MessageDigest::sha224(),
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
            HashAlg::Sha3_256 => MessageDigest::sha3_256(),
            HashAlg::Sha3_384 => MessageDigest::sha3_384(),
            HashAlg::Sha3_512 => MessageDigest::sha3_512(),
        }
    }

    /// ecdsa-with-<hash> signature algorithm OID, as OpenSSL's CMS code writes it.
    pub fn ecdsa_oid(self) -> Oid {
        match self {
            HashAlg::Sha1 => Oid::new_unwrap("1.2.840.10045.4.1"),
            HashAlg::Sha224 => rfc5912::ECDSA_WITH_SHA_224,
            HashAlg::Sha256 => rfc5912::ECDSA_WITH_SHA_256,
            HashAlg::Sha384 => rfc5912::ECDSA_WITH_SHA_384,
            HashAlg::Sha512 => rfc5912::ECDSA_WITH_SHA_512,
            HashAlg::Sha3_256 => Oid::new_unwrap("2.16.840.1.101.3.4.3.10"),
            HashAlg::Sha3_384 => Oid::new_unwrap("2.16.840.1.101.3.4.3.11"),
            HashAlg::Sha3_512 => Oid::new_unwrap("2.16.840.1.101.3.4.3.12"),
        }
    }
}

impl std::str::FromStr for HashAlg {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashAlg::from_name(s).ok_or_else(|| crate::error::Error::UnknownHash {
            name: s.into(),
            choices: HashAlg::SIGNING.map(|h| h.name()).join(", "),
        })
    }
}
