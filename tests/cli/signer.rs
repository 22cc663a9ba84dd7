//! Keys that never touch the build machine: external signers (`--signer`, the digest
//! on stdin, the raw signature back) and two-phase signing (`--export`, a service
//! signs detached — here the real `sign-file -d` of Debian's kbuild — `--attach`).

use crate::common::*;
use crate::fixtures::{built_module, fetched, test_key};
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// `openssl pkeyutl` as the signer of `key` (RSA wraps the digest in its DigestInfo).
fn pkeyutl(key: &Path) -> String {
    format!(
        "openssl pkeyutl -sign -inkey '{}' -pkeyopt digest:$CARGO_KMOD_SIGN_HASH",
        key.display()
    )
}

fn signer_cmd(cert: &Path, signer: &str, hash: &str) -> assert_cmd::Command {
    let mut c = kmod();
    c.args(["sign", "--hash", hash, "--cert"])
        .arg(cert)
        .arg("--signer")
        .arg(signer);
    c
}

/// RSA-2048/4096 through `openssl pkeyutl` are byte-identical with `sign --key` of the
/// same key, one module and a tree signed in parallel; P-256/P-384 verify (ECDSA
/// signatures differ each time).
#[test]
fn openssl_pkeyutl_as_signer_rsa_identical_ecdsa_verified() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    for (name, hash) in [
        ("rsa2048", "sha256"),
        ("rsa4096", "sha512"),
        ("p256", "sha256"),
        ("p384", "sha384"),
    ] {
        let k = keys().get(name);
        let (by_key, by_signer) = (d.path().join("key.ko"), d.path().join("signer.ko"));
        sign_cmd(&k, hash)
            .arg("-o")
            .arg(&by_key)
            .arg(&m)
            .assert()
            .success();
        signer_cmd(&k.cert, &pkeyutl(&k.key), hash)
            .arg("-o")
            .arg(&by_signer)
            .arg(&m)
            .assert()
            .success();
        if name.starts_with("rsa") {
            assert_eq!(sha256(&by_key), sha256(&by_signer), "{name}");
        }
        let o = kmod()
            .args(["verify", "--cert"])
            .arg(&k.cert)
            .arg(&by_signer)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stdout(&o));
        assert!(
            stdout(&o).contains(&format!("with {hash}")),
            "{}",
            stdout(&o)
        );
    }
    // A tree, -j 2: each module signed by its own signer call.
    let k = keys().get("rsa2048");
    let (tree, reference) = (d.path().join("tree"), d.path().join("ref"));
    for dir in [&tree, &reference] {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for i in 0..6 {
            std::fs::copy(&m, dir.join(format!("sub/m{i}.ko"))).unwrap();
        }
    }
    signer_cmd(&k.cert, &pkeyutl(&k.key), "sha256")
        .args(["-j", "2"])
        .arg(&tree)
        .assert()
        .success();
    sign_cmd(&k, "sha256").arg(&reference).assert().success();
    for i in 0..6 {
        let f = format!("sub/m{i}.ko");
        assert_eq!(sha256(&tree.join(&f)), sha256(&reference.join(&f)), "{f}");
    }
}

/// The kernel is the judge: an ECDSA P-384 signature made through a signer loads in
/// the test kernel, which enforces signatures.
#[test]
fn an_ecdsa_signature_from_a_signer_loads_in_the_test_kernel() {
    let d = tempfile::tempdir().unwrap();
    let k = test_key("p384");
    let m = d.path().join("kmodtest.ko");
    std::fs::copy(built_module("kmodtest"), &m).unwrap();
    signer_cmd(&k.cert, &pkeyutl(&k.key), "sha384")
        .arg(&m)
        .assert()
        .success();
    let (code, v, err) = crate::fixtures::boot(&[&m], &[]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["modules"][0]["loaded"], true, "{v}");
    assert_eq!(v["tainted"], 4096, "only O (out of tree): {v}");
}

