//! Kernel images: bzImage payloads (every compression) and ELF vmlinux, scanned
//! for the builtin certificates.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cargo_kmod::kernel_image::certificates_in(std::path::Path::new("fuzz"), data);
});
