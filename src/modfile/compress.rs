//! Compressed modules: detect, decompress, and recompress with Kbuild's parameters
//! (scripts/Makefile.modinst: `gzip -n`, `xz --check=crc32 --lzma2=dict=1MiB`, `zstd` default level).

use std::io::{Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }

    /// By content; the suffix only decides when the content is not recognised.
    pub fn detect(data: &[u8]) -> Compression {
        if data.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if data.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            Compression::Zstd
        } else if data.starts_with(&[0x1F, 0x8B]) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    /// Consumes the raw bytes: an uncompressed file is returned as it is, uncopied.
    /// Output beyond `limit` bytes (a decompression bomb) is an error, found without
    /// holding more than `limit` bytes.
    pub fn decompress(self, raw: Vec<u8>, limit: u64) -> std::io::Result<Vec<u8>> {
        if self == Compression::None {
            return Ok(raw);
        }
        let data = raw.as_slice();
        let mut out = Vec::with_capacity((data.len() * 4).min(limit as usize));
        let n = match self {
            Compression::None => unreachable!("returned above"),
            Compression::Xz => liblzma::read::XzDecoder::new(data)
                .take(limit + 1)
                .read_to_end(&mut out)?,
            Compression::Zstd => zstd::stream::read::Decoder::new(data)?
                .take(limit + 1)
                .read_to_end(&mut out)?,
            Compression::Gzip => flate2::read::GzDecoder::new(data)
                .take(limit + 1)
                .read_to_end(&mut out)?,
        };
        if n as u64 > limit {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {} MiB, more than any kernel module",
                limit >> 20
            )));
        }
        Ok(out)
    }

    /// Compresses the concatenation of `parts`.
    pub fn compress(self, parts: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        Ok(match self {
            Compression::None => parts.concat(),
            Compression::Xz => {
                use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
                // The in-kernel xz decoder needs CRC32 and a 1 MiB dictionary.
                let mut opts = LzmaOptions::new_preset(6).map_err(std::io::Error::other)?;
                opts.dict_size(1 << 20);
                let mut filters = Filters::new();
                filters.lzma2(&opts);
                let stream = Stream::new_stream_encoder(&filters, Check::Crc32)
                    .map_err(std::io::Error::other)?;
                let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                for p in parts {
                    enc.write_all(p)?;
                }
                enc.finish()?
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 0)?;
                for p in parts {
                    enc.write_all(p)?;
                }
                enc.finish()?
            }
            Compression::Gzip => {
                // gzip -n: no name, no timestamp.
                let mut enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::new(), flate2::Compression::default());
                for p in parts {
                    enc.write_all(p)?;
                }
                enc.finish()?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compression::None,
            Compression::Xz,
            Compression::Zstd,
            Compression::Gzip,
        ] {
            let (a, b) = data.split_at(1234);
            let z = c.compress(&[a, b]).unwrap();
            assert_eq!(Compression::detect(&z), c);
            assert_eq!(c.decompress(z.clone(), 1 << 20).unwrap(), data);
            if c != Compression::None {
                let e = c.decompress(z, 1000).unwrap_err();
                assert!(e.to_string().contains("more than"), "{e}");
            }
        }
    }
}
