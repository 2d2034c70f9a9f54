#!/usr/bin/env bash
# linux-start benchmark: busybox pods (Linux fallback, runc) from creation to Running on a fresh
# `wasmkube up`, next to `runc run` alone on the same busybox rootfs, in the same run. The
# image is built by sample-apps/busybox/build-image.sh and served by a throwaway registry.
# Prints a table, writes bench-results/linux-start.json. Needs root (runc).
#
#   scripts/bench-linux-start.sh [PODS]     (default 10)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pods="${1:-10}"
work="$(mktemp -d)"
cleanup() {
    for pid in ${up_pid:-} ${registry_pid:-}; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
scripts/install-test-deps.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The image, and the same rootfs as a runc bundle running `true`.
bundle="$work/bundle"
ROOTFS_OUT="$bundle/rootfs" sample-apps/busybox/build-image.sh "$work/layout" 1 >/dev/null
(cd "$bundle" && runc spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/busybox", "true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY

registry="127.0.0.1:$(free_port)"
mkdir -p "$work/storage"
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$work/storage" "$registry" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do curl -fs "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$work/layout:1" "docker://$registry/busybox:1"

cargo build -q -p orchestrator --bin wasmkube
bin=target/debug/wasmkube
port="$(free_port)"
"$bin" up --data-dir "$work/cluster" --listen "127.0.0.1:$port" >"$work/up.out" 2>"$work/up.err" &
up_pid=$!
for _ in $(seq 1 600); do
    grep -q "Press Ctrl-C" "$work/up.out" 2>/dev/null && break
    kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.err" >&2; exit 1; }
    sleep 0.1
done
mkdir -p bench-results
"$bin" bench linux-start --pods "$pods" --image "$registry/busybox:1" \
    --kubeconfig "$work/cluster/kubeconfig" --runc-bundle "$bundle" --json bench-results/linux-start.json
