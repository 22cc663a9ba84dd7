#!/usr/bin/env bash
# The first ten minutes: installs cargo-kmod and only what this demo shows, then a C
# module is made, built against Debian 12's own kernel headers, signed with a fresh MOK
# key, checked offline, and booted in Debian's own signed kernel under Secure Boot with
# that MOK enrolled (OVMF → shim → GRUB → kernel): the signed module loads, an unsigned
# copy is refused — what your users' machines do.
#   scripts/demo.sh          the C module under Secure Boot (no kernel build)
#   scripts/demo.sh --rust   then a Rust module: a Rust-enabled kernel built from
#                            Debian's 6.12 source (with its progress), the module
#                            built, signed and loaded in it
set -euo pipefail
# A failing step names itself (its own output, or its log, is above).
trap 'echo "demo: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
rust=0
[ "${1:-}" = --rust ] && rust=1
say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
began=$SECONDS
timed() { # timed WHAT COMMAND...: runs it, then says how long it took
  local what=$1 t=$SECONDS; shift
  "$@"
  printf '\033[2m  (%s: %d s; %d s since the start)\033[0m\n' "$what" $((SECONDS - t)) $((SECONDS - began))
}
install_pkgs() { # install_pkgs [--no-install-recommends] PKG...: the missing ones only
  local opts=() missing=()
  [ "$1" = --no-install-recommends ] && { opts=("$1"); shift; }
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "  apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "${missing[@]}" >/dev/null
}

# DEMO_SKIP_SETUP=1: the packages are there already (the test suite's demo test).
if [ "${DEMO_SKIP_SETUP:-0}" != 1 ]; then
  say "installing what the demo uses: a C compiler and make (the module), libssl-dev (cargo-kmod links OpenSSL), QEMU and busybox (the guest), OVMF, Debian's signed shim and GRUB, mtools (Secure Boot)"
  timed "packages" install_pkgs gcc make libc6-dev pkg-config libssl-dev qemu-system-x86 busybox-static
  # Without recommends: shim's and GRUB's would install GRUB onto this machine; the demo
  # only copies their signed binaries into an EFI system partition image.
  timed "Secure Boot packages" install_pkgs --no-install-recommends ovmf shim-signed grub-efi-amd64-signed mtools
fi
# DEMO_INSTALL_ROOT: where cargo-kmod is installed (default: cargo's own bin directory);
# DEMO_INSTALL_FLAGS: more `cargo install` flags (the test suite's demo test: --debug).
root=${DEMO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}
say "building and installing cargo-kmod into $root/bin (cargo install; about 2 minutes on 2 cores the first time, AWS-LC's C code the longest part)"
# shellcheck disable=SC2086
timed "cargo install" cargo install --quiet --locked --path . --root "$root" ${DEMO_INSTALL_FLAGS:-}
export PATH="$root/bin:$PATH"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; timed "${*:3:2}" "$@"; }
cd "$work"

say "Debian 12's own kernel, by name: its headers, signed image and module tree (through a private apt configuration under ~/.cache/cargo-kmod; the machine's own apt sources are not touched)"
step cargo kmod kernel fetch debian/bookworm
say "a MOK: the key a user enrolls with mokutil (RSA-2048, what shim and every kernel take)"
step cargo kmod keygen --mok --algo rsa2048 --out mok
say "a C module project, built against that kernel's headers"
step cargo kmod new hello --template c-minimal --description "Hello from cargo-kmod"
cd hello
step cargo kmod build --kernel debian/bookworm
# The module's path as the tool reports it (target/ follows CARGO_TARGET_DIR).
ko=$(cargo kmod build -q --kernel debian/bookworm --message-format json | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
cp "$ko" ../unsigned.ko
step cargo kmod sign --hash sha256 --key ../mok/signing_key.pem --cert ../mok/signing_key.crt "$ko"
step cargo kmod info "$ko"
say "will it load? Offline, as Debian's kernel decides, with our MOK enrolled"
step cargo kmod check --kernel debian/bookworm --mok ../mok/signing_key.crt "$ko"
say "the real thing: OVMF with Secure Boot on → Debian's signed shim → GRUB → Debian's signed 6.1, our MOK enrolled; an unsigned copy first (refused), then the signed module (loads)"
step cargo kmod run --kernel debian/bookworm --secure-boot --mok ../mok/signing_key.crt \
  --module ../unsigned.ko --module "$ko" || true
echo
echo "# The unsigned copy: \"Key was rejected by service\", as on a user's Secure Boot machine."
echo "# The MOK-signed module: loaded, taint O (out of tree) only, not E (unsigned). On a user's machine,"
echo "# \`cargo kmod doctor MODULE\` says which of those it will be there, and why."
printf '\n\033[1m# the demo took %d s\033[0m\n' $((SECONDS - began))

if [ $rust = 0 ]; then
  echo
  echo "next: scripts/demo.sh --rust — a Rust-enabled kernel built from Debian's 6.12 source,"
  echo "      then a Rust module built, signed and loaded in it (measured on 2 cores, empty cache:"
  echo "      about 4 more minutes — bindgen-cli 1, the kernel 3 — plus installing Debian's"
  echo "      rustc-web, LLVM 19 and the 6.12 source where they are missing; cached after that)"
  exit 0
fi

cd "$work"
cache=${CARGO_KMOD_CACHE:-$HOME/.cache/cargo-kmod}
if [ "${DEMO_SKIP_SETUP:-0}" != 1 ]; then
  say "installing what a Rust-enabled kernel needs: Debian's rustc-web and its source, LLVM/clang 19, flex, bison, bc, libelf, Debian's 6.12 source; bindgen-cli from crates.io (Debian 12's is too old)"
  timed "packages" install_pkgs rustc-web rust-web-src clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev cpio linux-source-6.12
  if [ ! -x "$cache/tools/bin/bindgen" ]; then
    timed "bindgen-cli" cargo install --quiet --locked bindgen-cli@0.73.2 --root "$cache/tools"
  fi
fi
say "a Rust-enabled 6.12 with signature enforcement, built from Debian's source (cached by its inputs; about 3 minutes on 2 cores, with progress)"
# Its record (release, kdir, ...) on stdout; the progress on the terminal.
step cargo kmod kernel build --source /usr/src/linux-source-6.12.tar.xz > kernel.txt
cat kernel.txt
kdir=$(sed -n 's/^kdir: *//p' kernel.txt)
step cargo kmod new hello-rust --template rust-minimal --kdir "$kdir" --description "Hello from cargo-kmod"
cd hello-rust
step cargo kmod build --kdir "$kdir"
ko=$(cargo kmod build -q --kdir "$kdir" --message-format json | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
say "signed with the kernel tree's own key (the only one that kernel trusts), checked, and loaded"
step cargo kmod sign --hash sha256 --key "$kdir/certs/signing_key.pem" --cert "$kdir/certs/signing_key.x509" "$ko"
step cargo kmod check --kdir "$kdir" "$ko"
step cargo kmod run --kdir "$kdir" --module "$ko"
printf '\n\033[1m# the demo took %d s\033[0m\n' $((SECONDS - began))
