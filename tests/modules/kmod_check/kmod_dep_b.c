// SPDX-License-Identifier: GPL-2.0
/* Needs kmod_dep_a loaded first. */
#include <linux/module.h>

int kmod_dep_a_answer(void);

static int __init kmod_dep_b_init(void)
{
	pr_info("kmod_dep_b: answer %d\n", kmod_dep_a_answer());
	return 0;
}

static void __exit kmod_dep_b_exit(void)
{
}

module_init(kmod_dep_b_init);
module_exit(kmod_dep_b_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cargo-kmod check test: depends on kmod_dep_a");
