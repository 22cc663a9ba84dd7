# A dkms.conf read as DKMS 3.x reads it for one kernel (dkms.in: read_conf,
# safe_source): sourced by bash in a subshell, its values echoed and sourced again
# beside DKMS's own variables, then defaulted and checked as DKMS does. cargo-kmod
# runs this in a clean environment, with a time limit; the values come back on
# descriptor 3 as NUL-separated records, the errors on stderr (exit 1).
#
# In (environment): CK_CONF; DKMS's own variables come from templates/files/dkms/vars.sh,
# which comes first.
exec 3>&1 1>&2
shopt -s extglob

conf=$CK_CONF
unset CK_CONF
if [[ -e $kernel_source_dir/include/config/auto.conf ]]; then
    kernel_config=$kernel_source_dir/include/config/auto.conf
else
    kernel_config=$kernel_source_dir/.config
fi

readonly dkms_conf_variables="PACKAGE_NAME
   PACKAGE_VERSION POST_ADD POST_BUILD POST_INSTALL POST_REMOVE PRE_BUILD
   PRE_INSTALL BUILD_DEPENDS BUILD_EXCLUSIVE_ARCH BUILD_EXCLUSIVE_CONFIG
   BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_KERNEL_MIN BUILD_EXCLUSIVE_KERNEL_MAX
   build_exclude OBSOLETE_BY MAKE MAKE_MATCH
   PATCH PATCH_MATCH patch_array BUILT_MODULE_NAME
   built_module_name BUILT_MODULE_LOCATION built_module_location
   DEST_MODULE_NAME dest_module_name
   DEST_MODULE_LOCATION dest_module_location
   STRIP strip AUTOINSTALL NO_WEAK_MODULES BUILD_DEPENDS_REBUILD
   CLEAN
   REMAKE_INITRD MODULES_CONF MODULES_CONF_OBSOLETES
   MODULES_CONF_ALIAS_TYPE MODULES_CONF_OBSOLETE_ONLY"

# DKMS's safe_source: the file's values echoed by a subshell, then sourced here (so a
# value is expanded twice, as DKMS does). A file that exits ends the subshell before
# its last line: that is told apart from one that finished.
safe_source() {
    local to_source_file=$1
    shift
    # shellcheck disable=SC2206
    declare -a -r export_envs=($@)
    local -r CR=$(echo -e '\r')
    local tmpfile
    tmpfile=$(mktemp) || exit 2
    (
        exec >"$tmpfile"
        # shellcheck disable=SC1090
        . "$to_source_file" >/dev/null
        for _export_env in "${export_envs[@]}"; do
            for _i in $(eval echo \${!"${_export_env}"[@]}); do
                eval echo '$_export_env[$_i]=\"${'"${_export_env}"'[$_i]%$CR}\"'
            done
        done
        echo "__ck_finished=1"
    )
    local status=$?
    # shellcheck disable=SC1090
    . "$tmpfile"
    rm -f "$tmpfile"
    if [[ ! $__ck_finished ]]; then
        echo "$to_source_file: sourcing it ended early (exit status $status): a dkms.conf must not exit"
        exit 1
    fi
}

# The kernel version padded for comparison as a string (dkms.in: VER).
VER() {
    echo "$1" | sed -e 's:\([^0-9]\)\([0-9]\):\1 \2:g' \
        -e 's:\([0-9]\)\([^0-9]\):\1 \2:g' \
        -e 's:\(.*\): \1 :' \
        -e 's: \([0-9]\) : 00\1 :g' \
        -e 's: \([0-9][0-9]\) : 0\1 :g' \
        -e 's: ::g'
}

for var in $dkms_conf_variables; do
    unset "$var"
done
safe_source "$conf" "$dkms_conf_variables"

return_value=0
error() {
    echo "dkms.conf: Error! $*"
    return_value=1
}
[[ $PACKAGE_NAME ]] || error "No 'PACKAGE_NAME' directive specified."
[[ $PACKAGE_VERSION ]] || error "No 'PACKAGE_VERSION' directive specified."

# Module records: the arrays may be sparse; the largest index counts.
max_index=-1
for s in "${!BUILT_MODULE_NAME[@]}" "${!BUILT_MODULE_LOCATION[@]}" \
    "${!DEST_MODULE_NAME[@]}" "${!DEST_MODULE_LOCATION[@]}"; do
    ((s > max_index)) && max_index=$s
done
num_modules=$((max_index + 1))
for ((index = 0; index < num_modules; index++)); do
    built_module_name[index]=${BUILT_MODULE_NAME[index]}
    built_module_location[index]=${BUILT_MODULE_LOCATION[index]}
    dest_module_name[index]=${DEST_MODULE_NAME[index]}
    dest_module_location[index]=${DEST_MODULE_LOCATION[index]}
    case ${STRIP[index]} in
        [nN]*) strip[index]="no" ;;
        [yY]*) strip[index]="yes" ;;
        '') strip[index]=${strip[0]:-yes} ;;
    esac
    [[ ! ${built_module_name[index]} ]] && ((num_modules == 1)) &&
        built_module_name[index]=$PACKAGE_NAME
    [[ ! ${dest_module_name[index]} ]] && dest_module_name[index]=${built_module_name[index]}
    [[ ${built_module_location[index]} && ${built_module_location[index]:(-1)} != / ]] &&
        built_module_location[index]="${built_module_location[index]}/"
    [[ ${built_module_name[index]} ]] ||
        error "No 'BUILT_MODULE_NAME' directive specified for record #$index."
    case ${built_module_name[index]} in
        *.o | *.ko) error "'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #$index." ;;
    esac
    case ${dest_module_name[index]} in
        *.o | *.ko) error "'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #$index." ;;
    esac
    case ${DEST_MODULE_LOCATION[index]} in
        "") error "No 'DEST_MODULE_LOCATION' directive specified for record #$index." ;;
        /kernel* | /updates* | /extra*) ;;
        *) error "Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #$index." ;;
    esac
