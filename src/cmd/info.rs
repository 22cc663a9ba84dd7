use super::{Status, expand};
use crate::cli::InfoArgs;
use cargo_kmod::modfile::{ModuleFile, elf, modinfo};

pub fn run(a: InfoArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let cwd = &cx.cwd;
    let mut status = Status::default();
    let jobs = a.jobs.unwrap_or_else(cargo_kmod::tree::default_jobs);
    let rep = cx.ui.reporter();
    let modules = expand(&a.modules, &mut status, &rep);
    let outputs = cargo_kmod::tree::par_map(&modules, jobs, &rep, "reading", |m| {
        let module = ModuleFile::open(m, cx.settings.max_module_bytes)?;
        let info = module.elf()?;
        let sig = modinfo::sig_block(&module.data);
        let elf_fields = elf::modinfo_fields(info.modinfo);
        // modinfo shows the path made absolute, symlinks kept.
        let filename = cwd.join(m).display().to_string();
        if a.json || a.message_format == crate::cli::MessageFormat::Json {
            let obj = serde_json::json!({
                "filename": filename,
                "compression": module.compression,
                "arch": info.arch,
                "fields": elf_fields.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
                "signature": sig,
            });
            return Ok(format!("{obj}\n").into_bytes());
        }
        // kmod's modinfo prints a field's bytes as they are, UTF-8 or not.
        let raw = elf::modinfo_fields_raw(info.modinfo);
        let fields = modinfo::fields(&raw, sig.as_ref());
        Ok(elf::restore_bytes(&match &a.field {
            Some(f) => modinfo::render_field(&filename, &fields, f),
            None => modinfo::render(&filename, &fields),
        }))
    });
    let mut out = std::io::stdout().lock();
    for r in outputs {
        match r {
            Ok(text) => {
                use std::io::Write;
                if out.write_all(&text).is_err() {
                    return Ok(status.code()); // closed pipe
                }
            }
            Err(e) => status.add(rep.error(&e)),
        }
    }
    Ok(status.code())
}
