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

    pub fn decompress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() * 4);
        match self {
            Compression::None => out.extend_from_slice(data),
            Compression::Xz => {
                liblzma::read::XzDecoder::new(data).read_to_end(&mut out)?;
            }
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?;
            }
            Compression::Gzip => {
                flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
            }
        }
        Ok(out)
    }

    pub fn compress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        Ok(match self {
            Compression::None => data.to_vec(),
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
                enc.write_all(data)?;
                enc.finish()?
            }
            Compression::Zstd => zstd::stream::encode_all(data, 0)?,
            Compression::Gzip => {
                // gzip -n: no name, no timestamp.
                let mut enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::new(), flate2::Compression::default());
                enc.write_all(data)?;
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
            let z = c.compress(&data).unwrap();
            assert_eq!(Compression::detect(&z), c);
            assert_eq!(c.decompress(&z).unwrap(), data);
        }
    }
}
