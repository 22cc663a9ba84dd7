use crate::cli::CertsArgs;
use cargo_kmod::Error;
use cargo_kmod::kernel_image;
use cargo_kmod::pki::hex_colon;

pub fn run(a: CertsArgs) -> cargo_kmod::Result<i32> {
    let certs = kernel_image::certificates(&a.image)?;
    if a.pem {
        for c in &certs {
            let pem = c.x509.to_pem().expect("encodes");
            outln!("{}", String::from_utf8_lossy(&pem).trim_end());
        }
        return Ok(0);
    }
    if let Some(dir) = &a.der_dir {
        if let Err(source) = std::fs::create_dir_all(dir) {
            return Err(Error::Write {
                path: dir.clone(),
                source,
            });
        }
        for (i, c) in certs.iter().enumerate() {
            let p = dir.join(format!("cert{i}.der"));
            cargo_kmod::fsutil::write_atomic(&p, &c.x509.to_der().expect("encodes"), None)?;
            outln!("{}", p.display());
        }
        return Ok(0);
    }
    for c in &certs {
        // OpenSSL 3.0 cannot read an ML-DSA key; the kernel-side parse can.
        let key = match &c.kernel {
            Ok(k) => match &k.public {
                cargo_kmod::pki::x509::PublicKey::MlDsa { level, .. } => Some(level.name().into()),
                _ => None,
            },
            Err(_) => None,
        }
        .or_else(|| {
            c.x509
                .public_key()
                .ok()
                .and_then(|k| cargo_kmod::sign::keys::key_kind(&k).ok())
                .map(|k| k.to_string())
        })
        .unwrap_or_else(|| "other".into());
        outln!("subject:  {}", c.subject());
        outln!("issuer:   {}", c.issuer());
        outln!("serial:   {}", hex_colon(&c.serial));
        outln!(
            "skid:     {}",
            c.skid.as_deref().map_or("-".into(), hex_colon)
        );
        outln!("key:      {key}");
        outln!(
            "validity: {} .. {}",
            c.x509.not_before(),
            c.x509.not_after()
        );
        outln!();
    }
    Ok(0)
}
