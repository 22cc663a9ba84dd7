//! The ELF checks and .modinfo fields of a module.
#![no_main]
use cargo_kmod::modfile::elf;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(info) = elf::inspect(data) {
        let _ = elf::modinfo_fields(info.modinfo);
    }
});
