#!/usr/bin/env bash
# Rebuilds the committed guest fixtures (fixtures/*.wasm) from source.
#
#   ./build.sh           build every app for wasm32-wasip2 (components), config-echo also for
#                        wasm32-wasip1 (a core module, the preview 1 sample), into fixtures/
#   ./build.sh --check   rebuild into a temporary target dir and fail if a committed fixture differs
#
# The release profile (opt-level "s", lto, strip, codegen-units 1) gives byte-identical output
# for the same toolchain and Cargo.lock, so --check compares bytes exactly. A different rustc
# can legitimately produce different bytes: rebuild and commit the fixtures in that case.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

target=wasm32-wasip2
p1_target=wasm32-wasip1
apps=(hello-http hello-cli config-echo cpu-burner mem-hog net-probe crasher word-count)
# cargo names the artifact after the crate: hello-http is a cdylib, so its file uses `_`.
declare -A artifacts=([hello-http]=hello_http.wasm)
# fixture name -> built file, filled below
declare -A outputs=()

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if command -v rustup >/dev/null 2>&1; then
  for t in "$target" "$p1_target"; do
    if ! rustup target list --installed | grep -qx "$t"; then
      echo "build.sh: the $t target is not installed (rustup target add $t); fixtures left as they are" >&2
      exit 0
    fi
  done
fi

if [[ $check == 1 ]]; then
  target_dir="$(mktemp -d)"
  trap 'rm -rf "$target_dir"' EXIT
  # A check must build exactly what Cargo.lock says.
  locked=(--locked)
else
  target_dir="$here/target"
  locked=()
fi

cargo build --release "${locked[@]}" --target "$target" --target-dir "$target_dir"
# The preview 1 sample: the same config-echo source as a core module.
cargo build --release "${locked[@]}" --target "$p1_target" --target-dir "$target_dir" -p config-echo

for app in "${apps[@]}"; do
  outputs[fixtures/$app.wasm]="$target_dir/$target/release/${artifacts[$app]:-$app.wasm}"
done
outputs[fixtures/config-echo.p1.wasm]="$target_dir/$p1_target/release/config-echo.wasm"

mkdir -p fixtures
status=0
for fixture in $(printf '%s\n' "${!outputs[@]}" | sort); do
  built="${outputs[$fixture]}"
  if [[ $check == 1 ]]; then
    if cmp -s "$built" "$fixture"; then
      echo "ok       $fixture"
    else
      echo "DIFFERS  $fixture (run sample-apps/build.sh and commit the result)" >&2
      status=1
    fi
  else
    cp "$built" "$fixture"
    echo "wrote    $fixture ($(wc -c <"$fixture") bytes)"
  fi
done
exit $status
