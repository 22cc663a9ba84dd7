// SPDX-License-Identifier: GPL-2.0
/* Calls a function no kernel exports: "Unknown symbol". */
#include <linux/module.h>

extern int cargo_kmod_no_such_function(void);

static int __init kmod_unknown_init(void)
{
	return cargo_kmod_no_such_function();
}

static void __exit kmod_unknown_exit(void)
{
}

module_init(kmod_unknown_init);
module_exit(kmod_unknown_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cargo-kmod check test: an unknown symbol");
