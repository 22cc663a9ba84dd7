//! Signing: keys, the CMS blob, and the sign operation on a module body.

pub mod awslc;
pub mod cms;
pub mod external;
pub mod keygen;
pub mod keys;
pub mod ossl;
pub mod pkcs11;
pub mod twophase;

use crate::error::{Error, Result};
use crate::fsutil::Spares;
use crate::hash::HashAlg;
use crate::pki::cert::Cert;
use keys::{KeyKind, Pin};
use std::path::Path;

/// Where the private key lives.
enum Backend {
    /// A key file, parsed by OpenSSL; signed through AWS-LC where it can once there
    /// are many signatures to make.
    File(ossl::FileKey),
    /// A key on a PKCS#11 token (sessions pooled inside).
    Token(Box<pkcs11::Pkcs11Key>),
    /// An ML-DSA key file, held by AWS-LC.
    MlDsa(awslc::AwsKey),
    /// A command that signs digests (the key is elsewhere); the certificate's key
    /// checks what it returns.
    External(
        external::ExternalSigner,
        openssl::pkey::PKey<openssl::pkey::Public>,
    ),
}

/// A loaded key + certificate, checked to belong together. Shared between threads.
pub struct SigningKey {
    backend: Backend,
    kind: KeyKind,
    pub cert: Cert,
    key_path: std::path::PathBuf,
    /// Sign contentType + messageDigest instead of the module (ML-DSA only: the form
    /// sign-file writes with OpenSSL before 4.0).
    signed_attrs: bool,
}

/// What to load a signing key from.
#[derive(Debug, Clone, Copy)]
pub struct KeySource<'a> {
    /// A key file, or a `pkcs11:` URI.
    pub key: &'a Path,
    /// Required for key files; for a token, default: the certificate stored with the key.
    pub cert: Option<&'a Path>,
    pub pin: &'a Pin,
    /// PKCS#11 module when the URI has no module-path= (else $PKCS11_MODULE_PATH).
    pub pkcs11_module: Option<&'a Path>,
}

impl SigningKey {
    /// Loads a key file and its certificate and refuses a pair that does not match.
    pub fn load(key: &Path, cert: &Path, pin: &Pin) -> Result<Self> {
        Self::open(&KeySource {
            key,
            cert: Some(cert),
            pin,
            pkcs11_module: None,
        })
    }

    /// Loads from a key file or a token; the pair is checked either way.
    pub fn open(src: &KeySource) -> Result<Self> {
        let key_text = src.key.to_string_lossy();
        if pkcs11::is_uri(&key_text) {
            let (token, stored_cert) =
                pkcs11::Pkcs11Key::open(&key_text, src.pkcs11_module, src.pin.bytes())?;
            let shown = token.shown().to_path_buf();
            let cert = match (src.cert, stored_cert) {
                (Some(c), _) => crate::pki::cert::load_cert(c)?,
                (None, Some(der)) => {
                    Cert::from_der(&shown, &der).map_err(|reason| Error::Cert {
                        path: shown.clone(),
                        reason,
                    })?
                }
                (None, None) => {
                    return Err(Error::Cert {
                        path: shown,
                        reason: "no --cert given and the token holds no certificate for this key"
                            .into(),
                    });
                }
            };
            if let Ok(k) = &cert.kernel
                && let crate::pki::x509::PublicKey::MlDsa { level, .. } = k.public
            {
                return Err(Error::Key {
                    path: shown,
                    reason: format!(
                        "{} keys on PKCS#11 tokens are not supported: this tool signs with ML-DSA key files only (SoftHSM 2.6, Debian's, has no CKM_ML_DSA either)",
                        level.name()
                    ),
                });
            }
            let (_, kind) = keys::cert_key(&cert)?;
            let k = SigningKey {
                backend: Backend::Token(Box::new(token)),
                kind,
                cert,
                key_path: shown,
                signed_attrs: false,
            };
            k.check_token_pair()?;
            return Ok(k);
        }
        let cert_path = src.cert.ok_or_else(|| {
            // keygen writes signing_key.pem beside signing_key.crt: name the one that fits.
            let beside = ["crt", "x509", "der"]
                .iter()
                .map(|ext| src.key.with_extension(ext))
                .find(|c| c.is_file());
            Error::usage(
                format!("{}: a key file needs --cert", src.key.display()),
                match beside {
                    Some(c) => format!("pass --cert {} (the certificate beside the key)", c.display()),
                    None => "pass --cert CERT, the X.509 certificate made with this key (keygen writes it beside the key as .crt)".into(),
                },
            )
        })?;
        let cert = crate::pki::cert::load_cert(cert_path)?;
        let pkey = keys::load_private_key(src.key, src.pin)?;
        keys::check_pair(&pkey, src.key, &cert)?;
        let (backend, kind) = match pkey {
            keys::PrivateKey::OpenSsl(pkey) => {
                let kind = keys::key_kind(&pkey).expect("checked when the key was loaded");
                (Backend::File(ossl::FileKey::new(pkey, kind)), kind)
            }
            keys::PrivateKey::MlDsa(key, level) => (Backend::MlDsa(key), KeyKind::MlDsa(level)),
        };
        Ok(SigningKey {
            backend,
            kind,
            cert,
            key_path: src.key.to_path_buf(),
            signed_attrs: false,
        })
    }

