//! cargo-kmod: build, sign, verify and inspect Linux kernel modules.
//!
//! The library never prints; commands report through [`report::Reporter`].

pub mod arch;
pub mod cache;
pub mod check;
pub mod distro;
pub mod dkms;
pub mod doctor;
pub mod efivars;
pub mod error;
pub mod firmware_keys;
pub mod fsutil;
pub mod hash;
pub mod kbuild;
pub mod kernel;
pub mod kernel_image;
pub mod loader;
pub mod modfile;
pub mod modtree;
pub mod names;
pub mod package;
pub mod pki;
pub mod prepare;
pub mod project;
pub mod proof;
pub mod qemu;
pub mod report;
pub mod settings;
pub mod sign;
pub mod target;
pub mod templates;
pub mod toolchain;
pub mod tree;
pub mod verify;

pub use error::{Error, Result};
