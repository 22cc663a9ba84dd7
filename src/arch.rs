//! The architectures the tool knows; everything architecture-specific is here.

/// An architecture of kernels and modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The `.config` symbol that says a kernel is of this architecture.
    pub fn config_symbol(self) -> &'static str {
        match self {
            Arch::X86_64 => "CONFIG_X86_64",
            Arch::Arm64 => "CONFIG_ARM64",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// By [`Arch::name`] (or `uname -m`: aarch64).
    pub fn from_name(n: &str) -> Option<Arch> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == n || a.uname() == n)
    }

    /// `uname -m` on a machine running it (what DKMS's BUILD_EXCLUSIVE_ARCH matches).
    pub fn uname(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The kernel's `ARCH=` / `arch/` directory name.
    pub fn kbuild(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Arm64 => "arm64",
        }
    }

    /// `MODULE_ARCH_VERMAGIC` (arch/*/include/asm/vermagic.h): nothing on x86_64.
    pub fn vermagic(self) -> &'static str {
        match self {
            Arch::X86_64 => "",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The bootable image inside a built tree.
    pub fn image_in_tree(self) -> &'static str {
        match self {
            Arch::X86_64 => "arch/x86/boot/bzImage",
            Arch::Arm64 => "arch/arm64/boot/Image",
        }
    }

    /// How QEMU boots this architecture's kernels.
    pub fn qemu(self) -> Qemu {
        match self {
            Arch::X86_64 => Qemu {
                binary: "qemu-system-x86_64",
                package: "qemu-system-x86",
                console: "ttyS0",
                machine: &[],
            },
            // The virt machine with its PL011 UART; `max` has every CPU feature TCG
            // emulates, with QEMU's own pointer-authentication hash (the architected
            // QARMA one makes TCG several times slower).
            Arch::Arm64 => Qemu {
                binary: "qemu-system-aarch64",
                package: "qemu-system-arm",
                console: "ttyAMA0",
                machine: &["-M", "virt", "-cpu", "max,pauth-impdef=on"],
            },
        }
    }

    /// Debian's architecture name for a package of it (`busybox-static:arm64`).
    pub fn debian(self) -> &'static str {
        self.package_names().deb
    }

    /// What a test kernel (`kernel build`) needs on top of the base fragment to boot
    /// in [`Arch::qemu`]'s machine: the serial console (x86's 8250 is in the base).
    pub fn kernel_fragment(self) -> &'static str {
        match self {
            Arch::X86_64 => "",
            Arch::Arm64 => "CONFIG_SERIAL_AMBA_PL011=y\nCONFIG_SERIAL_AMBA_PL011_CONSOLE=y\n",
        }
    }

    /// The machine as the `object` crate names it (ELF `e_machine`).
    pub fn object(self) -> object::Architecture {
        match self {
            Arch::X86_64 => object::Architecture::X86_64,
            Arch::Arm64 => object::Architecture::Aarch64,
        }
    }

    /// ELF's `e_machine` number.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Arm64 => 183,
        }
    }

    /// Its name in package formats: Debian's `Architecture:`, RPM's arch, OCI's
    /// `architecture` (Go's GOARCH).
    pub fn package_names(self) -> PackageArch {
        match self {
            Arch::X86_64 => PackageArch {
                deb: "amd64",
                rpm: "x86_64",
                oci: "amd64",
            },
            Arch::Arm64 => PackageArch {
                deb: "arm64",
                rpm: "aarch64",
                oci: "arm64",
            },
        }
    }

    /// The architecture of this machine, when the tool knows it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

/// QEMU for one architecture: the emulator, its Debian package, the serial console's
/// name and the machine options.
#[derive(Debug, Clone, Copy)]
pub struct Qemu {
    pub binary: &'static str,
    pub package: &'static str,
    pub console: &'static str,
    pub machine: &'static [&'static str],
}

/// An architecture's names in package formats.
#[derive(Debug, Clone, Copy)]
pub struct PackageArch {
    pub deb: &'static str,
    pub rpm: &'static str,
    pub oci: &'static str,
}
