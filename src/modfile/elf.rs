//! The ELF side of a module: is it one, for which machine, its `.modinfo`, and what
//! the kernel's loader reads from it. One parse ([`inspect`]) gives a handle with small
//! accessors, as kmod's libkmod-elf.c does.

use object::{Object, ObjectSection};

/// A module's ELF, parsed once.
pub struct ElfInfo<'a> {
    pub arch: &'static str,
    /// The machine, to compare with a kernel's ([`crate::arch::Arch::object`]).
    pub machine: object::Architecture,
    pub modinfo: &'a [u8],
    data: &'a [u8],
    file: object::File<'a>,
}

/// Checks that `data` is a relocatable ELF object for an architecture Linux
/// builds modules for, with a `.modinfo` section; returns that section.
pub fn inspect(data: &[u8]) -> Result<ElfInfo<'_>, String> {
    if !data.starts_with(b"\x7fELF") {
        return Err(if data.is_empty() {
            "file is empty".into()
        } else {
            "not an ELF file".into()
        });
    }
    let file = object::File::parse(data).map_err(|e| format!("damaged or truncated ELF: {e}"))?;
    use object::Architecture as A;
    let arch = match file.architecture() {
        A::X86_64 => "x86_64",
        A::I386 => "i386",
        A::Aarch64 => "aarch64",
        A::Arm => "arm",
        A::Riscv64 => "riscv64",
        A::Riscv32 => "riscv32",
        A::PowerPc64 => "powerpc64",
        A::PowerPc => "powerpc",
        A::S390x => "s390x",
        A::Mips | A::Mips64 => "mips",
        A::LoongArch64 => "loongarch64",
        A::Sparc64 => "sparc64",
        other => {
            return Err(format!(
                "ELF machine {other:?} is not an architecture Linux builds modules for"
            ));
        }
    };
    if file.kind() != object::ObjectKind::Relocatable {
        return Err(format!(
            "ELF type is {:?}, a module is a relocatable object (.ko)",
            file.kind()
        ));
    }
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| "ELF object has no .modinfo section".to_string())?;
    let modinfo = section
        .data()
        .map_err(|e| format!("damaged or truncated ELF: .modinfo: {e}"))?;
    Ok(ElfInfo {
        arch,
        machine: file.architecture(),
        modinfo,
        data,
        file,
    })
}

/// `key=value` strings of `.modinfo`, in file order (NUL-separated, padding skipped).
pub fn modinfo_fields(section: &[u8]) -> Vec<(String, String)> {
    fields_with(section, |s| String::from_utf8_lossy(s).into_owned())
}

/// [`modinfo_fields`] for printing as kmod's modinfo does, byte for byte: a byte that
/// is not UTF-8 becomes the private-use character U+10FF00 + byte, which
/// [`restore_bytes`] turns back into that byte on output.
pub fn modinfo_fields_raw(section: &[u8]) -> Vec<(String, String)> {
    fields_with(section, |s| {
        let mut out = String::with_capacity(s.len());
        for chunk in s.utf8_chunks() {
            out.push_str(chunk.valid());
            out.extend(
                chunk
                    .invalid()
                    .iter()
                    .map(|&b| char::from_u32(RAW_BYTE + u32::from(b)).expect("a private-use char")),
            );
        }
        out
    })
}

const RAW_BYTE: u32 = 0x10FF00;

/// The bytes [`modinfo_fields_raw`]'s text stands for.
pub fn restore_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u32::from(c).checked_sub(RAW_BYTE) {
            Some(b @ 0x80..=0xff) => out.push(b as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

fn fields_with(section: &[u8], text: impl Fn(&[u8]) -> String) -> Vec<(String, String)> {
    section
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = text(s);
            match s.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (s.to_string(), String::new()),
            }
        })
        .collect()
}

/// What the kernel's loader reads from a module's ELF (kernel/module/main.c).
#[derive(Debug, Default)]
pub struct LoaderView {
    /// `e_machine`, as the loader's "Invalid architecture in ELF header" prints it.
    pub machine: u16,
    /// `.gnu.linkonce.this_module`'s size: the module's `struct module`.
    pub this_module_size: Option<u64>,
    /// Undefined symbols, each with whether it is weak (left unresolved without error).
    pub undefined: Vec<(String, bool)>,
    /// The symbol versions (`__versions`, or 6.14's `__version_ext_*`).
    pub versions: Vec<(String, u32)>,
    /// Whether it has a versions section at all (the loader compares vermagic without
    /// the release then).
    pub has_versions: bool,
    pub exports: Vec<Export>,
}

