//! Keys that never leave a token: RFC 7512 `pkcs11:` URIs, signing through cryptoki.
//! RSA: CKM_RSA_PKCS over a DigestInfo we build (so output equals OpenSSL's byte for
//! byte); ECDSA: CKM_ECDSA over the digest, r||s turned into DER Ecdsa-Sig-Value.

use crate::error::{Error, Result};
use crate::hash::HashAlg;
use crate::sign::keys::KeyKind;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The parts of an RFC 7512 URI we use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uri {
    pub token: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub typ: Option<String>,
    pub pin_value: Option<String>,
    pub pin_source: Option<String>,
    pub module_path: Option<String>,
}

pub fn is_uri(s: &str) -> bool {
    s.starts_with("pkcs11:")
}

fn pct_decode(s: &str) -> std::result::Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            out.push(u8::from_str_radix(h, 16).map_err(|_| format!("bad %-escape %{h}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl Uri {
    pub fn parse(s: &str) -> std::result::Result<Uri, String> {
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or("a PKCS#11 URI starts with pkcs11:")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut u = Uri::default();
        let text = |v: &str| pct_decode(v).map(|b| String::from_utf8_lossy(&b).into_owned());
        for (attrs, sep) in [(path, ';'), (query, '&')] {
            for a in attrs.split(sep).filter(|a| !a.is_empty()) {
                let (k, v) = a
                    .split_once('=')
                    .ok_or_else(|| format!("`{a}` is not name=value"))?;
                match k {
                    "token" => u.token = Some(text(v)?),
                    "object" => u.object = Some(text(v)?),
                    "id" => u.id = Some(pct_decode(v)?),
                    "type" => u.typ = Some(text(v)?),
                    "pin-value" => u.pin_value = Some(text(v)?),
                    "pin-source" => u.pin_source = Some(text(v)?),
                    "module-path" => u.module_path = Some(text(v)?),
                    // Other attributes (manufacturer, serial, slot-id, ...) narrow nothing we need.
                    _ => {}
                }
            }
        }
        Ok(u)
    }

    /// The URI without PIN attributes: what messages may show.
    pub fn display(s: &str) -> PathBuf {
        let (path, query) = s.split_once('?').unwrap_or((s, ""));
        let kept: Vec<&str> = query
            .split('&')
            .filter(|a| {
                !a.is_empty() && !a.starts_with("pin-value=") && !a.starts_with("pin-source=")
            })
            .collect();
        PathBuf::from(if kept.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", kept.join("&"))
        })
    }
}

/// A private key on a token, with a pool of logged-in sessions (one per worker in use).
pub struct Pkcs11Key {
    ctx: Pkcs11,
    slot: Slot,
    find: Vec<Attribute>,
    pin: AuthPin,
    pool: Mutex<Vec<(Session, ObjectHandle)>>,
    shown: PathBuf,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Key({})", self.shown.display())
    }
}

fn rv(e: &cryptoki::error::Error) -> Option<RvError> {
    match e {
        cryptoki::error::Error::Pkcs11(r, _) => Some(*r),
        _ => None,
    }
}

