//! `sign-file`: the kernel's scripts/sign-file arguments, output and exit codes
//! (2 for usage, 1 for any failure), so Kbuild and DKMS can call us instead.
//! Differences, all safer: the destination is written atomically, nothing is left
//! behind on failure, and the original's file mode is kept.

use cargo_kmod::fsutil::AtomicWriter;
use cargo_kmod::hash::HashAlg;
use cargo_kmod::modfile::trailer;
use cargo_kmod::settings::Settings;
use cargo_kmod::sign::cms::SignerIdKind;
use cargo_kmod::sign::keys::{KeyKind, Pin};
use cargo_kmod::sign::{KeySource, SigningKey, p7s_path};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const USAGE: &str = "Usage: scripts/sign-file [-dpk] <hash algo> <key> <x509> <module> [<dest>]\n       scripts/sign-file -s <raw sig> <hash algo> <x509> <module> [<dest>]";

const HELP: &str = "Drop-in for the kernel's scripts/sign-file: appends a PKCS#7 module signature.

  -d  write only the detached signature (<module>.p7s), do not sign the module
  -p  also keep the detached signature in <module>.p7s
  -k  identify the signer by subjectKeyIdentifier instead of issuer and serial
  -s  <raw sig> is a finished PKCS#7 signature to append (no key needed)

<key> is a PEM or DER private key or a pkcs11: URI; its passphrase or PIN comes from
$KBUILD_SIGN_PIN. The result replaces <module> atomically (or goes to <dest>).
Exit codes, as sign-file's: 0 signed, 1 failure, 2 usage.";

#[derive(Default)]
struct Opts {
    raw_sig: bool,
    save_sig: bool,
    sign_only: bool,
    key_id: bool,
}

pub fn run(args: Vec<OsString>, settings: &Settings) -> i32 {
    let mut o = Opts::default();
    let mut pos: Vec<PathBuf> = Vec::new();
    let mut opts_done = false;
    // GNU getopt("sdpk"): options may follow operands; "--" ends them.
    for a in args {
        let s = a.to_string_lossy();
        if !opts_done && (s == "--help" || s == "-h") {
            println!("{HELP}\n\n{USAGE}");
            return 0;
        } else if !opts_done && s == "--" {
            opts_done = true;
        } else if !opts_done && s.len() > 1 && s.starts_with('-') {
            for c in s[1..].chars() {
                match c {
                    's' => o.raw_sig = true,
                    'p' => o.save_sig = true,
                    'd' => {
                        o.sign_only = true;
                        o.save_sig = true
                    }
                    'k' => o.key_id = true,
                    _ => {
                        eprintln!("sign-file: invalid option -- '{c}'");
                        return usage();
                    }
                }
            }
        } else {
            pos.push(a.into());
        }
    }
    if !(4..=5).contains(&pos.len()) {
        return usage();
    }
    match sign(&o, &pos, settings) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("sign-file: {msg}");
            1
        }
    }
}

fn usage() -> i32 {
    eprintln!("{USAGE}");
    2
}

