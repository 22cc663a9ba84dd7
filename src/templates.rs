//! Project templates (`templates/`, embedded): listed, rendered for a target kernel.

use crate::error::{Error, Result};
use crate::target::{Features, Target, since};
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

/// What a template needs of the kernel (`requires:` in its about.txt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// CONFIG_RUST=y (checked by `build`'s preflight against the tree).
    Rust,
    /// `params:` in `module!`.
    RustParams,
}

impl Requirement {
    fn parse(word: &str) -> Requirement {
        match word {
            "rust" => Requirement::Rust,
            "rust_params" => Requirement::RustParams,
            other => panic!("templates: unknown requirement `{other}` in an about.txt"),
        }
    }

    /// Why `target` cannot take it, if it cannot.
    fn unmet(self, target: &Target) -> Option<String> {
        let (maj, min) = since::RUST_PARAMS;
        match self {
            Requirement::Rust => None,
            Requirement::RustParams => (!target.features().rust_params).then(|| {
                format!("Rust module parameters (`params:` in module!) came with Linux {maj}.{min}")
            }),
        }
    }
}

/// One template: its name, one-line description and requirements.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub about: String,
    pub requires: Vec<Requirement>,
}

impl Template {
    /// The kernels it supports, in words.
    pub fn kernels(&self) -> String {
        let rust = self.requires.contains(&Requirement::Rust);
        let from = if self.requires.contains(&Requirement::RustParams) {
            since::RUST_PARAMS
        } else if rust {
            // Older ones pin one rustc each (6.1: exactly 1.62).
            since::RUST_MIN_RUSTC
        } else {
            (6, 1)
        };
        format!(
            "{}.{}+{}",
            from.0,
            from.1,
            if rust { " with CONFIG_RUST=y" } else { "" }
        )
    }
}

