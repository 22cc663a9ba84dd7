//! Two-phase signing: the key never meets the modules' machine.
//!
//! `export` writes, for a signing service, what it needs and nothing secret: each
//! module's unsigned bytes (uncompressed, as `sign-file -d` takes them) under
//! `DIR/modules/<name>`, and `DIR/manifest.json` (path, size, digest, hash, the expected
//! signer). The service signs them — `sign-file -d`, an external signer, or cargo-kmod
//! with `--from-export` — leaving `<name>.p7s` (PKCS#7 DER, what `sign-file -d` writes
//! and `sign-file -s` reads) or `<name>.sig` (a raw signature, wrapped here). `attach`
//! checks every signature over the module as it is now and against the expected signer
//! before it writes anything, then appends each, atomically, compression kept.

use super::{IfSigned, SigOutput, SignOptions, SigningKey, cms};
use crate::error::{Error, Result};
use crate::hash::HashAlg;
use crate::modfile::{ModuleFile, trailer};
use crate::pki::cert::Cert;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub hash: String,
    /// `issuer-serial` or `key-id`: how the signature names its signer.
    pub signer_id: String,
    /// The expected signer's certificate, DER in hex, when one was given at export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_subject: Option<String>,
    pub modules: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Under `DIR/modules/`: the bytes to sign; `<name>.p7s` or `<name>.sig` beside.
    pub name: String,
    /// The module to sign, absolute.
    pub path: PathBuf,
    /// Length and digest of its unsigned body (the exported bytes).
    pub size: u64,
    pub digest: String,
}

/// What `export` was asked.
pub struct ExportOptions<'a> {
    pub hash: HashAlg,
    pub id: cms::SignerIdKind,
    pub cert: Option<&'a Cert>,
    pub if_signed: IfSigned,
    pub max_module_bytes: u64,
}

fn id_name(id: cms::SignerIdKind) -> &'static str {
    match id {
        cms::SignerIdKind::IssuerSerial => "issuer-serial",
        cms::SignerIdKind::KeyId => "key-id",
    }
}

/// Each module's name in the export: its path under the directory argument it was
/// found in, else its file name; without a compression suffix (the export holds it
/// uncompressed). Two modules with one name are refused.
pub fn names(args: &[PathBuf], modules: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for m in modules {
        let rel = args
            .iter()
            .filter(|a| a.is_dir())
            .find_map(|a| m.strip_prefix(a).ok())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(m.file_name().unwrap_or_default()));
        let mut name = rel.to_string_lossy().into_owned();
        for ext in [".xz", ".zst", ".gz"] {
            if let Some(n) = name.strip_suffix(ext) {
                name = n.to_string();
            }
        }
        if let Some((_, other)) = out.iter().find(|(n, _)| *n == name) {
            return Err(Error::usage(
                format!(
                    "{} and {} would both be exported as {name}",
                    other.display(),
                    m.display()
                ),
                "export them in separate runs, or name their directories so the paths differ",
            ));
        }
        out.push((name, m.clone()));
    }
    Ok(out)
}

