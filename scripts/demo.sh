#!/usr/bin/env bash
# Installs cargo-kmod and its prerequisites, then walks through the main job: a Rust
# kernel module made, built, signed, checked, and loaded with signatures enforced.
set -euo pipefail
# A failing step names itself (its own output, or its log, is above).
trap 'echo "demo: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
# DEMO_SKIP_SETUP=1: the prerequisites are there already (the test suite's demo test).
if [ "${DEMO_SKIP_SETUP:-0}" != 1 ]; then
  say "installing prerequisites: Debian packages, fixtures, and the Rust-enabled test kernel (cached; the first time about 15 minutes: the kernel build shows its progress)"
  scripts/test-deps.sh
fi
# DEMO_INSTALL_ROOT: where cargo-kmod is installed (default: cargo's own bin directory);
# DEMO_INSTALL_FLAGS: more `cargo install` flags (the test suite's demo test: --debug).
root=${DEMO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}
say "building and installing cargo-kmod into $root/bin (about 2 minutes the first time)"
# shellcheck disable=SC2086
cargo install --quiet --locked --path . --root "$root" ${DEMO_INSTALL_FLAGS:-}
export PATH="$root/bin:$PATH"
cache=${CARGO_KMOD_CACHE:-$HOME/.cache/cargo-kmod}
kdir=$(sed -n 's/^kdir: *//p' "$cache/test-kernel.txt")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
cd "$work"

step cargo kmod kernel list
step cargo kmod keygen --algo ecdsa-p384 --out keys
step cargo kmod new hello --template rust-minimal --kdir "$kdir" --description "Hello from cargo-kmod"
cd hello
step cargo kmod build --kdir "$kdir"
# The module's path as the tool reports it (target/ follows CARGO_TARGET_DIR).
ko=$(cargo kmod build -q --kdir "$kdir" --message-format json | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
step cargo kmod sign --hash sha384 --key ../keys/signing_key.pem --cert ../keys/signing_key.crt "$ko"
step cargo kmod info "$ko"
echo; echo "# The kernel trusts only its build key and the test keys: our new key is refused."
step cargo kmod verify --kernel "$kdir/arch/x86/boot/bzImage" "$ko" || true
step cargo kmod check --kdir "$kdir" "$ko" || true
step cargo kmod run --kdir "$kdir" --module "$ko" || true
echo; echo "# Signed with the kernel tree's own key, it loads and unloads."
step cargo kmod sign --replace --hash sha256 --key "$kdir/certs/signing_key.pem" --cert "$kdir/certs/signing_key.x509" "$ko"
step cargo kmod verify --kernel "$kdir/arch/x86/boot/bzImage" "$ko"
step cargo kmod check --kdir "$kdir" "$ko"
step cargo kmod run --kdir "$kdir" --module "$ko"
