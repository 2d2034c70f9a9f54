#!/usr/bin/env bash
# Runs every test. On a fresh Debian machine it first installs what the tests need
# (docker-registry, skopeo, runc, the wasm32-wasip2 target, a venv with kubectl and the
# kubernetes client) — see scripts/install-test-deps.sh.
#
#   scripts/test.sh            all tests, then a brief fuzz run (scripts/fuzz.sh, FUZZ_SECONDS
#                              per target, default 10; 0 skips it)
#   scripts/test.sh -E 'package(oci-fetch)'   extra args go to cargo nextest (and skip fuzzing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)

scripts/install-test-deps.sh
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "test.sh: installing cargo-nextest" >&2
    cargo install cargo-nextest --locked
fi

echo "== format"
cargo fmt --all -- --check
(cd orchestrator/api/fuzz && cargo fmt --check) # its own workspace
echo "== sample-app fixtures are current"
sample-apps/build.sh --check
echo "== build (wasmkube binary for the end-to-end tests)"
cargo build --locked -p orchestrator --bin wasmkube
echo "== tests"
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --locked --workspace --profile "$profile" "$@"
# Once, after the tests: every fuzz target for a few seconds from its seeds. The seeds and past
# crashes are already replayed by the tests above; this catches shallow new bugs and keeps the
# targets building. Longer runs by hand: scripts/fuzz.sh SECONDS.
fuzz_seconds="${FUZZ_SECONDS:-10}"
if [ "$#" -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
    echo "== fuzz (${fuzz_seconds}s per target)"
    scripts/fuzz.sh "$fuzz_seconds"
fi
echo "test.sh: done in $(( $(date +%s) - start ))s"
