// SPDX-License-Identifier: <@ spdx @>

//! <@ description @>

use kernel::prelude::*;

module! {
    type: <@ type_name @>,
    name: "<@ name @>",
<% if authors_list %>    authors: ["<@ author|cstr @>"],
<% else %>    author: "<@ author|cstr @>",
<% endif %>    description: "<@ description|cstr @>",
    license: "<@ license|cstr @>",
}

struct <@ type_name @>;

impl kernel::Module for <@ type_name @> {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        Ok(<@ type_name @>)
    }
}

impl Drop for <@ type_name @> {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
