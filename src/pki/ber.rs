//! BER as the kernel's ASN.1 decoder reads it (lib/asn1_decoder.c): definite lengths
//! of at most two length bytes, minimal or not; indefinite lengths on constructed
//! elements; no long tags; at most 65,535 bytes in all. Every failure is the kernel's
//! `-EBADMSG` ("Unexpected tag", "Data overrun", ...), except the size (`-EMSGSIZE`).

use super::Errno;

/// The most the kernel's decoder takes (`datalen > 65535` is `-EMSGSIZE`).
pub const MAX_LEN: usize = 65_535;

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const CONS: u8 = 0x20;

/// One element: its tag, header length, and content.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub hdr: usize,
    /// The content (for an indefinite length: up to, not including, the EOC).
    pub content: &'a [u8],
    /// Header, content and any EOC: the element as it stands in the input.
    pub raw: &'a [u8],
    pub indefinite: bool,
}

/// A cursor over the elements of one constructed element (or the whole input).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

fn bad(what: &str) -> Errno {
    Errno::BadMsg(format!("ASN.1: {what}"))
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// The next element, whatever its tag (ASN.1 `ANY`).
    pub fn any(&mut self) -> Result<Tlv<'a>, Errno> {
        let t = read_tlv(self.data, self.pos)?;
        self.pos += t.raw.len();
        Ok(t)
    }

    /// The next element, which must carry `tag`. As the kernel matches: when `tag` is
    /// constructed, the data's constructed bit is not compared.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, Errno> {
        match self.peek_tag() {
            Some(t) if tag_matches(tag, t) => self.any(),
            Some(t) => Err(bad(&format!("unexpected tag {t:02x} for {what}"))),
            None => Err(bad(&format!("data overrun: {what} missing"))),
        }
    }

    /// The next element if it carries `tag` (an OPTIONAL or a CHOICE alternative).
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, Errno> {
        match self.peek_tag() {
            Some(t) if tag_matches(tag, t) => self.any().map(Some),
            _ => Ok(None),
        }
    }

    /// Nothing may follow the fields of a constructed element ("Cons length error").
    pub fn finish(&self, what: &str) -> Result<(), Errno> {
        if self.at_end() {
            Ok(())
        } else {
            Err(bad(&format!("{what} has trailing data")))
        }
    }
}

fn tag_matches(want: u8, got: u8) -> bool {
    (want ^ got) & !(want & CONS) == 0
}

impl<'a> Tlv<'a> {
    /// A reader over the elements inside.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.content)
    }

    /// `SET OF`/`SEQUENCE OF`: every element inside, at least one (an empty one is the
    /// decoder's data overrun).
    pub fn elements(&self, what: &str) -> Result<Vec<Tlv<'a>>, Errno> {
        let mut r = self.reader();
        let mut v = vec![r.any().map_err(|_| bad(&format!("empty {what}")))?];
        while !r.at_end() {
            v.push(r.any()?);
        }
        Ok(v)
    }
}

/// The element at `pos`.
pub fn read_tlv(data: &[u8], pos: usize) -> Result<Tlv<'_>, Errno> {
    let rest = data.get(pos..).unwrap_or_default();
    if rest.len() < 2 {
        return Err(bad("data overrun"));
    }
    let tag = rest[0];
    if tag & 0x1f == 0x1f {
        return Err(bad("long tag not supported"));
    }
    let first = rest[1] as usize;
    let (hdr, len) = match first {
        0..=0x7f => (2, first),
        0x80 => {
            if tag & CONS == 0 {
                return Err(bad("indefinite length on a primitive"));
            }
            let content = indefinite_content(rest, 2)?;
            return Ok(Tlv {
                tag,
                hdr: 2,
                content: &rest[2..2 + content],
                raw: &rest[..2 + content + 2],
                indefinite: true,
            });
        }
        _ => {
            let n = first - 0x80;
            if n > 2 {
                return Err(bad("unsupported length"));
            }
            let bytes = rest.get(2..2 + n).ok_or_else(|| bad("data overrun"))?;
            (2 + n, bytes.iter().fold(0, |l, b| l << 8 | *b as usize))
        }
    };
    let content = rest
        .get(hdr..hdr + len)
        .ok_or_else(|| bad("data overrun"))?;
    Ok(Tlv {
        tag,
        hdr,
        content,
        raw: &rest[..hdr + len],
        indefinite: false,
    })
}

/// The length of an indefinite-length content starting at `at` (to its EOC).
fn indefinite_content(data: &[u8], at: usize) -> Result<usize, Errno> {
    let mut p = at;
    loop {
        if data.len() < p + 2 {
            return Err(bad("missing EOC in indefinite length"));
        }
        if data[p] == 0 && data[p + 1] == 0 {
            return Ok(p - at);
        }
        let t = read_tlv(data, p)?;
        p += t.raw.len();
    }
}

/// An INTEGER's content as a small number, as `*(u8 *)value` with `vlen == 1`.
pub fn small_int(t: &Tlv) -> Option<u8> {
    match t.content {
        [v] => Some(*v),
        _ => None,
    }
}

/// DER encoding helpers for the messages this tool writes.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    match n {
        0..=0x7f => v.push(n as u8),
        0x80..=0xff => v.extend([0x81, n as u8]),
        0x100..=0xffff => v.extend([0x82, (n >> 8) as u8, n as u8]),
        _ => v.extend([0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(content);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_as_the_kernel_reads_them() {
        // Non-minimal long form, and indefinite on a constructed element.
        let t = read_tlv(&[0x04, 0x81, 0x02, 1, 2], 0).unwrap();
        assert_eq!((t.hdr, t.content), (3, &[1u8, 2][..]));
        let t = read_tlv(&[0x30, 0x80, 0x02, 0x01, 0x05, 0, 0, 0xff], 0).unwrap();
        assert_eq!((t.content, t.raw.len()), (&[2u8, 1, 5][..], 7));
        for bad in [
            &[0x04, 0x80, 0, 0][..],       // indefinite primitive
            &[0x04, 0x83, 0, 0, 1, 0][..], // three length bytes
            &[0x1f, 0x01, 0][..],          // long tag
            &[0x04, 0x05, 1][..],          // overrun
            &[0x30, 0x80, 0x02, 0x01][..], // no EOC
        ] {
            assert!(read_tlv(bad, 0).is_err(), "{bad:02x?}");
        }
        // A constructed tag matches either form; a primitive one only itself.
        assert!(tag_matches(0x30, 0x10) && !tag_matches(0x04, 0x24));
    }
}
