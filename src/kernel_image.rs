//! The builtin trusted certificates of a kernel (`system_certificate_list`), read out of
//! an x86 bzImage/vmlinuz (payload gzip, xz, lzma, zstd, lz4 or bzip2), an arm64
//! `Image` (Debian's arm64 vmlinuz), a compressed one (`Image.gz`, ...), an EFI zboot
//! image, or an ELF vmlinux, stripped or not.

use crate::error::{Error, Result};
use crate::pki::cert::Cert;
use std::io::Read;
use std::path::Path;

/// The most of a vmlinux that is read (decompressed, or as an ELF file): 1 GiB. Debian's
/// is 60 MB; one with full debug info a few hundred. A payload that inflates beyond
/// it (a decompression bomb) is refused; memory stays a few MiB whatever the size.
pub const MAX_VMLINUX: u64 = 1 << 30;

/// A bzImage is read into memory to find its payload: at most this much.
const MAX_BZIMAGE: u64 = 256 << 20;

/// More certificates than any kernel carries (Debian's: 1; a distribution's with
/// every vendor key: tens).
pub const MAX_CERTS: usize = 1024;

/// The vmlinux inside a kernel image, as a stream: a bzImage's decompressed payload,
/// or an ELF vmlinux file as it is (at most [`MAX_VMLINUX`] bytes are read); and
/// whether the stream is a whole compressed file (`Image.gz`), whose every decoding
/// error is damage (a bzImage's payload ends with the size the kernel's Makefile
/// appends, on which some decoders stop with an error).
fn vmlinux_stream<'a, R: Read + 'a>(
    path: &Path,
    file: R,
    data: &'a mut Vec<u8>,
) -> Result<(Box<dyn Read + 'a>, bool)> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let image = |reason: String| Error::KernelImage {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = file;
    let mut head = Vec::new();
    (&mut file)
        .take(4)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    if head == b"\x7fELF" {
        let rest = file.take(MAX_VMLINUX + 1 - 4);
        return Ok((Box::new(std::io::Cursor::new(head).chain(rest)), false));
    }
    data.extend_from_slice(&head);
    (&mut file)
        .take(MAX_BZIMAGE)
        .read_to_end(data)
        .map_err(read_err)?;
    if file.read(&mut [0u8]).map_err(read_err)? > 0 {
        return Err(image(format!(
            "larger than {} MiB: not a bzImage (an ELF vmlinux is read at any size)",
            MAX_BZIMAGE >> 20
        )));
    }
    let data = &data[..];
    if is_arm64_image(data) {
        // The kernel itself, uncompressed (its EFI stub is part of it).
        return Ok((
            Box::new(std::io::Cursor::new(data).take(MAX_VMLINUX + 1)),
            false,
        ));
    }
    let (payload, whole) = if let Some(p) = zboot_payload(data) {
        let p = p.ok_or_else(|| {
            image("EFI zboot payload lies outside the file (truncated image?)".into())
        })?;
        (p, false)
    } else if compression_of(data).is_some() {
        (data, true) // Image.gz and the like: the whole file is the compressed kernel.
    } else {
        (bzimage_payload(data).map_err(image)?, false)
    };
    Ok((decompressed(payload).map_err(image)?, whole))
}

