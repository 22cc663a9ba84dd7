#!/bin/bash
# DKMS's variables, as a dkms.conf and DKMS's build steps see them: plain shell
# variables, not exported (a program they start does not see them, as under DKMS).
# cargo-kmod passes them in CK_* and runs the script after this in a clean environment.
kernelver=$CK_KERNELVER
arch=$CK_ARCH
kernel_source_dir=$CK_KERNEL_SOURCE_DIR
dkms_tree=$CK_DKMS_TREE
source_tree=$CK_SOURCE_TREE
module=$CK_MODULE
module_version=$CK_MODULE_VERSION
unset CK_KERNELVER CK_ARCH CK_KERNEL_SOURCE_DIR CK_DKMS_TREE CK_SOURCE_TREE CK_MODULE \
    CK_MODULE_VERSION