/// A symbol a module exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    pub gpl_only: bool,
    pub namespace: String,
    pub crc: Option<u32>,
}

impl ElfInfo<'_> {
    /// What the loader reads: machine, `struct module`'s size, symbols, versions, exports.
    pub fn loader_view(&self) -> LoaderView {
        loader_view(self.data, &self.file)
    }
}

fn loader_view(data: &[u8], file: &object::File) -> LoaderView {
    use object::{ObjectSymbol, SectionIndex};
    let little = file.is_little_endian();
    let u16_at = |o: usize| {
        let b = [data[o], data[o + 1]];
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let u32_of = |b: &[u8]| {
        let b: [u8; 4] = b.try_into().expect("4 bytes");
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let section = |name: &str| {
        file.section_by_name(name)
            .map(|s| (s.index(), s.data().unwrap_or_default()))
    };
    let mut v = LoaderView {
        machine: u16_at(18),
        this_module_size: file
            .section_by_name(".gnu.linkonce.this_module")
            .map(|s| s.size()),
        ..Default::default()
    };
    // struct modversion_info { unsigned long crc; char name[64 - sizeof(long)]; }
    if let Some((_, d)) = section("__versions") {
        v.has_versions = true;
        let word = if file.is_64() { 8 } else { 4 };
        for e in d.chunks_exact(64) {
            let crc = u32_of(&e[if little || word == 4 { 0 } else { 4 }..][..4]);
            let name = &e[word..];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            v.versions
                .push((String::from_utf8_lossy(name).into_owned(), crc));
        }
    }
    if let (Some((_, crcs)), Some((_, names))) = (
        section("__version_ext_crcs"),
        section("__version_ext_names"),
    ) {
        v.has_versions = true;
        let names = names.split(|&b| b == 0).filter(|n| !n.is_empty());
        for (c, n) in crcs.chunks_exact(4).zip(names) {
            v.versions
                .push((String::from_utf8_lossy(n).into_owned(), u32_of(c)));
        }
    }
    let strings = section("__ksymtab_strings");
    fn at<'d>(sec: &Option<(SectionIndex, &'d [u8])>, s: &object::Symbol) -> Option<&'d [u8]> {
        let (i, d) = sec.as_ref()?;
        (s.section_index() == Some(*i))
            .then(|| d.get(s.address() as usize..))
            .flatten()
    }
    let gpl_tab = file.section_by_name("__ksymtab_gpl").map(|s| s.index());
    let flags = section("__kflagstab");
    let crcs = [section("__kcrctab"), section("__kcrctab_gpl")];
    let mut by_name = std::collections::HashMap::new();
    for s in file.symbols() {
        let Ok(name) = s.name() else { continue };
        if s.is_undefined() {
            if !name.is_empty() {
                v.undefined.push((name.to_string(), s.is_weak()));
            }
        } else {
            by_name.insert(name, s);
        }
    }
    for (name, s) in &by_name {
        let Some(sym) = name.strip_prefix("__ksymtab_") else {
            continue;
        };
        let gpl_only = gpl_tab.is_some_and(|g| s.section_index() == Some(g))
            || by_name
                .get(format!("__flags_{sym}").as_str())
                .and_then(|f| at(&flags, f))
                .is_some_and(|b| b.first().is_some_and(|f| f & 1 != 0));
        let namespace = by_name
            .get(format!("__kstrtabns_{sym}").as_str())
            .and_then(|n| at(&strings, n))
            .map(|b| {
                String::from_utf8_lossy(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())])
                    .into_owned()
            })
            .unwrap_or_default();
        let crc = by_name
            .get(format!("__crc_{sym}").as_str())
            .and_then(|c| crcs.iter().find_map(|t| at(t, c)))
            .and_then(|b| b.get(..4))
            .map(u32_of);
        v.exports.push(Export {
            name: sym.to_string(),
            gpl_only,
            namespace,
            crc,
        });
    }
    v.exports.sort_by(|a, b| a.name.cmp(&b.name));
    v
}
