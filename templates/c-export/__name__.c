// SPDX-License-Identifier: <@ spdx @>
/* <@ description @> */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>

/*
 * Exported in the symbol namespace <@ ns @>: a module that calls it declares
 *	MODULE_IMPORT_NS(<@ ns_arg @>);
 * (Linux 6.13 made namespaces string literals; before, they were bare tokens.)
 */
int <@ name @>_answer(void)
{
	return 42;
}
EXPORT_SYMBOL_NS_GPL(<@ name @>_answer, <@ ns_arg @>);

static int __init <@ name @>_init(void)
{
	pr_info("loaded: exports <@ name @>_answer in namespace <@ ns @>\n");
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
