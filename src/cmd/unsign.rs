use super::{Status, expand_for_writing};
use crate::cli::UnsignArgs;
use cargo_kmod::Error;

pub fn run(a: UnsignArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let mut status = Status::default();
    let rep = cx.ui.reporter();
    let modules = expand_for_writing(&a.modules, &mut status, &rep);
    if a.extract_sig.is_some() && modules.len() != 1 {
        return Err(Error::usage(
            "--extract-sig takes exactly one module",
            "extract from one module at a time",
        ));
    }
    let results = cargo_kmod::sign::unsign_modules(
        &modules,
        a.extract_sig.as_deref(),
        cx.settings.max_module_bytes,
        a.tree.jobs(),
        &rep,
    );
    for (m, r) in modules.iter().zip(results) {
        let (state, text) = match &r {
            Ok(0) => ("unchanged", "not signed, unchanged".to_string()),
            Ok(1) => ("unsigned", "signature removed".to_string()),
            Ok(n) => ("unsigned", format!("{n} signatures removed")),
            Err(e) => {
                status.add(e.exit_code());
                ("failed", e.to_string())
            }
        };
        let shown = m.display().to_string();
        super::module_row(a.tree.message_format, &shown, state, &text, &r, &rep);
    }
    Ok(status.code())
}
