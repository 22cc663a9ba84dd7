//! The ELF checks, .modinfo fields and the loader's view (symbols, versions, exports)
//! of a module.
#![no_main]
use cargo_kmod::modfile::elf;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(info) = elf::inspect(data) {
        let _ = elf::modinfo_fields(info.modinfo);
        let _ = info.loader_view();
    }
});
