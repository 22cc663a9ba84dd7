//! The cache and its layout: `$CARGO_KMOD_CACHE`, else `~/.cache/cargo-kmod`, holding
//! built kernels, prepared trees and downloaded tools.

use std::path::PathBuf;

pub fn dir() -> PathBuf {
    crate::settings::get().cache.clone()
}

/// `kernel build`'s kernels, one directory each.
pub fn kernels() -> PathBuf {
    dir().join("kernels")
}

/// `kernel prepare`'s trees.
pub fn prepared() -> PathBuf {
    dir().join("prepared")
}

/// Tools the tool does not find installed: bindgen (`bin/`), a foreign busybox.
pub fn tools() -> PathBuf {
    dir().join("tools")
}
