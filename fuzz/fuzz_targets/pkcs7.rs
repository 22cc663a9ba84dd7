//! PKCS#7 as the kernel parses it, and modinfo's view of the signature block.
#![no_main]
use cargo_kmod::modfile::{modinfo, trailer};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cargo_kmod::pki::pkcs7::parse(data);
    let _ = modinfo::sig_block(&trailer::append(b"\x7fELF", data));
});
