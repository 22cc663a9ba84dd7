//! A key that lives elsewhere: a command that signs a digest (`openssl pkeyutl`,
//! `pkcs11-tool --sign`, a cloud KMS's command line). It is run through `sh -c` once
//! per signature, gets the digest on stdin and the facts in its environment, and must
//! print the raw signature on stdout: PKCS#1 v1.5 for RSA, DER or raw r‖s for ECDSA.
//! Every signature is checked against the certificate before it is used.
//!
//! Its environment (documented in the README): `CARGO_KMOD_SIGN_HASH` (sha256, ...),
//! `CARGO_KMOD_SIGN_KEY_TYPE` (rsa, ecdsa), `CARGO_KMOD_SIGN_KEY_BITS`,
//! `CARGO_KMOD_SIGN_INPUT` (what stdin holds), `CARGO_KMOD_SIGN_DIGEST_HEX`,
//! `CARGO_KMOD_SIGN_DIGEST_BASE64`, `CARGO_KMOD_SIGN_MODULE` (the module's path, when
//! there is one). `KBUILD_SIGN_PIN` is removed from it: a signer that needs a PIN
//! reads its own.

use super::keys::KeyKind;
use crate::error::{Error, Result};
use crate::hash::HashAlg;
use openssl::pkey::{PKey, Public};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the signer reads on stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignerInput {
    /// The digest's bytes (what `openssl pkeyutl -pkeyopt digest:ALG`, AWS KMS
    /// `--message-type DIGEST` and Vault's `prehashed=true` sign).
    #[default]
    Digest,
    /// The digest in lower-case hex, no newline.
    DigestHex,
    /// RSA: the DER DigestInfo (hash OID and digest), what raw PKCS#1 v1.5 mechanisms
    /// (`pkcs11-tool -m RSA-PKCS`, `openssl pkeyutl` without a digest) sign; ECDSA: the
    /// digest.
    DigestInfo,
}

impl SignerInput {
    pub const ALL: [SignerInput; 3] = [
        SignerInput::Digest,
        SignerInput::DigestHex,
        SignerInput::DigestInfo,
    ];

    pub fn from_name(name: &str) -> Option<SignerInput> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            SignerInput::Digest => "digest",
            SignerInput::DigestHex => "digest-hex",
            SignerInput::DigestInfo => "digest-info",
        }
    }
}

/// The longest signature a signer may print (ML-DSA-87's is 4627 bytes; RSA-16384's 2048).
const MAX_OUTPUT: u64 = 64 << 10;

#[derive(Debug, Clone)]
pub struct ExternalSigner {
    /// Run with `sh -c`.
    pub command: String,
    pub input: SignerInput,
    /// How long one signature may take before the signer is killed.
    pub timeout: Duration,
}

impl ExternalSigner {
    /// The project's `signer` (`manifest` names it in errors).
    pub fn of_conf(c: &crate::project::SignerConf, manifest: &Path) -> Result<ExternalSigner> {
        let input = match &c.input {
            None => SignerInput::Digest,
            Some(name) => SignerInput::from_name(name).ok_or_else(|| Error::Manifest {
                path: manifest.to_path_buf(),
                field: "package.metadata.kmod.signer-input".into(),
                reason: format!(
                    "{name:?}: must be one of {}",
                    SignerInput::ALL.map(|i| i.name()).join(", ")
                ),
            })?,
        };
        Ok(ExternalSigner {
            command: c.command.clone(),
            input,
            timeout: Duration::from_secs(c.timeout.unwrap_or(60)),
        })
    }

    fn err(&self, module: Option<&Path>, reason: impl Into<String>) -> Error {
        Error::Signer {
            command: self.command.clone(),
            module: module.map(Path::to_path_buf),
            reason: reason.into(),
        }
    }

