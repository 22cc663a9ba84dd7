//! The kernel is the judge: modules booted in QEMU on the test kernel that
//! `scripts/test-deps.sh` builds with `cargo kmod kernel build`.

use crate::common::*;
use crate::fixtures::*;
use std::path::{Path, PathBuf};

#[test]
fn signed_modules_load_and_unload_for_every_key_and_hash() {
    let d = tempfile::tempdir().unwrap();
    let ko = built_module("kmodtest");
    for algo in TRUSTED {
        for hash in ["sha256", "sha384", "sha512"] {
            let m = copy_of(&ko, d.path(), &format!("{algo}-{hash}.ko"));
            sign(&m, &test_key(algo), hash);
            let (code, v, err) = boot(&[&m], &[]);
            assert_eq!(code, 0, "{algo} {hash}: {v}\n{err}");
            let r = &v["modules"][0];
            assert_eq!(r["loaded"], true, "{algo} {hash}: {v}");
            assert_eq!(r["unloaded"], true, "{algo} {hash}: {v}");
            let log = r["kernel_log"].to_string();
            assert!(
                log.contains("kmodtest: loaded count=1") && log.contains("kmodtest: unloaded"),
                "{v}"
            );
        }
    }
}

#[test]
fn rust_module_builds_signs_loads_and_unloads() {
    let d = tempfile::tempdir().unwrap();
    let m = copy_of(&built_module("rust_hello"), d.path(), "rust_hello.ko");
    sign(&m, &test_key("p384"), "sha512");
    let (code, v, err) = boot(&[&m], &[]);
    assert_eq!(code, 0, "{v}\n{err}");
    let log = v["modules"][0]["kernel_log"].to_string();
    assert!(
        log.contains("rust_hello: loaded") && log.contains("rust_hello: unloaded"),
        "{v}"
    );
}

/// For each module: what the kernel did, what `run` reported, and what `verify` says.
#[test]
fn verify_agrees_with_the_kernel() {
    let d = tempfile::tempdir().unwrap();
    let ko = built_module("kmodtest");
    let good = copy_of(&ko, d.path(), "good.ko");
    sign(&good, &test_key("rsa3072"), "sha256");
    let unsigned = copy_of(&ko, d.path(), "unsigned.ko");
    let untrusted = copy_of(&ko, d.path(), "untrusted.ko");
    sign(&untrusted, &test_key("untrusted"), "sha256");
    let flipped = copy_of(&good, d.path(), "flipped.ko");
    let mut b = std::fs::read(&flipped).unwrap();
    b[0x400] ^= 0x01;
    std::fs::write(&flipped, &b).unwrap();
    let badlen = copy_of(&good, d.path(), "badlen.ko");
    let mut b = std::fs::read(&badlen).unwrap();
    let n = b.len();
    b[n - 32..n - 28].copy_from_slice(&(n as u32).to_be_bytes());
    std::fs::write(&badlen, &b).unwrap();
    let nopkg = copy_of(&good, d.path(), "nopkg.ko");
    let mut b = std::fs::read(&nopkg).unwrap();
    let n = b.len();
    b[n - 38] = 1; // id_type
    std::fs::write(&nopkg, &b).unwrap();

    // SignedData v3 around a v1 (issuer+serial) SignerInfo: a version mismatch.
    let v3 = copy_of(&good, d.path(), "v3.ko");
    let mut b = std::fs::read(&v3).unwrap();
    let cms_start = strip(&b).len();
    let at = cms_start
        + b[cms_start..]
            .windows(3)
            .position(|w| w == [0x02, 0x01, 0x01])
            .unwrap()
        + 2;
    b[at] = 3;
    std::fs::write(&v3, &b).unwrap();

    // (module, what the kernel should say, verify's verdict)
    let table: [(&Path, serde_json::Value, &str); 7] = [
        (&good, serde_json::Value::Null, "OK"),
        (&unsigned, "unsigned".into(), "ENODATA"),
        (&untrusted, "unavailable-key".into(), "ENOKEY"),
        (&flipped, "bad-signature".into(), "EKEYREJECTED"),
        (&badlen, "malformed-signature".into(), "EBADMSG"),
        (&nopkg, "unsupported-crypto".into(), "ENOPKG"),
        (&v3, "malformed-signature".into(), "EBADMSG"),
    ];
    let certs: Vec<PathBuf> = TRUSTED.iter().map(|n| test_key(n).cert).collect();
    for (m, kernel_says, verdict) in table {
        let (code, v, err) = boot(&[m], &[]);
        let r = &v["modules"][0];
        assert_eq!(r["refusal"], kernel_says, "{}: {v}\n{err}", m.display());
        assert_eq!(
            code,
            if kernel_says.is_null() { 0 } else { 20 },
            "{}",
            m.display()
        );
        let mut c = kmod();
        c.args(["verify", "--message-format", "json"]);
        for cert in &certs {
            c.arg("--cert").arg(cert);
        }
        let o = c.arg(m).output().unwrap();
        let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(
            j["verdict"],
            verdict,
            "{}: kernel said {kernel_says}, verify said {j}",
            m.display()
        );
    }
}

