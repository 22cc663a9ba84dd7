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

    /// The URI without PIN attributes, in the path (`;pin-value=`) or the query
    /// (`?pin-value=`): what messages may show.
    pub fn display(s: &str) -> PathBuf {
        // Names compared as the parser would see them, and more loosely (any case,
        // %-escaped): a near miss is still probably a PIN.
        let secret = |a: &&str| {
            let name = a.split('=').next().unwrap_or_default();
            let name = pct_decode(name).map_or_else(
                |_| name.to_string(),
                |b| String::from_utf8_lossy(&b).into_owned(),
            );
            !matches!(
                name.to_ascii_lowercase().as_str(),
                "pin-value" | "pin-source"
            )
        };
        let rest = s.strip_prefix("pkcs11:").unwrap_or(s);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path: Vec<&str> = path.split(';').filter(secret).collect();
        let query: Vec<&str> = query
            .split('&')
            .filter(|a| !a.is_empty())
            .filter(secret)
            .collect();
        let mut shown = format!("pkcs11:{}", path.join(";"));
        if !query.is_empty() {
            shown = format!("{shown}?{}", query.join("&"));
        }
        PathBuf::from(shown)
    }
}

/// A loaded module, the token the URI names, and its PIN.
struct TokenCtx {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    uri: Uri,
    shown: PathBuf,
}

impl TokenCtx {
    /// Loads the module, finds the token and settles the PIN (not logged in yet).
    /// `module` and `pin` are the command line's; the URI's own win.
    fn open(uri_text: &str, module: Option<&Path>, pin: Option<Vec<u8>>) -> Result<TokenCtx> {
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
            .ok_or_else(|| kerr("no PKCS#11 module: give module-path= in the URI, --pkcs11-module, or PKCS11_MODULE_PATH".into()))?;
        // dlopen would block on a FIFO and map a device: a shared object is a file.
        crate::fsutil::read_head(&module, 4).map_err(|e| Error::Pkcs11 {
            path: module.clone(),
            reason: format!("cannot load the PKCS#11 module: {e}"),
        })?;
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
            (None, Some(src)) => Some(crate::sign::keys::read_pin_file(Path::new(
                src.strip_prefix("file:").unwrap_or(src),
            ))?),
            (None, None) => pin,
        };
        let Some(pin_bytes) = pin_bytes else {
            return Err(Error::PinNeeded { path: shown });
        };
        let pin = AuthPin::from(String::from_utf8_lossy(&pin_bytes).into_owned());
        Ok(TokenCtx {
            ctx,
            slot,
            pin,
            uri,
            shown,
        })
    }

    fn login(&self, session: &Session) -> Result<()> {
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) => Ok(()),
            // Login is per application and token: later sessions share the first's.
            Err(e) if rv(&e) == Some(RvError::UserAlreadyLoggedIn) => Ok(()),
            Err(e) if rv(&e) == Some(RvError::PinIncorrect) => Err(Error::WrongPin {
                path: self.shown.clone(),
            }),
            Err(e) if rv(&e) == Some(RvError::PinLocked) => Err(Error::PinLocked {
                path: self.shown.clone(),
            }),
            Err(e) => Err(Error::Pkcs11 {
                path: self.shown.clone(),
                reason: format!("login failed: {e}"),
            }),
        }
    }
}

/// A private key on a token, with a pool of logged-in sessions (one per worker in use).
pub struct Pkcs11Key {
    tok: TokenCtx,
    find: Vec<Attribute>,
    pool: Mutex<Vec<(Session, ObjectHandle)>>,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Key({})", self.tok.shown.display())
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
        let tok = TokenCtx::open(uri_text, module, pin)?;
        let uri = tok.uri.clone();
        let mut find = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(o) = &uri.object {
            find.push(Attribute::Label(o.clone().into_bytes()));
        }
        if let Some(id) = &uri.id {
            find.push(Attribute::Id(id.clone()));
        }
        let key = Pkcs11Key {
            tok,
            find,
            pool: Mutex::new(Vec::new()),
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
        &self.tok.shown
    }

