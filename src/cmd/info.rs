use super::{Status, report_error};
use crate::cli::InfoArgs;
use cargo_kmod::modfile::{ModuleFile, elf, modinfo};

pub fn run(a: InfoArgs) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut status = Status::default();
    for m in &a.modules {
        let module = match ModuleFile::open(m) {
            Ok(x) => x,
            Err(e) => {
                status.add(report_error(&e));
                continue;
            }
        };
        let info = module.elf().expect("checked by open");
        let sig = modinfo::sig_block(&module.data);
        let elf_fields = elf::modinfo_fields(info.modinfo);
        // modinfo shows the path made absolute, symlinks kept.
        let filename = cwd.join(m).display().to_string();
        if a.json {
            let obj = serde_json::json!({
                "filename": filename,
                "compression": module.compression,
                "arch": info.arch,
                "fields": elf_fields.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
                "signature": sig,
            });
            println!("{obj}");
            continue;
        }
        let fields = modinfo::fields(&elf_fields, sig.as_ref());
        if let Some(f) = &a.field {
            print!("{}", modinfo::render_field(&filename, &fields, f));
        } else {
            print!("{}", modinfo::render(&filename, &fields));
        }
    }
    status.code()
}