    /// A key that stays elsewhere: `signer` signs each digest, `cert` is its certificate.
    pub fn external(signer: external::ExternalSigner, cert: &Path) -> Result<Self> {
        let cert = crate::pki::cert::load_cert(cert)?;
        let (public, kind) = keys::cert_key(&cert)?;
        if let KeyKind::MlDsa(l) = kind {
            return Err(Error::Cert {
                path: cert.path.clone(),
                reason: format!(
                    "an {} certificate: an external signer signs digests, and ML-DSA module signatures sign the module itself",
                    l.name()
                ),
            });
        }
        Ok(SigningKey {
            key_path: format!("--signer '{}'", signer.command).into(),
            backend: Backend::External(signer, public),
            kind,
            cert,
            signed_attrs: false,
        })
    }

    /// Signs signed attributes (contentType, messageDigest) rather than the module:
    /// for ML-DSA keys only, as the kernel refuses attributes on RSA and ECDSA
    /// signatures, and takes them on ML-DSA ones only with
    /// `CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA`.
    /// Which library signs with a key file (`CARGO_KMOD_CRYPTO`); tokens sign themselves.
    pub fn set_crypto(&mut self, crypto: Option<&str>) {
        if let Backend::File(f) = &mut self.backend {
            f.set_crypto(crypto);
        }
    }

    pub fn set_signed_attrs(&mut self, on: bool) -> Result<()> {
        if on && !matches!(self.kind, KeyKind::MlDsa(_)) {
            return Err(Error::usage(
                format!(
                    "{}: signed attributes are for ML-DSA keys; this is an {} key",
                    self.key_path.display(),
                    self.kind
                ),
                "leave out --signed-attrs: the kernel rejects RSA and ECDSA module signatures that carry them (\"Invalid module sig (has authattrs)\")",
            ));
        }
        self.signed_attrs = on;
        Ok(())
    }

    /// Refuses a digest this key cannot sign modules with: ML-DSA takes SHA-512 only
    /// (the kernel's public_key.c allows "none" or "sha512" for it).
    pub fn check_hash(&self, hash: HashAlg) -> Result<()> {
        if let KeyKind::MlDsa(level) = self.kind
            && hash != HashAlg::Sha512
        {
            return Err(Error::HashForKey {
                path: self.key_path.clone(),
                reason: format!(
                    "{} module signatures take sha512, not {}",
                    level.name(),
                    hash.name()
                ),
                fix: "pass --hash sha512 (or no --hash): the kernel refuses ML-DSA with any other digest (EINVAL), and without signed attributes it ignores the digest".into(),
            });
        }
        Ok(())
    }

