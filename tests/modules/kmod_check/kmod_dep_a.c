// SPDX-License-Identifier: GPL-2.0
/* Exports a function for kmod_dep_b. */
#include <linux/module.h>

int kmod_dep_a_answer(void);
int kmod_dep_a_answer(void)
{
	return 42;
}
EXPORT_SYMBOL_GPL(kmod_dep_a_answer);

static int __init kmod_dep_a_init(void)
{
	return 0;
}

static void __exit kmod_dep_a_exit(void)
{
}

module_init(kmod_dep_a_init);
module_exit(kmod_dep_a_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cargo-kmod check test: exports a symbol");
