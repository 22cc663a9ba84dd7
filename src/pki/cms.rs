//! PKCS#7 decoded with the `cms` crate's types, for showing a signature (`info`); the
//! kernel's own reading, for judging one, is [`super::pkcs7`].

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use const_oid::db::rfc5911;
use der::Decode;

/// Why a PKCS#7 blob is unusable, in the kernel's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// ASN.1 decode failure: `-EBADMSG`.
    Malformed(String),
    /// Parsed, but a choice the kernel's parser refuses: `-EINVAL`.
    Unsupported(String),
}

/// Decodes the ContentInfo and the SignedData inside it (DER).
pub fn parse(der_bytes: &[u8]) -> Result<SignedData, ParseError> {
    // The kernel never takes more (and the SET OF decode sorts: bounded, it stays fast).
    if der_bytes.len() > crate::pki::ber::MAX_LEN {
        return Err(ParseError::Malformed(format!(
            "PKCS#7 of {} bytes is longer than the kernel takes (65535)",
            der_bytes.len()
        )));
    }
    let ci = ContentInfo::from_der(der_bytes)
        .map_err(|e| ParseError::Malformed(format!("PKCS#7 does not decode: {e}")))?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(ParseError::Unsupported(format!(
            "PKCS#7 content type {} is not signedData",
            ci.content_type
        )));
    }
    ci.content
        .decode_as::<SignedData>()
        .map_err(|e| ParseError::Malformed(format!("SignedData does not decode: {e}")))
}
