#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, fixtures) and runs every test.
#   scripts/test.sh [--extended] [cargo test args]
# --extended (not in CI) adds the 7.3-rc and 6.1 kernels and the tests that need them
# (tests/cli/extended.rs, ignored otherwise): about 15 more minutes cold.
set -euo pipefail
cd "$(dirname "$0")/.."
extended=()
if [ "${1:-}" = --extended ]; then extended=(--extended); shift; fi
# Each step's time, printed as a table at the end (also when a step fails).
TEST_TIMES=$(mktemp); export TEST_TIMES
started=$SECONDS
table() {
  echo; echo "test.sh: step times (s)"
  awk -F'\t' '{ printf "  %-62s %5d\n", $1, $2 } END { }' "$TEST_TIMES"
  printf '  %-62s %5d\n' "total" $((SECONDS - started))
  rm -f "$TEST_TIMES"
}
trap table EXIT
at=$SECONDS
step() { printf '%s\t%d\n' "$1" $((SECONDS - at)) >> "$TEST_TIMES"; at=$SECONDS; }
scripts/test-deps.sh "${extended[@]}"
at=$SECONDS
# A short fuzzing pass over every parser of hostile input (scripts/fuzz.sh for long ones).
scripts/fuzz.sh "${FUZZ_RUNS:-30000}"
step "fuzzing (every target x ${FUZZ_RUNS:-30000})"
cargo test "$@"
step "cargo test (build and run)"
if [ ${#extended[@]} -gt 0 ]; then
  cargo test --test cli -- --ignored extended::
  step "extended tests"
fi
