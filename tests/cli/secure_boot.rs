//! `run --secure-boot`: Debian's signed kernels booted as machines boot them — OVMF with
//! Secure Boot on and Microsoft's keys → Debian's Microsoft-signed shim → its signed
//! GRUB → the kernel — with a `keygen --mok` certificate enrolled into the varstore by
//! our own writer. The booted kernel is the judge.

use crate::common::*;
use crate::fixtures::fetched;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The MOK these tests enroll.
fn mok(dir: &Path) -> PathBuf {
    crate::fixtures::mok_key(dir, "cargo-kmod SB test")
}

/// The c-minimal module built for the named kernel, copied as `<tag>.ko`, signed with
/// `key` (a keygen directory) unless None.
fn module_for(dir: &Path, kernel: &str, key: Option<&Path>, tag: &str) -> PathBuf {
    let p = dir.join("sbmod");
    if !p.exists() {
        let o = kmod()
            .args(["new", "--template", "c-minimal"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = kmod()
        .args(["build", "--message-format", "json", "--kernel", kernel])
        .current_dir(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let m = dir.join(format!("{tag}.ko"));
    std::fs::copy(v["path"].as_str().unwrap(), &m).unwrap();
    if let Some(k) = key {
        sign_with(k, &m);
    }
    m
}

/// Signs `m` (sha256) with a keygen directory's key.
fn sign_with(key: &Path, m: &Path) {
    let o = kmod()
        .args(["sign", "--hash", "sha256", "--key"])
        .arg(key.join("signing_key.pem"))
        .arg("--cert")
        .arg(key.join("signing_key.crt"))
        .arg(m)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The certificate the tests enroll, as the booted kernel reported loading it.
fn our_cert(v: &Value) -> Option<&Value> {
    v["firmware_certs"].as_array()?.iter().find(|c| {
        c["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("cargo-kmod SB test"))
    })
}

fn secure_run(kernel: &str, extra: &[&std::ffi::OsStr], modules: &[&Path]) -> (i32, Value) {
    let mut args: Vec<std::ffi::OsString> =
        vec!["--kernel".into(), kernel.into(), "--secure-boot".into()];
    args.extend(extra.iter().map(|a| a.into()));
    for m in modules {
        args.extend(["--module".into(), m.into()]);
    }
    run_json(&args)
}

/// `run --accel tcg --message-format json` with `args`: its exit code and report.
fn run_json(args: &[std::ffi::OsString]) -> (i32, Value) {
    let o = kmod()
        .args([
            "run",
            "--accel",
            "tcg",
            "--timeout",
            "240",
            "--message-format",
            "json",
        ])
        .args(args)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    (o.status.code().unwrap(), v)
}

/// Debian 12's 6.1 and bookworm-backports' 6.12, each through the whole chain with a
/// MOK enrolled: lockdown `integrity`; the MOK in `.machine`; a module signed by it
/// loads without the E taint; an unsigned one and one signed by another key are
/// refused ("Key was rejected by service", with the kernel's own line); Debian's own
/// signed module loads. `verify` judged each the same way beforehand.
#[test]
fn a_mok_signed_module_loads_under_secure_boot_on_debians_61_and_612() {
    let d = tempfile::tempdir().unwrap();
    let key = mok(d.path());
    let other = cache_dir().join("test-keys/rsa2048");
    for kernel in ["debian/bookworm", "debian/bookworm-backports"] {
        let k = fetched(kernel);
        let tag = kernel.replace('/', "-");
        let unsigned = module_for(d.path(), kernel, None, &format!("{tag}-unsigned"));
        let foreign = module_for(d.path(), kernel, Some(&other), &format!("{tag}-other"));
        let signed = module_for(d.path(), kernel, Some(&key), &format!("{tag}-mok"));
        let debian = walkdir::WalkDir::new(k.modules.join("kernel/drivers/net"))
            .into_iter()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("dummy.ko"))
            .unwrap()
            .into_path();
        let cert = key.join("signing_key.crt");
        let (code, v) = secure_run(
            kernel,
            &["--mok".as_ref(), cert.as_os_str()],
            &[&unsigned, &foreign, &debian, &signed],
        );
        assert_eq!(code, 20, "{kernel}: {v}");
        assert_eq!(v["lockdown"], "integrity", "{kernel}: {v}");
        let ours = our_cert(&v).unwrap_or_else(|| panic!("{kernel}: our MOK was not loaded: {v}"));
        assert_eq!(ours["keyring"], ".machine", "{kernel}: {v}");
        let m = v["modules"].as_array().unwrap();
        for (i, (refusal, line)) in [
            ("unsigned", "Loading of unsigned module is rejected"),
            (
                "unavailable-key",
                "Loading of module with unavailable key is rejected",
            ),
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(m[i]["loaded"], false, "{kernel}: {}", m[i]);
            assert_eq!(m[i]["refusal"], *refusal, "{kernel}: {}", m[i]);
            assert!(
                m[i]["kernel_log"].to_string().contains(line),
                "{kernel}: {}",
                m[i]
            );
            assert!(
                m[i]["tool_output"]
                    .to_string()
                    .contains("Key was rejected by service"),
                "{kernel}: {}",
                m[i]
            );
        }
        assert_eq!(m[2]["loaded"], true, "{kernel}: Debian's own: {}", m[2]);
        assert_eq!(m[3]["loaded"], true, "{kernel}: ours: {}", m[3]);
        let taint = v["tainted"].as_u64().unwrap();
        assert_eq!(taint & (1 << 13), 0, "{kernel}: E taint: {v}");
        // verify, offline, said the same of the two signed ones and the foreign key.
        let o = kmod()
            .args([
                "verify",
                "--message-format",
                "json",
                "--kernel",
                kernel,
                "--cert",
            ])
            .arg(&cert)
            .arg(&signed)
            .arg(&foreign)
            .output()
            .unwrap();
        let said: Vec<Value> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(said[0]["verdict"], "OK", "{said:?}");
        assert_eq!(said[1]["verdict"], "ENOKEY", "{said:?}");
    }
}

/// The same certificate in the UEFI db instead: the kernel puts it in `.platform`, and
/// Debian's 6.1 (patched to trust the platform keyring for modules, unlike mainline)
/// loads a module it signed.
#[test]
fn a_db_certificate_lands_in_the_platform_keyring() {
    let d = tempfile::tempdir().unwrap();
    let key = mok(d.path());
    let signed = module_for(d.path(), "debian/bookworm", Some(&key), "db");
    let cert = key.join("signing_key.crt");
    let (code, v) = secure_run(
        "debian/bookworm",
        &["--db".as_ref(), cert.as_os_str()],
        &[&signed],
    );
    assert_eq!(code, 0, "{v}");
    let ours = our_cert(&v).unwrap_or_else(|| panic!("not loaded from db: {v}"));
    assert_eq!(ours["source"], "db", "{v}");
    assert_eq!(ours["keyring"], ".platform", "{v}");
    assert_eq!(v["modules"][0]["loaded"], true, "{v}");
}

/// The chain verifies: Debian's 6.1 image with one byte flipped is refused by GRUB
/// through shim ("bad shim signature"), and `run` says so with exit 29; an image that
/// is not an EFI program and a certificate that is not one are refused before booting.
#[test]
fn the_chain_refuses_a_tampered_kernel_and_bad_input_is_named() {
    let d = tempfile::tempdir().unwrap();
    let image = d.path().join("vmlinuz-tampered");
    let mut bytes = std::fs::read(fetched("debian/bookworm").image).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&image, &bytes).unwrap();
    let m = module_for(d.path(), "debian/bookworm", None, "tamper");
    let (code, v) = secure_run(image.to_str().unwrap(), &[], &[&m]);
    assert_eq!(code, 29, "{v}");
    assert!(
        v["chain_refused"]
            .as_str()
            .unwrap()
            .contains("bad shim signature"),
        "{v}"
    );
    // Not an EFI image: refused before booting, nothing started.
    let not_efi = d.path().join("not-efi");
    std::fs::write(&not_efi, vec![0x7fu8; 4096]).unwrap();
    let o = kmod()
        .args(["run", "--secure-boot", "--kernel"])
        .arg(&not_efi)
        .arg("--module")
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("not an EFI image"), "{}", stderr(&o));
    // A certificate that is not one.
    let bad = d.path().join("bad.crt");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let o = kmod()
        .args([
            "run",
            "--secure-boot",
            "--kernel",
            "debian/bookworm",
            "--mok",
        ])
        .arg(&bad)
        .arg("--module")
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.crt"), "{}", stderr(&o));
    // mtools missing (a PATH without them): named with the package.
    let o = kmod()
        .env("PATH", "/nonexistent")
        .args([
            "run",
            "--secure-boot",
            "--kernel",
            "debian/bookworm",
            "--module",
        ])
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("apt-get install mtools"),
        "{}",
        stderr(&o)
    );
}

/// An ECDSA P-384 MOK: `keygen --mok` warns; shim enrolls it and both kernels load it
/// into `.machine`, but Debian 12's 6.1 (no CONFIG_CRYPTO_ECDSA) refuses the module it
/// signed while bookworm-backports' 6.12 loads it.
#[test]
fn an_ecdsa_mok_loads_on_612_and_is_refused_by_61() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("ecmok");
    let o = kmod()
        .args([
            "keygen",
            "--mok",
            "--algo",
            "ecdsa-p384",
            "--cn",
            "cargo-kmod SB test",
        ])
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("CONFIG_CRYPTO_ECDSA"), "{}", stderr(&o));
    let cert = key.join("signing_key.crt");
    for (kernel, loads) in [
        ("debian/bookworm", false),
        ("debian/bookworm-backports", true),
    ] {
        let tag = format!("ec-{}", kernel.replace('/', "-"));
        let m = module_for(d.path(), kernel, Some(&key), &tag);
        let (code, v) = secure_run(kernel, &["--mok".as_ref(), cert.as_os_str()], &[&m]);
        assert_eq!(code, if loads { 0 } else { 20 }, "{kernel}: {v}");
        assert_eq!(v["modules"][0]["loaded"], loads, "{kernel}: {v}");
        let ours = our_cert(&v).unwrap_or_else(|| panic!("{kernel}: not loaded: {v}"));
        assert_eq!(ours["keyring"], ".machine", "{kernel}: {v}");
        if !loads {
            assert!(
                v["modules"][0]["tool_output"]
                    .to_string()
                    .contains("Key was rejected by service"),
                "{v}"
            );
        }
    }
}

