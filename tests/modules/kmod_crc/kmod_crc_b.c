// SPDX-License-Identifier: GPL-2.0
/* Built against kmod_crc_a's first version. */
#include <linux/module.h>

int kmod_crc_a_value(void);

static int __init kmod_crc_b_init(void)
{
	pr_info("kmod_crc_b: %d\n", kmod_crc_a_value());
	return 0;
}

static void __exit kmod_crc_b_exit(void)
{
}

module_init(kmod_crc_b_init);
module_exit(kmod_crc_b_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cargo-kmod check test: uses kmod_crc_a_value");