    /// The raw signature of `digest`, checked against `public` (the certificate's key).
    pub fn sign_digest(
        &self,
        kind: KeyKind,
        hash: HashAlg,
        digest: &[u8],
        public: &PKey<Public>,
        module: Option<&Path>,
    ) -> Result<Vec<u8>> {
        let (key_type, bits) = match kind {
            KeyKind::Rsa(bits) => ("rsa", bits),
            KeyKind::EcP256 => ("ecdsa", 256),
            KeyKind::EcP384 => ("ecdsa", 384),
            KeyKind::MlDsa(l) => {
                return Err(self.err(module, format!(
                    "{} signs the message, not a digest: an external signer takes RSA and ECDSA keys",
                    l.name()
                )));
            }
        };
        let stdin: Vec<u8> = match (self.input, kind) {
            (SignerInput::Digest, _)
            | (SignerInput::DigestInfo, KeyKind::EcP256 | KeyKind::EcP384) => digest.to_vec(),
            (SignerInput::DigestHex, _) => hex::encode(digest).into_bytes(),
            (SignerInput::DigestInfo, _) => crate::pki::digest_info(hash, digest),
        };
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(&self.command)
            .env_remove("KBUILD_SIGN_PIN")
            .env("CARGO_KMOD_SIGN_HASH", hash.name())
            .env("CARGO_KMOD_SIGN_KEY_TYPE", key_type)
            .env("CARGO_KMOD_SIGN_KEY_BITS", bits.to_string())
            .env("CARGO_KMOD_SIGN_INPUT", self.input.name())
            .env("CARGO_KMOD_SIGN_DIGEST_HEX", hex::encode(digest))
            .env(
                "CARGO_KMOD_SIGN_DIGEST_BASE64",
                openssl::base64::encode_block(digest),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match module {
            Some(m) => c.env("CARGO_KMOD_SIGN_MODULE", m),
            None => c.env_remove("CARGO_KMOD_SIGN_MODULE"),
        };
        let (status, out, err) = self.run(c, &stdin, module)?;
        let said = || {
            let e = String::from_utf8_lossy(&err);
            let e = e.trim();
            if e.is_empty() {
                String::new()
            } else {
                format!("; it said: {}", e.chars().take(2000).collect::<String>())
            }
        };
        if !status.success() {
            return Err(self.err(module, format!("exited with {status}{}", said())));
        }
        if out.is_empty() {
            return Err(self.err(module, format!("printed no signature on stdout{}", said())));
        }
        let sig = match kind {
            KeyKind::Rsa(_) => out,
            _ => ecdsa_der(&out, bits as usize / 8)
                .ok_or_else(|| self.err(module, format!("printed {} bytes that are neither a DER ECDSA signature nor raw r‖s of {} bytes", out.len(), bits / 4)))?,
        };
        if !verifies(public, kind, hash, digest, &sig) {
            return Err(self.err(module, format!(
                "its {}-byte output is not a valid {kind} signature of the digest by the certificate's key (another key, other input — see --signer-input — or not a raw signature){}",
                sig.len(),
                said()
            )));
        }
        Ok(sig)
    }

    /// Runs the signer with `stdin`, killing it at the timeout; its output bounded.
    fn run(
        &self,
        mut c: Command,
        stdin: &[u8],
        module: Option<&Path>,
    ) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
        // Its own process group: a timeout kills the shell and what it started.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let mut child = c
            .spawn()
            .map_err(|e| self.err(module, format!("cannot start it: {e}")))?;
        let mut pipe = child.stdin.take().expect("piped");
        let input = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            // A signer that does not read its input is not an error here.
            let _ = pipe.write_all(&input);
        });
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(r) = r {
                    let _ = r.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    // SAFETY: kill(2) of the group this child leads; no memory involved.
                    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                    let _ = child.wait();
                    return Err(self.err(
                        module,
                        format!(
                            "did not finish in {} s; killed (raise --signer-timeout)",
                            self.timeout.as_secs()
                        ),
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(self.err(module, e.to_string())),
            }
        };
        let _ = writer.join();
        let out = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default();
        if out.len() as u64 > MAX_OUTPUT {
            return Err(self.err(
                module,
                format!("printed more than {MAX_OUTPUT} bytes: not a signature"),
            ));
        }
        Ok((status, out, err))
    }
}

/// An ECDSA signature as the kernel's PKCS#7 carries it (DER Ecdsa-Sig-Value), from DER
/// or raw r‖s (what PKCS#11 and Azure return).
fn ecdsa_der(out: &[u8], field: usize) -> Option<Vec<u8>> {
    if let Ok(s) = openssl::ecdsa::EcdsaSig::from_der(out)
        && s.to_der().ok()? == out
    {
        return Some(out.to_vec());
    }
    if out.len() != 2 * field {
        return None;
    }
    let r = openssl::bn::BigNum::from_slice(&out[..field]).ok()?;
    let s = openssl::bn::BigNum::from_slice(&out[field..]).ok()?;
    openssl::ecdsa::EcdsaSig::from_private_components(r, s)
        .ok()?
        .to_der()
        .ok()
}

/// Whether `sig` is `public`'s signature of `digest` (RSA: over its DigestInfo).
fn verifies(
    public: &PKey<Public>,
    kind: KeyKind,
    hash: HashAlg,
    digest: &[u8],
    sig: &[u8],
) -> bool {
    match kind {
        KeyKind::Rsa(_) => {
            let Ok(rsa) = public.rsa() else { return false };
            let mut buf = vec![0u8; rsa.size() as usize];
            match rsa.public_decrypt(sig, &mut buf, openssl::rsa::Padding::PKCS1) {
                Ok(n) => {
                    sig.len() == rsa.size() as usize
                        && buf[..n] == crate::pki::digest_info(hash, digest)[..]
                }
                Err(_) => false,
            }
        }
        _ => {
            let (Ok(ec), Ok(s)) = (public.ec_key(), openssl::ecdsa::EcdsaSig::from_der(sig)) else {
                return false;
            };
            s.verify(digest, &ec).unwrap_or(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_r_s_becomes_der_and_der_stays() {
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let digest = [7u8; 32];
        let sig = openssl::ecdsa::EcdsaSig::sign(&digest, &key).unwrap();
        let der = sig.to_der().unwrap();
        assert_eq!(ecdsa_der(&der, 32).unwrap(), der);
        let mut raw = sig.r().to_vec_padded(32).unwrap();
        raw.extend(sig.s().to_vec_padded(32).unwrap());
        assert_eq!(ecdsa_der(&raw, 32).unwrap(), der);
        assert!(ecdsa_der(&raw[1..], 32).is_none());
        let public = PKey::from_ec_key(
            openssl::ec::EcKey::from_public_key(key.group(), key.public_key()).unwrap(),
        )
        .unwrap();
        assert!(verifies(
            &public,
            KeyKind::EcP256,
            HashAlg::Sha256,
            &digest,
            &der
        ));
        assert!(!verifies(
            &public,
            KeyKind::EcP256,
            HashAlg::Sha256,
            &[8u8; 32],
            &der
        ));
    }
}
