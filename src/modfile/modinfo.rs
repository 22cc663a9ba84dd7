//! What `cargo kmod info` shows: `.modinfo` fields plus the signature block,
//! formatted as kmod's `modinfo` prints them.

use crate::hash::{HashAlg, OTHER_KERNEL_DIGESTS};
use crate::modfile::trailer::{self, Trailer};
use crate::pki::{cert::common_name, hex_colon};
use cms::signed_data::SignerIdentifier;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SigBlock {
    pub sig_id: String,
    /// Issuer CN (issuer+serial signers only).
    pub signer: Option<String>,
    /// Serial number, or subjectKeyIdentifier for key-id signers.
    pub sig_key: String,
    pub sig_hashalgo: String,
    /// The raw signature value.
    #[serde(serialize_with = "ser_hex")]
    pub signature: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

/// The signature fields kmod derives from the trailer, when it can read them.
pub fn sig_block(data: &[u8]) -> Option<SigBlock> {
    let Trailer::Signed { cms, .. } = trailer::parse(data) else {
        return None;
    };
    let sd = crate::pki::cms::parse(cms).ok()?;
    let si = sd.signer_infos.0.iter().next()?;
    let (signer, sig_key) = match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => (
            Some(common_name(&ias.issuer).unwrap_or_default()),
            hex_colon(ias.serial_number.as_bytes()),
        ),
        SignerIdentifier::SubjectKeyIdentifier(skid) => (None, hex_colon(skid.0.as_bytes())),
    };
    let oid = si.digest_alg.oid;
    let sig_hashalgo = HashAlg::from_oid(&oid)
        .map(|h| h.name().to_string())
        .or_else(|| {
            OTHER_KERNEL_DIGESTS
                .iter()
                .find(|(_, o)| *o == oid)
                .map(|(n, _)| n.to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Some(SigBlock {
        sig_id: "PKCS#7".into(),
        signer,
        sig_key,
        sig_hashalgo,
        signature: si.signature.as_bytes().to_vec(),
    })
}

/// kmod's list: `.modinfo` in file order, then the signature fields.
pub fn fields(modinfo: &[(String, String)], sig: Option<&SigBlock>) -> Vec<(String, String)> {
    let mut out = modinfo.to_vec();
    if let Some(s) = sig {
        out.push(("sig_id".into(), s.sig_id.clone()));
        if let Some(signer) = &s.signer {
            out.push(("signer".into(), signer.clone()));
        }
        out.push(("sig_key".into(), s.sig_key.clone()));
        out.push(("sig_hashalgo".into(), s.sig_hashalgo.clone()));
        out.push(("signature".into(), wrapped_hex(&s.signature)));
    }
    out
}

/// kmod prints the signature 20 bytes a line, continuation lines indented by two tabs.
fn wrapped_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3 + bytes.len() / 20 * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
            if i % 20 == 0 {
                s.push_str("\n\t\t");
            }
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

struct Param {
    name: String,
    desc: Option<String>,
    ty: Option<String>,
}

/// `parm`/`parmtype` merged by name, in the order kmod prints them.
fn params(fields: &[(String, String)]) -> Vec<Param> {
    let mut out: Vec<Param> = Vec::new();
    for (k, v) in fields {
        if k != "parm" && k != "parmtype" {
            continue;
        }
        let Some((name, rest)) = v.split_once(':') else {
            continue;
        };
        let idx = match out.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                // kmod prepends new names to its list.
                out.insert(
                    0,
                    Param {
                        name: name.into(),
                        desc: None,
                        ty: None,
                    },
                );
                0
            }
        };
        if k == "parm" {
            out[idx].desc = Some(rest.into());
        } else {
            out[idx].ty = Some(rest.into());
        }
    }
    out
}

fn param_line(p: &Param) -> String {
    match (&p.desc, &p.ty) {
        (None, Some(t)) => format!("{}:{}", p.name, t),
        (Some(d), Some(t)) => format!("{}:{} ({})", p.name, d, t),
        (Some(d), None) => format!("{}:{}", p.name, d),
        (None, None) => p.name.clone(),
    }
}

/// `modinfo MODULE` output (without a field filter).
pub fn render(filename: &str, fields: &[(String, String)]) -> String {
    let mut out = format!("{:<16}{}\n", "filename:", filename);
    for (k, v) in fields {
        if k == "parm" || k == "parmtype" {
            continue;
        }
        // printf("%s:%-*s%s\n", key, 15 - keylen, "", value): a negative width pads too.
        let pad = (15 - k.len() as isize).unsigned_abs();
        out.push_str(&format!("{k}:{:pad$}{v}\n", ""));
    }
    for p in params(fields) {
        out.push_str(&format!("{:<16}{}\n", "parm:", param_line(&p)));
    }
    out
}

/// `modinfo -F FIELD MODULE` output: values only, one per line.
pub fn render_field(filename: &str, fields: &[(String, String)], field: &str) -> String {
    let mut out = String::new();
    if field == "filename" {
        out.push_str(filename);
        out.push('\n');
        return out;
    }
    if field == "parm" {
        for p in params(fields) {
            let line = match (&p.desc, &p.ty) {
                (None, Some(t)) => format!("{}: ({})", p.name, t),
                _ => param_line(&p),
            };
            out.push_str(&line);
            out.push('\n');
        }
        return out;
    }
    for (k, v) in fields {
        if k == field {
            out.push_str(v);
            out.push('\n');
        }
    }
    out
}
