#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, fixtures) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
# A short fuzzing pass over every parser of hostile input (scripts/fuzz.sh for long ones).
scripts/fuzz.sh "${FUZZ_RUNS:-30000}"
cargo test "$@"
