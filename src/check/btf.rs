//! The size of one struct from BTF (`vmlinux`'s `.BTF` section, or
//! `/sys/kernel/btf/vmlinux`): how big the kernel's `struct module` is, without
//! debug info or a compiler (include/uapi/linux/btf.h).

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;

/// The size of `struct <name>` in `btf`, or None when it is absent or `btf` is not BTF.
pub fn struct_size(btf: &[u8], name: &str) -> Option<u64> {
    let magic = u16::from_le_bytes(btf.get(..2)?.try_into().ok()?);
    let little = match magic {
        MAGIC => true,
        m if m.swap_bytes() == MAGIC => false,
        _ => return None,
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b: [u8; 4] = btf.get(o..o + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
    let types = hdr_len.checked_add(type_off)?;
    let types_end = types.checked_add(type_len)?.min(btf.len());
    let strs = btf.get(hdr_len.checked_add(str_off)?..)?;
    let strs = &strs[..str_len.min(strs.len())];
    let name_is = |off: u32| {
        strs.get(off as usize..)
            .is_some_and(|s| s.starts_with(name.as_bytes()) && s.get(name.len()) == Some(&0))
    };
    let mut at = types;
    while at + 12 <= types_end {
        let (name_off, info, size) = (u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)?);
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        if kind == KIND_STRUCT && name_is(name_off) {
            return Some(size.into());
        }
        // What follows each kind's 12-byte header.
        let extra = match kind {
            1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
            3 => 12,                      // ARRAY
            4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
            6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
            2 | 7..=12 | 16 | 18 => 0,    // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
            _ => return None,             // a kind this reader does not know
        };
        at += 12 + extra;
    }
    None
}

/// BTF is a few MB (Debian's 7.2: 5 MB); a larger section is not read.
const MAX_BTF: u64 = 256 << 20;

/// `.BTF` of an ELF `vmlinux` file, read alone (a vmlinux with debug info is hundreds
/// of MB).
pub fn section_of(vmlinux: &std::path::Path) -> Option<Vec<u8>> {
    use object::{Object, ObjectSection};
    let file = std::fs::File::open(vmlinux).ok()?;
    let cache = object::ReadCache::new(file);
    let f = object::File::parse(&cache).ok()?;
    let s = f.section_by_name(".BTF")?;
    (s.size() <= MAX_BTF).then(|| s.data().ok().map(<[u8]>::to_vec))?
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_a_struct_after_other_kinds() {
        // header (24) + INT "int" + STRUCT "module" size 1344 with one member + strings
        let mut b = Vec::new();
        let strs = b"\0int\0module\0m\0";
        let mut types = Vec::new();
        for w in [1u32, 1 << 24, 4, 0x0100_0020] {
            types.extend_from_slice(&w.to_le_bytes());
        }
        for w in [5u32, (4 << 24) | 1, 1344, 12, 1, 0] {
            types.extend_from_slice(&w.to_le_bytes());
        }
        for w in [
            0xeb9f_u32 | (1 << 16),
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strs.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&types);
        b.extend_from_slice(strs);
        assert_eq!(super::struct_size(&b, "module"), Some(1344));
        assert_eq!(super::struct_size(&b, "modul"), None);
        assert_eq!(super::struct_size(&b[..30], "module"), None);
    }
}
