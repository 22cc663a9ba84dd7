//! The library's layers (ARCHITECTURE.md): each module imports only modules below it,
//! so there is no import circle. A new import that points up fails here, naming it.

use std::collections::BTreeMap;
use std::path::Path;

/// Bottom to top: the order of ARCHITECTURE.md's map.
const LAYERS: &[&str] = &[
    "error",
    "report",
    "loader",
    "names",
    "settings",
    "arch",
    "hash",
    "fsutil",
    "cache",
    "pki",
    "modfile",
    "efivars",
    "kernel_image",
    "tree",
    "target",
    "project",
    "modtree",
    "verify",
    "sign",
    "toolchain",
    "templates",
    "dkms",
    "kernel",
    "distro",
    "firmware_keys",
    "prepare",
    "check",
    "doctor",
    "kbuild",
    "qemu",
    "proof",
    "package",
];

/// Each library module's imports of other library modules (`crate::X`), outside
/// comments and unit tests; and where it reads the environment.
fn imports() -> BTreeMap<String, Vec<(String, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for e in walkdir::WalkDir::new(&src).into_iter().flatten() {
        let p = e.path();
        let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if !rel.ends_with(".rs")
            || rel.starts_with("cmd/")
            || ["main.rs", "cli.rs", "lib.rs"].contains(&rel.as_str())
        {
            continue;
        }
        let module = rel
            .trim_end_matches(".rs")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let text = std::fs::read_to_string(p).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            if line.contains("env::var") {
                out.entry(module.clone())
                    .or_default()
                    .push(("<environment>".into(), format!("src/{rel}:{}", n + 1)));
            }
            for part in line.split("crate::").skip(1) {
                let used: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !used.is_empty() && used != module {
                    out.entry(module.clone())
                        .or_default()
                        .push((used, format!("src/{rel}:{}", n + 1)));
                }
            }
        }
    }
    out
}

#[test]
fn library_modules_import_only_the_layers_below() {
    let layer = |m: &str| LAYERS.iter().position(|l| *l == m);
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .and_then(|m| m.strip_suffix(';'))
        {
            assert!(
                layer(m).is_some(),
                "src/lib.rs: module {m} is in no layer: add it to LAYERS here and to ARCHITECTURE.md"
            );
        }
    }
    let mut upward = Vec::new();
    for (module, uses) in imports() {
        let own = layer(&module).unwrap_or_else(|| panic!("{module} is in no layer"));
        for (used, at) in uses {
            if used == "<environment>" {
                upward.push(format!(
                    "{at}: {module} reads the environment; read it in main into settings::Settings"
                ));
                continue;
            }
            match layer(&used) {
                Some(l) if l < own => {}
                Some(_) => upward.push(format!(
                    "{at}: {module} imports {used}, a layer above or beside it"
                )),
                None => {} // not a library module (e.g. a macro path)
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}
