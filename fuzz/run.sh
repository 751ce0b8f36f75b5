#!/usr/bin/env bash
# Runs labeld's `request` fuzz target for a bounded time; CI calls this.
#
#   fuzz/run.sh [SECONDS]        # default 60
#
# Installs cargo-fuzz when it is missing, builds the target, fuzzes for SECONDS
# seconds and exits 0 when nothing was found. On a crash, hang or out-of-memory
# it exits non-zero and prints the saved input's path and how to reproduce it.
#
# Works on a stable toolchain. Settings (environment):
#   FUZZ_SANITIZER    none (default; stable flags only) or address (ASan: needs
#                     nightly flags, so this script sets RUSTC_BOOTSTRAP=1)
#   FUZZ_RSS_LIMIT_MB memory limit of the fuzzing process, MB (default 2048)
#   FUZZ_MAX_LEN      longest generated input, bytes (default 8192)
#   FUZZ_TIMEOUT      seconds one input may take before it counts as a hang (default 10)
#
# The committed seeds in fuzz/corpus/request are read only; inputs libFuzzer finds
# go to fuzz/target/corpus/request (cache fuzz/target in CI to keep them).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS]  (a positive whole number of seconds; got '$seconds')" >&2
    exit 2
fi
sanitizer="${FUZZ_SANITIZER:-none}"
rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}"
max_len="${FUZZ_MAX_LEN:-8192}"
timeout="${FUZZ_TIMEOUT:-10}"
target=request

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir/.."

case "$sanitizer" in
    none) ;;
    address | leak | memory | thread) export RUSTC_BOOTSTRAP=1 ;;
    *)
        echo "FUZZ_SANITIZER must be none, address, leak, memory or thread; got '$sanitizer'" >&2
        exit 2
        ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

build_args=(--fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer")

echo "== building fuzz target '$target' (sanitizer: $sanitizer)"
cargo fuzz build "${build_args[@]}" "$target"

work_corpus="$fuzz_dir/target/corpus/$target"
seeds="$fuzz_dir/corpus/$target"
artifacts="$fuzz_dir/artifacts/$target"
mkdir -p "$work_corpus" "$artifacts"
stamp="$(mktemp)"
trap 'rm -f "$stamp"' EXIT

echo "== fuzzing '$target' for ${seconds}s"
status=0
cargo fuzz run "${build_args[@]}" "$target" "$work_corpus" "$seeds" -- \
    -dict="$fuzz_dir/dict/$target.dict" \
    -max_total_time="$seconds" \
    -rss_limit_mb="$rss_limit_mb" \
    -malloc_limit_mb="$rss_limit_mb" \
    -max_len="$max_len" \
    -timeout="$timeout" \
    -print_final_stats=1 ||
    status=$?

if [ "$status" -eq 0 ]; then
    echo "== no crash in ${seconds}s"
    exit 0
fi

# slow-unit-* files are only reports, not failures.
mapfile -t found < <(find "$artifacts" -type f -newer "$stamp" ! -name 'slow-unit-*' | sort)
if [ "${#found[@]}" -eq 0 ]; then
    echo "== cargo fuzz failed (exit $status) without saving an input: see the output above" >&2
else
    echo "== fuzzing found a failing input (exit $status):" >&2
    for f in "${found[@]}"; do
        echo "crash input: $f" >&2
    done
    echo "reproduce: ${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }cargo fuzz run --sanitizer $sanitizer $target ${found[0]}" >&2
fi
exit "$status"
