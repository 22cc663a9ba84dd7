//! `Module.symvers`: every symbol vmlinux and the kernel's own modules export, with
//! its CRC, export type, namespace and owner (scripts/mod/modpost.c writes it).

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Debian's 7.2 has 29 000 lines (2 MB); anything far beyond is not one.
const MAX_SYMVERS: u64 = 256 << 20;

#[derive(Debug, Clone)]
pub struct Symbol {
    /// `vmlinux`, or the module's path in the tree without `.ko` (`drivers/net/tun`).
    pub owner: String,
    pub gpl_only: bool,
    pub namespace: String,
    /// None when the kernel has no symbol versions (the column is 0x00000000).
    pub crc: Option<u32>,
}

impl Symbol {
    /// The owning module's name as the kernel knows it, or None for vmlinux.
    pub fn module(&self) -> Option<String> {
        (self.owner != "vmlinux").then(|| crate::modfile::name_of_path(&self.owner))
    }
}

pub fn read(path: &Path) -> Result<HashMap<String, Symbol>> {
    let bytes = crate::fsutil::read_bounded(path, MAX_SYMVERS)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut map = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            return Err(Error::KernelFacts {
                path: path.to_path_buf(),
                reason: format!("line {}: not `crc<TAB>symbol<TAB>module<TAB>export type`", n + 1),
                fix: "give the Module.symvers that `make` wrote for this kernel (a headers package has it)".into(),
            });
        }
        let crc = u32::from_str_radix(f[0].trim_start_matches("0x"), 16)
            .ok()
            .filter(|&c| c != 0);
        map.insert(
            f[1].to_string(),
            Symbol {
                owner: f[2].to_string(),
                gpl_only: f[3].ends_with("_GPL"),
                namespace: f.get(4).copied().unwrap_or_default().to_string(),
                crc,
            },
        );
    }
    Ok(map)
}