    fn new_session(&self) -> Result<(Session, ObjectHandle)> {
        let kerr = |reason: String| Error::Pkcs11 {
            path: self.tok.shown.clone(),
            reason,
        };
        let session = self
            .tok
            .ctx
            .open_ro_session(self.tok.slot)
            .map_err(|e| kerr(e.to_string()))?;
        self.tok.login(&session)?;
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
            path: self.tok.shown.clone(),
            reason,
        };
        let out = match kind {
            KeyKind::Rsa(_) => session
                .sign(
                    &Mechanism::RsaPkcs,
                    handle,
                    &crate::pki::digest_info(hash, digest),
                )
                .map_err(|e| kerr(format!("C_Sign: {e}"))),
            KeyKind::EcP256 | KeyKind::EcP384 => session
                .sign(&Mechanism::Ecdsa, handle, digest)
                .map_err(|e| kerr(format!("C_Sign: {e}")))
                .and_then(|rs| ecdsa_der(&rs).map_err(kerr)),
            KeyKind::MlDsa(_) => unreachable!("ML-DSA token keys are refused when opened"),
        };
        self.pool.lock().expect("pool").push((session, handle));
        out
    }
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

/// `keygen --pkcs11`: a key pair made inside the token (the private key never leaves it,
/// not extractable), a self-signed certificate signed by it, stored on the token beside
/// the key (same label and id) and returned for writing out.
pub fn generate_in_token(
    uri_text: &str,
    module: Option<&Path>,
    pin: Option<Vec<u8>>,
    o: &crate::sign::keygen::KeygenOptions,
) -> Result<openssl::x509::X509> {
    use crate::sign::keygen::Algo;
    if let Algo::MlDsa(level) = o.algo {
        return Err(Error::usage(
            format!(
                "{uri_text}: {} keys cannot be made in a PKCS#11 token by this tool",
                level.name()
            ),
            "make the ML-DSA key as a file (keygen without --pkcs11); SoftHSM 2.6, Debian's, has no CKM_ML_DSA",
        ));
    }
    let tok = TokenCtx::open(uri_text, module, pin)?;
    let kerr = |reason: String| Error::Pkcs11 {
        path: tok.shown.clone(),
        reason,
    };
    let label = tok
        .uri
        .object
        .clone()
        .ok_or_else(|| kerr("name the new key with object= in the URI".into()))?;
    let id = tok.uri.id.clone().unwrap_or_else(|| {
        let mut id = vec![0u8; 8];
        openssl::rand::rand_bytes(&mut id).expect("random bytes");
        id
    });
    let session = tok
        .ctx
        .open_rw_session(tok.slot)
        .map_err(|e| kerr(e.to_string()))?;
    tok.login(&session)?;
    let existing = session
        .find_objects(&[Attribute::Label(label.clone().into_bytes())])
        .map_err(|e| kerr(e.to_string()))?;
    if !existing.is_empty() {
        return Err(kerr(format!(
            "the token already holds objects labelled `{label}`; keygen never overwrites (choose another object=)"
        )));
    }
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Id(id.clone()),
            Attribute::Private(private),
        ]
    };
    let mut public_t = common(false);
    let mut private_t = common(true);
    public_t.push(Attribute::Verify(true));
    private_t.extend([
        Attribute::Sign(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ]);
    let mechanism = match o.algo {
        Algo::EcdsaP256 | Algo::EcdsaP384 => {
            let curve = if o.algo == Algo::EcdsaP256 {
                "1.2.840.10045.3.1.7"
            } else {
                "1.3.132.0.34"
            };
            let oid = const_oid::ObjectIdentifier::new_unwrap(curve);
            let der = der::Encode::to_der(&oid).expect("OID encodes");
            public_t.push(Attribute::EcParams(der));
            Mechanism::EccKeyPairGen
        }
        _ => {
            let bits = match o.algo.kind() {
                KeyKind::Rsa(b) => b,
                _ => unreachable!("RSA algorithms"),
            };
            public_t.push(Attribute::ModulusBits((bits as u64).into()));
            public_t.push(Attribute::PublicExponent(vec![1, 0, 1]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    let (public_h, private_h) = session
        .generate_key_pair(&mechanism, &public_t, &private_t)
        .map_err(|e| kerr(format!("C_GenerateKeyPair: {e}")))?;
    // Everything after the key pair exists either completes, or removes the pair again.
    let finish = || -> Result<openssl::x509::X509> {
        let public = public_key(&session, public_h, o.algo).map_err(kerr)?;
        let cert = crate::sign::keygen::certificate_signed_by(&public, o, |tbs| {
            let hash = o.algo.hash();
            let digest = openssl::hash::hash(hash.md(), tbs).map_err(|e| kerr(e.to_string()))?;
            let sig = match o.algo.kind() {
                KeyKind::Rsa(_) => session.sign(
                    &Mechanism::RsaPkcs,
                    private_h,
                    &crate::pki::digest_info(hash, &digest),
                ),
                _ => session.sign(&Mechanism::Ecdsa, private_h, &digest),
            }
            .map_err(|e| kerr(format!("C_Sign: {e}")))?;
            match o.algo.kind() {
                KeyKind::Rsa(_) => Ok(sig),
                _ => ecdsa_der(&sig).map_err(kerr),
            }
        })?;
        let der = cert.to_der().map_err(|e| kerr(e.to_string()))?;
        let subject = cert
            .subject_name()
            .to_der()
            .map_err(|e| kerr(e.to_string()))?;
        session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Subject(subject),
                Attribute::Label(label.clone().into_bytes()),
                Attribute::Id(id.clone()),
                Attribute::Value(der),
            ])
            .map_err(|e| kerr(format!("storing the certificate: {e}")))?;
        Ok(cert)
    };
    finish().inspect_err(|_| {
        let _ = session.destroy_object(private_h);
        let _ = session.destroy_object(public_h);
    })
}

fn public_key(
    session: &Session,
    h: ObjectHandle,
    algo: crate::sign::keygen::Algo,
) -> std::result::Result<openssl::pkey::PKey<openssl::pkey::Public>, String> {
    use crate::sign::keygen::Algo;
    use openssl::bn::BigNum;
    let e = |e: openssl::error::ErrorStack| e.to_string();
    let attrs = session
        .get_attributes(
            h,
            &[
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcPoint,
            ],
        )
        .map_err(|e| e.to_string())?;
    let get = |want: AttributeType| {
        attrs.iter().find_map(|a| match (a, want) {
            (Attribute::Modulus(v), AttributeType::Modulus)
            | (Attribute::PublicExponent(v), AttributeType::PublicExponent)
            | (Attribute::EcPoint(v), AttributeType::EcPoint) => Some(v.clone()),
            _ => None,
        })
    };
    match algo {
        Algo::EcdsaP256 | Algo::EcdsaP384 => {
            // CKA_EC_POINT is the point wrapped in a DER OCTET STRING.
            let wrapped = get(AttributeType::EcPoint).ok_or("token gave no EC point")?;
            let point = <der::asn1::OctetString as der::Decode>::from_der(&wrapped)
                .map(|o| o.as_bytes().to_vec())
                .unwrap_or(wrapped);
            let nid = if algo == Algo::EcdsaP256 {
                openssl::nid::Nid::X9_62_PRIME256V1
            } else {
                openssl::nid::Nid::SECP384R1
            };
            let mut group = openssl::ec::EcGroup::from_curve_name(nid).map_err(e)?;
            group.set_asn1_flag(openssl::ec::Asn1Flag::NAMED_CURVE);
            let mut ctx = openssl::bn::BigNumContext::new().map_err(e)?;
            let p = openssl::ec::EcPoint::from_bytes(&group, &point, &mut ctx).map_err(e)?;
            let key = openssl::ec::EcKey::from_public_key(&group, &p).map_err(e)?;
            openssl::pkey::PKey::from_ec_key(key).map_err(e)
        }
        _ => {
            let n = get(AttributeType::Modulus).ok_or("token gave no modulus")?;
            let x = get(AttributeType::PublicExponent).ok_or("token gave no public exponent")?;
            let rsa = openssl::rsa::Rsa::from_public_components(
                BigNum::from_slice(&n).map_err(e)?,
                BigNum::from_slice(&x).map_err(e)?,
            )
            .map_err(e)?;
            openssl::pkey::PKey::from_rsa(rsa).map_err(e)
        }
    }
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
        // RFC 7512 allows the PIN as a path attribute too, first or later.
        for (uri, want) in [
            (
                "pkcs11:token=t;pin-value=1234;object=k",
                "pkcs11:token=t;object=k",
            ),
            (
                "pkcs11:pin-value=1234;token=t?module-path=/m.so",
                "pkcs11:token=t?module-path=/m.so",
            ),
            ("pkcs11:token=t;PIN%2DVALUE=1234", "pkcs11:token=t"),
            (
                "pkcs11:token=t;pin-source=file:/p?pin-value=1234",
                "pkcs11:token=t",
            ),
        ] {
            assert_eq!(Uri::display(uri), PathBuf::from(want), "{uri}");
        }
        assert_eq!(
            Uri::parse("pkcs11:token=t;pin-value=1234")
                .unwrap()
                .pin_value
                .as_deref(),
            Some("1234")
        );
        assert!(Uri::parse("pkcs11:token").is_err());
    }

    #[test]
    fn digest_info_matches_the_known_sha256_prefix() {
        let di = crate::pki::digest_info(HashAlg::Sha256, &[0u8; 32]);
        assert_eq!(
            hex::encode(&di[..19]),
            "3031300d060960864801650304020105000420"
        );
    }
}