/// Where an EFI (PE/COFF) image's Authenticode signatures start: the file offset of
/// its certificate table (data directory 4). Firmware reads them; the kernel never
/// trusts what is in there (a Debian arm64 vmlinuz carries "Debian Secure Boot
/// Signer" there). None for an image without one.
fn pe_certificate_table(head: &[u8]) -> Option<u64> {
    if !head.starts_with(b"MZ") {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(head.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(head.get(o..o + 4)?.try_into().ok()?));
    let pe = u32_at(0x3c)? as usize;
    if head.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let opt = pe + 24;
    // The data directories follow the optional header's fixed part: 96 bytes in PE32,
    // 112 in PE32+; entry 4 is the certificate table (offset, size).
    let dirs = opt
        + match u16_at(opt)? {
            0x10b => 96,
            0x20b => 112,
            _ => return None,
        };
    let (offset, size) = (u32_at(dirs + 4 * 8)?, u32_at(dirs + 4 * 8 + 4)?);
    (offset > 0 && size > 0).then_some(u64::from(offset))
}

/// arm64's `Image` header: "ARM\x64" at 0x38 (arch/arm64/include/asm/image.h).
fn is_arm64_image(data: &[u8]) -> bool {
    data.get(0x38..0x3c) == Some(b"ARMd")
}

/// EFI zboot (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg" at 4, the
/// payload's offset and size at 8 and 12. None when it is not one.
fn zboot_payload(data: &[u8]) -> Option<Option<&[u8]>> {
    if !data.starts_with(b"MZ") || data.get(4..8) != Some(b"zimg") {
        return None;
    }
    let at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes")) as usize;
    let (off, len) = (at(8), at(12));
    Some(data.get(off..off.checked_add(len)?))
}

/// The compressed payload of an x86 bzImage.
fn bzimage_payload(data: &[u8]) -> std::result::Result<&[u8], String> {
    // x86 boot protocol: "HdrS" at 0x202, version >= 2.08 for payload_offset/length.
    if data.len() < 0x250 || &data[0x202..0x206] != b"HdrS" {
        return Err(
            "neither an ELF vmlinux, an x86 bzImage, nor an arm64 Image (plain, compressed or EFI zboot)"
                .into(),
        );
    }
    let version = u16::from_le_bytes([data[0x206], data[0x207]]);
    if version < 0x0208 {
        return Err(format!(
            "boot protocol {:x}.{:02x} is older than 2.08",
            version >> 8,
            version & 0xff
        ));
    }
    let setup_sects = match data[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let off = u32::from_le_bytes(data[0x248..0x24c].try_into().expect("4 bytes")) as usize;
    let len = u32::from_le_bytes(data[0x24c..0x250].try_into().expect("4 bytes")) as usize;
    let start = (setup_sects + 1) * 512 + off;
    data.get(start..start + len)
        .ok_or_else(|| "payload lies outside the file (truncated image?)".to_string())
}

/// The compressions kernel images use, by their magic.
fn compression_of(payload: &[u8]) -> Option<&'static str> {
    [
        (&[0x28, 0xB5, 0x2F, 0xFD][..], "zstd"),
        (&[0x1F, 0x8B], "gzip"),
        (&[0xFD, b'7', b'z', b'X', b'Z', 0], "xz"),
        (&[0x5D, 0, 0], "lzma"),
        (&LZ4_LEGACY, "lz4"),
        (b"BZh", "bzip2"),
    ]
    .into_iter()
    .find(|(m, _)| payload.starts_with(m))
    .map(|(_, n)| n)
}

/// A compressed kernel payload as a stream, at most [`MAX_VMLINUX`] bytes.
fn decompressed<'a>(payload: &'a [u8]) -> std::result::Result<Box<dyn Read + 'a>, String> {
    let io = |r: std::io::Result<Box<dyn Read + 'a>>| {
        r.map_err(|e| format!("cannot decompress the kernel payload: {e}"))
    };
    let stream: Box<dyn Read + 'a> = match compression_of(payload) {
        Some("zstd") => io(zstd::stream::read::Decoder::with_buffer(payload)
            .map(|d| Box::new(d.single_frame()) as Box<dyn Read>))?,
        Some("gzip") => Box::new(flate2::read::GzDecoder::new(payload)),
        Some("xz") => Box::new(liblzma::read::XzDecoder::new(payload)),
        Some("lzma") => io(liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
            .map_err(std::io::Error::other)
            .map(|s| Box::new(liblzma::read::XzDecoder::new_stream(payload, s)) as Box<dyn Read>))?,
        Some("lz4") => Box::new(Lz4Legacy {
            p: payload,
            block: Vec::new(),
            at: 0,
        }),
        Some("bzip2") => Box::new(bzip2::read::BzDecoder::new(payload)),
        _ => {
            return Err(format!(
                "payload compression {:02x?} not supported (gzip, xz, lzma, zstd, lz4, bzip2 are)",
                &payload[..payload.len().min(4)]
            ));
        }
    };
    Ok(Box::new(stream.take(MAX_VMLINUX + 1)))
}

/// `lz4 -l` (the legacy format the kernel's Makefile.lib asks for).
const LZ4_LEGACY: [u8; 4] = [0x02, 0x21, 0x4C, 0x18];

/// Legacy lz4: the magic, then blocks of at most 8 MiB of output, each after its
/// 32-bit little-endian compressed size. The kernel's appended size ends them.
struct Lz4Legacy<'a> {
    p: &'a [u8],
    block: Vec<u8>,
    at: usize,
}