/// A signer that fails, prints nothing, prints garbage, hangs, or signs with another
/// key: exit 30, the signer's own words shown, the module as it was. Its environment
/// has no KBUILD_SIGN_PIN; what it prints on stdout never reaches ours.
#[test]
fn bad_signers_are_refused_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let m = unsigned_module(d.path(), "dummy");
    let before = sha256(&m);
    let k = keys().get("rsa2048");
    let other = keys().get("other");
    let cases: [(&str, String, &str); 5] = [
        (
            "fails",
            "echo token unreachable >&2; exit 3".into(),
            "token unreachable",
        ),
        ("silent", "true".into(), "printed no signature"),
        (
            "garbage",
            "head -c 256 /dev/urandom".into(),
            "not a valid RSA-2048 signature",
        ),
        ("hangs", "sleep 30".into(), "did not finish in 1 s"),
        (
            "other key",
            pkeyutl(&other.key),
            "not a valid RSA-2048 signature",
        ),
    ];
    for (what, signer, said) in cases {
        let started = std::time::Instant::now();
        let o = signer_cmd(&k.cert, &signer, "sha256")
            .args(["--signer-timeout", "1"])
            .arg(&m)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(30), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains(said), "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&m.display().to_string()),
            "{what}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{what}: {}", stdout(&o));
        assert_eq!(sha256(&m), before, "{what}: the module changed");
        assert!(
            started.elapsed().as_secs() < 20,
            "{what}: not killed at the timeout"
        );
    }
    // The environment it gets, and stdout kept to ourselves.
    let env = d.path().join("env");
    let o = signer_cmd(
        &k.cert,
        &format!("env > '{}'; {}", env.display(), pkeyutl(&k.key)),
        "sha256",
    )
    .env("KBUILD_SIGN_PIN", "secret-pin-4711")
    .arg(&m)
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = std::fs::read_to_string(&env).unwrap();
    assert!(
        !seen.contains("secret-pin-4711"),
        "the PIN reached the signer"
    );
    for var in [
        "CARGO_KMOD_SIGN_HASH=sha256",
        "CARGO_KMOD_SIGN_KEY_TYPE=rsa",
        "CARGO_KMOD_SIGN_KEY_BITS=2048",
        "CARGO_KMOD_SIGN_INPUT=digest",
        "CARGO_KMOD_SIGN_DIGEST_HEX=",
        "CARGO_KMOD_SIGN_DIGEST_BASE64=",
    ] {
        assert!(seen.contains(var), "{var} not in {seen}");
    }
    assert!(
        seen.contains(&format!("CARGO_KMOD_SIGN_MODULE={}", m.display())),
        "{seen}"
    );
    assert_eq!(
        stdout(&o).trim(),
        format!("{}: signed (sha256, RSA-2048)", m.display())
    );
}

