// SPDX-License-Identifier: <@ spdx @>
/* <@ description @> */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static int count = 1;
module_param(count, int, 0444);
MODULE_PARM_DESC(count, "How many times to greet");

static char *greeting = "hello";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "What to say");

static bool verbose;
module_param(verbose, bool, 0644);
MODULE_PARM_DESC(verbose, "Log more");

static unsigned int values[4];
static int nvalues;
module_param_array(values, uint, &nvalues, 0444);
MODULE_PARM_DESC(values, "Up to four numbers");

static int __init <@ name @>_init(void)
{
	int i;

	pr_info("loaded: count=%d greeting=%s verbose=%d\n", count, greeting, verbose);
	for (i = 0; i < nvalues; i++)
		pr_info("values[%d]=%u\n", i, values[i]);
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
