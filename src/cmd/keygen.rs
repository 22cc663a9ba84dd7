use crate::cli::KeygenArgs;
use cargo_kmod::sign::keygen::{self, Algo, KeygenOptions};
use cargo_kmod::sign::keys::Pin;
use cargo_kmod::sign::pkcs11;

pub fn run(a: KeygenArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let algo = Algo::ALL
        .iter()
        .find(|(n, _)| *n == a.algo)
        .map(|(_, x)| *x)
        .expect("clap checked the value");
    let o = KeygenOptions {
        out: a.out,
        algo,
        cn: a.cn,
        days: a.days,
        mok: a.mok,
    };
    let result = match &a.pkcs11 {
        Some(uri) => Pin::from_sources(a.pin_file.as_deref(), cx.settings.sign_pin.as_deref())
            .and_then(|pin| {
                pkcs11::generate_in_token(
                    uri,
                    a.pkcs11_module
                        .as_deref()
                        .or(cx.settings.pkcs11_module.as_deref()),
                    pin.bytes(),
                    &o,
                )
            })
            .and_then(|cert| keygen::write_cert_only(&o.out, &cert)),
        None => keygen::generate(&o),
    };
    let f = result?;
    let key = match &a.pkcs11 {
        Some(uri) => {
            let shown = pkcs11::Uri::display(uri).display().to_string();
            note!(
                cx.ui,
                "generated {} key inside the token: {shown}",
                article(&a.algo.to_string())
            );
            outln!("{}", f.cert_pem.display());
            outln!("{}", f.cert_der.display());
            format!("'{shown}'")
        }
        None => {
            note!(
                cx.ui,
                "generated {} key (private key mode 0600: keep it secret)",
                article(&a.algo.to_string())
            );
            outln!("{}", f.key.display());
            outln!("{}", f.cert_pem.display());
            outln!("{}", f.cert_der.display());
            f.key.display().to_string()
        }
    };
    note!(cx.ui, "next steps, one of:");
    if let Algo::MlDsa(_) = algo {
        // shim verifies MOK entries with its own crypto, which has no ML-DSA yet.
        note!(
            cx.ui,
            "  - Secure Boot machines: not yet: shim's MOK list cannot enroll ML-DSA keys today; the kernel (7.0+) must carry the key itself"
        );
        note!(
            cx.ui,
            "  - a running 7.0+ kernel: its secondary keyring (keyctl padd asymmetric \"\" %:.secondary_trusted_keys < CERT.der) takes a certificate for this key once a key the kernel trusts has signed it (this one is self-signed)"
        );
    } else {
        note!(
            cx.ui,
            "  - Secure Boot machines: mokutil --import {} , then reboot and enroll it",
            f.cert_der.display()
        );
        if a.mok && matches!(algo, Algo::EcdsaP256 | Algo::EcdsaP384) {
            // Measured: shim enrolls it and the kernel loads it into .machine, but a
            // kernel without CONFIG_CRYPTO_ECDSA cannot verify what it signs.
            warning!(
                cx.ui,
                "shim enrolls an ECDSA MOK, but kernels built without CONFIG_CRYPTO_ECDSA (Debian 12's 6.1) refuse modules it signs; RSA-2048 (what DKMS makes) loads on every Secure Boot kernel"
            );
        }
    }
    note!(
        cx.ui,
        "  - your own kernel: CONFIG_SYSTEM_TRUSTED_KEYS=\"{0}\" (or `cargo kmod kernel build --trusted-cert {0}`)",
        f.cert_pem.display()
    );
    note!(
        cx.ui,
        "  - sign: cargo kmod sign --key {key} --cert {} MODULE",
        f.cert_pem.display()
    );
    Ok(0)
}

/// "a rsa-4096" reads wrong; "an ecdsa-p384", "an rsa-4096" (said "ar-ess-ay").
fn article(algo: &str) -> String {
    let an = algo.starts_with(['a', 'e', 'i', 'o', 'u', 'r', 'm']);
    format!("{} {algo}", if an { "an" } else { "a" })
}
