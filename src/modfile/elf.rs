//! The ELF side of a module: is it one, for which machine, and its `.modinfo`.

use object::{Object, ObjectSection};

#[derive(Debug)]
pub struct ElfInfo<'a> {
    pub arch: &'static str,
    pub modinfo: &'a [u8],
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
    Ok(ElfInfo { arch, modinfo })
}

/// `key=value` strings of `.modinfo`, in file order (NUL-separated, padding skipped).
pub fn modinfo_fields(section: &[u8]) -> Vec<(String, String)> {
    section
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = String::from_utf8_lossy(s);
            match s.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (s.to_string(), String::new()),
            }
        })
        .collect()
}