impl Read for Lz4Legacy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.block.len() {
            let Some(head) = self.p.first_chunk::<4>() else {
                return Ok(0);
            };
            if *head == LZ4_LEGACY {
                self.p = &self.p[4..];
                continue;
            }
            let n = u32::from_le_bytes(*head) as usize;
            let Some(block) = self.p.get(4..4 + n).filter(|_| n > 0) else {
                return Ok(0);
            };
            self.block =
                lz4_flex::block::decompress(block, 8 << 20).map_err(std::io::Error::other)?;
            self.at = 0;
            self.p = &self.p[4 + n..];
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The architecture an image's own header names: a bzImage is x86, an arm64 Image
/// (plain or in an EFI zboot wrapper) arm64. None for a whole-file compressed image.
pub fn arch(path: &Path) -> Option<crate::arch::Arch> {
    use crate::arch::Arch;
    let head = crate::fsutil::read_head(path, 0x400).ok()?;
    if head.get(0x202..0x206) == Some(b"HdrS") {
        Some(Arch::X86_64)
    } else if is_arm64_image(&head) || zboot_payload(&head).is_some() {
        Some(Arch::Arm64)
    } else {
        None
    }
}

/// The release a kernel image carries: a bzImage's boot protocol `kernel_version` (a
/// pointer at 0x20e to "6.12.117 (user@host) #1 ...", in its first 64 KiB); in other
/// images (arm64's Image, zboot, Image.gz, an ELF vmlinux) the kernel's own banner
/// "Linux version 7.2.13+deb14-arm64 (...", found by streaming the kernel through.
pub fn release(path: &Path) -> Option<String> {
    let head = crate::fsutil::read_head(path, 64 << 10).ok()?;
    if head.get(0x202..0x206) != Some(b"HdrS") {
        return banner_release(path);
    }
    let ptr = u16::from_le_bytes([*head.get(0x20e)?, *head.get(0x20f)?]) as usize + 0x200;
    let s = head.get(ptr..)?;
    let s = &s[..s.iter().position(|&b| b == 0 || b == b' ')?];
    let r = std::str::from_utf8(s).ok()?;
    (!r.is_empty()).then(|| r.to_string())
}

/// `linux_banner`'s release, from the kernel inside the image (read as
/// [`certificates`] reads it: a stream, at most [`MAX_VMLINUX`] bytes).
fn banner_release(path: &Path) -> Option<String> {
    const BANNER: &[u8] = b"Linux version ";
    let file = crate::fsutil::open_regular(path).ok()?;
    let mut data = Vec::new();
    let (mut stream, _) = vmlinux_stream(path, file, &mut data).ok()?;
    let finder = memchr::memmem::Finder::new(BANNER);
    let (mut win, mut chunk) = (Vec::new(), vec![0u8; 64 << 10]);
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        win.extend_from_slice(&chunk[..n]);
        // A release is followed by " (": one whose end is not read yet waits a chunk.
        if let Some(at) = finder.find(&win) {
            let rest = &win[at + BANNER.len()..];
            if let Some(end) = rest.iter().position(|&b| b == b' ' || b == 0) {
                let r = std::str::from_utf8(&rest[..end]).ok()?;
                // "Linux version %s" without a number is the format string, not the banner.
                if r.starts_with(|c: char| c.is_ascii_digit()) {
                    return Some(r.to_string());
                }
                win.drain(..at + BANNER.len());
                continue;
            }
        }
        let keep = win.len().saturating_sub(256);
        win.drain(..keep);
    }
}

/// The longest certificate the scan finds: `30 82 LL LL` gives at most 64 KiB + 4.
const MAX_CERT: usize = 4 + 0xffff;

/// Every X.509 certificate stored as DER in the image, in order: the kernel keeps
/// `system_certificate_list` as concatenated `30 82 LL LL` certificates. The image is
/// scanned as a stream through a window, never held whole.
pub fn certificates(path: &Path) -> Result<Vec<Cert>> {
    certificates_in(path, crate::fsutil::open_regular(path)?)
}

