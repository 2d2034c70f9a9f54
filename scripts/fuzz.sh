#!/usr/bin/env bash
# Fuzzes the decoders of wasmkube-api (orchestrator/api/fuzz, libFuzzer): installs the nightly
# toolchain if missing, builds every target, then runs each for
# SECONDS (default 20) from the committed seeds and minimized crashes, as many at once as there
# are cores. New corpus entries go to orchestrator/api/fuzz/work/ (not committed).
#
#   scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]
#   scripts/fuzz.sh 900 patch_strategic          # a long run of one target
#   FUZZ_SANITIZER=address scripts/fuzz.sh 600   # with AddressSanitizer (slower build and run)
#
# The build passes cargo-fuzz's own instrumentation flags straight to cargo, so CI needs no
# cargo-fuzz (installing it compiles for minutes); by hand, `cargo fuzz` works in the same dir.
# A failing target leaves its input in orchestrator/api/fuzz/artifacts/<target>/. Minimize it
# (cd orchestrator/api/fuzz && cargo +nightly fuzz tmin -s none <target> <file>), fix the bug,
# and commit the minimized input under orchestrator/api/tests/fuzz-regressions/<target>/, where
# `cargo test -p wasmkube-api` replays it from then on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)

seconds="${1:-20}"
shift || true
# No AddressSanitizer by default: wasmkube-api forbids unsafe code, panics, overflows, stack
# overflows, timeouts and memory blow-ups are caught without it, and it makes the build slower
# and the run about five times slower.
sanitizer="${FUZZ_SANITIZER:-none}"
fuzz_dir=orchestrator/api/fuzz

say() { echo "fuzz.sh: $*" >&2; }

# --- tools, only what is missing -----------------------------------------------------------
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "rustup toolchain install nightly"
    rustup toolchain install nightly --profile minimal
fi

cd "$fuzz_dir"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    # The [[bin]] names of the fuzz crate.
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^wasmkube-api-fuzz$')
fi

# --- build ---------------------------------------------------------------------------------
# What `cargo fuzz build` does (cargo-fuzz 0.13 src/project.rs): libFuzzer's coverage
# instrumentation, `--cfg fuzzing`, for the host triple in release. Plus overflow checks
# (-Cdebug-assertions), and 16 codegen units instead of 1: the build takes a third of the
# time, the targets run about as fast.
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
rustflags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
rustflags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
rustflags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
rustflags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth"
rustflags+=" -Cdebug-assertions -Ccodegen-units=16"
[ "$sanitizer" != none ] && rustflags+=" -Zsanitizer=$sanitizer"
build_start=$(date +%s)
bins=()
for target in "${targets[@]}"; do bins+=(--bin "$target"); done
RUSTFLAGS="$rustflags" cargo +nightly build --locked --release --target "$triple" "${bins[@]}"
say "built ${#targets[@]} targets in $(($(date +%s) - build_start))s"

dict_for() {
    case "$1" in
        yaml_decode) echo dict/yaml.dict ;;
        label_selector | field_selector | query_string) echo dict/selector.dict ;;
        cidr) ;;
        *) echo dict/json.dict ;;
    esac
}

# One target: libFuzzer grows work/<target> from the seeds and the regressions; a panic, a
# timeout (10 s for one input) or more than 2 GiB of memory is a failure.
run_target() {
    local target="$1" log="work/$1.log"
    local inputs=("corpus/$target")
    [ -d "../tests/fuzz-regressions/$target" ] && inputs+=("../tests/fuzz-regressions/$target")
    local dict
    dict=$(dict_for "$target")
    mkdir -p "work/$target" "artifacts/$target"
    if "target/$triple/release/$target" "work/$target" "${inputs[@]}" \
        -artifact_prefix="artifacts/$target/" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        ${dict:+-dict="$dict"} >"$log" 2>&1; then
        echo ok >"work/$target.result"
    else
        echo FAILED >"work/$target.result"
    fi
}

# --- run, as many targets at once as there are cores ----------------------------------------
jobs=$(nproc 2>/dev/null || echo 1)
mkdir -p work
running=0
for target in "${targets[@]}"; do
    rm -f "work/$target.result"
    run_target "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=()
printf '%-16s %8s %12s %10s  %s\n' target seconds executions exec/s result >&2
for target in "${targets[@]}"; do
    log="work/$target.log"
    result=$(cat "work/$target.result" 2>/dev/null || echo FAILED)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    printf '%-16s %8s %12s %10s  %s\n' "$target" "$seconds" "${runs:-?}" "${rate:-?}" "$result" >&2
    if [ "$result" != ok ]; then
        failed+=("$target")
        grep -E "panicked at|^ERROR:|SUMMARY|Test unit written" "$log" | head -n 8 | sed 's/^/    /' >&2 || true
    fi
done
say "done in $(($(date +%s) - start))s"
if [ "${#failed[@]}" -gt 0 ]; then
    say "FAILED: ${failed[*]} (logs: $fuzz_dir/work/<target>.log, inputs: $fuzz_dir/artifacts/<target>/)"
    exit 1
fi
