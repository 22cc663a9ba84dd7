// SPDX-License-Identifier: <@ spdx @>
/* <@ description @> */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>

static int __init <@ name @>_init(void)
{
	pr_info("loaded\n");
	return 0;
}

static void __exit <@ name @>_exit(void)
{
	pr_info("unloaded\n");
}

module_init(<@ name @>_init);
module_exit(<@ name @>_exit);

MODULE_LICENSE("<@ license|cstr @>");
MODULE_AUTHOR("<@ author|cstr @>");
MODULE_DESCRIPTION("<@ description|cstr @>");
