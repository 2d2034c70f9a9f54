#!/usr/bin/env bash
# pod-startup benchmark: N pods of the cached hello-http image on a fresh `wasmkube up`, next to
# the cold start of `wasmtime serve` on the same component and `runc run` of a busybox bundle,
# all on this machine in this run. Prints a table, writes bench-results/pod-startup.json.
#
#   scripts/bench-pod-startup.sh [PODS]            (default 100)
#   WASMTIME_INSTALL=1 scripts/bench-pod-startup.sh  also `cargo install wasmtime-cli` if missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pods="${1:-100}"
work="$(mktemp -d)"
cleanup() { [ -n "${up_pid:-}" ] && kill "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for pkg in runc busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $pkg"
done
if [ -n "${missing:-}" ]; then
    apt-cache show $missing >/dev/null 2>&1 || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# A busybox bundle whose process runs `true` (the Linux cold-start reference).
bundle="$work/busybox-bundle"
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
(cd "$bundle" && runc spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/busybox", "true"]
c["process"]["terminal"] = False
c["root"]["readonly"] = True
json.dump(c, open(p, "w"))
PY

wasmtime_args=()
if ! command -v wasmtime >/dev/null && [ "${WASMTIME_INSTALL:-}" = 1 ]; then
    cargo install wasmtime-cli --version 48.0.8 --locked
fi
if command -v wasmtime >/dev/null; then
    wasmtime_args=(--wasmtime-component sample-apps/fixtures/hello-http.wasm)
else
    echo "bench: wasmtime is not on PATH; its column stays empty (WASMTIME_INSTALL=1 installs it)" >&2
fi

cargo build -q -p orchestrator --bin wasmkube
bin=target/debug/wasmkube
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" up --demo --data-dir "$work/cluster" --listen "127.0.0.1:$port" >"$work/up.out" 2>"$work/up.err" &
up_pid=$!
for _ in $(seq 1 600); do
    grep -q "^demo:" "$work/up.out" 2>/dev/null && break
    kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.err" >&2; exit 1; }
    sleep 0.1
done
grep "^demo:" "$work/up.out" >&2
mkdir -p bench-results
"$bin" bench pod-startup --pods "$pods" --kubeconfig "$work/cluster/kubeconfig" \
    --runc-bundle "$bundle" "${wasmtime_args[@]}" --json bench-results/pod-startup.json
