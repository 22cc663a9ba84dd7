// SPDX-License-Identifier: GPL-2.0
/* Exports kmod_crc_a_value; its second version takes an argument (another CRC). */
#include <linux/module.h>

#ifdef KMOD_CRC_V2
long kmod_crc_a_value(int scale);
long kmod_crc_a_value(int scale)
{
	return 42L * scale;
}
#else
int kmod_crc_a_value(void);
int kmod_crc_a_value(void)
{
	return 42;
}
#endif
EXPORT_SYMBOL_GPL(kmod_crc_a_value);

static int __init kmod_crc_a_init(void)
{
	return 0;
}

static void __exit kmod_crc_a_exit(void)
{
}

module_init(kmod_crc_a_init);
module_exit(kmod_crc_a_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cargo-kmod check test: an export whose version changes");
