//! Compressed modules (xz, zstd, gzip), bounded as `ModuleFile::read` bounds them.
#![no_main]
use cargo_kmod::modfile::compress::Compression;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let c = Compression::detect(data);
    let _ = c.decompress(data.to_vec(), 64 << 20);
});
