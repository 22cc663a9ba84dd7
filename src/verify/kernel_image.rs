//! The builtin trusted certificates of a kernel (`system_certificate_list`), read out of
//! a bzImage/vmlinuz (payload gzip, xz, lzma, zstd, lz4 or bzip2) or an ELF vmlinux,
//! stripped or not.

use crate::error::{Error, Result};
use crate::sign::keys::Cert;
use std::io::Read;
use std::path::Path;

/// Decompresses a bzImage payload, or returns an ELF vmlinux as it is.
pub fn vmlinux(path: &Path, data: &[u8]) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::NotModule {
        path: path.to_path_buf(),
        reason,
    };
    if data.starts_with(b"\x7fELF") {
        return Ok(data.to_vec());
    }
    // x86 boot protocol: "HdrS" at 0x202, version >= 2.08 for payload_offset/length.
    if data.len() < 0x250 || &data[0x202..0x206] != b"HdrS" {
        return Err(Error::KernelImage {
            path: path.to_path_buf(),
            reason: "neither an ELF vmlinux nor an x86 bzImage".into(),
        });
    }
    let version = u16::from_le_bytes([data[0x206], data[0x207]]);
    if version < 0x0208 {
        return Err(Error::KernelImage {
            path: path.to_path_buf(),
            reason: format!(
                "boot protocol {:x}.{:02x} is older than 2.08",
                version >> 8,
                version & 0xff
            ),
        });
    }
    let setup_sects = match data[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let off = u32::from_le_bytes(data[0x248..0x24c].try_into().expect("4 bytes")) as usize;
    let len = u32::from_le_bytes(data[0x24c..0x250].try_into().expect("4 bytes")) as usize;
    let start = (setup_sects + 1) * 512 + off;
    let payload = data
        .get(start..start + len)
        .ok_or_else(|| Error::KernelImage {
            path: path.to_path_buf(),
            reason: "payload lies outside the file (truncated image?)".into(),
        })?;
    let mut out = Vec::with_capacity(len * 4);
    let res = if payload.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        zstd::stream::read::Decoder::new(payload)
            .map(|d| d.single_frame())
            .and_then(|mut d| d.read_to_end(&mut out))
    } else if payload.starts_with(&[0x1F, 0x8B]) {
        flate2::read::GzDecoder::new(payload).read_to_end(&mut out)
    } else if payload.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        liblzma::read::XzDecoder::new(payload).read_to_end(&mut out)
    } else if payload.starts_with(&[0x5D, 0, 0]) {
        liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
            .map_err(std::io::Error::other)
            .and_then(|s| liblzma::read::XzDecoder::new_stream(payload, s).read_to_end(&mut out))
    } else if payload.starts_with(&LZ4_LEGACY) {
        lz4_legacy(payload, &mut out)
    } else if payload.starts_with(b"BZh") {
        bzip2::read::BzDecoder::new(payload).read_to_end(&mut out)
    } else {
        return Err(Error::KernelImage {
            path: path.to_path_buf(),
            reason: format!(
                "payload compression {:02x?} not supported (gzip, xz, lzma, zstd, lz4, bzip2 are)",
                &payload[..payload.len().min(4)]
            ),
        });
    };
    // Trailing bytes (the appended size) may end the stream with an error after
    // everything was produced; an ELF header is what counts.
    if !out.starts_with(b"\x7fELF") {
        return Err(bad(format!(
            "cannot decompress the kernel payload: {}",
            res.err().map_or("no ELF inside".into(), |e| e.to_string())
        )));
    }
    Ok(out)
}

/// `lz4 -l` (the legacy format the kernel's Makefile.lib asks for).
const LZ4_LEGACY: [u8; 4] = [0x02, 0x21, 0x4C, 0x18];

/// Legacy lz4: the magic, then blocks of at most 8 MiB of output, each after its
/// 32-bit little-endian compressed size. The kernel's appended size ends them.
fn lz4_legacy(mut p: &[u8], out: &mut Vec<u8>) -> std::io::Result<usize> {
    while let Some(head) = p.first_chunk::<4>() {
        if *head == LZ4_LEGACY {
            p = &p[4..];
            continue;
        }
        let n = u32::from_le_bytes(*head) as usize;
        let Some(block) = p.get(4..4 + n).filter(|_| n > 0) else {
            break;
        };
        let data = lz4_flex::block::decompress(block, 8 << 20).map_err(std::io::Error::other)?;
        out.extend_from_slice(&data);
        p = &p[4 + n..];
    }
    Ok(out.len())
}

/// Every X.509 certificate stored as DER in the image, in order: the kernel keeps
/// `system_certificate_list` as concatenated `30 82 LL LL` certificates.
pub fn certificates(path: &Path) -> Result<Vec<Cert>> {
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let elf = vmlinux(path, &data)?;
    let mut certs: Vec<Cert> = Vec::new();
    let mut i = 0;
    while i + 8 < elf.len() {
        // SEQUENCE (cert) holding SEQUENCE (tbsCertificate), both with 2-byte lengths.
        if elf[i] == 0x30 && elf[i + 1] == 0x82 && elf[i + 4] == 0x30 && elf[i + 5] == 0x82 {
            let len = u16::from_be_bytes([elf[i + 2], elf[i + 3]]) as usize + 4;
            if let Some(der) = elf.get(i..i + len)
                && let Ok(c) = Cert::from_der(path, der)
            {
                if !certs
                    .iter()
                    .any(|k| k.x509.to_der().ok().as_deref() == Some(der))
                {
                    certs.push(c);
                }
                i += len;
                continue;
            }
        }
        i += 1;
    }
    if certs.is_empty() {
        return Err(Error::KernelImage {
            path: path.to_path_buf(),
            reason: "no certificates found in the kernel".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lz4_legacy_blocks_over_8_mib_are_an_error_not_a_panic() {
        let block = lz4_flex::block::compress(&vec![0u8; 9 << 20]);
        let mut p = LZ4_LEGACY.to_vec();
        p.extend_from_slice(&(block.len() as u32).to_le_bytes());
        p.extend_from_slice(&block);
        assert!(lz4_legacy(&p, &mut Vec::new()).is_err());
        // A valid block, then the appended size (too long to be a block): ends there.
        let block = lz4_flex::block::compress(b"\x7fELF and more");
        let mut p = LZ4_LEGACY.to_vec();
        p.extend_from_slice(&(block.len() as u32).to_le_bytes());
        p.extend_from_slice(&block);
        p.extend_from_slice(&13u32.to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(lz4_legacy(&p, &mut out).unwrap(), 13);
        assert_eq!(out, b"\x7fELF and more");
    }
}