/// A user's flow on a real project (Debian's acpi-call DKMS package, adopted): `run
/// --secure-boot --mok CERT --sign --key KEY --cert CERT` builds it, signs it with that
/// key (not the headers' absent build key) and Debian's 6.1 loads it without E.
#[test]
fn run_builds_and_signs_a_dkms_package_with_the_mok_under_secure_boot() {
    let d = tempfile::tempdir().unwrap();
    let key = mok(d.path());
    let src = cache_dir().join("fixtures/acpi-call-dkms/usr/src");
    let version = std::fs::read_dir(&src)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let p = d.path().join("acpi-call");
    run(std::process::Command::new("cp")
        .arg("-a")
        .arg(&version)
        .arg(&p));
    let o = kmod().arg("init").current_dir(&p).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cert = key.join("signing_key.crt");
    let o = kmod()
        .args([
            "run",
            "--accel",
            "tcg",
            "--timeout",
            "240",
            "--message-format",
            "json",
        ])
        .args(["--kernel", "debian/bookworm", "--secure-boot", "--mok"])
        .arg(&cert)
        .args(["--sign", "--key"])
        .arg(key.join("signing_key.pem"))
        .arg("--cert")
        .arg(&cert)
        .current_dir(&p)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    assert_eq!(o.status.code(), Some(0), "{v}\n{}", stderr(&o));
    assert_eq!(v["modules"][0]["name"], "acpi_call", "{v}");
    assert_eq!(v["modules"][0]["loaded"], true, "{v}");
    assert_eq!(v["tainted"].as_u64().unwrap() & (1 << 13), 0, "{v}");
}

