//! The appended signature: `[module][PKCS#7 DER][struct module_signature][MAGIC]`.

pub const MAGIC: &[u8; 28] = b"~Module signature appended~\n";
/// `PKEY_ID_PKCS7` / `MODULE_SIGNATURE_TYPE_PKCS7`.
pub const ID_PKCS7: u8 = 2;
pub const INFO_LEN: usize = 12;

/// `struct module_signature` as stored (12 bytes, sig_len big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub algo: u8,
    pub hash: u8,
    pub id_type: u8,
    pub signer_len: u8,
    pub key_id_len: u8,
    pub pad: [u8; 3],
    pub sig_len: u32,
}

impl SigInfo {
    pub fn pkcs7(sig_len: u32) -> Self {
        SigInfo {
            algo: 0,
            hash: 0,
            id_type: ID_PKCS7,
            signer_len: 0,
            key_id_len: 0,
            pad: [0; 3],
            sig_len,
        }
    }

    pub fn to_bytes(self) -> [u8; INFO_LEN] {
        let l = self.sig_len.to_be_bytes();
        [
            self.algo,
            self.hash,
            self.id_type,
            self.signer_len,
            self.key_id_len,
            self.pad[0],
            self.pad[1],
            self.pad[2],
            l[0],
            l[1],
            l[2],
            l[3],
        ]
    }

    pub fn from_bytes(b: &[u8; INFO_LEN]) -> Self {
        SigInfo {
            algo: b[0],
            hash: b[1],
            id_type: b[2],
            signer_len: b[3],
            key_id_len: b[4],
            pad: [b[5], b[6], b[7]],
            sig_len: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// How the kernel's `mod_check_sig` sees a file, in the kernel's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trailer<'a> {
    /// No marker: `-ENODATA`.
    Unsigned,
    /// Marker present but the trailer is unusable: `-EBADMSG`.
    Malformed(&'static str),
    /// `id_type` is not PKCS#7: `-ENOPKG`.
    NotPkcs7(u8),
    Signed {
        body: &'a [u8],
        cms: &'a [u8],
        info: SigInfo,
    },
}

/// Splits a module into body and signature exactly as `module_sig_check` +
/// `mod_check_sig` do (kernel/module/signing.c, kernel/module_signature.c).
pub fn parse(data: &[u8]) -> Trailer<'_> {
    let Some(rest) = data.strip_suffix(MAGIC.as_slice()) else {
        return Trailer::Unsigned;
    };
    if rest.len() <= INFO_LEN {
        return Trailer::Malformed("file too short for the signature info");
    }
    let (front, info) = rest.split_at(rest.len() - INFO_LEN);
    let info = SigInfo::from_bytes(info.try_into().expect("12 bytes"));
    if info.sig_len as usize >= rest.len() - INFO_LEN {
        return Trailer::Malformed("sig_len is larger than the file");
    }
    if info.id_type != ID_PKCS7 {
        return Trailer::NotPkcs7(info.id_type);
    }
    if info.algo != 0
        || info.hash != 0
        || info.signer_len != 0
        || info.key_id_len != 0
        || info.pad != [0; 3]
    {
        return Trailer::Malformed("PKCS#7 signature info has unexpected non-zero params");
    }
    let (body, cms) = front.split_at(front.len() - info.sig_len as usize);
    Trailer::Signed { body, cms, info }
}

/// True when the file ends in the signature marker (what "already signed" means
/// to `sign`, whatever state the rest of the trailer is in).
pub fn has_marker(data: &[u8]) -> bool {
    data.ends_with(MAGIC)
}

/// What follows the module body: `cms ++ info ++ MAGIC`.
pub fn tail(cms: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cms.len() + INFO_LEN + MAGIC.len());
    out.extend_from_slice(cms);
    out.extend_from_slice(&SigInfo::pkcs7(cms.len() as u32).to_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// `body ++ tail(cms)`.
pub fn append(body: &[u8], cms: &[u8]) -> Vec<u8> {
    [body, &tail(cms)].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let signed = append(b"ELFBODY", b"CMS");
        match parse(&signed) {
            Trailer::Signed { body, cms, info } => {
                assert_eq!(body, b"ELFBODY");
                assert_eq!(cms, b"CMS");
                assert_eq!(info.sig_len, 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kernel_order_of_checks() {
        assert_eq!(parse(b"plain module"), Trailer::Unsigned);
        let mut s = append(b"ELF", b"CMS");
        let n = s.len();
        // sig_len too big is checked before id_type.
        s[n - 28 - 4..n - 28].copy_from_slice(&100u32.to_be_bytes());
        s[n - 28 - 10] = 1;
        assert!(matches!(parse(&s), Trailer::Malformed(_)));
        let mut s = append(b"ELF", b"CMS");
        s[n - 28 - 10] = 1;
        assert_eq!(parse(&s), Trailer::NotPkcs7(1));
        let mut s = append(b"ELF", b"CMS");
        s[n - 28 - 5] = 1;
        assert!(matches!(parse(&s), Trailer::Malformed(_)));
        // sig_len equal to everything before the info is rejected (>=).
        let s = append(b"", b"CMS");
        assert!(matches!(parse(&s), Trailer::Malformed(_)));
    }
}