/// [`certificates`] of an image read from `file` (`path` names it in messages).
pub fn certificates_in(path: &Path, file: impl Read) -> Result<Vec<Cert>> {
    let image = |reason: String| Error::KernelImage {
        path: path.to_path_buf(),
        reason,
    };
    let mut bz = Vec::new();
    let (mut stream, whole) = vmlinux_stream(path, file, &mut bz)?;
    let mut certs: Vec<Cert> = Vec::new();
    // Bytes drained from the window so far, and where the kernel's own bytes end (an
    // EFI image's Authenticode certificates are not the kernel's keys).
    let (mut drained, mut end) = (0u64, None::<u64>);
    let mut seen = std::collections::HashSet::new();
    let mut win: Vec<u8> = Vec::new();
    let (mut total, mut first, mut eof) = (0u64, true, false);
    let mut chunk = vec![0u8; 16 << 10];
    let seq2 = memchr::memmem::Finder::new(&[0x30, 0x82]);
    while !eof {
        match stream.read(&mut chunk) {
            Ok(0) => eof = true,
            Ok(n) => {
                win.extend_from_slice(&chunk[..n]);
                total += n as u64;
            }
            // Trailing bytes (the appended size) may end a stream with an error after
            // everything was produced; an ELF header is what counts.
            Err(e) if first && win.len() < 4 => {
                return Err(image(format!("cannot decompress the kernel payload: {e}")));
            }
            // A whole compressed file that does not decode to its end is truncated or
            // damaged: what was read may lack the certificates.
            Err(e) if whole => {
                return Err(image(format!(
                    "the compressed kernel is truncated or damaged after {total} bytes: {e}"
                )));
            }
            Err(_) => eof = true,
        }
        if first && (win.len() >= 0x400 || eof) {
            if !win.starts_with(b"\x7fELF") && !is_arm64_image(&win) {
                return Err(image(
                    "cannot decompress the kernel payload: no ELF or arm64 Image inside".into(),
                ));
            }
            end = pe_certificate_table(&win);
            first = false;
        }
        if let Some(end) = end
            && drained + win.len() as u64 >= end
        {
            win.truncate((end - drained) as usize);
            eof = true;
        }
        if first {
            continue;
        }
        if total > MAX_VMLINUX {
            return Err(image(format!(
                "the vmlinux inside is larger than {} MiB (a decompression bomb?)",
                MAX_VMLINUX >> 20
            )));
        }
        // Scan while a whole certificate fits behind the position, or to the end.
        let stop = if eof {
            win.len()
        } else {
            win.len().saturating_sub(MAX_CERT + 8)
        };
        let i = scan(path, &win, stop, &seq2, &mut certs, &mut seen)?;
        let i = i.min(win.len());
        drained += i as u64;
        win.drain(..i);
    }
    // A whole compressed file is decoded to its end, past the certificates too: its
    // checksum and length (the gzip/xz/zstd trailer) tell whether it is complete.
    if whole && let Err(e) = std::io::copy(&mut stream, &mut std::io::sink()) {
        return Err(image(format!(
            "the compressed kernel is truncated or damaged: {e}"
        )));
    }
    if certs.is_empty() {
        return Err(image("no certificates found in the kernel".into()));
    }
    Ok(certs)
}

/// The certificates in `win` that start before `stop`, added to `certs` once each;
/// returns where the scan ended.
fn scan(
    path: &Path,
    win: &[u8],
    stop: usize,
    seq2: &memchr::memmem::Finder,
    certs: &mut Vec<Cert>,
    seen: &mut std::collections::HashSet<Vec<u8>>,
) -> Result<usize> {
    let mut i = 0;
    while i < stop {
        // SEQUENCE (cert) holding SEQUENCE (tbsCertificate), both with 2-byte lengths.
        let Some(at) = seq2.find(&win[i..stop.min(win.len())]) else {
            i = stop;
            break;
        };
        i += at;
        if i + 8 < win.len() && win[i + 4] == 0x30 && win[i + 5] == 0x82 {
            let len = u16::from_be_bytes([win[i + 2], win[i + 3]]) as usize + 4;
            if let Some(der) = win.get(i..i + len)
                && let Ok(c) = Cert::from_der(path, der)
            {
                if seen.insert(der.to_vec()) {
                    if certs.len() == MAX_CERTS {
                        return Err(Error::KernelImage {
                            path: path.to_path_buf(),
                            reason: format!(
                                "more than {MAX_CERTS} certificates: no kernel carries so many"
                            ),
                        });
                    }
                    certs.push(c);
                }
                i += len;
                continue;
            }
        }
        i += 1;
    }
    Ok(i)
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
        let lz4 = |p: &[u8]| {
            let mut out = Vec::new();
            Lz4Legacy {
                p,
                block: Vec::new(),
                at: 0,
            }
            .read_to_end(&mut out)
            .map(|_| out)
        };
        assert!(lz4(&p).is_err());
        // A valid block, then the appended size (too long to be a block): ends there.
        let block = lz4_flex::block::compress(b"\x7fELF and more");
        let mut p = LZ4_LEGACY.to_vec();
        p.extend_from_slice(&(block.len() as u32).to_le_bytes());
        p.extend_from_slice(&block);
        p.extend_from_slice(&13u32.to_le_bytes());
        assert_eq!(lz4(&p).unwrap(), b"\x7fELF and more");
    }
}
