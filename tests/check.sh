#!/bin/bash
# Build phonetrust from scratch and run every test. This is the README's test
# command and what CI runs first.
#   BUILD_DIR   build directory (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
tests/install-deps.sh
build=${BUILD_DIR:-build}
if [ -d "$build" ]; then
    meson setup --wipe "$build" -Dwerror=true
else
    meson setup "$build" -Dwerror=true
fi
meson compile -C "$build"
meson test -C "$build" --print-errorlogs --num-processes "$(nproc)"
