#!/usr/bin/env bash
# Installs cargo-kmod and shows the signing core on a real module from Debian's kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
cargo install --quiet --path . --root "${CARGO_HOME:-$HOME/.cargo}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cache=${CARGO_KMOD_CACHE:-$HOME/.cache/cargo-kmod}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cp "$(find "$cache/fixtures/image/lib/modules" -name dummy.ko.xz | head -n1)" "$work/"
install -m 600 keys-example/signing_key.pem "$work/key.pem"
cp keys-example/signing_key.crt "$work/cert.pem"
cd "$work"
step cargo kmod info dummy.ko.xz
step cargo kmod verify --cert cert.pem dummy.ko.xz || true
step cargo kmod sign --key key.pem --cert cert.pem dummy.ko.xz || true
step cargo kmod sign --replace --hash sha512 --key key.pem --cert cert.pem dummy.ko.xz
step cargo kmod verify --cert cert.pem dummy.ko.xz
step cargo kmod info -F signer dummy.ko.xz
step modinfo dummy.ko.xz
