// SPDX-License-Identifier: GPL-2.0
//! A Rust module used by cargo-kmod's tests (6.12 `module!` syntax: `author`).

use kernel::prelude::*;

module! {
    type: RustHello,
    name: "rust_hello",
    author: "cargo-kmod tests",
    description: "Rust test module",
    license: "GPL",
}

struct RustHello;

impl kernel::Module for RustHello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        Ok(RustHello)
    }
}

impl Drop for RustHello {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
