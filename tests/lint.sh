#!/bin/bash
# Static checks: clang-format (the checked-in .clang-format), shellcheck,
# cppcheck and clang-tidy (the checked-in .clang-tidy) over the project's own
# sources. Usage: tests/lint.sh [BUILD_DIR]   (clang-tidy needs the build
# directory's compile_commands.json; default: build)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
build=${1:-build}
status=0
fail() {
    echo "lint: $*" >&2
    status=1
}

mapfile -t c_files < <(git ls-files '*.c' '*.h')
mapfile -t sh_files < <(git ls-files '*.sh' .ci/run)

echo "== clang-format"
clang-format --dry-run --Werror "${c_files[@]}" || fail "clang-format: run clang-format -i on the files above"

echo "== shellcheck"
shellcheck -x "${sh_files[@]}" || fail "shellcheck"

echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
    --enable=warning,performance,portability \
    --suppress=missingIncludeSystem --suppress=unmatchedSuppression \
    -D_GNU_SOURCE -I common -I token -I ctlclient -I hsm -I ca -I "$build" \
    common token ctlclient hsm ca tests || fail "cppcheck"

echo "== clang-tidy"
if [ -f "$build/compile_commands.json" ]; then
    mapfile -t src < <(git ls-files '*.c')
    out=$(clang-tidy -p "$build" --quiet "${src[@]}" 2>/dev/null | grep -E '(warning|error):')
    if [ -n "$out" ]; then
        printf '%s\n' "$out"
        fail "clang-tidy"
    fi
else
    fail "clang-tidy: no $build/compile_commands.json (run meson setup $build first)"
fi
exit $status
