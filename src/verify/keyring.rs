//! Trusted certificates given on the command line: PEM bundles, DER files, directories.

use crate::error::{Error, Result};
use crate::pki::cert::{self, Cert};
use std::path::Path;

#[derive(Default, Clone)]
pub struct Keyring {
    pub certs: Vec<Cert>,
    /// What the judging kernel can verify (all this tool checks, unless a `.config` says).
    pub crypto: crate::target::Crypto,
}

impl Keyring {
    /// A kernel's builtin trusted certificates: from the image; without one, the tree's
    /// build key and `CONFIG_SYSTEM_TRUSTED_KEYS` (what the image would hold).
    pub fn of(target: &crate::target::Target) -> Result<Keyring> {
        let mut k = Keyring::default();
        if let Some(i) = &target.image {
            k.add_kernel(i)?;
        } else if let Some(t) = &target.tree {
            let extra = target
                .config
                .as_ref()
                .and_then(|c| c.get("CONFIG_SYSTEM_TRUSTED_KEYS"))
                .filter(|p| !p.is_empty())
                .map(|p| t.join(p));
            for p in [Some(t.join("certs/signing_key.x509")), extra]
                .into_iter()
                .flatten()
                .filter(|p| p.is_file())
            {
                k.add_path(&p)?;
            }
        }
        Ok(k)
    }

    /// Adds a file's certificates, or every certificate file in a directory
    /// (files that hold none are skipped there, not in a file given by name).
    pub fn add_path(&mut self, path: &Path) -> Result<()> {
        if path.is_dir() {
            let mut entries: Vec<_> = walkdir::WalkDir::new(path)
                .follow_links(true)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .collect();
            entries.sort();
            let before = self.certs.len();
            for p in entries {
                if let Ok(certs) = cert::load_certs(&p) {
                    self.certs.extend(certs);
                }
            }
            if self.certs.len() == before {
                return Err(Error::Cert {
                    path: path.to_path_buf(),
                    reason: "the directory holds no certificate".into(),
                });
            }
            Ok(())
        } else {
            self.certs.extend(cert::load_certs(path)?);
            Ok(())
        }
    }

    /// Judges as a kernel with `crypto` does. A self-signed certificate whose key type
    /// that kernel lacks never enters its keyring (its self-signature check fails while
    /// loading): those are dropped, and their subjects returned.
    pub fn restrict(&mut self, crypto: crate::target::Crypto) -> Vec<String> {
        use crate::pki::x509::PublicKey;
        use crate::target::KeyType;
        let mut dropped = Vec::new();
        self.certs.retain(|c| {
            let Ok(k) = &c.kernel else { return true };
            let kind = match k.public {
                PublicKey::Rsa { .. } => KeyType::Rsa,
                PublicKey::Ec { .. } => KeyType::Ecdsa,
                PublicKey::MlDsa { .. } => KeyType::MlDsa,
            };
            let keep = !k.self_signed || crypto.has_key(kind);
            if !keep {
                dropped.push(format!(
                    "{} ({} is not set)",
                    c.subject(),
                    kind.crypto_config()
                ));
            }
            keep
        });
        self.crypto = crypto;
        dropped
    }

    /// Adds the builtin trusted certificates of a kernel image.
    pub fn add_kernel(&mut self, image: &Path) -> Result<()> {
        self.certs.extend(crate::kernel_image::certificates(image)?);
        Ok(())
    }
}
