use super::Status;
use crate::cli::{InstallArgs, PackageArgs};
use cargo_kmod::kbuild::{self, Project};
use cargo_kmod::package::{self, deb, dkms, oci, rpm};
use cargo_kmod::sign::ProjectSigning;
use cargo_kmod::target::Target;

pub fn install(a: InstallArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let (project, key) = cx.project(a.manifest_path.as_deref(), &a.signing)?;
    let rep = cx.ui.reporter();
    let signing = key.as_ref().map(ProjectSigning::signing);
    let rels = package::releases(&project, &cx.releases(&a.kernel_release, &a.kernel)?)?;
    let mut status = Status::default();
    for r in rels {
        let target = Target::from_release(&a.root, &r);
        match package::install::install(
            &cx.settings,
            &project,
            &target,
            &a.root,
            a.dir.as_deref(),
            signing.as_ref(),
        ) {
            Ok(paths) => {
                for p in paths {
                    outln!("{r}: installed {}", p.display());
                }
            }
            Err(e) => status.add(rep.error(&e)),
        }
    }
    Ok(status.code())
}

pub fn package(a: PackageArgs, cx: &super::Ctx) -> cargo_kmod::Result<i32> {
    let (project, key) = cx.project(a.manifest_path.as_deref(), &a.signing)?;
    let rep = cx.ui.reporter();
    let out = a.out.clone().unwrap_or_else(|| project.package_dir());
    let mut status = Status::default();
    if a.dkms {
        let tc = dkms_toolchain(&cx.settings, &project, &cx.ui.reporter());
        match dkms::package(&project, &out, &tc) {
            Ok((tree, tarball)) => {
                outln!("{}", tree.display());
                outln!("{}", tarball.display());
                note!(
                    cx.ui,
                    "next: dkms add {} (or dkms ldtarball {})",
                    tree.display(),
                    tarball.display()
                );
            }
            Err(e) => status.add(rep.error(&e)),
        }
    }
    if a.srpm {
        match rpm::build_srpm(&cx.settings, &project, &out, a.gpg_key.as_deref()) {
            Ok(p) => {
                outln!("{}", p.display());
                note!(
                    cx.ui,
                    "next: rpmbuild --rebuild {} (on the machine with kernel-devel; --define 'kversion R' for another kernel)",
                    p.display()
                );
            }
            Err(e) => status.add(rep.error(&e)),
        }
    }
    if !(a.deb || a.rpm || a.oci) {
        return Ok(status.code());
    }
    let signing = key.as_ref().map(ProjectSigning::signing);
    let rels = match cx
        .releases(&a.kernel_release, &a.kernel)
        .and_then(|given| package::releases(&project, &given))
    {
        Ok(r) => r,
        Err(e) => {
            status.add(rep.error(&e));
            return Ok(status.code());
        }
    };
    let targets: Vec<Target> = rels
        .iter()
        .map(|r| package::built_target(&project, r))
        .collect();
    for target in &targets {
        if a.deb {
            match deb::build_deb(&cx.settings, &project, target, &out, signing.as_ref()) {
                Ok(p) => outln!("{}", p.display()),
                Err(e) => status.add(rep.error(&e)),
            }
        }
        if a.rpm {
            match rpm::build_rpm(
                &cx.settings,
                &project,
                target,
                &out,
                signing.as_ref(),
                a.gpg_key.as_deref(),
            ) {
                Ok(p) => outln!("{}", p.display()),
                Err(e) => status.add(rep.error(&e)),
            }
        }
    }
    if a.oci {
        let image = a
            .image
            .clone()
            .unwrap_or_else(|| project.name.replace('_', "-"));
        let o = oci::OciOptions {
            out: &out,
            signing: signing.as_ref(),
            image: &image,
            kmm_manifest: a.kmm_manifest,
            busybox: &a.busybox,
            settings: &cx.settings,
        };
        match oci::package(&project, &targets, &o) {
            Ok(w) => {
                outln!("{}", w.layout.display());
                outln!("{}", w.archive.display());
                if let Some(m) = &w.kmm_manifest {
                    outln!("{}", m.display());
                }
                for (release, tag) in &w.images {
                    note!(
                        cx.ui,
                        "{release}: oci:{}:{tag} (push: skopeo copy oci:{}:{tag} docker://{image}:{tag})",
                        w.layout.display(),
                        w.layout.display()
                    );
                }
            }
            Err(e) => status.add(rep.error(&e)),
        }
    }
    Ok(status.code())
}

/// LLVM and rustc for DKMS's MAKE line, as preflight finds them for the project's trees.
fn dkms_toolchain(
    s: &cargo_kmod::settings::Settings,
    project: &Project,
    r: &dyn cargo_kmod::report::Reporter,
) -> dkms::Toolchain {
    let mut tc = dkms::Toolchain::default();
    let trees: Vec<Target> = kbuild::choose_trees(s, &[], &[], &[], project)
        .iter()
        .filter_map(|k| Target::from_tree(&k.tree(s, r).ok()?).ok())
        .collect();
    // The kernels' own compiler; a Rust module for an unknown kernel assumes clang
    // (the kernels `kernel build` makes).
    let clang = if trees.is_empty() {
        project.is_rust()
    } else {
        trees
            .iter()
            .any(|t| t.config.as_ref().is_some_and(|c| c.cc_is_clang()))
    };
    if clang {
        // DKMS runs with its own PATH: name LLVM's directory (LLVM=<dir>/) when there is one.
        let bin = cargo_kmod::toolchain::newest_llvm_bin();
        tc.llvm = Some(
            bin.as_ref()
                .map_or("1".into(), |b| format!("{}/", b.display())),
        );
        tc.path = bin;
    }
    if project.is_rust() {
        tc.rustc = trees
            .iter()
            .find_map(|t| {
                kbuild::preflight(s, t, project, None)
                    .ok()
                    .and_then(|e| e.rustc)
            })
            .or_else(|| Some("/usr/bin/rustc".into()));
        tc.prepare = std::env::current_exe().ok();
    }
    tc
}
