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
while IFS= read -r corpus; do
    part=$(basename "$(dirname "$corpus")")
    target=fuzz-${corpus##*/corpus-}
    exe=$build/tests/fuzz/$part/$target
    [ -x "$exe" ] || { echo "run-fuzzers: $exe missing for $corpus" >&2; exit 1; }
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/
    echo "fuzzing $target for ${seconds}s"
    "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "$work" 2>&1 | tail -n 3
    rm -rf "$work"
    found=$((found + 1))
done < <(find tests/fuzz -mindepth 2 -maxdepth 2 -type d -name 'corpus-*' | sort)
echo "run-fuzzers: $found target(s) fuzzed"
