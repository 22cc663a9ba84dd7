// SPDX-License-Identifier: GPL-2.0
/*
 * Uses a GPL-only export. modpost refuses that for a non-GPL license, so the test
 * rewrites "license=GPL" to "license=MIT" in the built module, as a module built
 * against a kernel where the symbol was not GPL-only would look.
 */
#include <linux/module.h>
#include <linux/timekeeping.h>

static int __init kmod_gplonly_init(void)
{
	pr_info("kmod_gplonly: %llu\n", ktime_get_mono_fast_ns());
	return 0;
}

static void __exit kmod_gplonly_exit(void)
{
}

module_init(kmod_gplonly_init);
module_exit(kmod_gplonly_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cargo-kmod check test: a GPL-only symbol");
