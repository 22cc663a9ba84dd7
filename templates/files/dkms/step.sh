# One step of a DKMS build, run as DKMS runs it (dkms.in: invoke_command `eval`s a
# command in the build directory; run_build_script `exec`s PRE_BUILD/POST_BUILD from
# there when its first word is executable), DKMS's variables set as plain shell
# variables (templates/files/dkms/vars.sh comes first).
#
# In (environment): CK_DIR, CK_COMMAND, CK_SCRIPT (1: a PRE_BUILD/POST_BUILD script);
# CK_MODLIB_RELEASE, CK_MODLIB_BUILD: run in a private mount namespace (unshare) where
# /lib/modules/<release>/build must be made the kernel's tree.
__ck_dir=$CK_DIR
__ck_command=$CK_COMMAND
__ck_script=$CK_SCRIPT
unset CK_DIR CK_COMMAND CK_SCRIPT
if [[ ${CK_MODLIB_RELEASE-} ]]; then
    # The kernel's tree where projects' own Makefiles look for it, in this step's
    # private mount namespace only (the machine's /lib/modules is not touched).
    __ck_lib=/lib/modules/$CK_MODLIB_RELEASE
    if ! { mount -t tmpfs cargo-kmod /lib/modules && mkdir -p "$__ck_lib" &&
           ln -s "$CK_MODLIB_BUILD" "$__ck_lib/build" && ln -s "$CK_MODLIB_BUILD" "$__ck_lib/source"; }; then
        echo "cannot give $__ck_lib/build in a private mount namespace (needs unshare and mount rights)"
        exit 2
    fi
    unset CK_MODLIB_RELEASE CK_MODLIB_BUILD __ck_lib
fi
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