done
((num_modules == 0)) && error "No module is named: give BUILT_MODULE_NAME[0] (and DEST_MODULE_LOCATION[0])."

# The make command: the last MAKE whose MAKE_MATCH matches the kernel, else MAKE[0].
[[ ${MAKE_MATCH[0]} ]] || make_command=${MAKE[0]}
for ((index = 0; index < ${#MAKE[@]}; index++)); do
    [[ ${MAKE[index]} && ${MAKE_MATCH[index]} && $kernelver =~ ${MAKE_MATCH[index]} ]] &&
        make_command=${MAKE[index]}
done
[[ $make_command ]] || make_command="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build"
if [[ -e $kernel_source_dir/vmlinux ]]; then
    readelf -p .comment "$kernel_source_dir/vmlinux" 2>&1 | grep -q clang &&
        make_command="$make_command LLVM=1"
elif [[ -e $kernel_config ]]; then
    grep -q CONFIG_CC_IS_CLANG=y "$kernel_config" && make_command="$make_command LLVM=1"
fi
clean=$CLEAN
[[ $clean ]] || clean="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build clean"

count=0
for ((index = 0; index < ${#PATCH[@]}; index++)); do
    if [[ ${PATCH[index]} && (! ${PATCH_MATCH[index]} || $kernelver =~ ${PATCH_MATCH[index]}) ]]; then
        patch_array[count]=${PATCH[index]}
        count=$((count + 1))
    fi
done

# BUILD_EXCLUSIVE_*: each rule that rules this kernel out, in DKMS's order.
excluded=()
[[ $OBSOLETE_BY && ! $BUILD_EXCLUSIVE_KERNEL_MAX ]] && BUILD_EXCLUSIVE_KERNEL_MAX=$OBSOLETE_BY
[[ $BUILD_EXCLUSIVE_KERNEL && ! $kernelver =~ $BUILD_EXCLUSIVE_KERNEL ]] &&
    excluded+=("BUILD_EXCLUSIVE_KERNEL=\"$BUILD_EXCLUSIVE_KERNEL\" does not match $kernelver")
[[ $BUILD_EXCLUSIVE_KERNEL_MIN && "$(VER "$kernelver")" < "$(VER "$BUILD_EXCLUSIVE_KERNEL_MIN")" ]] &&
    excluded+=("$kernelver is older than BUILD_EXCLUSIVE_KERNEL_MIN=\"$BUILD_EXCLUSIVE_KERNEL_MIN\"")
[[ $BUILD_EXCLUSIVE_KERNEL_MAX && "$(VER "$kernelver")" > "$(VER "$BUILD_EXCLUSIVE_KERNEL_MAX")" ]] &&
    excluded+=("$kernelver is newer than BUILD_EXCLUSIVE_KERNEL_MAX=\"$BUILD_EXCLUSIVE_KERNEL_MAX\"")
[[ $BUILD_EXCLUSIVE_ARCH && ! $arch =~ $BUILD_EXCLUSIVE_ARCH ]] &&
    excluded+=("BUILD_EXCLUSIVE_ARCH=\"$BUILD_EXCLUSIVE_ARCH\" does not match $arch")
if [[ $BUILD_EXCLUSIVE_CONFIG && -e $kernel_config ]]; then
    for kconf in $BUILD_EXCLUSIVE_CONFIG; do
        case "$kconf" in
            !*) grep -q "^${kconf#!}=[ym]" "$kernel_config" &&
                excluded+=("BUILD_EXCLUSIVE_CONFIG: ${kconf#!} is set") ;;
            *) grep -q "^${kconf}=[ym]" "$kernel_config" ||
                excluded+=("BUILD_EXCLUSIVE_CONFIG: $kconf is not set") ;;
        esac
    done
fi

for var in AUTOINSTALL BUILD_DEPENDS_REBUILD NO_WEAK_MODULES; do
    case ${!var} in
        "" | [Yy][Ee][Ss]) ;;
        [Nn][Oo]) eval "$var=''" ;;
        *) error "Unsupported $var value '${!var}'" ;;
    esac
done

((return_value == 0)) || exit 1

record() {
    printf '%s\0' "$@" >&3
}
record name "$PACKAGE_NAME"
record version "$PACKAGE_VERSION"
for ((index = 0; index < num_modules; index++)); do
    record module "${built_module_name[index]}" "${built_module_location[index]}" \
        "${dest_module_name[index]}" "${dest_module_location[index]}" "${strip[index]}"
done
record make "$make_command"
record clean "$clean"
for p in "${patch_array[@]}"; do
    record patch "$p"
done
[[ $PRE_BUILD ]] && record pre_build "$PRE_BUILD"
[[ $POST_BUILD ]] && record post_build "$POST_BUILD"
for e in "${excluded[@]}"; do
    record excluded "$e"
done
[[ $AUTOINSTALL ]] && record autoinstall yes
for d in $BUILD_DEPENDS; do
    record build_depends "$d"
done
exit 0