    /// A token key cannot be compared directly: sign a probe and verify it with the certificate.
    fn check_token_pair(&self) -> Result<()> {
        let probe = b"cargo-kmod key/certificate pair check";
        let sig = self.raw_signature(HashAlg::Sha256, probe)?;
        let public = self.cert.x509.public_key().map_err(|e| Error::Cert {
            path: self.cert.path.clone(),
            reason: e.to_string(),
        })?;
        let ok = openssl::sign::Verifier::new(HashAlg::Sha256.md(), &public)
            .and_then(|mut v| {
                v.update(probe)?;
                v.verify(&sig)
            })
            .unwrap_or(false);
        if !ok {
            return Err(Error::KeyMismatch {
                key: self.key_path.clone(),
                cert: self.cert.path.clone(),
            });
        }
        Ok(())
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The raw signature over `data`: PKCS#1 v1.5 for RSA and DER Ecdsa-Sig-Value for
    /// ECDSA (over its `hash` digest), pure ML-DSA over the data itself.
    pub fn raw_signature(&self, hash: HashAlg, data: &[u8]) -> Result<Vec<u8>> {
        self.raw_signature_for(hash, data, None)
    }

    fn raw_signature_for(
        &self,
        hash: HashAlg,
        data: &[u8],
        module: Option<&Path>,
    ) -> Result<Vec<u8>> {
        let key_err = |e: openssl::error::ErrorStack| Error::Key {
            path: self.key_path.clone(),
            reason: e.to_string(),
        };
        match &self.backend {
            // The digest first: then one path signs it (AWS-LC's or OpenSSL's).
            Backend::File(..) | Backend::Token(_) | Backend::External(..) => {
                let digest = openssl::hash::hash(hash.md(), data).map_err(key_err)?;
                self.raw_signature_of_digest(hash, &digest, module)
            }
            Backend::MlDsa(key) => key.sign_message(data).map_err(|reason| Error::Key {
                path: self.key_path.clone(),
                reason,
            }),
        }
    }

    /// The raw RSA or ECDSA signature of a `hash` digest; ML-DSA signs messages, not
    /// digests, and is refused.
    fn raw_signature_of_digest(
        &self,
        hash: HashAlg,
        digest: &[u8],
        module: Option<&Path>,
    ) -> Result<Vec<u8>> {
        match &self.backend {
            Backend::External(signer, public) => {
                signer.sign_digest(self.kind, hash, digest, public, module)
            }
            Backend::File(k) => k.sign_digest(hash, digest).map_err(|reason| Error::Key {
                path: self.key_path.clone(),
                reason,
            }),
            Backend::Token(t) => t.sign_digest(self.kind, hash, digest),
            Backend::MlDsa(_) => Err(Error::Key {
                path: self.key_path.clone(),
                reason: "an ML-DSA key signs the message, not a digest of it".into(),
            }),
        }
    }

    /// The PKCS#7 DER to append to `body`.
    pub fn sign(&self, hash: HashAlg, id: cms::SignerIdKind, body: &[u8]) -> Result<Vec<u8>> {
        self.sign_for(hash, id, body, None)
    }

    /// [`SigningKey::sign`] of the module at `module` (an external signer is told).
    pub fn sign_for(
        &self,
        hash: HashAlg,
        id: cms::SignerIdKind,
        body: &[u8],
        module: Option<&Path>,
    ) -> Result<Vec<u8>> {
        self.check_hash(hash)?;
        let attrs = self
            .signed_attrs
            .then(|| cms::signed_attributes(hash, body));
        let sig = self.raw_signature_for(hash, attrs.as_deref().unwrap_or(body), module)?;
        self.cms(hash, id, attrs.as_deref(), sig)
    }

    /// [`SigningKey::sign`] for a body whose `hash` digest is computed already (a
    /// module streamed, never held whole). ML-DSA only with signed attributes: pure
    /// ML-DSA signs the module itself.
    pub fn sign_digest(
        &self,
        hash: HashAlg,
        id: cms::SignerIdKind,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        self.check_hash(hash)?;
        let (attrs, sig) = if self.signed_attrs {
            let attrs = cms::signed_attributes_of_digest(digest);
            let sig = self.raw_signature(hash, &attrs)?;
            (Some(attrs), sig)
        } else {
            (None, self.raw_signature_of_digest(hash, digest, None)?)
        };
        self.cms(hash, id, attrs.as_deref(), sig)
    }

    fn cms(
        &self,
        hash: HashAlg,
        id: cms::SignerIdKind,
        attrs: Option<&[u8]>,
        sig: Vec<u8>,
    ) -> Result<Vec<u8>> {
        cms::build(
            &self.cert,
            id,
            hash,
            cms::signature_algorithm(self.kind, hash),
            attrs,
            sig,
        )
        .map_err(|reason| Error::Cert {
            path: self.cert.path.clone(),
            reason,
        })
    }
}

/// The hash when neither the user nor the kernel names one: the kernel's own default
/// (`CONFIG_MODULE_SIG_SHA512`, since 6.12.25).
pub const DEFAULT_HASH: HashAlg = HashAlg::Sha512;

/// How a project's modules are signed: the key, and the hash asked for (`None`: the
/// target kernel's `CONFIG_MODULE_SIG_HASH`).
pub struct Signing<'a> {
    pub key: &'a SigningKey,
    pub hash: Option<HashAlg>,
}