fn sign(o: &Opts, pos: &[PathBuf], settings: &Settings) -> Result<(), String> {
    let module = &pos[3];
    let dest = pos.get(4).unwrap_or(module);
    let signer = if o.raw_sig {
        None
    } else {
        Some(signer(o, pos, settings)?)
    };
    // A device or FIFO would stream forever (or block): refused as sign-file refuses
    // nothing, but a module is a regular file.
    let mut input = cargo_kmod::fsutil::open_regular(module).map_err(|e| e.to_string())?;
    // -d writes the signature only (with -s, sign-file appends the raw one anyway).
    let mut out = if o.sign_only && !o.raw_sig {
        None
    } else {
        let mode = input.metadata().ok().map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o7777
        });
        // New files get 0644 (a module is not secret); a replaced one keeps its mode.
        let mode = if dest == module { mode } else { None };
        Some(AtomicWriter::create(dest, mode.unwrap_or(0o644)).map_err(|e| e.to_string())?)
    };
    // Streamed: hashed and copied to the new file in one pass, never held whole.
    let mut hasher = signer
        .as_ref()
        .map(|(_, hash, _)| openssl::hash::Hasher::new(hash.md()).map_err(|e| e.to_string()))
        .transpose()?;
    let mut buf = vec![0u8; 64 << 10];
    let mut last: Vec<u8> = Vec::new();
    loop {
        let n = std::io::Read::read(&mut input, &mut buf)
            .map_err(|e| format!("{}: {e}", module.display()))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if let Some(h) = &mut hasher {
            h.update(chunk).map_err(|e| e.to_string())?;
        }
        if let Some(w) = &mut out {
            w.write(chunk).map_err(|e| e.to_string())?;
        }
        // The end of the module, for the marker of a signature already there.
        last.extend_from_slice(&chunk[chunk.len().saturating_sub(64)..]);
        last.drain(..last.len().saturating_sub(64));
    }
    // The module goes to disk while it is signed: the final fsync then waits for
    // little more than the signature (sign-file itself never syncs).
    if let Some(w) = &mut out {
        w.start_writeback();
    }
    let cms = match (signer, hasher) {
        (Some((key, hash, id)), Some(mut h)) => {
            let digest = h.finish().map_err(|e| e.to_string())?;
            let cms = key
                .sign_digest(hash, id, &digest)
                .map_err(|e| e.to_string())?;
            if o.save_sig {
                write(&p7s_path(module), &[&cms], None)?;
            }
            cms
        }
        // A raw PKCS#7 signature: the largest (ML-DSA-87) is under 8 KiB.
        _ => cargo_kmod::fsutil::read_small(&pos[0], 1 << 20)
            .map_err(|e| format!("{}: {e}", pos[0].display()))?,
    };
    let Some(mut out) = out else {
        return Ok(()); // -d: the signature only
    };
    if trailer::has_marker(&last) {
        // sign-file does not check; the outer signature is the one the kernel reads.
        eprintln!(
            "sign-file: warning: {} already carries a signature; appending another",
            module.display()
        );
    }
    out.write(&trailer::tail(&cms)).map_err(|e| e.to_string())?;
    out.commit().map_err(|e| e.to_string())
}

/// The key, hash and signer id sign-file's arguments name.
fn signer(
    o: &Opts,
    pos: &[PathBuf],
    settings: &Settings,
) -> Result<(SigningKey, HashAlg, SignerIdKind), String> {
    let hash = HashAlg::from_name(&pos[0].to_string_lossy())
        .ok_or_else(|| format!("EVP_get_digestbyname: unknown digest {}", pos[0].display()))?;
    // A key file, or a pkcs11: URI (PIN from KBUILD_SIGN_PIN, which sign-file's
    // OpenSSL 3 provider path ignores).
    let pin = Pin::from_sources(None, settings.sign_pin.as_deref()).map_err(|e| e.to_string())?;
    let mut key = SigningKey::open(&KeySource {
        key: &pos[1],
        cert: Some(&pos[2]),
        pin: &pin,
        pkcs11_module: settings.pkcs11_module.as_deref(),
    })
    .map_err(|e| e.to_string())?;
    key.set_crypto(settings.crypto.as_deref());
    // As 7.x's sign-file with OpenSSL 3.x: ML-DSA only with signed attributes.
    if matches!(key.kind(), KeyKind::MlDsa(_)) {
        key.set_signed_attrs(true).map_err(|e| e.to_string())?;
    }
    let id = if o.key_id {
        SignerIdKind::KeyId
    } else {
        SignerIdKind::IssuerSerial
    };
    Ok((key, hash, id))
}

fn write(path: &Path, parts: &[&[u8]], mode: Option<u32>) -> Result<(), String> {
    cargo_kmod::fsutil::write_atomic_parts(path, parts, mode).map_err(|e| e.to_string())
}