/// Writes the export: the bytes to sign, then the manifest (last, atomically: an
/// export is whole when its manifest is there).
pub fn export(dir: &Path, modules: &[(String, PathBuf)], o: &ExportOptions) -> Result<Manifest> {
    let mut entries = Vec::new();
    for (name, path) in modules {
        let m = ModuleFile::open(path, o.max_module_bytes)?;
        if trailer::has_marker(&m.data) && o.if_signed == IfSigned::Refuse {
            return Err(Error::AlreadySigned { path: path.clone() });
        }
        let body = m.unsigned_body()?;
        let to = dir.join("modules").join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        crate::fsutil::write_atomic(&to, body, None)?;
        entries.push(Entry {
            name: name.clone(),
            path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            size: body.len() as u64,
            digest: hex::encode(o.hash.digest(body)),
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        hash: o.hash.name().to_string(),
        signer_id: id_name(o.id).into(),
        signer_cert: o
            .cert
            .map(|c| c.x509.to_der().map(hex::encode))
            .transpose()
            .map_err(|e| Error::Cert {
                path: PathBuf::from("--cert"),
                reason: e.to_string(),
            })?,
        signer_subject: o.cert.map(Cert::subject),
        modules: entries,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("serialisable");
    crate::fsutil::write_atomic(&dir.join(MANIFEST), &text, None)?;
    Ok(manifest)
}

/// Reads `DIR/manifest.json`, refusing anything that is not one this tool wrote.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bad = |reason: String| Error::Attach {
        path: path.clone(),
        reason,
        fix: "give the directory `cargo kmod sign --export` wrote, with its manifest as it was"
            .into(),
    };
    let bytes = crate::fsutil::read_bounded(&path, 64 << 20)?;
    let m: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not an export manifest: {e}")))?;
    if m.format != FORMAT {
        return Err(bad(format!(
            "format {} (this tool reads {FORMAT})",
            m.format
        )));
    }
    m.hash
        .parse::<HashAlg>()
        .map_err(|_| bad(format!("unknown hash {:?}", m.hash)))?;
    for e in &m.modules {
        let clean = Path::new(&e.name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !clean || e.name.is_empty() {
            return Err(bad(format!(
                "module name {:?} is not a plain relative path",
                e.name
            )));
        }
    }
    Ok(m)
}

/// The certificates an attach accepts signatures from: those given (the authority),
/// else the one the manifest names.
pub fn expected_signers(m: &Manifest, dir: &Path, given: &[PathBuf]) -> Result<Vec<Cert>> {
    let mut certs = Vec::new();
    for p in given {
        certs.extend(crate::pki::cert::load_certs(p)?);
    }
    let path = dir.join(MANIFEST);
    if let Some(h) = &m.signer_cert {
        let der = hex::decode(h).map_err(|e| Error::Attach {
            path: path.clone(),
            reason: format!("signer_cert is not hex: {e}"),
            fix: "export again".into(),
        })?;
        let named = Cert::from_der(&path, &der).map_err(|reason| Error::Attach {
            path: path.clone(),
            reason: format!("signer_cert: {reason}"),
            fix: "export again".into(),
        })?;
        if certs.is_empty() {
            certs.push(named);
        } else if !certs
            .iter()
            .any(|c| c.x509.to_der().ok().as_deref() == Some(&der[..]))
        {
            return Err(Error::Attach {
                path,
                reason: format!(
                    "the export expects signatures by \"{}\", not by the --cert given",
                    named.subject()
                ),
                fix: "give the certificate the export was made for, or export again with --cert"
                    .into(),
            });
        }
    }
    if certs.is_empty() {
        return Err(Error::usage(
            format!("{}: names no signer", path.display()),
            "pass --cert CERT: the certificate whose key signed the export",
        ));
    }
    Ok(certs)
}

/// What one module's attach will write: checked, not yet written.
pub struct Checked {
    pub entry: Entry,
    pub cms: Vec<u8>,
}

/// Every signature file in `DIR/modules` must belong to a manifest entry: one that
/// does not is an error (a service signed something else).
pub fn strays(m: &Manifest, dir: &Path) -> Vec<PathBuf> {
    let root = dir.join("modules");
    walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            let s = p.to_string_lossy();
            let Some(base) = s.strip_suffix(".p7s").or_else(|| s.strip_suffix(".sig")) else {
                return false;
            };
            let rel = Path::new(base)
                .strip_prefix(&root)
                .unwrap_or(Path::new(base));
            !m.modules.iter().any(|e| Path::new(&e.name) == rel)
        })
        .collect()
}

