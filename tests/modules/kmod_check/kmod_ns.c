// SPDX-License-Identifier: GPL-2.0
/* Takes the address of a symbol exported in namespace CXL without importing it. */
#include <linux/module.h>
#include <linux/ioport.h>

static int __init kmod_ns_init(void)
{
	pr_info("kmod_ns: %p\n", insert_resource_expand_to_fit);
	return 0;
}

static void __exit kmod_ns_exit(void)
{
}

module_init(kmod_ns_init);
module_exit(kmod_ns_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("cargo-kmod check test: a namespace not imported");
