#!/bin/sh
# in-root.sh ROOT BIN PROJECT CMD...: runs CMD (as root, in /project) inside the Debian
# root made by scripts/test-deps.sh, with /proc, /sys, /dev, the cargo-kmod binary BIN
# (as /usr/local/bin/cargo-kmod) and the host directory PROJECT (as /project) bound in.
# The mounts live in a private mount namespace: they vanish with the command, also
# when it fails or is killed.
set -eu
root=$1 bin=$2 project=$3
shift 3
exec unshare --mount --propagation private -- sh -euc '
root=$1 bin=$2 project=$3
shift 3
for m in proc sys dev; do mount --bind "/$m" "$root/$m"; done
mkdir -p "$root/project"
[ -e "$root/usr/local/bin/cargo-kmod" ] || : > "$root/usr/local/bin/cargo-kmod"
mount --bind "$bin" "$root/usr/local/bin/cargo-kmod"
mount --bind "$project" "$root/project"
exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  CARGO_KMOD_CACHE=/var/cache/cargo-kmod sh -c "cd /project && exec \"\$@\"" sh "$@"
' sh "$root" "$bin" "$project" "$@"