/// What a command asks of a project's signing: `--sign`, `--key`, `--cert`,
/// `--pkcs11-module`, `--hash` (each overriding `[package.metadata.kmod]`).
#[derive(Debug, Clone, Default)]
pub struct SignRequest {
    pub sign: bool,
    pub key: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub pkcs11_module: Option<std::path::PathBuf>,
    pub hash: Option<String>,
    /// `--signer`: overrides a key (the metadata's `signer`, with `signer-input`,
    /// comes otherwise).
    pub signer: Option<external::ExternalSigner>,
}

/// A project's signing key and hash, resolved once per command.
pub struct ProjectSigning {
    pub key: SigningKey,
    /// `None`: each target kernel's own `CONFIG_MODULE_SIG_HASH`.
    pub hash: Option<HashAlg>,
}

impl ProjectSigning {
    /// The key, when `--sign` or `sign = true` asks for one. The hash asked for is
    /// checked first, signing or not (a wrong `--hash` is an error either way).
    pub fn resolve(
        s: &crate::settings::Settings,
        project: &crate::project::Project,
        r: &SignRequest,
    ) -> Result<Option<ProjectSigning>> {
        let hash = match &r.hash {
            Some(h) => Some(h.parse()?),
            None => project.hash()?,
        };
        if !(r.sign || project.sign) {
            return Ok(None);
        }
        let cert = r.cert.clone().or(project.cert.clone());
        // A signer asked for on the command line wins over the metadata's key, and
        // a key asked for there over the metadata's signer.
        let signer = match (&r.signer, &r.key, &project.signer) {
            (Some(s), _, _) => Some(s.clone()),
            (None, None, Some(c)) => Some(external::ExternalSigner::of_conf(
                c,
                &project.dir.join("Cargo.toml"),
            )?),
            _ => None,
        };
        if let Some(signer) = signer {
            let Some(cert) = cert else {
                return Err(Error::usage(
                    "an external signer needs the certificate of its key",
                    "pass --cert CERT, or set cert in [package.metadata.kmod]",
                ));
            };
            let key = SigningKey::external(signer, &cert)?;
            return Ok(Some(ProjectSigning { key, hash }));
        }
        let Some(key) = r.key.clone().or(project.key.clone()) else {
            return Err(Error::usage(
                "signing needs a key",
                "set key (and cert) in [package.metadata.kmod], or pass --key/--cert; `cargo kmod keygen` makes a pair",
            ));
        };
        let mut key = SigningKey::open(&KeySource {
            key: &key,
            cert: cert.as_deref(),
            pin: &Pin::from_sources(None, s.sign_pin.as_deref())?,
            pkcs11_module: r.pkcs11_module.as_deref().or(s.pkcs11_module.as_deref()),
        })?;
        key.set_crypto(s.crypto.as_deref());
        Ok(Some(ProjectSigning { key, hash }))
    }

    pub fn signing(&self) -> Signing<'_> {
        Signing {
            key: &self.key,
            hash: self.hash,
        }
    }
}

impl Signing<'_> {
    /// The hash for modules of `target`, refused if that kernel cannot take it (or,
    /// for an ML-DSA key, cannot verify ML-DSA at all).
    pub fn hash_for(&self, target: &crate::target::Target) -> Result<HashAlg> {
        let KeyKind::MlDsa(level) = self.key.kind else {
            return target.signing_hash(self.hash, DEFAULT_HASH);
        };
        let crypto = target.crypto();
        if !crypto.mldsa {
            return Err(Error::TargetRefuses {
                target: target.name(),
                reason: if crypto.mldsa_parsed {
                    format!(
                        "it cannot verify {} signatures: {} is not set",
                        level.name(),
                        crate::target::KeyType::MlDsa.crypto_config()
                    )
                } else {
                    format!(
                        "it predates ML-DSA module signatures (Linux {}.{}), so an {} signature is ENOPKG there",
                        crate::target::since::MLDSA.0,
                        crate::target::since::MLDSA.1,
                        level.name()
                    )
                },
                fix: "sign its modules with an RSA or ECDSA key (cargo kmod keygen --algo ecdsa-p384)"
                    .into(),
            });
        }
        // The digest ML-DSA takes, whatever the kernel signs its own modules with.
        let hash = self.hash.unwrap_or(HashAlg::Sha512);
        self.key.check_hash(hash)?;
        Ok(hash)
    }
}

