//! The cache and its layout: `$CARGO_KMOD_CACHE`, else `~/.cache/cargo-kmod`, holding
//! built kernels, prepared trees and downloaded tools.

use crate::settings::Settings;
use std::path::PathBuf;

pub fn dir(s: &Settings) -> PathBuf {
    s.cache.clone()
}

/// `kernel build`'s kernels, one directory each.
pub fn kernels(s: &Settings) -> PathBuf {
    dir(s).join("kernels")
}

/// `kernel fetch`'s kernels: `<distro>/<suite>/<arch>/<release>/`.
pub fn distro(s: &Settings) -> PathBuf {
    dir(s).join("distro")
}

/// Private apt configurations, one per suite and architecture.
pub fn apt(s: &Settings) -> PathBuf {
    dir(s).join("apt")
}

/// Downloaded packages, kept to be unpacked again without the network.
pub fn debs(s: &Settings) -> PathBuf {
    dir(s).join("debs")
}

/// `kernel prepare`'s trees.
pub fn prepared(s: &Settings) -> PathBuf {
    dir(s).join("prepared")
}

/// Tools the tool does not find installed: bindgen (`bin/`), a foreign busybox.
pub fn tools(s: &Settings) -> PathBuf {
    dir(s).join("tools")
}

/// One protocol for every cached tree (a built kernel, a prepared tree): whatever
/// name it was made under, it is finished only once its record, written last and
/// atomically, is there. A directory without its record is unfinished: it is redone,
/// never used.
pub struct Record {
    /// The record's file name in the tree's directory.
    pub file: &'static str,
}

/// What `kernel build` leaves beside each kernel.
pub const KERNEL: Record = Record {
    file: "cargo-kmod-kernel.json",
};

/// What `kernel fetch` leaves beside each fetched kernel's `root/`.
pub const DISTRO: Record = Record {
    file: "cargo-kmod-distro.json",
};

/// What `kernel prepare` leaves beside each prepared tree.
pub const PREPARED: Record = Record {
    file: "cargo-kmod-prepared.json",
};

impl Record {
    /// The record of a finished tree in `dir`; None when unfinished (or unreadable).
    pub fn read<T: serde::de::DeserializeOwned>(&self, dir: &std::path::Path) -> Option<T> {
        let bytes = crate::fsutil::read_bounded(&dir.join(self.file), 1 << 20).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Marks the tree in `dir` finished: the last write of its making.
    pub fn finish<T: serde::Serialize>(
        &self,
        dir: &std::path::Path,
        info: &T,
    ) -> crate::error::Result<()> {
        crate::fsutil::write_atomic(
            &dir.join(self.file),
            &serde_json::to_vec_pretty(info).expect("a record serialises"),
            None,
        )
    }
}