impl Pkcs11Key {
    /// Opens the token and logs in once. `module` and `pin` are the command line's
    /// (--pkcs11-module, --pin-file or KBUILD_SIGN_PIN); the URI's own win.
    pub fn open(
        uri_text: &str,
        module: Option<&Path>,
        pin: Option<Vec<u8>>,
    ) -> Result<(Pkcs11Key, Option<Vec<u8>>)> {
        let shown = Uri::display(uri_text);
        let kerr = |reason: String| Error::Pkcs11 {
            path: shown.clone(),
            reason,
        };
        let uri =
            Uri::parse(uri_text).map_err(|r| kerr(format!("not a valid PKCS#11 URI: {r}")))?;
        let module: PathBuf = uri
            .module_path
            .clone()
            .map(PathBuf::from)
            .or_else(|| module.map(Path::to_path_buf))
            .or_else(|| std::env::var_os("PKCS11_MODULE_PATH").map(PathBuf::from))
            .ok_or_else(|| kerr("no PKCS#11 module: give module-path= in the URI, --pkcs11-module, or PKCS11_MODULE_PATH".into()))?;
        let ctx = Pkcs11::new(&module).map_err(|e| Error::Pkcs11 {
            path: module.clone(),
            reason: format!("cannot load the PKCS#11 module: {e}"),
        })?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| kerr(format!("C_Initialize: {e}")))?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| kerr(e.to_string()))?;
        let mut labels = Vec::new();
        let mut found = None;
        for s in slots {
            let info = ctx.get_token_info(s).map_err(|e| kerr(e.to_string()))?;
            let label = info.label().trim_end().to_string();
            if uri.token.as_deref().is_none_or(|t| t == label) {
                found = Some((s, info));
                break;
            }
            if !label.is_empty() {
                labels.push(label);
            }
        }
        let Some((slot, info)) = found else {
            return Err(kerr(format!(
                "no token labelled `{}` (tokens: {})",
                uri.token.as_deref().unwrap_or("?"),
                if labels.is_empty() {
                    "none".into()
                } else {
                    labels.join(", ")
                }
            )));
        };
        if info.user_pin_locked() {
            return Err(Error::PinLocked { path: shown });
        }
        let pin_bytes = match (&uri.pin_value, &uri.pin_source) {
            (Some(v), _) => Some(v.clone().into_bytes()),
            (None, Some(src)) => {
                let f = src.strip_prefix("file:").unwrap_or(src);
                let mut v = std::fs::read(f).map_err(|source| Error::Read {
                    path: f.into(),
                    source,
                })?;
                while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    v.pop();
                }
                Some(v)
            }
            (None, None) => pin,
        };
        let Some(pin_bytes) = pin_bytes else {
            return Err(Error::PinNeeded { path: shown });
        };
        let pin = AuthPin::from(String::from_utf8_lossy(&pin_bytes).into_owned());
        let mut find = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(o) = &uri.object {
            find.push(Attribute::Label(o.clone().into_bytes()));
        }
        if let Some(id) = &uri.id {
            find.push(Attribute::Id(id.clone()));
        }
        let key = Pkcs11Key {
            ctx,
            slot,
            find,
            pin,
            pool: Mutex::new(Vec::new()),
            shown,
        };
        let (session, handle) = key.new_session()?;
        // The certificate with the same id (or label), when the token holds one.
        let mut cert_find = vec![Attribute::Class(ObjectClass::CERTIFICATE)];
        if let Some(id) = &uri.id {
            cert_find.push(Attribute::Id(id.clone()));
        } else if let Some(o) = &uri.object {
            cert_find.push(Attribute::Label(o.clone().into_bytes()));
        }
        let cert = session
            .find_objects(&cert_find)
            .ok()
            .and_then(|h| h.first().copied())
            .and_then(|h| session.get_attributes(h, &[AttributeType::Value]).ok())
            .and_then(|attrs| {
                attrs.into_iter().find_map(|a| match a {
                    Attribute::Value(v) => Some(v),
                    _ => None,
                })
            });
        key.pool.lock().expect("pool").push((session, handle));
        Ok((key, cert))
    }

    pub fn shown(&self) -> &Path {
        &self.shown
    }

    fn new_session(&self) -> Result<(Session, ObjectHandle)> {
        let kerr = |reason: String| Error::Pkcs11 {
            path: self.shown.clone(),
            reason,
        };
        let session = self
            .ctx
            .open_ro_session(self.slot)
            .map_err(|e| kerr(e.to_string()))?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) => {}
            // Login is per application and token: later sessions share the first's.
            Err(e) if rv(&e) == Some(RvError::UserAlreadyLoggedIn) => {}
            Err(e) if rv(&e) == Some(RvError::PinIncorrect) => {
                return Err(Error::WrongPin {
                    path: self.shown.clone(),
                });
            }
            Err(e) if rv(&e) == Some(RvError::PinLocked) => {
                return Err(Error::PinLocked {
                    path: self.shown.clone(),
                });
            }
            Err(e) => return Err(kerr(format!("login failed: {e}"))),
        }
        let handles = session
            .find_objects(&self.find)
            .map_err(|e| kerr(e.to_string()))?;
        let handle = match handles.as_slice() {
            [h] => *h,
            [] => {
                return Err(kerr(
                    "no private key on the token matches the URI's object/id".into(),
                ));
            }
            _ => {
                return Err(kerr(format!(
                    "{} private keys match the URI: add object= or id=",
                    handles.len()
                )));
            }
        };
        Ok((session, handle))
    }

    /// Signs a digest the way OpenSSL would for `kind`.
    pub fn sign_digest(&self, kind: KeyKind, hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>> {
        let taken = self.pool.lock().expect("pool").pop();
        let (session, handle) = match taken {
            Some(s) => s,
            None => self.new_session()?,
        };
        let kerr = |reason: String| Error::Pkcs11 {
            path: self.shown.clone(),
            reason,
        };
        let out = match kind {
            KeyKind::Rsa(_) => session
                .sign(&Mechanism::RsaPkcs, handle, &digest_info(hash, digest))
                .map_err(|e| kerr(format!("C_Sign: {e}"))),
            KeyKind::EcP256 | KeyKind::EcP384 => session
                .sign(&Mechanism::Ecdsa, handle, digest)
                .map_err(|e| kerr(format!("C_Sign: {e}")))
                .and_then(|rs| ecdsa_der(&rs).map_err(kerr)),
        };
        self.pool.lock().expect("pool").push((session, handle));
        out
    }
}

/// DER DigestInfo ::= SEQUENCE { AlgorithmIdentifier { oid, NULL }, OCTET STRING digest }.
pub fn digest_info(hash: HashAlg, digest: &[u8]) -> Vec<u8> {
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

fn ecdsa_der(rs: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use openssl::bn::BigNum;
    let (r, s) = rs.split_at(rs.len() / 2);
    let e = |e: openssl::error::ErrorStack| e.to_string();
    openssl::ecdsa::EcdsaSig::from_private_components(
        BigNum::from_slice(r).map_err(e)?,
        BigNum::from_slice(s).map_err(e)?,
    )
    .and_then(|sig| sig.to_der())
    .map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parsing_and_display_hide_the_pin() {
        let u = Uri::parse("pkcs11:token=My%20Token;object=key;id=%01%02;type=private?pin-value=1234&module-path=/usr/lib/x.so").unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.id, Some(vec![1, 2]));
        assert_eq!(u.pin_value.as_deref(), Some("1234"));
        assert_eq!(u.module_path.as_deref(), Some("/usr/lib/x.so"));
        let shown = Uri::display("pkcs11:token=t?pin-value=1234&module-path=/m.so");
        assert_eq!(shown, PathBuf::from("pkcs11:token=t?module-path=/m.so"));
        assert!(Uri::parse("pkcs11:token").is_err());
    }

    #[test]
    fn digest_info_matches_the_known_sha256_prefix() {
        let di = digest_info(HashAlg::Sha256, &[0u8; 32]);
        assert_eq!(
            hex::encode(&di[..19]),
            "3031300d060960864801650304020105000420"
        );
    }
}
