#!/usr/bin/env bash
# api-load benchmark: N concurrent clients create, get, list, update and watch pods on a fresh
# `wasmkube up` at 10k and then 100k stored objects, with a bare etcd (Debian's etcd-server)
# under the same load as the reference column. Prints a table per object count, writes
# bench-results/api-load.json. Extra arguments go to `wasmkube bench api-load` (see --help):
#
#   scripts/bench-api-load.sh                                  10k and 100k, 8 clients
#   scripts/bench-api-load.sh --objects 2000 --duration 3      a quick look
#   NO_ETCD=1 scripts/bench-api-load.sh                        without the etcd column
#   RELEASE=1 scripts/bench-api-load.sh                        release build (the README's figures;
#                                                              the first build takes 20+ minutes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work="$(mktemp -d)"
cleanup() {
    for pid in ${up_pid:-} ${etcd_pid:-}; do { kill "$pid" && wait "$pid"; } 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

etcd_args=()
if [ "${NO_ETCD:-}" != 1 ]; then
    if ! command -v etcd >/dev/null; then
        apt-cache show etcd-server >/dev/null 2>&1 || apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
    fi
    client_port=$(free_port)
    peer_port=$(free_port)
    etcd --name bench --data-dir "$work/etcd" \
        --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "bench=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
    etcd_pid=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$client_port/health" >/dev/null 2>&1 && break
        kill -0 "$etcd_pid" 2>/dev/null || { cat "$work/etcd.log" >&2; exit 1; }
        sleep 0.1
    done
    etcd_args=(--etcd "http://127.0.0.1:$client_port" --etcd-pid "$etcd_pid" --etcd-data-dir "$work/etcd")
    echo "bench: reference $(etcd --version | head -1)" >&2
fi

# The dev build compiles generic code (serde_json's encoding and decoding of every object)
# at opt-level 0 in our crate, which makes lists ~10x slower than they are: measure release.
if [ "${RELEASE:-}" = 1 ]; then
    cargo build -q --release -p orchestrator --bin wasmkube
    bin=target/release/wasmkube
else
    cargo build -q -p orchestrator --bin wasmkube
    bin=target/debug/wasmkube
fi
port=$(free_port)
"$bin" up --data-dir "$work/cluster" --listen "127.0.0.1:$port" >"$work/up.out" 2>"$work/up.err" &
up_pid=$!
for _ in $(seq 1 600); do
    grep -q "^wasmkube is up" "$work/up.out" 2>/dev/null && break
    kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.err" >&2; exit 1; }
    sleep 0.1
done
mkdir -p bench-results
# The cluster is thrown away afterwards: --keep skips deleting 100k pods one namespace at a time.
"$bin" -v bench api-load --kubeconfig "$work/cluster/kubeconfig" --server-pid "$up_pid" \
    --store-file "$work/cluster/store.redb" "${etcd_args[@]}" --keep --json bench-results/api-load.json "$@"
# The server's own warnings (watches that fell behind, failed writes) explain odd figures.
cp "$work/up.err" bench-results/api-load-server.log
echo "bench: the server logged $(grep -c WARN bench-results/api-load-server.log || true) warnings (bench-results/api-load-server.log)" >&2