/// A module of the kernel's own tree (`drivers/net/<name>.ko*`), copied into `dir`;
/// unsigned there, then signed with `key` (a keygen directory) unless None.
fn own_module(
    k: &crate::fixtures::Packaged,
    dir: &Path,
    name: &str,
    key: Option<&Path>,
) -> PathBuf {
    let found = walkdir::WalkDir::new(&k.modules)
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}.ko"))
        })
        .unwrap_or_else(|| panic!("{name}.ko* not in {}", k.modules.display()))
        .into_path();
    let m = dir.join(found.file_name().unwrap());
    std::fs::copy(&found, &m).unwrap();
    let o = kmod().arg("unsign").arg(&m).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    if let Some(k) = key {
        sign_with(k, &m);
    }
    m
}

/// `doctor` run inside the guest — the binary under test, stripped, with the
/// libraries it links, the kernel's .config and image where a machine has them, efivarfs
/// mounted as a distribution mounts it — before the modules are loaded; then `insmod`
/// judges them in the same boot. Four scenarios on Debian's 6.1 and 6.12: a MOK
/// enrolled and trusted; enrolled with shim told not to trust MOKs (`MokListTrusted`);
/// not enrolled; Secure Boot off in the firmware. Each module's verdict from `doctor`
/// equals what `insmod` did.
#[test]
fn doctor_in_the_guest_names_each_scenario_as_insmod_then_finds_it() {
    let d = tempfile::tempdir().unwrap();
    let key = mok(d.path());
    let cert = key.join("signing_key.crt");
    let other = cache_dir().join("test-keys/rsa2048");
    let doctor = d.path().join("cargo-kmod");
    let o = std::process::Command::new("strip")
        .arg("-o")
        .arg(&doctor)
        .arg(env!("CARGO_BIN_EXE_cargo-kmod"))
        .output()
        .expect("strip (binutils)");
    assert!(o.status.success(), "{}", stderr(&o));
    for kernel in ["debian/bookworm", "debian/bookworm-backports"] {
        let k = fetched(kernel);
        let dir = d.path().join(kernel.replace('/', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        // Distinct modules, so that one loading does not keep the next out.
        let unsigned = own_module(&k, &dir, "dummy", None);
        let ours = own_module(&k, &dir, "ifb", Some(&key));
        let foreign = own_module(&k, &dir, "veth", Some(&other));
        let efivarfs = walkdir::WalkDir::new(k.modules.join("kernel/fs/efivarfs"))
            .into_iter()
            .filter_map(|e| e.ok())
            .find(|e| e.file_type().is_file())
            .unwrap()
            .into_path();
        // busybox insmod takes it uncompressed.
        let efivarfs_ko = dir.join("efivarfs.ko");
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"case "$1" in *.xz) xz -dc "$1" ;; *) cat "$1" ;; esac > "$2""#)
            .arg("sh")
            .arg(&efivarfs)
            .arg(&efivarfs_ko)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let release = &k.release;
        let config = k.image.parent().unwrap().join(format!("config-{release}"));
        let file = |host: &Path, guest: &str| format!("{}={guest}", host.display());
        let files = [
            file(&doctor, "/bin/cargo-kmod"),
            file(&config, &format!("/boot/config-{release}")),
            file(&k.image, &format!("/boot/vmlinuz-{release}")),
            file(&efivarfs_ko, "/efivarfs.ko"),
            file(&cert, "/mok.crt"),
        ];
        // Quiet console while doctor prints its one JSON line.
        let before = "insmod /efivarfs.ko && mount -t efivarfs efivarfs /sys/firmware/efi/efivars; \
             dmesg -n 1; cargo-kmod doctor --message-format json --cert /mok.crt \
             /modules/0.ko /modules/1.ko /modules/2.ko; echo doctor-exit=$?; dmesg -n 8";
        let scenarios: [(&str, &[&str]); 4] = [
            ("trusted MOK", &["--secure-boot", "--mok"]),
            (
                "untrusted MOK",
                &["--secure-boot", "--untrusted-mok", "--mok"],
            ),
            ("not enrolled", &["--secure-boot"]),
            ("Secure Boot off", &["--secure-boot=off", "--mok"]),
        ];
        for (scenario, args) in scenarios {
            let mut a: Vec<std::ffi::OsString> = vec!["--kernel".into(), kernel.into()];
            a.extend(args.iter().map(|x| x.into()));
            if args.last() == Some(&"--mok") {
                a.push(cert.clone().into());
            }
            for f in &files {
                a.extend(["--file".into(), f.into()]);
            }
            a.extend(["--before".into(), before.into()]);
            for m in [&unsigned, &ours, &foreign] {
                a.extend(["--module".into(), m.into()]);
            }
            let (_, v) = run_json(&a);
            let what = format!("{kernel}, {scenario}");
            let out = v["exec"][0]["output"].as_array().unwrap();
            let line = out
                .iter()
                .filter_map(Value::as_str)
                .find(|l| l.starts_with('{'))
                .unwrap_or_else(|| panic!("{what}: doctor printed no JSON: {v}"));
            let doc: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"));
            let secure = scenario != "Secure Boot off";
            assert_eq!(doc["secure_boot"], secure, "{what}: {doc}");
            assert_eq!(
                doc["lockdown"],
                if secure { "integrity" } else { "none" },
                "{what}: {doc}"
            );
            assert_eq!(doc["release"], release.as_str(), "{what}");
            // Each module: doctor's verdict, then what insmod did.
            let run = v["modules"].as_array().unwrap();
            let diag = doc["modules"].as_array().unwrap();
            let mut tainted_expected = false;
            for (i, (m, r)) in diag.iter().zip(run).enumerate() {
                let outcome = m["outcome"].as_str().unwrap();
                assert_eq!(
                    outcome != "refused",
                    r["loaded"].as_bool().unwrap(),
                    "{what}: module {i}: doctor said {m}, insmod: {r}"
                );
                tainted_expected |= outcome == "loads-tainted";
            }
            let tainted = v["tainted"].as_u64().unwrap();
            assert_eq!(
                tainted & (1 << 13) != 0,
                tainted_expected,
                "{what}: taint {tainted}, doctor {doc}"
            );
            // What each scenario must show.
            let expect = match scenario {
                "trusted MOK" | "untrusted MOK" => ["refused", "loads", "refused"],
                "not enrolled" => ["refused", "refused", "refused"],
                // The kernel reads no MOK without Secure Boot: ours taints as well.
                _ => ["loads-tainted", "loads-tainted", "loads-tainted"],
            };
            let got: Vec<&str> = diag
                .iter()
                .map(|m| m["outcome"].as_str().unwrap())
                .collect();
            assert_eq!(got, expect, "{what}: {doc}");
            let mok = doc["certs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["subject"] == "cargo-kmod SB test")
                .unwrap_or_else(|| panic!("{what}: the MOK is not reported: {doc}"));
            match scenario {
                "not enrolled" => {
                    assert_eq!(mok["source"], "given", "{what}: {mok}");
                    assert!(
                        mok["fix"].as_str().unwrap().contains("mokutil --import"),
                        "{what}: {mok}"
                    );
                    assert!(
                        diag[1]["fix"]
                            .as_str()
                            .unwrap()
                            .contains("mokutil --import"),
                        "{what}: {doc}"
                    );
                    assert_eq!(stdout_line_code(out), Some(20), "{what}: {v}");
                }
                "Secure Boot off" => {
                    // Nothing is refused; the MOK is in no keyring, and doctor says why
                    // and what to do. The --cert asked about signs nothing here: exit 20.
                    assert_eq!(mok["keyring"], Value::Null, "{what}: {mok}");
                    assert_eq!(mok["given"], true, "{what}: {mok}");
                    assert!(
                        mok["why"].as_str().unwrap().contains("Secure Boot is off"),
                        "{what}: {mok}"
                    );
                    assert!(
                        mok["fix"].as_str().unwrap().contains("turn Secure Boot on"),
                        "{what}: {mok}"
                    );
                    assert_eq!(stdout_line_code(out), Some(20), "{what}: {v}");
                }
                _ => {
                    assert_eq!(mok["source"], "mok", "{what}: {mok}");
                    assert_eq!(mok["given"], true, "{what}: the --cert is the MOK: {mok}");
                    // Debian's kernels put MOKs in .machine whatever shim says.
                    assert_eq!(mok["keyring"], ".machine", "{what}: {mok}");
                    assert_eq!(mok["observed"], true, "{what}: {mok}");
                    assert_eq!(
                        doc["mok_trusted"],
                        scenario == "trusted MOK",
                        "{what}: shim's MokListTrustedRT: {doc}"
                    );
                    assert_eq!(stdout_line_code(out), Some(20), "{what}: {v}");
                }
            }
        }
    }
}

/// `doctor-exit=N`, as the guest printed it after doctor.
fn stdout_line_code(out: &[Value]) -> Option<i32> {
    out.iter()
        .filter_map(Value::as_str)
        .find_map(|l| l.trim().strip_prefix("doctor-exit=")?.parse().ok())
}

/// Without root, `doctor` reads what a user may (no keyrings: /proc/keys hides the
/// system ones) and says that the rest is inferred, exit 0 with nothing to judge.
#[test]
fn doctor_without_root_says_what_it_inferred() {
    // A copy that user may run (the target directory may be under root's home, 0700).
    let d = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = d.path().join("cargo-kmod");
    std::fs::copy(env!("CARGO_BIN_EXE_cargo-kmod"), &bin).unwrap();
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["doctor", "--message-format", "json"])
        .current_dir("/")
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["keyrings"], Value::Null, "{v}");
    assert!(
        v["unreadable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().contains("keyrings")),
        "{v}"
    );
    assert!(!v["release"].as_str().unwrap().is_empty(), "{v}");
}

/// Bad input: a file that is not a module, a certificate that is not one, a guest path
/// that is not absolute — each named, with its documented exit code.
#[test]
fn doctor_and_run_files_refuse_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.ko");
    std::fs::write(&junk, b"not an ELF object").unwrap();
    let o = kmod().arg("doctor").arg(&junk).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&junk.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("help: "), "{}", stderr(&o));
    let o = kmod()
        .arg("doctor")
        .arg("--cert")
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));
    let o = kmod()
        .args(["run", "--kernel", "debian/bookworm", "--module"])
        .arg(&junk)
        .arg("--file")
        .arg(format!("{}=relative/path", junk.display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("must be absolute"), "{}", stderr(&o));
}