#[test]
fn parameters_reach_the_module_and_show_in_sysfs() {
    let d = tempfile::tempdir().unwrap();
    let m = copy_of(&built_module("kmodtest"), d.path(), "kmodtest.ko");
    sign(&m, &test_key("rsa2048"), "sha256");
    let (code, v, err) = boot(
        &[&m],
        &[
            "--param",
            "count=7",
            "--param",
            "greeting=hi there",
            "--exec",
            "cat /sys/module/kmodtest/parameters/count",
        ],
    );
    assert_eq!(code, 0, "{v}\n{err}");
    let params = v["modules"][0]["params"].as_array().unwrap();
    assert!(params.contains(&serde_json::json!(["count", "7"])), "{v}");
    assert!(
        params.contains(&serde_json::json!(["greeting", "hi there"])),
        "{v}"
    );
    assert!(
        v["modules"][0]["kernel_log"]
            .to_string()
            .contains("count=7 greeting=hi there"),
        "{v}"
    );
    assert_eq!(v["exec"][0]["output"], serde_json::json!(["7"]), "{v}");
    // Human output shows it the same way.
    let o = kmod()
        .arg("run")
        .args(["--accel", "tcg"])
        .arg("--kdir")
        .arg(&test_kernel().kdir)
        .arg("--module")
        .arg(&m)
        .args(["--param", "count=3"])
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("/sys/module/kmodtest/parameters/count = 3"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_hanging_guest_is_killed_at_the_timeout() {
    let d = tempfile::tempdir().unwrap();
    let m = copy_of(&built_module("kmodtest"), d.path(), "kmodtest.ko");
    sign(&m, &test_key("rsa2048"), "sha256");
    let started = std::time::Instant::now();
    let o = kmod()
        .arg("run")
        .args(["--accel", "tcg"])
        .arg("--kdir")
        .arg(&test_kernel().kdir)
        .arg("--module")
        .arg(&m)
        .args(["--exec", "sleep 600", "--timeout", "8"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(23), "{}", stdout(&o));
    assert!(stdout(&o).contains("TIMEOUT"), "{}", stdout(&o));
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn kernel_build_reuses_the_cache_and_lists_it() {
    let k = test_kernel();
    let mut c = kmod();
    c.args([
        "kernel",
        "build",
        "--source",
        "/usr/src/linux-source-6.12.tar.xz",
    ]);
    for n in TRUSTED {
        c.arg("--trusted-cert").arg(test_key(n).cert);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already built with these inputs"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains(&format!("kdir:    {}", k.kdir.display())),
        "{}",
        stdout(&o)
    );
    let list = stdout(&kmod().args(["kernel", "list"]).output().unwrap());
    let head = list.lines().next().unwrap_or_default();
    assert!(
        head.split_whitespace().collect::<Vec<_>>()
            == [
                "RELEASE", "ARCH", "DISTRO", "RUST", "RUSTC", "KDIR", "TRUSTED"
            ],
        "{list}"
    );
    let row = list
        .lines()
        .find(|l| l.contains(&format!("  {}  ", k.kdir.display())))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.starts_with(&format!("{} ", k.release))
            && row.split_whitespace().nth(1) == Some("x86_64")
            && row.split_whitespace().nth(2) == Some("-")
            && row.split_whitespace().nth(3) == Some("yes")
            && row.contains("cargo-kmod test p384"),
        "{list}"
    );
}

#[test]
fn kernel_build_names_missing_tools_and_their_packages() {
    let d = tempfile::tempdir().unwrap();
    // rustup's rustc has no rust-src: it is named, with the Debian packages that fix it.
    let rustup_rustc = PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo/bin/rustc");
    let o = kmod()
        .args([
            "kernel",
            "build",
            "--source",
            "/usr/src/linux-source-6.12.tar.xz",
            "--out",
        ])
        .arg(d.path())
        .arg("--rustc")
        .arg(&rustup_rustc)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("rustc with matching rust-src") && err.contains("has no rust-src"),
        "{err}"
    );
    assert!(
        err.contains("help: apt-get install rustc-web rust-web-src"),
        "{err}"
    );
    let o = kmod()
        .args([
            "kernel",
            "build",
            "--source",
            "/usr/src/linux-source-6.12.tar.xz",
            "--out",
        ])
        .arg(d.path())
        .args(["--bindgen", "/nonexistent/bindgen"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(8));
    assert!(
        stderr(&o).contains("bindgen") && stderr(&o).contains("cargo install --locked bindgen-cli"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        0,
        "nothing is left behind"
    );
}

/// The kernel image's own keyring: the build key plus every trusted test certificate,
/// from the (xz) bzImage, the ELF vmlinux, and a stripped vmlinux.
#[test]
fn certs_reads_the_test_kernel_from_bzimage_and_vmlinux() {
    let d = tempfile::tempdir().unwrap();
    let k = test_kernel();
    let stripped = d.path().join("vmlinux.stripped");
    run(
        std::process::Command::new("/usr/lib/llvm-19/bin/llvm-objcopy")
            .arg("--strip-all")
            .arg(k.kdir.join("vmlinux"))
            .arg(&stripped),
    );
    for image in [k.image.clone(), k.kdir.join("vmlinux"), stripped] {
        let o = kmod().arg("certs").arg(&image).output().unwrap();
        assert!(o.status.success(), "{}: {}", image.display(), stderr(&o));
        let text = stdout(&o);
        for n in TRUSTED {
            assert!(
                text.contains(&format!("cargo-kmod test {n}")),
                "{}: {text}",
                image.display()
            );
        }
        assert!(!text.contains("cargo-kmod test untrusted"));
        assert!(
            text.contains("Build time autogenerated kernel key"),
            "{text}"
        );
    }
    // And verify --kernel trusts exactly those.
    let m = copy_of(&built_module("kmodtest"), d.path(), "m.ko");
    sign(&m, &test_key("p256"), "sha256");
    kmod()
        .arg("verify")
        .arg("--kernel")
        .arg(&k.image)
        .arg(&m)
        .assert()
        .success();
    let u = copy_of(&built_module("kmodtest"), d.path(), "u.ko");
    sign(&u, &test_key("untrusted"), "sha256");
    kmod()
        .arg("verify")
        .arg("--kernel")
        .arg(&k.image)
        .arg(&u)
        .assert()
        .code(11);
}

/// The test kernel's bzImage with its payload made again by each of the kernel's own
/// recipes (scripts/Makefile.lib: the same tools and flags, the size appended, xz through
/// scripts/xz_wrap.sh): `certs` reads the same keyring out of every one.
#[test]
fn certs_reads_bzimage_payloads_of_every_kernel_compression() {
    let d = tempfile::tempdir().unwrap();
    let k = test_kernel();
    let image = std::fs::read(&k.image).unwrap();
    let bin = k.kdir.join("arch/x86/boot/compressed/vmlinux.bin");
    let size = std::fs::metadata(&bin).unwrap().len() as u32;
    // Where the payload sits: x86 boot protocol fields setup_sects, payload_offset/length.
    let setup = match image[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let field = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as usize;
    let (start, len) = ((setup + 1) * 512 + field(0x248), field(0x24c));
    for (name, recipe) in [
        ("gzip", "gzip -n -f -9"),
        ("bzip2", "bzip2 -9"),
        ("lzma", "lzma -9"),
        ("xz", "XZ=xz SRCARCH=x86 sh scripts/xz_wrap.sh"),
        ("lz4", "lz4 -l -9 - -"),
        ("zstd", "zstd -22 --ultra"),
    ] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{recipe} < {}", bin.display()))
            .current_dir(&k.kdir)
            .output()
            .unwrap();
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut payload = out.stdout;
        payload.extend_from_slice(&size.to_le_bytes());
        if name == "xz" {
            // The recipe is the kernel's: it remakes the built kernel's payload exactly.
            assert!(payload == image[start..start + len], "xz payload differs");
        }
        let mut img = image[..start].to_vec();
        img.extend_from_slice(&payload);
        img.extend_from_slice(&image[start + len..]);
        img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let p = d.path().join(format!("bzImage.{name}"));
        std::fs::write(&p, &img).unwrap();
        let o = kmod().arg("certs").arg(&p).output().unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let text = stdout(&o);
        for n in TRUSTED {
            assert!(
                text.contains(&format!("cargo-kmod test {n}")),
                "{name}: {text}"
            );
        }
    }
}
