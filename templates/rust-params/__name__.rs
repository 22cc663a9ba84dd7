// SPDX-License-Identifier: <@ spdx @>

//! <@ description @>

use kernel::prelude::*;

module! {
    type: <@ type_name @>,
    name: "<@ name @>",
    authors: ["<@ author|cstr @>"],
    description: "<@ description|cstr @>",
    license: "<@ license|cstr @>",
    params: {
        count: i64 {
            default: 1,
            description: "How many times to greet",
        },
        level: u32 {
            default: 3,
            description: "A number to log",
        },
    },
}

struct <@ type_name @>;

impl kernel::Module for <@ type_name @> {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Rust parameters are read-only and, unlike C ones, not in /sys/module/.
<% if param_value_copy %>        let count = module_parameters::count.value();
        let level = module_parameters::level.value();
<% else %>        let count = *module_parameters::count.value();
        let level = *module_parameters::level.value();
<% endif %>
        pr_info!("loaded: count={} level={}\n", count, level);
        Ok(<@ type_name @>)
    }
}

impl Drop for <@ type_name @> {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
