#!/bin/sh
# in-root.sh ROOT BIN PROJECT CMD...: runs CMD (as root, in /project) inside the Debian
# root made by scripts/test-deps.sh, with /proc, /sys, /dev, the cargo-kmod binary BIN
# (as /usr/local/bin/cargo-kmod) and the host directory PROJECT (as /project) bound in.
# With IN_ROOT_CACHE=DIR, the host's cache DIR is bound in at the same path and is the
# command's CARGO_KMOD_CACHE (the kernels `kernel fetch` recorded there keep their
# paths); else the root's own /var/cache/cargo-kmod is.
# The mounts live in a private mount namespace: they vanish with the command, also
# when it fails or is killed.
set -eu
root=$1 bin=$2 project=$3
shift 3
exec unshare --mount --propagation private -- sh -euc '
root=$1 bin=$2 project=$3 cache=$4
shift 4
for m in proc sys dev; do mount --bind "/$m" "$root/$m"; done
mkdir -p "$root/project"
[ -e "$root/usr/local/bin/cargo-kmod" ] || : > "$root/usr/local/bin/cargo-kmod"
mount --bind "$bin" "$root/usr/local/bin/cargo-kmod"
mount --bind "$project" "$root/project"
if [ -n "$cache" ]; then
  mkdir -p "$root$cache"
  mount --bind "$cache" "$root$cache"
else
  cache=/var/cache/cargo-kmod
fi
exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  CARGO_KMOD_CACHE="$cache" sh -c "cd /project && exec \"\$@\"" sh "$@"
' sh "$root" "$bin" "$project" "${IN_ROOT_CACHE:-}" "$@"
