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
# Prints a phase heading and how long the previous phase took, so a CI log shows where the
# minutes go.
phase_name="" phase_start=$start
phase() {
    local now
    now=$(date +%s)
    [ -n "$phase_name" ] && echo "test.sh: $phase_name took $((now - phase_start))s"
    phase_name="$1" phase_start=$now
    [ -n "$1" ] && echo "== $1"
    return 0
}
phase "install test dependencies"
# A CI clone builds everything once from nothing: incremental compilation only adds work there.
[ "${CI:-}" = "true" ] && export CARGO_INCREMENTAL=0

scripts/install-test-deps.sh
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "test.sh: installing cargo-nextest" >&2
    cargo install cargo-nextest --locked
fi

phase "format"
cargo fmt --all -- --check
(cd orchestrator/api/fuzz && cargo fmt --check) # its own workspace
phase "sample-app fixtures are current"
sample-apps/build.sh --check
# One build for the tests and the wasmkube binary the end-to-end tests start (cargo builds a
# package's binaries for its integration tests). A separate `cargo build -p orchestrator`
# first resolved dependency features without the dev-dependencies, so the test build compiled
# wasmtime, cranelift and 130 other crates a second time (about 8 of CI's 37 minutes).
phase "build (tests and the wasmkube binary)"
cargo nextest run --locked --workspace --no-run
phase "tests"
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --locked --workspace --profile "$profile" "$@"
# Once, after the tests: every fuzz target for a few seconds from its seeds. The seeds and past
# crashes are already replayed by the tests above; this catches shallow new bugs and keeps the
# targets building. Longer runs by hand: scripts/fuzz.sh SECONDS.
fuzz_seconds="${FUZZ_SECONDS:-10}"
if [ "$#" -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
    phase "fuzz (${fuzz_seconds}s per target)"
    scripts/fuzz.sh "$fuzz_seconds"
fi
phase ""
echo "test.sh: done in $(( $(date +%s) - start ))s"
