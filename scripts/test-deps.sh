#!/usr/bin/env bash
# Installs and fetches everything the test suite needs on a fresh Debian 12 machine.
# Idempotent: packages already present and fixtures already cached are reused.
# Fixtures live outside the repo, in $CARGO_KMOD_CACHE (default ~/.cache/cargo-kmod).
#   scripts/test-deps.sh [--extended]   --extended: also the 7.3-rc (experimental) and
#                                       6.1 (bookworm, without Rust) test kernels.
set -euo pipefail
# A failing step names itself (its own output, or its log, is above).
trap 'echo "test-deps: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
extended=0
[ "${1:-}" = --extended ] && extended=1

cache=${CARGO_KMOD_CACHE:-$HOME/.cache/cargo-kmod}
mkdir -p "$cache/debs" "$cache/fixtures"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Each step's seconds, appended to $TEST_TIMES (scripts/test.sh prints the table).
lap_at=$SECONDS
lap() { [ -n "${TEST_TIMES:-}" ] && printf '%s\t%d\n' "$1" $((SECONDS - lap_at)) >> "$TEST_TIMES"; lap_at=$SECONDS; }

pkgs=(kmod openssl xz-utils zstd gzip bzip2 lz4 pkg-config libssl-dev gcc binutils make tar
      rustc-web rust-web-src clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev cpio
      linux-source-6.12 busybox-static qemu-system-x86 qemu-system-arm dpkg-dev time
      rpm rpm2cpio rpmlint gpg skopeo umoci python3-yaml python3-venv debootstrap)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  # Some machines carry a backported qemu-utils (10.x) that Breaks bookworm's
  # qemu-system-common: take bookworm's, the QEMU every measurement here was made with.
  downgrade=()
  if [[ " ${missing[*]} " == *" qemu-system-"* \
        && $(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null) == *bpo* ]]; then
    downgrade=(--allow-downgrades qemu-utils/bookworm)
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${downgrade[@]}" "${missing[@]}" >/dev/null
fi

