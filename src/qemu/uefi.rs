//! Secure Boot as machines have it: OVMF with Secure Boot on and Microsoft's keys
//! enrolled → the distribution's Microsoft-signed shim → its signed GRUB → the kernel,
//! from an EFI system partition written with mtools (no mount, no root), and the
//! certificates to trust enrolled into a private copy of the varstore (shim's
//! `MokList`, or the UEFI `db`) before the first boot.

use super::RunOptions;
use crate::efivars::VarStore;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `run --secure-boot` enrolls.
#[derive(Debug, Clone, Default)]
pub struct SecureBoot {
    /// Certificates for shim's MokList (what `mokutil --import` enrolls).
    pub mok: Vec<PathBuf>,
    /// Certificates for the UEFI db.
    pub db: Vec<PathBuf>,
    /// Secure Boot switched off in the firmware (keys kept): the same chain, nothing
    /// verified, no lockdown.
    pub off: bool,
    /// shim told not to trust MOKs (`MokListTrusted` set, as `mokutil --untrust-mok`
    /// leaves it): the kernel puts them in `.platform`.
    pub untrusted_mok: bool,
    /// Where mtools are looked for (`Settings::path`).
    pub path: std::ffi::OsString,
}

/// The firmware, shim and GRUB: Debian's packages, where they install them.
struct Firmware {
    code: PathBuf,
    vars: PathBuf,
    shim: PathBuf,
    grub: PathBuf,
}

