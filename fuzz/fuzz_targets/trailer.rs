//! The appended-signature trailer, and the kernel's whole verdict on a module.
#![no_main]
use cargo_kmod::modfile::trailer;
use cargo_kmod::verify::{Keyring, verify};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = trailer::parse(data);
    let _ = verify(data, &Keyring::default());
});