/// Every template, by name.
pub fn list() -> Vec<Template> {
    let mut v: Vec<Template> = TEMPLATES
        .dirs()
        .filter_map(|d| {
            let about = d.get_file(d.path().join("about.txt"))?.contents_utf8()?;
            let requires = about
                .lines()
                .find_map(|l| l.strip_prefix("requires:"))
                .unwrap_or_default()
                .split_whitespace()
                .map(Requirement::parse)
                .collect();
            Some(Template {
                name: d.path().display().to_string(),
                about: about.lines().next().unwrap_or_default().to_string(),
                requires,
            })
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

#[derive(Debug, Clone)]
pub struct NewOptions {
    pub dir: PathBuf,
    pub name: String,
    pub template: String,
    pub license: String,
    pub author: String,
    pub description: String,
    /// The kernel the code must compile on (None: the newest syntax).
    pub kernel: Option<Target>,
    pub kdir: Option<PathBuf>,
    /// `init`: the directory may hold other files, as long as none would be overwritten.
    pub in_place: bool,
}

/// Renders a template into `o.dir`, which must be empty or absent. Files are written
/// only after every one rendered.
pub fn generate(o: &NewOptions) -> Result<Vec<PathBuf>> {
    crate::names::module_name(&o.name).map_err(|r| {
        let suggestion: String = o
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(55)
            .collect();
        let suggestion = if suggestion.starts_with(|c: char| c.is_ascii_digit()) {
            format!("m_{suggestion}")
        } else {
            suggestion
        };
        Error::usage(
            r,
            format!("name it `{suggestion}`, or pass --name NAME with another"),
        )
    })?;
    let spdx = LICENSES
        .iter()
        .find(|(l, _)| *l == o.license)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            Error::usage(
                format!(
                    "license `{}` is not one the kernel accepts without tainting",
                    o.license
                ),
                format!("use one of: {}", LICENSES.map(|(l, _)| l).join(", ")),
            )
        })?;
    let tpl = TEMPLATES
        .get_dir(&o.template)
        .filter(|_| list().iter().any(|t| t.name == o.template))
        .ok_or_else(|| {
            Error::usage(
                format!("no template `{}`", o.template),
                "`cargo kmod new --list` shows the templates",
            )
        })?;
    if o.dir.exists() && !o.in_place {
        let non_empty = std::fs::read_dir(&o.dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
        if non_empty {
            return Err(Error::usage(
                format!("{} is not empty", o.dir.display()),
                "cargo kmod new only writes into an empty or new directory; use `cargo kmod init` inside an existing one",
            ));
        }
    }
    let rust = tpl
        .files()
        .any(|f| f.path().extension().is_some_and(|e| e == "rs"));
    let meta = list()
        .into_iter()
        .find(|t| t.name == o.template)
        .expect("every template has an about.txt");
    if let Some(target) = &o.kernel
        && let Some(why) = meta.requires.iter().find_map(|r| r.unmet(target))
    {
        return Err(Error::TargetRefuses {
            target: target.name(),
            reason: format!("template {} needs {}: {why}", o.template, meta.kernels()),
            fix: "pick a template `cargo kmod new --list` shows for this kernel, or target a newer one (--kdir)".into(),
        });
    }
    // module! reads its strings without unescaping them (6.12 measured: it fails to build).
    if rust {
        for (what, v) in [
            ("author", &o.author),
            ("description", &o.description),
            ("license", &o.license),
        ] {
            if v.contains(['"', '\\', '\n']) {
                return Err(Error::usage(
                    format!("the {what} `{v}` holds a quote, backslash or newline"),
                    "the kernel's module! macro cannot take those: leave them out",
                ));
            }
        }
    }
    let features = Features::of(o.kernel.as_ref().and_then(|t| t.version.as_ref()));
    let ns = o.name.to_uppercase();
    // A bare token before 6.13, a string literal since.
    let ns_arg = if features.ns_string_literal {
        format!("\"{ns}\"")
    } else {
        ns.clone()
    };
    let ctx = minijinja::context! {
        name => &o.name,
        crate_name => o.name.replace('_', "-"),
        type_name => camel(&o.name),
        license => &o.license,
        spdx => spdx,
        author => &o.author,
        description => &o.description,
        rust => rust,
        authors_list => features.rust_authors_list,
        param_value_copy => features.rust_param_value_copy,
        ns => ns,
        ns_arg => ns_arg,
        kernel_release => o.kernel.as_ref().map(|k| k.release.clone()),
        kdir => o.kdir.as_ref().map(|k| k.display().to_string()),
    };
    let env = environment();
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
        return Err(Error::usage(
            format!("{} exists; cargo kmod never overwrites a file", p.display()),
            "move it away, or make the project in an empty directory",
        ));
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

/// The one minijinja set-up for everything the tool writes from `templates/`: strict
/// undefined, delimiters that clash with neither Rust, C nor shell.
fn environment() -> minijinja::Environment<'static> {
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
    // A shell word: single quotes, each ' closed, escaped and reopened.
    env.add_filter("sh", |s: String| format!("'{}'", s.replace('\'', r"'\''")));
    // RPM expands macros everywhere in a spec, even in free text.
    env.add_filter("rpm", |s: String| s.replace('%', "%%"));
    // A JSON string is a YAML flow scalar: no quoting rules of YAML's own to get wrong.
    env.add_filter("yaml", |s: String| {
        serde_json::to_string(&s).expect("a string serialises")
    });
    env
}

/// A file the tool generates: its template under `templates/files/` and the values it
/// takes, as one type (a field the template names but the type lacks fails the test
/// that renders every template's [`Generated::example`]).
pub trait Generated: serde::Serialize + Sized {
    /// The template, under `templates/files/`.
    const TEMPLATE: &'static str;
    /// A value with every field set, for that test.
    fn example() -> Self;
}

/// Renders a generated file from its typed values.
pub fn render<T: Generated>(values: &T) -> String {
    render_file(
        T::TEMPLATE,
        minijinja::Value::from(minijinja::value::Serde(values)),
    )
}

/// Every template under `templates/files/`, by its path there.
pub fn generated_templates() -> Vec<String> {
    fn walk(d: &Dir<'_>, out: &mut Vec<String>) {
        for f in d.files() {
            out.push(
                f.path()
                    .strip_prefix("files")
                    .unwrap_or(f.path())
                    .display()
                    .to_string(),
            );
        }
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    let mut v = Vec::new();
    walk(TEMPLATES.get_dir("files").expect("templates/files"), &mut v);
    v.sort();
    v
}

/// Renders `templates/files/<name>`: the files the tool generates (dkms.conf, package
/// control files and spec files, the guest's init). A template that does not render is
/// a bug in the tool, not in its input.
fn render_file(name: &str, ctx: minijinja::Value) -> String {
    let path = Path::new("files").join(name);
    let text = TEMPLATES
        .get_file(&path)
        .and_then(|f| f.contents_utf8())
        .unwrap_or_else(|| panic!("templates/{} is missing", path.display()));
    environment()
        .render_str(text, ctx)
        .unwrap_or_else(|e| panic!("templates/{} does not render: {e:#}", path.display()))
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
        assert!(crate::names::module_name("_x1").is_ok());
        assert!(crate::names::module_name("a-b").is_err());
        assert!(crate::names::module_name(&"a".repeat(55)).is_ok());
        assert_eq!(camel("hello_rust_mod"), "HelloRustMod");
    }

    #[test]
    fn every_template_renders_for_old_and_new_kernels() {
        for t in list() {
            assert!(!t.about.is_empty(), "{} has no about.txt line", t.name);
            for release in [
                Some("6.1.158"),
                Some("6.12.117"),
                Some("6.17"),
                Some("7.2.13"),
                None,
            ] {
                let dir = tempfile::tempdir().unwrap();
                let o = NewOptions {
                    dir: dir.path().join("p"),
                    name: "demo_mod".into(),
                    template: t.name.clone(),
                    license: "GPL".into(),
                    author: if t.name.starts_with("rust") {
                        "A. Author"
                    } else {
                        "A \"quoted\" author"
                    }
                    .into(),
                    description: "Demo".into(),
                    kernel: release.map(Target::release_only),
                    kdir: None,
                    in_place: false,
                };
                let v = release.map(crate::target::Version::of);
                let refused = t.requires.contains(&Requirement::RustParams)
                    && v.as_ref().is_some_and(|v| !v.at_least(6, 19));
                let files = match generate(&o) {
                    Err(Error::TargetRefuses { reason, .. }) if refused => {
                        assert!(reason.contains("came with Linux 6.19"), "{reason}");
                        assert!(!o.dir.exists(), "nothing written");
                        continue;
                    }
                    r => r.unwrap(),
                };
                assert!(!refused, "{} rendered for {release:?}", t.name);
                assert!(files.iter().any(|f| f.ends_with("Kbuild")), "{}", t.name);
                if t.name == "rust-minimal" {
                    let src = std::fs::read_to_string(dir.path().join("p/demo_mod.rs")).unwrap();
                    let old = v.as_ref().is_some_and(|v| !v.at_least(6, 15));
                    assert_eq!(src.contains("    author: \"A. Author\","), old, "{src}");
                    assert_eq!(src.contains("authors: [\"A. Author\"]"), !old, "{src}");
                }
                if t.name == "c-export" {
                    let src = std::fs::read_to_string(dir.path().join("p/demo_mod.c")).unwrap();
                    let literal = v.as_ref().is_none_or(|v| v.at_least(6, 13));
                    let want = if literal {
                        "demo_mod_answer, \"DEMO_MOD\")"
                    } else {
                        "demo_mod_answer, DEMO_MOD)"
                    };
                    assert!(src.contains(want), "{src}");
                }
            }
        }
    }
}
