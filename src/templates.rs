//! Project templates (`templates/`, embedded): listed, rendered for a target kernel.

use crate::error::{Error, Result};
use include_dir::{Dir, include_dir};
use std::path::{Path, PathBuf};

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Licenses `MODULE_LICENSE` accepts without tainting (include/linux/license.h),
/// with the SPDX identifier for the source header.
pub const LICENSES: [(&str, &str); 6] = [
    ("GPL", "GPL-2.0"),
    ("GPL v2", "GPL-2.0"),
    ("GPL and additional rights", "GPL-2.0"),
    ("Dual BSD/GPL", "GPL-2.0 OR BSD-3-Clause"),
    ("Dual MIT/GPL", "GPL-2.0 OR MIT"),
    ("Dual MPL/GPL", "GPL-2.0 OR MPL-1.1"),
];

/// `(name, one-line description)` of every template.
pub fn list() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = TEMPLATES
        .dirs()
        .filter(|d| d.get_file(d.path().join("about.txt")).is_some())
        .map(|d| {
            let about = d
                .get_file(d.path().join("about.txt"))
                .and_then(|f| f.contents_utf8())
                .unwrap_or_default();
            (
                d.path().display().to_string(),
                about.lines().next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Checks a module name: a C identifier (Kbuild turns '-' into '_'), shorter than
/// MODULE_NAME_LEN (64 - sizeof(unsigned long) = 56, with the NUL).
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let ok_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{name}` is not a valid module name: use letters, digits and '_', not starting with a digit"
        ));
    }
    if name.len() > 55 {
        return Err(format!(
            "`{name}` is {} characters; module names have at most 55",
            name.len()
        ));
    }
    Ok(())
}

/// Kernel version `(major, minor)` of a build tree: include/config/kernel.release,
/// else its Makefile.
pub fn tree_version(kdir: &Path) -> Option<(u32, u32, String)> {
    let release = std::fs::read_to_string(kdir.join("include/config/kernel.release"))
        .ok()
        .map(|s| s.trim().to_string())
        .or_else(|| crate::kernel::makefile_release(kdir))?;
    let (maj, min) = parse_version(&release)?;
    Some((maj, min, release))
}

pub fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[derive(Debug, Clone)]
pub struct NewOptions {
    pub dir: PathBuf,
    pub name: String,
    pub template: String,
    pub license: String,
    pub author: String,
    pub description: String,
    /// The kernel the code must compile on: `(major, minor)`, release, tree.
    pub kernel: Option<(u32, u32, String)>,
    pub kdir: Option<PathBuf>,
    /// `init`: the directory may hold other files, as long as none would be overwritten.
    pub in_place: bool,
}

/// Renders a template into `o.dir`, which must be empty or absent. Files are written
/// only after every one rendered.
pub fn generate(o: &NewOptions) -> Result<Vec<PathBuf>> {
    validate_name(&o.name).map_err(Error::Usage)?;
    let spdx = LICENSES
        .iter()
        .find(|(l, _)| *l == o.license)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            Error::Usage(format!(
                "license `{}` is not one the kernel accepts without tainting: {}",
                o.license,
                LICENSES.map(|(l, _)| l).join(", ")
            ))
        })?;
    let tpl = TEMPLATES
        .get_dir(&o.template)
        .filter(|_| !o.template.contains('/') && o.template != "common")
        .ok_or_else(|| {
            Error::Usage(format!(
                "no template `{}`; `cargo kmod new --list` shows them",
                o.template
            ))
        })?;
    if o.dir.exists() && !o.in_place {
        let non_empty = std::fs::read_dir(&o.dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
        if non_empty {
            return Err(Error::Usage(format!(
                "{} is not empty; cargo kmod new only writes into an empty or new directory",
                o.dir.display()
            )));
        }
    }
    let rust = tpl
        .files()
        .any(|f| f.path().extension().is_some_and(|e| e == "rs"));
    // module! reads its strings without unescaping them (6.12 measured: it fails to build).
    if rust {
        for (what, v) in [
            ("author", &o.author),
            ("description", &o.description),
            ("license", &o.license),
        ] {
            if v.contains(['"', '\\', '\n']) {
                return Err(Error::Usage(format!(
                    "the {what} `{v}` holds a quote, backslash or newline, which the kernel's module! macro cannot take"
                )));
            }
        }
    }
    // 6.15 added `authors: [..]` and 6.17 removed `author`; unknown kernel: newest syntax.
    let authors_list = o
        .kernel
        .as_ref()
        .is_none_or(|(maj, min, _)| (*maj, *min) >= (6, 15));
    let ctx = minijinja::context! {
        name => &o.name,
        crate_name => o.name.replace('_', "-"),
        type_name => camel(&o.name),
        license => &o.license,
        spdx => spdx,
        author => &o.author,
        description => &o.description,
        rust => rust,
        authors_list => authors_list,
        kernel_release => o.kernel.as_ref().map(|k| k.2.clone()),
        kdir => o.kdir.as_ref().map(|k| k.display().to_string()),
    };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .block_delimiters("<%", "%>")
            .variable_delimiters("<@", "@>")
            .comment_delimiters("<#", "#>")
            .trim_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("valid delimiters"),
    );
    env.add_filter("cstr", |s: String| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    });
    env.add_filter("toml", |s: String| {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    });
    let mut rendered = Vec::new();
    let common = TEMPLATES.get_dir("common").expect("templates/common");
    for (base, dir) in [(common.path(), common), (tpl.path(), tpl)] {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            stack.extend(d.dirs());
            for f in d.files() {
                let rel = f.path().strip_prefix(base).expect("inside its template");
                if rel == Path::new("about.txt") {
                    continue;
                }
                let text = f.contents_utf8().expect("templates are UTF-8");
                let out = env.render_str(text, &ctx).unwrap_or_else(|e| {
                    panic!("template {} does not render: {e:#}", f.path().display())
                });
                let mut name = rel.display().to_string().replace("__name__", &o.name);
                if let Some(rest) = name.strip_prefix('_') {
                    name = format!(".{rest}");
                }
                rendered.push((o.dir.join(name), out));
            }
        }
    }
    rendered.sort();
    if let Some((p, _)) = rendered.iter().find(|(p, _)| p.exists()) {
        return Err(Error::Usage(format!(
            "{} exists; cargo kmod never overwrites a file",
            p.display()
        )));
    }
    for (path, text) in &rendered {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        crate::fsutil::write_atomic(path, text.as_bytes(), None)?;
    }
    Ok(rendered.into_iter().map(|(p, _)| p).collect())
}

fn camel(name: &str) -> String {
    name.split('_')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("hello_world").is_ok());
        assert!(validate_name("_x1").is_ok());
        assert!(validate_name("1abc").is_err());
        assert!(validate_name("a-b").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name(&"a".repeat(55)).is_ok());
        assert!(validate_name(&"a".repeat(56)).is_err());
        assert_eq!(camel("hello_rust_mod"), "HelloRustMod");
    }

    #[test]
    fn every_template_renders_for_old_and_new_kernels() {
        for (t, about) in list() {
            assert!(!about.is_empty(), "{t} has no about.txt line");
            for kernel in [
                Some((6, 12, "6.12.117".to_string())),
                Some((6, 17, "6.17".into())),
                None,
            ] {
                let dir = tempfile::tempdir().unwrap();
                let o = NewOptions {
                    dir: dir.path().join("p"),
                    name: "demo_mod".into(),
                    template: t.clone(),
                    license: "GPL".into(),
                    author: if t.starts_with("rust") {
                        "A. Author"
                    } else {
                        "A \"quoted\" author"
                    }
                    .into(),
                    description: "Demo".into(),
                    kernel: kernel.clone(),
                    kdir: None,
                    in_place: false,
                };
                let files = generate(&o).unwrap();
                assert!(files.iter().any(|f| f.ends_with("Kbuild")), "{t}");
                if t.starts_with("rust") {
                    let src = std::fs::read_to_string(dir.path().join("p/demo_mod.rs")).unwrap();
                    let old = kernel.as_ref().is_some_and(|k| k.1 < 15);
                    assert_eq!(src.contains("    author: \"A. Author\","), old, "{src}");
                    assert_eq!(src.contains("authors: [\"A. Author\"]"), !old, "{src}");
                }
            }
        }
    }
}