/// `signer = "..."` in the project's metadata: `build --sign` signs through it.
#[test]
fn a_projects_metadata_signer_signs_its_build() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let p = d.path().join("signed-elsewhere");
    let kdir = &crate::fixtures::test_kernel().kdir;
    kmod()
        .args(["new", "--template", "c-minimal"])
        .arg(&p)
        .arg("--kdir")
        .arg(kdir)
        .assert()
        .success();
    let toml = p.join("Cargo.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains("\nsign = false\n"), "{text}");
    let text = text.replace(
        "\nsign = false\n",
        &format!(
            "\nsign = true\nsigner = \"{}\"\ncert = \"{}\"\n",
            pkeyutl(&k.key).replace('\'', ""),
            k.cert.display()
        ),
    );
    std::fs::write(&toml, text).unwrap();
    let o = kmod()
        .args(["build", "--message-format", "json"])
        .current_dir(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let built = PathBuf::from(v["path"].as_str().unwrap());
    let o = kmod()
        .args(["verify", "--cert"])
        .arg(&k.cert)
        .arg(&built)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
}

/// `sign --export DIR` of `tree`, for signatures by `cert`.
fn export_tree(cert: &Path, dir: &Path, tree: &Path) {
    kmod()
        .args(["sign", "--hash", "sha256", "--cert"])
        .arg(cert)
        .arg("--export")
        .arg(dir)
        .arg(tree)
        .assert()
        .success();
}

/// Debian's sign-file (from its kbuild package), detached, on each exported module.
fn sign_file_detached(export: &Path, k: &Key, hash: &str) {
    let sf = sign_file();
    let o = Std::new("sh")
        .arg("-c")
        .arg(
            r#"find "$1/modules" -name '*.ko' -print0 | xargs -0 -P 2 -n 1 "$2" -d "$3" "$4" "$5""#,
        )
        .arg("sh")
        .arg(export)
        .arg(&sf)
        .arg(hash)
        .arg(&k.key)
        .arg(&k.cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "sign-file -d: {}", stderr(&o));
}

/// A copy of `from`'s modules with their signatures removed (`unsign`).
fn unsigned_copy(from: &Path, to: &Path) {
    let o = Std::new("cp").arg("-a").arg(from).arg(to).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kmod().arg("unsign").arg(to).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Every module file under `a` equals the one under `b`; returns how many.
fn same_trees(a: &Path, b: &Path) -> usize {
    let mut n = 0;
    for e in walkdir::WalkDir::new(a).into_iter().filter_map(|e| e.ok()) {
        if e.file_type().is_file() && e.file_name().to_string_lossy().contains(".ko") {
            let rel = e.path().strip_prefix(a).unwrap();
            assert_eq!(sha256(e.path()), sha256(&b.join(rel)), "{}", rel.display());
            n += 1;
        }
    }
    n
}

/// Two-phase signing of Debian 12's whole 6.1 module tree (its signatures removed):
/// export, `sign-file -d` per module, attach — byte-identical with `sign --key`. Then
/// the refusals: a module changed after export, a signature by another key, a signature
/// for a module the manifest does not hold, a manifest edited by hand; nothing written.
#[test]
fn two_phase_signing_of_debians_61_tree_with_sign_file() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let kernel = fetched("debian/bookworm").modules.join("kernel");
    let (tree, reference, export) = (
        d.path().join("tree"),
        d.path().join("ref"),
        d.path().join("export"),
    );
    unsigned_copy(&kernel, &tree);
    unsigned_copy(&kernel, &reference);
    export_tree(&k.cert, &export, &tree);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("manifest.json")).unwrap()).unwrap();
    let n = manifest["modules"].as_array().unwrap().len();
    assert!(n > 3000, "{n} modules exported");
    sign_file_detached(&export, &k, "sha256");
    let o = kmod()
        .arg("sign")
        .arg("--attach")
        .arg(&export)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    sign_cmd(&k, "sha256").arg(&reference).assert().success();
    assert_eq!(same_trees(&tree, &reference), n);

    // The refusals, on a small export of the signed tree's net drivers.
    let (src, export) = (d.path().join("net"), d.path().join("export2"));
    unsigned_copy(&tree.join("drivers/net/ethernet/intel"), &src);
    export_tree(&k.cert, &export, &src);
    sign_file_detached(&export, &k, "sha256");
    let before: Vec<Vec<u8>> = walkdir::WalkDir::new(&src)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| sha256(e.path()))
        .collect();
    let unchanged = |what: &str| {
        let now: Vec<Vec<u8>> = walkdir::WalkDir::new(&src)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| sha256(e.path()))
            .collect();
        assert_eq!(now, before, "{what}: something was written");
    };
    let attach = |extra: &[&std::ffi::OsStr]| {
        let o = kmod()
            .arg("sign")
            .arg("--attach")
            .arg(&export)
            .args(extra)
            .output()
            .unwrap();
        (o.status.code().unwrap(), stderr(&o))
    };
    let one = walkdir::WalkDir::new(&src)
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("e1000e.ko"))
        .unwrap()
        .into_path();
    let rel = one
        .strip_prefix(&src)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // Changed after export.
    let saved = std::fs::read(&one).unwrap();
    let mut changed = saved.clone();
    changed[100] ^= 1;
    std::fs::write(&one, &changed).unwrap();
    let (code, err) = attach(&[]);
    assert_eq!(code, 31, "{err}");
    assert!(
        err.contains("changed since it was exported") && err.contains(&rel),
        "{err}"
    );
    std::fs::write(&one, &saved).unwrap();
    unchanged("changed module");
    // Another key.
    let other = keys().get("other");
    let p7s = export.join(format!("modules/{rel}.p7s"));
    let good = std::fs::read(&p7s).unwrap();
    let o = Std::new(sign_file())
        .args(["-d", "sha256"])
        .arg(&other.key)
        .arg(&other.cert)
        .arg(export.join(format!("modules/{rel}")))
        .output()
        .unwrap();
    assert!(o.status.success());
    let (code, err) = attach(&[]);
    assert_eq!(code, 31, "{err}");
    assert!(
        err.contains("does not verify") && err.contains("ENOKEY"),
        "{err}"
    );
    unchanged("other key");
    // ...and the other key's certificate given instead of the manifest's: refused too.
    let (code, err) = attach(&["--cert".as_ref(), other.cert.as_os_str()]);
    assert_eq!(code, 31, "{err}");
    assert!(err.contains("expects signatures by"), "{err}");
    std::fs::write(&p7s, &good).unwrap();
    // A signature for a module the manifest does not hold.
    let stray = export.join("modules/not-exported.ko.p7s");
    std::fs::write(&stray, &good).unwrap();
    let (code, err) = attach(&[]);
    assert_eq!(code, 31, "{err}");
    assert!(
        err.contains("not-exported.ko.p7s") && err.contains("does not hold"),
        "{err}"
    );
    std::fs::remove_file(&stray).unwrap();
    unchanged("stray signature");
    // A manifest edited by hand: a path pointed elsewhere, then not JSON.
    let mpath = export.join("manifest.json");
    let text = std::fs::read_to_string(&mpath).unwrap();
    let elsewhere = text.replace(&format!("/{rel}\""), &format!("/{rel}.elsewhere\""));
    std::fs::write(&mpath, &elsewhere).unwrap();
    let (code, err) = attach(&[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(".elsewhere"), "{err}");
    std::fs::write(&mpath, "{ not json").unwrap();
    let (code, err) = attach(&[]);
    assert_eq!(code, 31, "{err}");
    assert!(err.contains("not an export manifest"), "{err}");
    unchanged("edited manifest");
    std::fs::write(&mpath, &text).unwrap();
    let (code, err) = attach(&[]);
    assert_eq!(code, 0, "{err}");
}