/// Checks one module's detached signature: the module unchanged since export, the
/// signature over it by an expected signer (as the kernel would judge it, crypto
/// permitting), a raw `.sig` wrapped first.
pub fn check_one(
    m: &Manifest,
    dir: &Path,
    e: &Entry,
    signers: &[Cert],
    max_module_bytes: u64,
) -> Result<Checked> {
    let hash: HashAlg = m.hash.parse()?;
    let base = dir.join("modules").join(&e.name);
    let refuse = |path: &Path, reason: String, fix: &str| Error::Attach {
        path: path.to_path_buf(),
        reason,
        fix: fix.into(),
    };
    let module = ModuleFile::open(&e.path, max_module_bytes)?;
    let body = module.unsigned_body()?;
    if body.len() as u64 != e.size || hex::encode(hash.digest(body)) != e.digest {
        return Err(refuse(
            &e.path,
            "changed since it was exported: its unsigned bytes are not the ones signed".into(),
            "export it again and have the new export signed",
        ));
    }
    let p7s = super::p7s_path(&base);
    let sig = {
        let mut s = base.as_os_str().to_owned();
        s.push(".sig");
        PathBuf::from(s)
    };
    let cms = if p7s.is_file() {
        crate::fsutil::read_bounded(&p7s, 1 << 20)?
    } else if sig.is_file() {
        let raw = crate::fsutil::read_bounded(&sig, 1 << 20)?;
        let id = if m.signer_id == "key-id" {
            cms::SignerIdKind::KeyId
        } else {
            cms::SignerIdKind::IssuerSerial
        };
        // A raw signature names no signer: wrap it for each expected one until one fits.
        signers
            .iter()
            .find_map(|c| wrap_raw(c, hash, id, &raw, body).ok())
            .ok_or_else(|| {
                refuse(
                    &sig,
                    "is not a signature of the module by any expected signer's key".into(),
                    "sign the exported bytes with the expected key (RSA PKCS#1 v1.5 or ECDSA over their digest)",
                )
            })?
    } else {
        return Err(refuse(
            &p7s,
            "missing: the export was not signed for this module (no .p7s, no .sig)".into(),
            "sign every module of the export (sign-file -d, or cargo kmod sign --from-export)",
        ));
    };
    let keyring = crate::verify::Keyring {
        certs: signers.to_vec(),
        crypto: Default::default(),
    };
    let signed = trailer::append(body, &cms);
    if let crate::verify::Verdict::Refused(why) = crate::verify::verify(&signed, &keyring) {
        return Err(refuse(
            if p7s.is_file() { &p7s } else { &sig },
            format!(
                "does not verify over the module by an expected signer ({}: {})",
                why.name(),
                why.reason()
            ),
            "have the export signed with the key of the expected certificate, and attach to the modules as they were exported",
        ));
    }
    Ok(Checked {
        entry: e.clone(),
        cms,
    })
}

/// A raw RSA or ECDSA signature wrapped in the kernel's PKCS#7 for `cert`.
fn wrap_raw(
    cert: &Cert,
    hash: HashAlg,
    id: cms::SignerIdKind,
    raw: &[u8],
    body: &[u8],
) -> Result<Vec<u8>> {
    let (_, kind) = super::keys::cert_key(cert)?;
    let cms = cms::build(
        cert,
        id,
        hash,
        cms::signature_algorithm(kind, hash),
        None,
        raw.to_vec(),
    )
    .map_err(|reason| Error::Cert {
        path: cert.path.clone(),
        reason,
    })?;
    // Only a signature that verifies is kept.
    let keyring = crate::verify::Keyring {
        certs: vec![cert.clone()],
        crypto: Default::default(),
    };
    match crate::verify::verify(&trailer::append(body, &cms), &keyring) {
        crate::verify::Verdict::Ok { .. } => Ok(cms),
        crate::verify::Verdict::Refused(e) => Err(Error::Cert {
            path: cert.path.clone(),
            reason: e.reason().into(),
        }),
    }
}

/// Appends a checked signature to its module, atomically, compression kept.
pub fn attach_one(
    c: &Checked,
    if_signed: IfSigned,
    max_module_bytes: u64,
) -> Result<super::SignOutcome> {
    let opts = SignOptions {
        hash: HashAlg::Sha256, // unused: the signature is made
        id: cms::SignerIdKind::IssuerSerial,
        if_signed,
        output: SigOutput::Append,
        max_module_bytes,
    };
    let p = super::prepare_with(&opts, &c.entry.path, None, |_| Ok(c.cms.clone()))?;
    let spares = crate::fsutil::Spares::default();
    p.write(&spares)?.finish()
}

/// `--from-export`: cargo-kmod as the signing service: each exported module signed
/// detached (`<name>.p7s`), with `key`, `jobs` at once.
pub fn sign_export(
    key: &SigningKey,
    m: &Manifest,
    dir: &Path,
    jobs: usize,
    max_module_bytes: u64,
    r: &dyn crate::report::Reporter,
) -> Result<Vec<PathBuf>> {
    let hash: HashAlg = m.hash.parse()?;
    key.check_hash(hash)?;
    let id = if m.signer_id == "key-id" {
        cms::SignerIdKind::KeyId
    } else {
        cms::SignerIdKind::IssuerSerial
    };
    crate::tree::par_map(&m.modules, jobs, r, "signing", |e| {
        let base = dir.join("modules").join(&e.name);
        let body = crate::fsutil::read_bounded(&base, max_module_bytes)?;
        let cms = key.sign_for(hash, id, &body, Some(&e.path))?;
        let p = super::p7s_path(&base);
        crate::fsutil::write_atomic(&p, &cms, None)?;
        Ok(p)
    })
    .into_iter()
    .collect()
}
