#!/bin/bash
# Build every fuzz target with libFuzzer (clang) and run each for a bounded time
# on a copy of its seed corpus. Usage: run-fuzzers.sh BUILD_DIR SECONDS
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
seconds=${2:-60}
rm -rf "$build"
CC=clang meson setup "$build" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug >/dev/null
meson compile -C "$build" >/dev/null
found=0
failed=0
artifacts=$PWD/$build/fuzz-artifacts
mkdir -p "$artifacts"
while IFS= read -r corpus; do
    part=$(basename "$(dirname "$corpus")")
    target=fuzz-${corpus##*/corpus-}
    exe=$build/tests/fuzz/$part/$target
    [ -x "$exe" ] || { echo "run-fuzzers: $exe missing for $corpus" >&2; exit 1; }
    exe=$(realpath "$exe")
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/
    echo "fuzzing $target for ${seconds}s"
    log=$(mktemp)
    # A finding leaves its input in $artifacts (crash-*, leak-*, timeout-*) and
    # the fuzzer's report on the terminal.
    if ! (cd "$artifacts" && "$exe" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "$work" >"$log" 2>&1); then
        cat "$log"
        echo "run-fuzzers: $target found a problem; its input is in $artifacts" >&2
        failed=$((failed + 1))
    else
        tail -n 3 "$log"
    fi
    rm -rf "$work" "$log"
    found=$((found + 1))
done < <(find tests/fuzz -mindepth 2 -maxdepth 2 -type d -name 'corpus-*' | sort)
echo "run-fuzzers: $found target(s) fuzzed, $failed with findings"
[ "$failed" -eq 0 ]
