//! `<@ name @>` is a Linux kernel module. Its source is `<@ name @>.<% if rust %>rs<% else %>c<% endif %>`
//! at the top of this project, built by Kbuild with `cargo kmod build` (or
//! `make KDIR=...`). This file only lets plain `cargo` commands work here.
