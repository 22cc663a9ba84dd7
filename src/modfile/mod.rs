//! A module file on disk: compression, the ELF inside, and its signature trailer.

pub mod compress;
pub mod elf;
pub mod modinfo;
pub mod trailer;

use crate::error::{Error, Result};
use compress::Compression;
use std::path::{Path, PathBuf};

/// A module name as the kernel compares them: '-' and '_' are the same (Kbuild writes
/// '_'; `mod_strncmp`, modprobe and depmod treat both alike).
pub fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// A module's name from its path or file name: `drivers/net/tun-x.ko.xz` → `tun_x`.
pub fn name_of_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    normalise(base.split(".ko").next().unwrap_or(base))
}

/// A module read from disk, decompressed.
pub struct ModuleFile {
    pub path: PathBuf,
    pub compression: Compression,
    /// The ELF bytes, including any appended signature.
    pub data: Vec<u8>,
    pub mode: u32,
    /// The file the bytes came from, to notice another writer before replacing it.
    pub origin: crate::fsutil::FileId,
}

impl ModuleFile {
    /// Reads and decompresses, refusing more than `limit` bytes (`Settings::max_module_bytes`:
    /// a file beyond it is refused rather than read into memory); does not judge the contents.
    pub fn read(path: &Path, limit: u64) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let read_err = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        // One open: its metadata and its bytes come from the same file.
        let file = crate::fsutil::open_regular(path)?;
        let meta = file.metadata().map_err(read_err)?;
        if meta.len() > limit {
            return Err(Error::NotModule {
                path: path.to_path_buf(),
                reason: format!(
                    "{} MiB is more than any kernel module (limit {} MiB, CARGO_KMOD_MAX_MODULE_MIB)",
                    meta.len() >> 20,
                    limit >> 20
                ),
            });
        }
        let mut raw = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut raw)
            .map_err(read_err)?;
        let compression = Compression::detect(&raw);
        let data = compression
            .decompress(raw, limit)
            .map_err(|e| Error::Decompress {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(ModuleFile {
            path: path.to_path_buf(),
            compression,
            data,
            mode: meta.permissions().mode() & 0o7777,
            origin: crate::fsutil::FileId::of(&meta),
        })
    }

    /// Reads and checks that it is a kernel module.
    pub fn open(path: &Path, limit: u64) -> Result<Self> {
        let m = Self::read(path, limit)?;
        m.elf()?;
        Ok(m)
    }

    pub fn elf(&self) -> Result<elf::ElfInfo<'_>> {
        elf::inspect(&self.data).map_err(|reason| Error::NotModule {
            path: self.path.clone(),
            reason,
        })
    }

    pub fn trailer(&self) -> trailer::Trailer<'_> {
        trailer::parse(&self.data)
    }

    /// The module without its signature; errors if the trailer is damaged.
    pub fn unsigned_body(&self) -> Result<&[u8]> {
        match self.trailer() {
            trailer::Trailer::Unsigned => Ok(&self.data),
            trailer::Trailer::Signed { body, .. } => Ok(body),
            trailer::Trailer::Malformed(reason) => Err(Error::BadTrailer {
                path: self.path.clone(),
                reason: reason.into(),
            }),
            trailer::Trailer::NotPkcs7(t) => Err(Error::BadTrailer {
                path: self.path.clone(),
                reason: format!("signature type {t} is not PKCS#7"),
            }),
        }
    }

    /// Stages the concatenation of `parts` (uncompressed ELF) for `dest` in this file's
    /// compression, keeping the file mode; [`Staged::finish`] puts it in place atomically.
    ///
    /// [`Staged::finish`]: crate::fsutil::Staged::finish
    pub fn stage_to<'s>(
        &self,
        dest: &Path,
        parts: &[&[u8]],
        spares: &'s crate::fsutil::Spares,
    ) -> Result<crate::fsutil::Staged<'s>> {
        let read = (dest == self.path).then_some(self.origin);
        match self.compress(parts)? {
            Some(bytes) => spares.stage(dest, &[&bytes], self.mode, read),
            None => spares.stage(dest, parts, self.mode, read),
        }
    }

    /// `parts` compressed like this file, or None when it is not compressed (then the
    /// parts are written as they are, never copied into one buffer).
    pub fn compress(&self, parts: &[&[u8]]) -> Result<Option<Vec<u8>>> {
        if self.compression == Compression::None {
            return Ok(None);
        }
        self.compression
            .compress(parts)
            .map(Some)
            .map_err(|source| Error::Write {
                path: self.path.clone(),
                source,
            })
    }
}
