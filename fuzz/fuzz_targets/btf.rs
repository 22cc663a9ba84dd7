//! BTF from a kernel's vmlinux (a hostile image's): the struct size lookup `check` uses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cargo_kmod::check::btf::struct_size(data, "module");
});
