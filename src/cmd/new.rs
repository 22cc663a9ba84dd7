use crate::cli::{NewArgs, TemplateArgs};
use cargo_kmod::target::Target;
use cargo_kmod::templates::{self, NewOptions};
use cargo_kmod::{Error, kbuild};
use std::path::{Path, PathBuf};

pub fn run_new(a: NewArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    if a.list {
        let list = templates::list();
        let w = list.iter().map(|t| t.name.len()).max().unwrap_or(0);
        let k = list.iter().map(|t| t.kernels().len()).max().unwrap_or(0);
        outln!("{:<w$}  {:<k$}  DESCRIPTION", "TEMPLATE", "KERNELS");
        for t in list {
            outln!("{:<w$}  {:<k$}  {}", t.name, t.kernels(), t.about);
        }
        return Ok(0);
    }
    let dir = a.path.expect("clap requires PATH without --list");
    generate(&dir, a.t, false, cx)
}

/// In an empty directory, a new project from a template; in one that holds a module
/// project already (a dkms.conf, a Kbuild or Makefile with obj-m), its Cargo.toml only.
pub fn run_init(a: crate::cli::InitArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let empty = std::fs::read_dir(&cx.cwd).is_ok_and(|mut d| d.next().is_none());
    if empty {
        return generate(&cx.cwd, a.t, true, cx);
    }
    let kdirs: Vec<PathBuf> =
        a.t.kdir
            .clone()
            .or_else(|| {
                a.t.kernel_release
                    .as_ref()
                    .map(|r| format!("/lib/modules/{r}/build").into())
            })
            .into_iter()
            .collect();
    let done = cargo_kmod::dkms::adopt(&cx.settings, &cx.cwd, a.t.name.as_deref(), &kdirs)?;
    outln!("{}", done.manifest.display());
    let v = &done.values;
    note!(
        cx.ui,
        "adopted {} {} ({}{}); no other file was written",
        v.name,
        v.version,
        if v.dkms {
            "a DKMS tree: its dkms.conf says how it builds"
        } else {
            "a Kbuild project"
        },
        if v.modules.is_empty() {
            String::new()
        } else {
            format!("; modules: {}", v.modules.join(", "))
        }
    );
    note!(cx.ui, "next: cargo kmod build");
    Ok(0)
}

fn generate(
    dir: &Path,
    t: TemplateArgs,
    in_place: bool,
    cx: &super::Ctx,
) -> cargo_kmod::Result<i32> {
    let name = t.name.clone().unwrap_or_else(|| {
        dir.canonicalize()
            .unwrap_or_else(|_| dir.to_path_buf())
            .file_name()
            .map(|n| cargo_kmod::modfile::normalise(&n.to_string_lossy()))
            .unwrap_or_default()
    });
    let kdir: Option<PathBuf> = t
        .kdir
        .clone()
        .or_else(|| {
            t.kernel_release
                .as_ref()
                .map(|r| format!("/lib/modules/{r}/build").into())
        })
        .or_else(|| {
            let p = PathBuf::from(format!("/lib/modules/{}/build", kbuild::running_release()));
            p.exists().then_some(p)
        });
    if let (Some(k), None) = (&kdir, &t.kdir)
        && t.kernel_release.is_some()
        && !k.exists()
    {
        let r = t.kernel_release.as_deref().unwrap_or_default();
        return Err(Error::Preflight {
            kdir: k.clone(),
            reason: "kernel tree not found: this release's headers are not installed".into(),
            fix: format!(
                "install them (Debian: apt-get install linux-headers-{r}), or pass --kdir with its build tree"
            ),
        });
    }
    // A configured tree, else the release its Makefile names.
    let kernel = kdir.as_deref().and_then(|k| {
        Target::from_tree(k)
            .ok()
            .or_else(|| cargo_kmod::kernel::makefile_release(k).map(|r| Target::release_only(&r)))
    });
    if (t.kdir.is_some() || t.kernel_release.is_some()) && kernel.is_none() {
        return Err(Error::Preflight {
            kdir: kdir.unwrap_or_default(),
            reason: "cannot tell this tree's kernel version (no include/config/kernel.release or Makefile)".into(),
            fix: "give a configured kernel build tree".into(),
        });
    }
    let rust_template = templates::list()
        .iter()
        .any(|x| x.name == t.template && x.requires.contains(&templates::Requirement::Rust));
    if rust_template
        && let Some(c) = kernel.as_ref().and_then(|k| k.config.as_ref())
        && !c.rust()
    {
        warning!(
            cx.ui,
            "{} has no CONFIG_RUST: a Rust module will not build against it; `cargo kmod kernel build` makes a Rust-enabled kernel, or use --template c-minimal",
            c.path.display()
        );
    }
    // The tree saved in Cargo.toml: the one asked for, so `cargo kmod build` uses it.
    let saved = t
        .kdir
        .map(|k| std::fs::canonicalize(&k).unwrap_or(k))
        .or_else(|| {
            t.kernel_release
                .as_ref()
                .map(|r| format!("/lib/modules/{r}/build").into())
        });
    let o = NewOptions {
        dir: dir.to_path_buf(),
        name,
        template: t.template,
        license: t.license,
        author: t
            .author
            .unwrap_or_else(|| default_author(cx.settings.user.clone())),
        description: t.description,
        kernel: kernel.clone(),
        kdir: saved,
        in_place,
    };
    let files = templates::generate(&o)?;
    for f in &files {
        outln!("{}", f.display());
    }
    note!(
        cx.ui,
        "created {} module `{}` in {}{}",
        o.template,
        o.name,
        dir.display(),
        kernel.map_or(String::new(), |k| format!(" for kernel {}", k.release))
    );
    if in_place {
        note!(cx.ui, "next: cargo kmod build");
    } else {
        note!(cx.ui, "next: cd {} && cargo kmod build", dir.display());
    }
    Ok(0)
}

fn default_author(user: Option<String>) -> String {
    std::process::Command::new("git")
        .args(["config", "user.name"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .or(user)
        .unwrap_or_else(|| "Unknown".into())
}
