//! The extended kernels, 7.3-rc (Debian experimental) and 6.1 (bookworm, no Rust):
//! `scripts/test.sh --extended` builds them and runs these (ignored otherwise, so CI
//! lists them as ignored rather than passing them).

use crate::common::*;
use crate::generations::every_template_on;
use cargo_kmod::kernel::KernelInfo;

fn extended_kernel(record: &str) -> KernelInfo {
    crate::run::recorded(record, "scripts/test.sh --extended")
}

#[test]
#[ignore = "extended: scripts/test.sh --extended"]
fn every_template_on_73_rc() {
    let k = extended_kernel("test-kernel-7.3.txt");
    assert!(k.release.starts_with("7.3"), "{}", k.release);
    assert!(k.rust, "7.3 builds with Rust here");
    every_template_on(&k);
}

#[test]
#[ignore = "extended: scripts/test.sh --extended"]
fn kernel_61_builds_without_rust_and_c_templates_load() {
    let k = extended_kernel("test-kernel-6.1.txt");
    assert!(k.release.starts_with("6.1."), "{}", k.release);
    assert!(!k.rust, "6.1 pins rustc 1.62: built without Rust");
    // Asking for Rust is refused with the reason, before any work.
    let src = cache_dir().join("fixtures/linux-source-6.1/usr/src/linux-source-6.1.tar.xz");
    let o = kmod()
        .args(["kernel", "build", "--rust", "--source"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(25), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs exactly rustc 1.62"),
        "{}",
        stderr(&o)
    );
    every_template_on(&k);
}
