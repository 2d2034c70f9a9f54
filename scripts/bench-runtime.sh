#!/usr/bin/env bash
# Wasm runtime benchmarks: each prints a table next to its reference and writes
# bench-results/<name>.json (see the README's "Benchmark: ..." sections).
#
#   scripts/bench-runtime.sh density [ARGS]          idle hello-http pods on one node in steps
#                                                    (1k, 5k, 10k; e.g. --steps 1000,5000)
#   scripts/bench-runtime.sh http-throughput [ARGS]  wrk against a pod vs `wasmtime serve`
#   scripts/bench-runtime.sh instantiate [ARGS]      per-request instance cost, pooling vs on-demand
#   scripts/bench-runtime.sh rollout [ARGS]          a 100-replica Deployment rolling at maxSurge 25%
#   scripts/bench-runtime.sh churn [ARGS]            pods replaced per second with 1,000 running
#   scripts/bench-runtime.sh service-throughput [ARGS]  wrk through a Service and an Ingress to
#                                                    1, 2, 4 replicas vs `wasmtime serve`
#   scripts/bench-runtime.sh all                     the six, one after another
#
# ARGS go to `wasmkube bench <name>` (see its --help). density and http-throughput run on a
# fresh `wasmkube up --demo` each (it side-loads wasmkube.local/hello-http:demo), as do rollout
# and churn (control-plane figures: the controllers, scheduler and node agent together).
#   WASMTIME_INSTALL=1   also `cargo install wasmtime-cli` 48.0.8 if missing (~30 min to build);
#                        without wasmtime on PATH its column stays empty
#   DEV=1                the dev build: a quick check only. Our crates are unoptimized there
#                        (wasmtime is not), which slows the HTTP path and the API 2-10x, so
#                        the release build is the default (the first build takes 20+ minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
which="${1:-}"
shift || true
case "$which" in
density | http-throughput | instantiate | rollout | churn | service-throughput | all) ;;
*) sed -n '2,23p' "$0" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
cleanup() {
    stop_cluster
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Every HTTP pod holds a listening socket and its log file open in the server process, so
# thousands of pods need thousands of descriptors: take the hard limit, and say what it is.
ulimit -n "$(ulimit -Hn)"
echo "bench: open files limit (ulimit -n) $(ulimit -n)" >&2

if [ "$which" = http-throughput ] || [ "$which" = service-throughput ] || [ "$which" = all ]; then
    if ! command -v wrk >/dev/null; then
        apt-cache show wrk >/dev/null 2>&1 || apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
    fi
fi
if ! command -v wasmtime >/dev/null && [ "${WASMTIME_INSTALL:-}" = 1 ]; then
    # Only what `run` and `serve` need: the default feature set builds for over an hour here.
    # 48.0.8's `serve` does not compile without component-model-async.
    cargo install wasmtime-cli --version 48.0.8 --locked --no-default-features --features \
        run,serve,cranelift,pooling-allocator,component-model,component-model-async,parallel-compilation,cache,wat,clap/default
fi
have_wasmtime=0
if command -v wasmtime >/dev/null; then
    have_wasmtime=1
    echo "bench: reference $(wasmtime --version)" >&2
else
    echo "bench: wasmtime is not on PATH; its column stays empty (WASMTIME_INSTALL=1 installs it)" >&2
fi

if [ "${DEV:-}" = 1 ]; then
    cargo build -q -p orchestrator --bin wasmkube
    bin=target/debug/wasmkube
else
    cargo build -q --release -p orchestrator --bin wasmkube
    bin=target/release/wasmkube
fi
mkdir -p bench-results
echo "bench: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg), $bin" >&2

start_cluster() {
    local name="$1"
    rm -rf "$work/cluster"
    # Below the test clusters' networks (127.64.0.0 and up) and apart from a default `up`
    # (127.16.0.0/16 services, node 127.0.0.1), so a benchmark, the tests and a cluster of
    # one's own can run on one machine without binding the same pod IPs, cluster IPs or ports.
    "$bin" up --demo --data-dir "$work/cluster" --listen "127.0.0.1:$(free_port)" \
        --pod-network 127.32.0.0/11 --service-network 127.31.0.0/16 --node-ip 127.30.0.1 \
        >"$work/up.out" 2>"$work/up.err" &
    up_pid=$!
    up_name="$name"
    for _ in $(seq 1 600); do
        grep -q "^demo:" "$work/up.out" 2>/dev/null && return
        kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.err" >&2; exit 1; }
        sleep 0.1
    done
    echo "bench: wasmkube up did not get its demo running in 60s" >&2
    exit 1
}

# The cluster is thrown away: give it 60 s to stop its pods, then kill it.
stop_cluster() {
    [ -n "${up_pid:-}" ] || return 0
    kill "$up_pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
    # The server's own warnings (pods that failed, watches that fell behind) explain odd figures.
    cp "$work/up.err" "bench-results/$up_name-server.log"
    echo "bench: the server logged $(grep -c WARN "bench-results/$up_name-server.log" || true) warnings (bench-results/$up_name-server.log)" >&2
    up_pid=
}

density() {
    start_cluster density
    "$bin" bench density --kubeconfig "$work/cluster/kubeconfig" --server-pid "$up_pid" --keep \
        --json bench-results/density.json "$@"
    stop_cluster
}

# http-throughput / service-throughput: wrk on a fresh demo cluster, next to `wasmtime serve`.
wrk_bench() {
    local name="$1" reference=()
    shift
    [ "$have_wasmtime" = 1 ] && reference=(--wasmtime-component sample-apps/fixtures/hello-http.wasm)
    start_cluster "$name"
    "$bin" bench "$name" --kubeconfig "$work/cluster/kubeconfig" --server-pid "$up_pid" \
        "${reference[@]}" --json "bench-results/$name.json" "$@"
    stop_cluster
}

instantiate() {
    local reference=()
    [ "$have_wasmtime" = 1 ] && reference=(--wasmtime)
    "$bin" bench instantiate --component sample-apps/fixtures/hello-http.wasm "${reference[@]}" \
        --json bench-results/instantiate.json "$@"
}

# rollout / churn: `wasmkube bench rollout|churn` on a fresh demo cluster.
control_plane() {
    local name="$1"
    shift
    start_cluster "$name"
    "$bin" bench "$name" --kubeconfig "$work/cluster/kubeconfig" --server-pid "$up_pid" \
        --json "bench-results/$name.json" "$@"
    stop_cluster
}

case "$which" in
rollout | churn) control_plane "$which" "$@" ;;
density) density "$@" ;;
http-throughput | service-throughput) wrk_bench "$which" "$@" ;;
instantiate) instantiate "$@" ;;
all) instantiate && wrk_bench http-throughput && wrk_bench service-throughput && density && control_plane rollout && control_plane churn ;;
esac