# Without their recommends: dkms's pull the distribution's default kernel headers;
# shim-signed's and GRUB's would install GRUB onto this machine (run --secure-boot only
# copies their signed binaries into an ESP image).
lean=()
for p in dkms softhsm2 opensc ovmf shim-signed grub-efi-amd64-signed mtools; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || lean+=("$p")
done
if [ ${#lean[@]} -gt 0 ]; then
  echo "test-deps: installing ${lean[*]}" >&2
  lean_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null; }
  # The lists may be older than the archive when nothing above needed an update.
  lean_install || { as_root apt-get update -qq && lean_install; }
fi

lap "Debian packages (apt-get install)"
# Newest 6.12 Debian kernel the archive lists (versions rotate, so ask apt), by its
# signed image: the signed build is published after the headers and kbuild, so the
# newest kbuild may have no signed image yet.
if ! apt-cache show 'linux-kbuild-6.12.*' >/dev/null 2>&1; then as_root apt-get update -qq; fi
ver=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' | awk '{print $1}' \
      | sed 's/^linux-image-//; s/-amd64$//' | sort -V | tail -n1)
[ -n "$ver" ] || { echo "test-deps: apt lists no signed linux-image-6.12.*+deb12-amd64 package" >&2; exit 1; }

fetch() { # fetch PKG -> unpacked dir
  local pkg=$1 dir="$cache/fixtures/$1"
  if [ ! -e "$dir/.done" ]; then
    echo "test-deps: downloading $pkg" >&2
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$cache/debs" && ls "${pkg}"_*.deb >/dev/null 2>&1 || apt-get download -q "$pkg" >/dev/null)
    dpkg -x "$(ls "$cache/debs/${pkg}"_*.deb | head -n1)" "$dir"
    touch "$dir/.done"
  fi
}
# Packages from other Debian suites (sid, experimental) through a private apt
# configuration under the cache: the machine's own sources are never touched.
apt_suite() { # apt_suite SUITE[/ARCH] -> $opts: apt-get/apt-cache options for SUITE (lists fetched once)
  local suite=${1%/*} arch=amd64
  [[ $1 == */* ]] && arch=${1#*/}
  # The directory `cargo kmod kernel fetch` uses for the same suite: its lists are shared.
  local a="$cache/apt/debian-$suite-$arch"
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
  [ -e "$a/sources.list" ] ||
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" > "$a/sources.list"
  opts=(-o "Dir::Etc::sourcelist=$a/sources.list" -o Dir::Etc::sourceparts=/nonexistent
        -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o APT::Sandbox::User=root)
  if [[ $1 == */* ]]; then opts+=(-o "APT::Architecture=${1#*/}" -o "APT::Architectures=${1#*/}"); fi
  if [ ! -e "$a/lists/.updated" ]; then
    echo "test-deps: apt lists for $suite (private, in $a)" >&2
    apt-get "${opts[@]}" update -qq && touch "$a/lists/.updated"
  fi
}
apt_unpack() { # apt_unpack SUITE DIR PKG... -> all unpacked into $cache/fixtures/DIR
  local suite=$1 dir="$cache/fixtures/$2"
  shift 2
  [ -e "$dir/.done" ] && return
  apt_suite "$suite"
  rm -rf "$dir"; mkdir -p "$dir"
  local pkg
  for pkg in "$@"; do
    echo "test-deps: downloading $pkg from $suite" >&2
    (cd "$cache/debs" && ls "${pkg}"_*.deb >/dev/null 2>&1 || apt-get "${opts[@]}" download -q "$pkg" >/dev/null)
    dpkg -x "$(ls "$cache/debs/${pkg}"_*.deb | head -n1)" "$dir"
  done
  touch "$dir/.done"
}
apt_other() { apt_unpack "$1" "$2" "$2"; } # apt_other SUITE PKG -> $cache/fixtures/PKG
# Debian's own kernels, fetched by name with `cargo kmod kernel fetch` (headers, kbuild,
# signed image, module tree; for sid's Rust-enabled 7.2 its source too), each record
# kept as $cache/kernel-<name>.json for the tests: bookworm's 6.1, bookworm-backports'
# 6.12, and sid's 7.2 for amd64 and arm64 (`check` judges Debian's own modules against
# them, `run` and `cargo kmod test` boot them). Versions rotate: the newest is fetched.
fetch_kernel() { # fetch_kernel NAME
  local file="$cache/kernel-${1//\//-}.json"
  cargo run --quiet -- kmod kernel fetch "$1" --message-format json > "$file.tmp"
  mv "$file.tmp" "$file"
}
lap "other suites' packages (private apt)"
for k in debian/sid debian/sid/arm64 debian/bookworm debian/bookworm-backports; do fetch_kernel "$k"; done
lap "Debian kernels by name (kernel fetch x4)"
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$cache/kernel-$1.json" "$2"; }
v72=$(field debian-sid release); v72=${v72%-amd64}
echo "$v72-amd64" > "$cache/debian-7.2-release"
src72=$(field debian-sid source)

# A Debian sid system as a sid user has it, made once with debootstrap (never touching
# the host's packages): Rust and C modules are built in it against Debian's own 7.2
# headers with sid's rustc and gcc-16 (tests/sid/in-root.sh runs commands in it).
sid="$cache/roots/sid"
sid_pkgs=(rustc rust-src cargo dkms bindgen libclang-dev gcc-16 make flex bison bc libelf-dev
          libssl-dev dwarves openssl python3 kmod xz-utils linux-source-7.2 "linux-headers-$v72-amd64"
          # `cargo kmod test` of sid's kernels runs here: arm64 cross builds, and boots.
          gcc-16-aarch64-linux-gnu qemu-system-x86 qemu-system-arm busybox-static)
if [ ! -e "$sid/.done" ]; then
  echo "test-deps: making a Debian sid root in $sid (debootstrap, then about 1 GB of packages; 2-4 minutes, once)" >&2
  started=$SECONDS
  mkdir -p "$cache/roots"
  rm -rf "$sid.tmp"
  log="$cache/roots/sid.log"
  if ! debootstrap --variant=minbase sid "$sid.tmp" http://deb.debian.org/debian > "$log" 2>&1; then
    tail -n 20 "$log" >&2; echo "test-deps: debootstrap failed (log: $log)" >&2; exit 1
  fi
  # The archive here is a snapshot whose Release may be past its Valid-Until.
  echo 'Acquire::Check-Valid-Until "false";' > "$sid.tmp/etc/apt/apt.conf.d/99cargo-kmod-snapshot"
  # The same 7.2 packages the host fetched already: not downloaded twice.
  cp "$cache/debs/linux-source-7.2_"*.deb "$cache/debs/linux-headers-$v72-amd64_"*.deb \
     "$cache/debs/linux-headers-$v72-common_"*.deb "$sid.tmp/var/cache/apt/archives/"
  if ! tests/sid/in-root.sh "$sid.tmp" /bin/true /tmp sh -c \
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${sid_pkgs[*]}" \
      >> "$log" 2>&1; then
    tail -n 20 "$log" >&2; echo "test-deps: installing into the sid root failed (log: $log)" >&2; exit 1
  fi
  rm -f "$sid.tmp"/var/cache/apt/archives/*.deb
  mv "$sid.tmp" "$sid"
  touch "$sid/.done"
  echo "test-deps: sid root ready in $((SECONDS - started)) s" >&2
fi
# A root made before a package joined the list gets it now.
# shellcheck disable=SC2016
absent=$(tests/sid/in-root.sh "$sid" /bin/true /tmp sh -c \
  'for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || printf "%s " "$p"; done' sh "${sid_pkgs[@]}")
if [ -n "$absent" ]; then
  echo "test-deps: installing into the sid root:" $absent >&2
  # shellcheck disable=SC2086
  if ! tests/sid/in-root.sh "$sid" /bin/true /tmp sh -c \
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $absent && rm -f /var/cache/apt/archives/*.deb" \
      > "$cache/roots/sid-add.log" 2>&1; then
    tail -n 20 "$cache/roots/sid-add.log" >&2; echo "test-deps: installing into the sid root failed" >&2; exit 1
  fi
fi

lap "Debian sid root (debootstrap)"
# A static arm64 busybox for arm64 guests' initramfs (unpacked, not installed), where
# `run` looks for it.
apt_unpack bookworm/arm64 busybox-static-arm64 busybox-static
mkdir -p "$cache/tools"
cp "$cache/fixtures/busybox-static-arm64/bin/busybox" "$cache/tools/busybox-arm64"

# Debian 12's own 6.1 headers (C modules build against them too).
v61=$(apt-cache search --names-only '^linux-headers-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -n1)
[ -n "$v61" ] || { echo "test-deps: apt lists no linux-headers-6.1.0-*-amd64 package" >&2; exit 1; }
if ! dpkg-query -W -f='${Status}' "$v61" 2>/dev/null | grep -q 'install ok installed'; then
  echo "test-deps: installing $v61" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$v61" >/dev/null
fi
echo "/usr/src/$v61" > "$cache/debian-6.1-headers"

# Debian's own headers for that kernel (C modules build against them; no Rust there).
if ! dpkg-query -W -f='${Status}' "linux-headers-$ver-amd64" 2>/dev/null | grep -q 'install ok installed'; then
  echo "test-deps: installing linux-headers-$ver-amd64" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "linux-headers-$ver-amd64" >/dev/null
fi
echo "$ver" > "$cache/debian-kernel-version"

fetch "linux-kbuild-$ver"
fetch "linux-image-$ver-amd64"
# Debian 12's own DKMS packages, unpacked, never installed (260 kB): existing
# projects that the real dkms and cargo kmod build side by side.
for p in acpi-call-dkms ddcci-dkms jool-dkms v4l2loopback-dkms xtables-addons-dkms; do fetch "$p"; done

ln -sfn "$cache/fixtures/linux-kbuild-$ver" "$cache/fixtures/kbuild"
ln -sfn "$cache/fixtures/linux-image-$ver-amd64" "$cache/fixtures/image"
lap "arm64 busybox, Debian 6.1/6.12 headers and image, DKMS packages"
# bindgen for Rust-enabled kernels: Debian 12's is too old for 6.12 (needs >= 0.65.1).
if [ ! -x "$cache/tools/bin/bindgen" ]; then
  echo "test-deps: installing bindgen-cli into $cache/tools (compiles it: about 5 minutes, once)" >&2
  cargo install --quiet --locked bindgen-cli@0.73.2 --root "$cache/tools"
fi

lap "bindgen-cli (cargo install)"
# An independent ML-DSA implementation for the tests: PyPI's `cryptography` (it bundles
# OpenSSL 4) makes keys, certificates and signatures and checks ours; dilithium-py
# expands a seed into the private key's expanded form, which `cryptography` never writes.
pyca="$cache/tools/pyca"
if ! "$pyca/bin/python" -c 'import cryptography.hazmat.primitives.asymmetric.mldsa, dilithium_py' 2>/dev/null; then
  echo "test-deps: installing cryptography and dilithium-py into $pyca" >&2
  rm -rf "$pyca"
  /usr/bin/python3 -m venv "$pyca"
  "$pyca/bin/pip" install -q --disable-pip-version-check 'cryptography==50.0.2' 'dilithium-py==1.5.1'
fi

# Keys the test kernel trusts (made once: the cached kernel is built to trust them),
# and one it does not.
keys="$cache/test-keys"
mkdir -p "$keys"
mk() { # name, keygen algorithm: made by cargo-kmod's own keygen
  [ -s "$keys/$1/signing_key.crt" ] && return
  cargo run --quiet -- kmod keygen --algo "$2" --cn "cargo-kmod test $1" --out "$keys/$1" >/dev/null 2>&1
}
mk rsa2048 rsa2048
mk rsa3072 rsa3072
mk rsa4096 rsa4096
mk p256 ecdsa-p256
mk p384 ecdsa-p384
mk untrusted rsa2048
mk mldsa44 ml-dsa-44
mk mldsa65 ml-dsa-65
mk mldsa87 ml-dsa-87
# One ML-DSA-65 key made by `cryptography`, in its three PKCS#8 forms, and its certificate.
if [ ! -s "$keys/pyca-mldsa65/cert.pem" ]; then
  rm -rf "$keys/pyca-mldsa65"
  "$pyca/bin/python" tests/mldsa/pyca.py keygen 65 "cargo-kmod test pyca-mldsa65" "$keys/pyca-mldsa65"
fi

# Decompression bombs: an ELF header and 1200 MiB of zeros, beyond every size limit
# (made once, about 25 s; the zstd and lz4 ones the tests build by hand, at 10 GiB).
bombs="$cache/bombs"
if [ ! -e "$bombs/.done" ]; then
  echo "test-deps: making decompression bombs in $bombs" >&2
  mkdir -p "$bombs"
  zeros() { printf '\177ELF'; head -c 1200M /dev/zero; }
  zeros | xz -0 -T1 --check=crc32 > "$bombs/elf-zeros.xz"
  zeros | gzip -1 > "$bombs/elf-zeros.gz"
  zeros | bzip2 -1 > "$bombs/elf-zeros.bz2"
  touch "$bombs/.done"
fi

echo "test-deps: ready (Debian kernel $ver) in $cache/fixtures" >&2
lap "ML-DSA venv, test keys, decompression bombs"

# The Rust-enabled test kernels, 6.12 and 7.2, built by cargo-kmod itself (cached by
# their inputs; 3 to 4 minutes each on 2 cores, measured cold).
trusted=$(for n in rsa2048 rsa3072 rsa4096 p256 p384; do printf -- '--trusted-cert %s ' "$keys/$n/signing_key.crt"; done)
# 7.0+ kernels also trust the ML-DSA keys (6.x would refuse them).
mldsa=$(for n in mldsa44 mldsa65 mldsa87; do printf -- '--trusted-cert %s ' "$keys/$n/signing_key.crt"; done)
mldsa+=" --trusted-cert $keys/pyca-mldsa65/cert.pem"
test_kernel() { # test_kernel SOURCE RECORD [kernel build options]
  echo "test-deps: test kernel from $1 (cached by its inputs; a build takes 3-4 minutes on 2 cores and shows its progress)" >&2
  # shellcheck disable=SC2086
  cargo run --quiet -- kmod kernel build --source "$1" $trusted "${@:3}" > "$cache/$2.tmp"
  mv "$cache/$2.tmp" "$cache/$2"
  cat "$cache/$2" >&2
}
test_kernel /usr/src/linux-source-6.12.tar.xz test-kernel.txt
lap "test kernel 6.12 (Rust)"
# shellcheck disable=SC2086
test_kernel "$src72" test-kernel-7.2.txt $mldsa
lap "test kernel 7.2 (Rust)"
# With symbol versions (CRCs), for `check`'s CRC test; 6.12 has them only without Rust.
test_kernel /usr/src/linux-source-6.12.tar.xz test-kernel-modversions.txt --no-rust \
  --config tests/kernels/modversions.config
lap "test kernel 6.12 (modversions)"
# arm64, cross-built with LLVM, for QEMU's virt machine.
test_kernel /usr/src/linux-source-6.12.tar.xz test-kernel-arm64.txt --arch arm64
lap "test kernel 6.12 (arm64)"
if [ $extended = 1 ]; then
  apt_other experimental linux-source-7.3
  apt_other bookworm linux-source-6.1
  # With the ML-DSA waiver: the signed-attribute form loads there (refused by 7.2's).
  # shellcheck disable=SC2086
  test_kernel "$(ls "$cache"/fixtures/linux-source-7.3/usr/src/linux-source-7.3*.tar.xz | head -n1)" test-kernel-7.3.txt \
    $mldsa --mldsa-waiver
  # 6.1 pins rustc 1.62: built without Rust (the build says why).
  test_kernel "$cache/fixtures/linux-source-6.1/usr/src/linux-source-6.1.tar.xz" test-kernel-6.1.txt
fi

# Debian's 7.2 headers made into a tree that builds Rust modules, inside the sid root
# (cached there by its inputs; about 3 minutes once).
cargo build --quiet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug/cargo-kmod"
echo "test-deps: Debian's $v72-amd64 headers prepared for Rust in the sid root (cached by their inputs; about 3 minutes once)" >&2
# Into this cache (bound into the root): the same headers, installed in the root or
# fetched by name, find this one tree.
IN_ROOT_CACHE="$cache" tests/sid/in-root.sh "$sid" "$bin" /tmp cargo-kmod kmod kernel prepare --kernel debian/sid >&2
lap "Debian 7.2 headers prepared for Rust (sid root)"
