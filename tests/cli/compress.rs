//! Compressed modules are signed inside and recompressed in the same format,
//! with the kernel's parameters.

use crate::common::*;
use std::process::Command as Std;

#[test]
fn signs_xz_zst_gz_in_their_format_and_keeps_mode() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("p384");
    let plain = unsigned_module(d.path(), "dummy");
    for (ext, compress, check) in [
        (
            "xz",
            vec!["xz", "--check=crc32", "--lzma2=dict=1MiB", "-kc"],
            "xz",
        ),
        ("zst", vec!["zstd", "-qc"], "zstd"),
        ("gz", vec!["gzip", "-nc"], "gzip"),
    ] {
        let m = d.path().join(format!("dummy.ko.{ext}"));
        let z = run(Std::new(compress[0]).args(&compress[1..]).arg(&plain)).stdout;
        std::fs::write(&m, z).unwrap();
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o640)).unwrap();
        sign_cmd(&k, "sha512").arg(&m).assert().success();
        assert_eq!(
            std::fs::metadata(&m).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        // The real decompressor reads it, and the ELF inside is the signed original.
        let inner = run(Std::new(check).arg("-dc").arg(&m)).stdout;
        assert_eq!(
            strip(&inner),
            std::fs::read(&plain).unwrap().as_slice(),
            "{ext}"
        );
        assert_verifies(&k.cert, &m);
        // Debian's kmod reads xz and zstd modules, not gzip.
        if ext != "gz" {
            let mi = stdout(&run(Std::new("modinfo").arg(&m)));
            assert!(mi.contains("signer:         test key p384"), "{ext}: {mi}");
        }
    }
    // The kernel's xz decoder needs CRC32 and a dictionary of at most 1 MiB.
    let list = stdout(&run(Std::new("xz")
        .args(["-lvv"])
        .arg(d.path().join("dummy.ko.xz"))));
    assert!(list.contains("CRC32"), "{list}");
    assert!(
        list.contains("1,024 KiB") || list.contains("1 MiB") || list.contains("dict=1MiB"),
        "{list}"
    );
}
