//! X.509 as the kernel reads it, and as certificates are loaded for signing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cargo_kmod::pki::x509::Certificate::parse(data);
    let _ = cargo_kmod::pki::cert::Cert::from_der(std::path::Path::new("fuzz"), data);
});
