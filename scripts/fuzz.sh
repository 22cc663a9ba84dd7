#!/usr/bin/env bash
# Fuzzes the parsers of hostile input with libFuzzer (cargo fuzz), each target from a
# corpus seeded with real modules, signatures, certificates and kernel images.
#   scripts/fuzz.sh [RUNS [TARGET...]]   RUNS executions per target (default 10000000);
#                            CI runs a short pass through scripts/test.sh.
# No sanitizer by default: the code under test is safe Rust, and the C libraries it
# calls are not instrumented either way (FUZZ_SANITIZER=address to add ASan).
# The corpora and findings live in $CARGO_KMOD_CACHE/fuzz (never in the repository).
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000000}
cache=${CARGO_KMOD_CACHE:-$HOME/.cache/cargo-kmod}
corpus="$cache/fuzz"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(trailer pkcs7 x509 elf_modinfo compressed kernel_image btf depends manifest)
sanitizer=${FUZZ_SANITIZER:-none}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install --quiet --locked cargo-fuzz@0.13.2
fi
# libFuzzer needs the sanitizer flags only nightly accepts; the stable compiler takes
# them with RUSTC_BOOTSTRAP (the build is ours alone, in fuzz/target).
export RUSTC_BOOTSTRAP=1

if [ ! -e "$corpus/.seeded" ]; then
  echo "fuzz: seeding corpora in $corpus" >&2
  mkdir -p "$corpus"
  python3 - "$cache" "$corpus" <<'PY'
import glob, gzip, lzma, os, struct, subprocess, sys
cache, corpus = sys.argv[1], sys.argv[2]
def put(target, name, data):
    d = os.path.join(corpus, target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)
mods = sorted(glob.glob(cache + "/fixtures/image/lib/modules/*/kernel/**/*.ko.xz", recursive=True),
              key=os.path.getsize)[:12]
magic = b"~Module signature appended~\n"
for m in mods:
    raw = open(m, "rb").read()
    elf = lzma.decompress(raw)
    n = os.path.basename(m)
    put("compressed", n, raw)
    put("compressed", n[:-3] + ".gz", gzip.compress(elf[:20000]))
    put("trailer", n[:-3], elf)
    put("elf_modinfo", n[:-3], elf[:len(elf) - 12 - 28 - struct.unpack(">I", elf[-32:-28])[0]])
    sig_len = struct.unpack(">I", elf[-32:-28])[0]
    put("pkcs7", n[:-3] + ".p7", elf[-40 - sig_len:-40])
for c in glob.glob(cache + "/test-keys/*/signing_key.der"):
    put("x509", os.path.basename(os.path.dirname(c)) + ".der", open(c, "rb").read())
# One RSA-2048 certificate: each found certificate's self-signature is checked, and
# five of them made every execution a millisecond.
rsa = open(cache + "/test-keys/rsa2048/signing_key.der", "rb").read()
vmlinux = b"\x7fELF" + b"\0" * 60 + rsa + b"\0" * 64
put("kernel_image", "vmlinux", vmlinux)
def bzimage(payload):
    b = bytearray(1024)
    b[0x1f1] = 1; b[0x202:0x206] = b"HdrS"; b[0x206:0x208] = struct.pack("<H", 0x020f)
    b[0x24c:0x250] = struct.pack("<I", len(payload))
    return bytes(b) + payload
put("kernel_image", "bzimage-gzip", bzimage(gzip.compress(vmlinux)))
put("kernel_image", "bzimage-xz", bzimage(lzma.compress(vmlinux, check=lzma.CHECK_CRC32)))
for prog, ext in [(["zstd", "-c"], "zstd"), (["bzip2", "-c"], "bzip2"), (["lz4", "-l", "-c"], "lz4")]:
    out = subprocess.run(prog, input=vmlinux, capture_output=True, check=True).stdout
    put("kernel_image", "bzimage-" + ext, bzimage(out))
PY
  touch "$corpus/.seeded"
fi
# Seeds of the newer targets (added once, beside corpora seeded before them).
if [ ! -e "$corpus/depends/chain" ]; then
  mkdir -p "$corpus/depends"
  printf 'vfat:fat\nfat:\nxfrm_algo:\naf_key:xfrm_algo\n' > "$corpus/depends/chain"
  printf 'fat:vfat\nvfat:fat\n' > "$corpus/depends/cycle"
fi
if [ ! -e "$corpus/manifest/new" ]; then
  mkdir -p "$corpus/manifest"
  printf '{"crate":"hello-mod","version":"0.1.0-rc.1","license":"GPL-2.0-only","metadata":{"kmod":{"name":"hello_mod","kdir":["/usr/src/linux-headers-6.1.0-57-amd64"],"install-dir":"updates","dkms-arch":["arm64"],"hash":"sha512"}}}' > "$corpus/manifest/new"
fi

status=0
for t in "${targets[@]}"; do
  echo "fuzz: $t, $runs runs" >&2
  mkdir -p "$corpus/$t"
  start=$(date +%s)
  if ! cargo fuzz run -O -s "$sanitizer" "$t" "$corpus/$t" -- -runs="$runs" -max_len=65536 -rss_limit_mb=2048 \
       -timeout=10 -print_final_stats=1 2> "$corpus/$t.log"; then
    status=1
    tail -n 40 "$corpus/$t.log" >&2
  fi
  end=$(date +%s)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$corpus/$t.log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz: $t: $execs executions in $((end - start)) s" >&2
done
exit $status