const PIECES: &[(&str, &str)] = &[
    ("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "ovmf"),
    ("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", "ovmf"),
    ("/usr/lib/shim/shimx64.efi.signed", "shim-signed"),
    (
        "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
        "grub-efi-amd64-signed",
    ),
];

impl Firmware {
    fn find(s_path: &std::ffi::OsStr) -> Result<Firmware> {
        let mut missing: Vec<String> = Vec::new();
        let mut install: Vec<&str> = Vec::new();
        for (p, pkg) in PIECES {
            if !Path::new(p).is_file() {
                missing.push((*p).to_string());
                if !install.contains(pkg) {
                    install.push(pkg);
                }
            }
        }
        for tool in ["mformat", "mmd", "mcopy"] {
            let found = std::env::split_paths(s_path).any(|d| d.join(tool).is_file());
            if !found {
                missing.push(tool.into());
                if !install.contains(&"mtools") {
                    install.push("mtools");
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::Toolchain {
                missing,
                install: format!("apt-get install {}", install.join(" ")),
            });
        }
        let p = |i: usize| PathBuf::from(PIECES[i].0);
        Ok(Firmware {
            code: p(0),
            vars: p(1),
            shim: p(2),
            grub: p(3),
        })
    }
}

/// A boot's firmware files: the code, a private varstore, the ESP image; gone with it.
pub(super) struct Prepared {
    _dir: tempfile::TempDir,
    pub code: PathBuf,
    pub vars: PathBuf,
    pub esp: PathBuf,
}

/// GRUB's configuration: boot the kernel on the ESP with our initramfs.
#[derive(serde::Serialize)]
pub struct GrubCfg {
    pub cmdline: String,
}

impl crate::templates::Generated for GrubCfg {
    const TEMPLATE: &'static str = "qemu/grub.cfg";
    fn example() -> Self {
        GrubCfg {
            cmdline: "console=ttyS0 panic=-1".into(),
        }
    }
}

/// Writes the ESP and the varstore for this run.
pub(super) fn prepare(
    o: &RunOptions,
    sb: &SecureBoot,
    cmdline: String,
    initramfs: &[u8],
) -> Result<Prepared> {
    if o.arch != crate::target::Arch::X86_64 {
        return Err(Error::usage(
            "--secure-boot boots x86_64 kernels (OVMF, shimx64, grubx64)",
            "boot an x86_64 distribution kernel, or drop --secure-boot",
        ));
    }
    let fw = Firmware::find(&sb.path)?;
    // Only a PE (EFI-stub) image can be verified by shim and GRUB.
    let head = crate::fsutil::read_head(&o.image, 2)?;
    if head != b"MZ" {
        return Err(Error::Run {
            path: o.image.clone(),
            reason: "not an EFI image (no PE header): GRUB under Secure Boot boots signed EFI-stub kernels only".into(),
        });
    }
    let der = |paths: &[PathBuf]| -> Result<Vec<Vec<u8>>> {
        let mut v = Vec::new();
        for p in paths {
            for c in crate::pki::cert::load_certs(p)? {
                v.push(c.x509.to_der().map_err(|e| Error::Cert {
                    path: p.clone(),
                    reason: e.to_string(),
                })?);
            }
        }
        Ok(v)
    };
    let (mok, db) = (der(&sb.mok)?, der(&sb.db)?);
    let werr = |p: &Path, source| Error::Write {
        path: p.to_path_buf(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix("cargo-kmod-uefi-")
        .tempdir()
        .map_err(|e| werr(&std::env::temp_dir(), e))?;
    let mut store = VarStore::read(&fw.vars)?;
    if !mok.is_empty() {
        store.add_mok(&mok)?;
    }
    if !db.is_empty() {
        store.add_db(&db)?;
    }
    if sb.untrusted_mok {
        store.untrust_mok()?;
    }
    if sb.off {
        store.disable_secure_boot()?;
    }
    let vars = dir.path().join("vars.fd");
    std::fs::write(&vars, store.bytes()).map_err(|e| werr(&vars, e))?;

    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).map_err(|e| werr(&stage, e))?;
    let files: Vec<(PathBuf, &str)> = vec![
        (fw.shim.clone(), "::/EFI/BOOT/BOOTX64.EFI"),
        (fw.grub.clone(), "::/EFI/BOOT/grubx64.efi"),
        (o.image.clone(), "::/vmlinuz"),
        (write(&stage, "initrd.img", initramfs)?, "::/initrd.img"),
        (
            write(
                &stage,
                "grub.cfg",
                crate::templates::render(&GrubCfg { cmdline }).as_bytes(),
            )?,
            // Debian's signed GRUB looks for its configuration under its prefix.
            "::/EFI/debian/grub.cfg",
        ),
    ];
    let bytes: u64 = files
        .iter()
        .filter_map(|(p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    // FAT16 wants 16 MiB at least; room for the files and the filesystem's own.
    let mib = (bytes / (1 << 20) + 8).max(32);
    let esp = dir.path().join("esp.img");
    let f = std::fs::File::create(&esp).map_err(|e| werr(&esp, e))?;
    f.set_len(mib << 20).map_err(|e| werr(&esp, e))?;
    let img = esp.to_string_lossy().into_owned();
    let sectors = (mib << 20) / 512;
    mtools(
        Command::new("mformat")
            .args([
                "-i",
                &img,
                "-T",
                &sectors.to_string(),
                "-h",
                "64",
                "-s",
                "32",
                "-v",
                "ESP",
            ])
            .arg("::"),
    )?;
    mtools(Command::new("mmd").args(["-i", &img, "::/EFI", "::/EFI/BOOT", "::/EFI/debian"]))?;
    for (from, to) in &files {
        mtools(Command::new("mcopy").args(["-i", &img]).arg(from).arg(to))?;
    }
    Ok(Prepared {
        _dir: dir,
        code: fw.code,
        vars,
        esp,
    })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).map_err(|source| Error::Write {
        path: p.clone(),
        source,
    })?;
    Ok(p)
}

fn mtools(c: &mut Command) -> Result<()> {
    let out = c.output().map_err(|e| Error::Toolchain {
        missing: vec![format!("{:?} ({e})", c.get_program())],
        install: "apt-get install mtools".into(),
    })?;
    if !out.status.success() {
        return Err(Error::Run {
            path: PathBuf::from(c.get_program()),
            reason: format!(
                "writing the EFI system partition failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// QEMU's arguments for the firmware boot: q35 with SMM (Secure Boot's variables are
/// only writable from it), the secure pflash code and the private varstore, the ESP.
pub(super) fn qemu_args(p: &Prepared) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = [
        "-machine",
        "q35,smm=on",
        "-global",
        "driver=cfi.pflash01,property=secure,value=on",
        "-m",
        "1024",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let drive = |s: String| -> [std::ffi::OsString; 2] { ["-drive".into(), s.into()] };
    v.extend(drive(format!(
        "if=pflash,format=raw,unit=0,readonly=on,file={}",
        p.code.display()
    )));
    v.extend(drive(format!(
        "if=pflash,format=raw,unit=1,file={}",
        p.vars.display()
    )));
    v.extend(drive(format!("format=raw,file={}", p.esp.display())));
    v
}
