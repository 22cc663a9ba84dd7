//! The Cargo.toml metadata loader: whatever a manifest says, a project it accepts has
//! names, versions and directories that cannot leave their place in a path, a shell
//! file (dkms.conf), an RPM spec or a YAML.
#![no_main]
use cargo_kmod::project::{Manifest, Project};
use std::path::{Component, Path};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The package's fields and its [package.metadata], as cargo metadata gives them.
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let s = |k: &str| v[k].as_str();
    let m = Manifest {
        path: Path::new("/project/Cargo.toml"),
        crate_name: s("crate").unwrap_or("crate"),
        version: s("version").unwrap_or("0.1.0"),
        license: s("license"),
        description: s("description"),
        author: s("author"),
        url: s("url"),
        metadata: &v["metadata"],
    };
    let Ok(p) = Project::from_manifest(&m, Path::new("/project/target")) else {
        return;
    };
    // A package name (DKMS's `acpi-call` too): one shell word and one path component.
    assert!(p.name.starts_with(|c: char| c.is_ascii_alphanumeric()));
    assert!(p.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.+".contains(&b)));
    assert!(p.version.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b)));
    assert!(Path::new(&p.install_dir).components().all(|c| matches!(c, Component::Normal(_))));
    for t in [&p.license, &p.author, &p.url].into_iter().flatten() {
        assert!(!t.chars().any(char::is_control), "{t:?}");
    }
    // What reaches package file names and the DKMS tree's directory stays one name.
    let base = format!("{}-{}", p.name, p.version);
    assert_eq!(Path::new(&base).components().count(), 1);
});