/// What `sign` does with a module that already carries a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfSigned {
    /// Refuse (the default): double signatures never get written.
    #[default]
    Refuse,
    /// Strip the old signature, then sign.
    Replace,
    /// Leave the module as it is.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigOutput {
    /// Append to the module (default).
    #[default]
    Append,
    /// Append, and also write `<module>.p7s` (sign-file `-p`).
    AppendAndSave,
    /// Only write `<module>.p7s` (sign-file `-d`).
    Detached,
}

#[derive(Debug, Clone)]
pub struct SignOptions {
    pub hash: HashAlg,
    pub id: cms::SignerIdKind,
    pub if_signed: IfSigned,
    pub output: SigOutput,
    /// The largest module read (`Settings::max_module_bytes`).
    pub max_module_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    Signed { replaced: bool },
    SkippedSigned,
    Detached { p7s: std::path::PathBuf },
}

/// `<path>.p7s`, as sign-file names it.
pub fn p7s_path(module: &Path) -> std::path::PathBuf {
    let mut s = module.as_os_str().to_owned();
    s.push(".p7s");
    s.into()
}

/// Signs one module file (plain or compressed) and writes it to `dest` (default: in place).
/// Nothing on disk changes unless every step succeeds.
pub fn sign_module_file(
    key: &SigningKey,
    opts: &SignOptions,
    path: &Path,
    dest: Option<&Path>,
) -> Result<SignOutcome> {
    let spares = Spares::default();
    prepare_signed(key, opts, path, dest)?
        .write(&spares)?
        .finish()
}

/// `cargo kmod sign` of many modules: each read, signed and written atomically, `jobs`
/// at once (a failure leaves that module as it was and stops no other); results in
/// the order given. `output` is for a single module.
pub fn sign_modules(
    key: &SigningKey,
    opts: &SignOptions,
    modules: &[std::path::PathBuf],
    output: Option<&Path>,
    jobs: usize,
    r: &dyn crate::report::Reporter,
) -> Vec<Result<SignOutcome>> {
    let spares = Spares::default();
    crate::tree::par_map_writing(modules, jobs, r, "signing", |m, gate| {
        gate.cpu(|| prepare_signed(key, opts, m, output)?.write(&spares))?
            .finish()
    })
}

/// `cargo kmod unsign` of many modules, as [`sign_modules`]: how many signatures each
/// had removed (0: it was not signed, nothing written).
pub fn unsign_modules(
    modules: &[std::path::PathBuf],
    extract: Option<&Path>,
    max_module_bytes: u64,
    jobs: usize,
    r: &dyn crate::report::Reporter,
) -> Vec<Result<usize>> {
    let spares = Spares::default();
    crate::tree::par_map_writing(modules, jobs, r, "unsigning", |m, gate| {
        // Staged under the gate (the CPU part); the disk is waited for outside it.
        let staged = gate.cpu(|| unsign_module_file(m, extract, &spares, max_module_bytes))?;
        staged
            .map(|(s, n)| s.finish().map(|_| n))
            .transpose()
            .map(|n| n.unwrap_or(0))
    })
}

/// The writes a signing will make, computed but not yet done.
pub struct Prepared {
    p7s: Option<(std::path::PathBuf, Vec<u8>)>,
    module: Option<PendingModule>,
    outcome: SignOutcome,
}

struct PendingModule {
    dest: std::path::PathBuf,
    mode: u32,
    /// The file read, when `dest` is that file (signed in place).
    read: Option<crate::fsutil::FileId>,
    /// The module as read (uncompressed), its unsigned length, and the new trailer.
    data: Vec<u8>,
    body_len: usize,
    tail: Vec<u8>,
    /// Set when the module is compressed: the whole signed file, compressed.
    compressed: Option<Vec<u8>>,
}

impl Prepared {
    /// Writes the `.p7s` (if any) and the module into a spare: the CPU part of
    /// committing. The module's bytes are freed when this returns.
    pub fn write(self, spares: &Spares) -> Result<Written<'_>> {
        if let Some((p, bytes)) = &self.p7s {
            crate::fsutil::write_atomic(p, bytes, None)?;
        }
        let staged = match &self.module {
            Some(m) => Some(match &m.compressed {
                Some(bytes) => spares.stage(&m.dest, &[bytes], m.mode, m.read)?,
                None => spares.stage(&m.dest, &[&m.data[..m.body_len], &m.tail], m.mode, m.read)?,
            }),
            None => None,
        };
        Ok(Written {
            staged,
            outcome: self.outcome,
        })
    }
}

