//! `package --oci`: module images for Kubernetes' KMM, read by the real skopeo and
//! umoci, with the modules verified and found by modprobe as KMM's worker does.

use crate::common::*;
use crate::fixtures::test_kernel;
use crate::fixtures::{built_project, debian_headers};
use std::path::{Path, PathBuf};
use std::process::Command as Std;

fn package(p: &Path, out: &Path, kg: &Path) -> Vec<PathBuf> {
    let o = kmod()
        .current_dir(p)
        .args([
            "package",
            "--oci",
            "--kmm-manifest",
            "--image",
            "registry.example/kmm/oci-demo",
        ])
        .args(["--sign", "--key"])
        .arg(kg.join("signing_key.pem"))
        .arg("--cert")
        .arg(kg.join("signing_key.crt"))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(PathBuf::from).collect()
}

/// Every file in a directory tree, relative, sorted; symlinks as `path -> target`.
fn listing(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().is_symlink() {
                format!(
                    "{rel} -> {}",
                    std::fs::read_link(e.path()).unwrap().display()
                )
            } else {
                rel
            }
        })
        .collect();
    v.sort();
    v
}

#[test]
fn oci_images_per_kernel_unpack_to_verified_modules_modprobe_finds_and_rebuild_identically() {
    let d = tempfile::tempdir().unwrap();
    let debian = debian_headers();
    let ours = test_kernel();
    let p = built_project(
        &d.path().join("oci_demo"),
        "c-minimal",
        &[],
        &[&debian, &ours.kdir],
    );
    let kg = d.path().join("kg");
    // RSA (the default): PKCS#1 v1.5 signatures are deterministic, so images can be too.
    kmod().args(["keygen", "--out"]).arg(&kg).assert().success();
    let out = d.path().join("out");
    let made = package(&p, &out, &kg);
    let layout = out.join("oci_demo-oci");
    let archive = out.join("oci_demo-oci.tar");
    let yaml = out.join("oci_demo-module.yaml");
    assert_eq!(made, [layout.clone(), archive.clone(), yaml.clone()]);
    let debian_rel = std::fs::read_to_string(debian.join("include/config/kernel.release")).unwrap();
    let kernels = [
        (debian_rel.trim().to_string(), "oci_demo.ko.xz"),
        (ours.release.clone(), "oci_demo.ko"),
    ];
    for (release, file) in &kernels {
        let tag = release.replace('+', "_");
        for source in [
            format!("oci:{}:{tag}", layout.display()),
            format!("oci-archive:{}:{tag}", archive.display()),
        ] {
            let o = run(Std::new("skopeo").args(["inspect", &source]));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                v["Labels"]["io.cargo-kmod.kernel.release"],
                release.as_str(),
                "{v}"
            );
            assert_eq!(v["Labels"]["io.cargo-kmod.kernel.arch"], "x86_64", "{v}");
            assert_eq!(v["Architecture"], "amd64");
            assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "busybox, modules");
        }
        let raw = run(Std::new("skopeo").args([
            "inspect",
            "--raw",
            &format!("oci:{}:{tag}", layout.display()),
        ]));
        let m: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
        assert_eq!(
            m["annotations"]["io.cargo-kmod.module.signer"], "cargo-kmod module signing key",
            "{m}"
        );

        let bundle = d.path().join(format!("bundle-{tag}"));
        run(Std::new("umoci")
            .args(["unpack", "--image", &format!("{}:{tag}", layout.display())])
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        let moddir = format!("opt/lib/modules/{release}");
        let mut want: Vec<String> = [
            "bin/busybox".to_string(),
            "bin/cp -> busybox".into(),
            "bin/sh -> busybox".into(),
            format!("{moddir}/{file}"),
        ]
        .into_iter()
        .chain(
            [
                "modules.alias",
                "modules.alias.bin",
                "modules.builtin.alias.bin",
                "modules.builtin.bin",
                "modules.dep",
                "modules.dep.bin",
                "modules.devname",
                "modules.softdep",
                "modules.symbols",
                "modules.symbols.bin",
            ]
            .map(|f| format!("{moddir}/{f}")),
        )
        .collect();
        want.sort();
        assert_eq!(listing(&rootfs), want);
        let module = rootfs.join(&moddir).join(file);
        assert_verifies(&kg.join("signing_key.crt"), &module);
        // KMM's worker: `cp` from the image, then `modprobe -d /opt`.
        run(Std::new("chroot").arg(&rootfs).args([
            "/bin/cp",
            &format!("/{moddir}/{file}"),
            "/copied",
        ]));
        assert_eq!(
            std::fs::read(rootfs.join("copied")).unwrap(),
            std::fs::read(&module).unwrap()
        );
        let shown = stdout(&run(Std::new("modprobe")
            .arg("-d")
            .arg(rootfs.join("opt"))
            .args(["-S", release, "--show-depends", "oci_demo"])));
        assert_eq!(
            shown.trim(),
            format!("insmod {}", rootfs.join(&moddir).join(file).display())
        );
    }

    // The KMM Module maps each kernel to its image.
    let parsed = run(Std::new("python3")
        .arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
        .arg(&yaml));
    let module: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(module["apiVersion"], "kmm.sigs.x-k8s.io/v1beta1");
    assert_eq!(module["kind"], "Module");
    assert_eq!(module["metadata"]["name"], "oci-demo");
    let container = &module["spec"]["moduleLoader"]["container"];
    assert_eq!(container["modprobe"]["moduleName"], "oci_demo");
    assert_eq!(container["modprobe"]["dirName"], "/opt");
    let mut mappings: Vec<(String, String)> = container["kernelMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["literal"].as_str().unwrap().into(),
                m["containerImage"].as_str().unwrap().into(),
            )
        })
        .collect();
    mappings.sort();
    let mut want: Vec<(String, String)> = kernels
        .iter()
        .map(|(r, _)| {
            (
                r.clone(),
                format!("registry.example/kmm/oci-demo:{}", r.replace('+', "_")),
            )
        })
        .collect();
    want.sort();
    assert_eq!(mappings, want);

    // Made again: the same bytes, blob for blob.
    let again = d.path().join("again");
    package(&p, &again, &kg);
    let blobs = |dir: &Path| listing(&dir.join("oci_demo-oci/blobs/sha256"));
    assert_eq!(blobs(&out), blobs(&again));
    assert_eq!(sha256(&archive), sha256(&again.join("oci_demo-oci.tar")));
}

#[test]
fn oci_refuses_a_dynamic_busybox_and_leaves_the_earlier_image() {
    let d = tempfile::tempdir().unwrap();
    let p = built_project(
        &d.path().join("oci_bad"),
        "c-minimal",
        &[],
        &[&debian_headers()],
    );
    let out = d.path().join("out");
    kmod()
        .current_dir(&p)
        .args(["package", "--oci", "--out"])
        .arg(&out)
        .assert()
        .success();
    let before = listing(&out);
    let o = kmod()
        .current_dir(&p)
        .args(["package", "--oci", "--busybox", "/bin/ls", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(26), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("/bin/ls: is dynamically linked") && e.contains("busybox-static"),
        "{e}"
    );
    assert_eq!(listing(&out), before, "the earlier image is untouched");
}
