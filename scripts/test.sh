#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, fixtures) and runs every test.
#   scripts/test.sh [--extended] [cargo test args]
# --extended (not in CI) adds the 7.3-rc and 6.1 kernels and the tests that need them
# (tests/cli/extended.rs, ignored otherwise): about 15 more minutes cold.
set -euo pipefail
cd "$(dirname "$0")/.."
extended=()
if [ "${1:-}" = --extended ]; then extended=(--extended); shift; fi
scripts/test-deps.sh "${extended[@]}"
# A short fuzzing pass over every parser of hostile input (scripts/fuzz.sh for long ones).
scripts/fuzz.sh "${FUZZ_RUNS:-30000}"
cargo test "$@"
if [ ${#extended[@]} -gt 0 ]; then
  cargo test --test cli -- --ignored extended::
fi