/// A signed module written but not yet durable and in place.
pub struct Written<'a> {
    staged: Option<crate::fsutil::Staged<'a>>,
    outcome: SignOutcome,
}

impl Written<'_> {
    /// Waits for the disk, then puts the module in place.
    pub fn finish(self) -> Result<SignOutcome> {
        if let Some(s) = self.staged {
            s.finish()?;
        }
        Ok(self.outcome)
    }
}

/// Reads, checks and signs (the CPU part of [`sign_module_file`]); writes nothing.
pub fn prepare_signed(
    key: &SigningKey,
    opts: &SignOptions,
    path: &Path,
    dest: Option<&Path>,
) -> Result<Prepared> {
    prepare_with(opts, path, dest, |body| {
        key.sign_for(opts.hash, opts.id, body, Some(path))
    })
}

/// [`prepare_signed`] with the PKCS#7 made by `cms` from the unsigned body (signed
/// here, or a detached signature checked against it: `sign --attach`).
pub fn prepare_with(
    opts: &SignOptions,
    path: &Path,
    dest: Option<&Path>,
    cms: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Prepared> {
    use crate::modfile::{ModuleFile, trailer};
    let module = ModuleFile::open(path, opts.max_module_bytes)?;
    let dest = dest.unwrap_or(path);
    let signed = trailer::has_marker(&module.data);
    if signed && opts.output != SigOutput::Detached {
        match opts.if_signed {
            IfSigned::Refuse => {
                return Err(Error::AlreadySigned {
                    path: path.to_path_buf(),
                });
            }
            IfSigned::Skip => {
                return Ok(Prepared {
                    p7s: None,
                    module: None,
                    outcome: SignOutcome::SkippedSigned,
                });
            }
            IfSigned::Replace => {}
        }
    }
    let body = module.unsigned_body()?;
    if opts.output != SigOutput::Detached {
        check_writable(dest)?;
    }
    let cms = cms(body)?;
    let p7s = (opts.output != SigOutput::Append).then(|| (p7s_path(path), cms.clone()));
    if opts.output == SigOutput::Detached {
        let p = p7s_path(path);
        return Ok(Prepared {
            p7s,
            module: None,
            outcome: SignOutcome::Detached { p7s: p },
        });
    }
    let tail = trailer::tail(&cms);
    let compressed = module.compress(&[body, &tail])?;
    let body_len = body.len();
    Ok(Prepared {
        p7s,
        module: Some(PendingModule {
            dest: dest.to_path_buf(),
            mode: module.mode,
            read: (dest == path).then_some(module.origin),
            data: module.data,
            body_len,
            tail,
            compressed,
        }),
        outcome: SignOutcome::Signed { replaced: signed },
    })
}

/// Refuses to replace a file whose mode forbids writing (root would otherwise
/// replace it silently through the rename).
pub fn check_writable(dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dest)
        && meta.is_file()
        && meta.permissions().mode() & 0o222 == 0
    {
        return Err(Error::ReadOnly {
            path: dest.to_path_buf(),
        });
    }
    Ok(())
}

/// Removes the signatures (all of them: sign-file appends a second one to a signed
/// module): the module without them is staged, and in place once the result's
/// [`Staged::finish`](crate::fsutil::Staged::finish) returns, with how many there were.
/// With `extract`, the last appended PKCS#7 DER is saved there first (so a failure
/// leaves the module signed) and an unsigned module is an error. None when the module
/// was not signed (nothing written).
pub fn unsign_module_file<'s>(
    path: &Path,
    extract: Option<&Path>,
    spares: &'s Spares,
    max_module_bytes: u64,
) -> Result<Option<(crate::fsutil::Staged<'s>, usize)>> {
    use crate::modfile::{ModuleFile, trailer::Trailer};
    let module = ModuleFile::open(path, max_module_bytes)?;
    let mut body = module.unsigned_body()?;
    let mut count = 1;
    while let Trailer::Signed { body: inner, .. } = crate::modfile::trailer::parse(body) {
        body = inner;
        count += 1;
    }
    let Trailer::Signed { cms, .. } = module.trailer() else {
        return match extract {
            Some(_) => Err(Error::NotSigned {
                path: path.to_path_buf(),
            }),
            None => Ok(None),
        };
    };
    check_writable(path)?;
    if let Some(out) = extract {
        crate::fsutil::write_atomic(out, cms, None)?;
    }
    module
        .stage_to(path, &[body], spares)
        .map(|s| Some((s, count)))
}
