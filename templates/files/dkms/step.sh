#!/bin/bash
# One step of a DKMS build, run as DKMS runs it (dkms.in: invoke_command `eval`s a
# command in the build directory; run_build_script `exec`s PRE_BUILD/POST_BUILD from
# there when its first word is executable), DKMS's variables set as plain shell
# variables. cargo-kmod runs this in a clean environment.
#
# In (environment): CK_DIR, CK_COMMAND, CK_SCRIPT (1: a PRE_BUILD/POST_BUILD script),
# CK_KERNELVER, CK_ARCH, CK_KERNEL_SOURCE_DIR, CK_DKMS_TREE, CK_SOURCE_TREE, CK_MODULE,
# CK_MODULE_VERSION.
kernelver=$CK_KERNELVER
arch=$CK_ARCH
kernel_source_dir=$CK_KERNEL_SOURCE_DIR
dkms_tree=$CK_DKMS_TREE
source_tree=$CK_SOURCE_TREE
module=$CK_MODULE
module_version=$CK_MODULE_VERSION
__ck_dir=$CK_DIR
__ck_command=$CK_COMMAND
__ck_script=$CK_SCRIPT
unset CK_DIR CK_COMMAND CK_SCRIPT CK_KERNELVER CK_ARCH CK_KERNEL_SOURCE_DIR CK_DKMS_TREE \
    CK_SOURCE_TREE CK_MODULE CK_MODULE_VERSION
cd "$__ck_dir" || exit 2
if [[ $__ck_script ]]; then
    run="$__ck_dir/$__ck_command"
    if [[ -x ${run%% *} ]]; then
        # shellcheck disable=SC2086
        exec $run
    fi
    echo "warning: ${run%% *} is not executable: not run (as DKMS does)"
    exit 0
fi
eval "$__ck_command"