/// Debian sid's 7.2 modules are `.ko.xz`: exported uncompressed, signed by `sign-file
/// -d`, attached and compressed again as they were — byte-identical with `sign --key`.
/// `--from-export` is the service too (cargo-kmod signing the export detached).
#[test]
fn two_phase_signing_keeps_72s_xz_compression() {
    let d = tempfile::tempdir().unwrap();
    let k = keys().get("rsa2048");
    let nf = fetched("debian/sid").modules.join("kernel/net/netfilter");
    for service in ["sign-file", "from-export"] {
        let (tree, reference, export) = (
            d.path().join(format!("{service}-tree")),
            d.path().join(format!("{service}-ref")),
            d.path().join(format!("{service}-export")),
        );
        unsigned_copy(&nf, &tree);
        unsigned_copy(&nf, &reference);
        export_tree(&k.cert, &export, &tree);
        if service == "sign-file" {
            sign_file_detached(&export, &k, "sha256");
        } else {
            sign_cmd(&k, "sha256")
                .arg("--from-export")
                .arg(&export)
                .assert()
                .success();
        }
        kmod()
            .arg("sign")
            .arg("--attach")
            .arg(&export)
            .assert()
            .success();
        sign_cmd(&k, "sha256").arg(&reference).assert().success();
        let n = same_trees(&tree, &reference);
        assert!(n > 100, "{service}: {n} modules");
        let xz = walkdir::WalkDir::new(&tree)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ko.xz"))
            .count();
        assert_eq!(xz, n, "{service}: every module still .ko.xz");
    }
}
