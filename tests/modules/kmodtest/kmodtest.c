// SPDX-License-Identifier: GPL-2.0
/* A C module with parameters, used by cargo-kmod's tests. */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static int count = 1;
module_param(count, int, 0444);
MODULE_PARM_DESC(count, "How many greetings");

static char *greeting = "hello";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "What to say");

static bool loud;
module_param(loud, bool, 0444);

static int __init kmodtest_init(void)
{
	pr_info("kmodtest: loaded count=%d greeting=%s loud=%d\n", count, greeting, loud);
	return 0;
}

static void __exit kmodtest_exit(void)
{
	pr_info("kmodtest: unloaded\n");
}

module_init(kmodtest_init);
module_exit(kmodtest_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("cargo-kmod tests");
MODULE_DESCRIPTION("C test module with parameters");
