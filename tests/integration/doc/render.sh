#!/bin/bash
# Every man page renders without a warning: groff with every warning enabled,
# man-db's man --warnings, mandoc -Tlint when mandoc is installed; its NAME line
# is one that whatis/apropos can index (lexgrog); meson filled in every @VAR@.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/doc/doclib.sh
. "$PT_SOURCE_ROOT/tests/integration/doc/doclib.sh"

command -v groff >/dev/null || skip_all "groff is not installed"

skip() { printf 'ok %d - %s # SKIP %s\n' $((PT_TEST_COUNT += 1)) "$1" "$2"; }

for p in "${DOC_PAGES[@]}"; do
    f=$DOC_BUILD/$p
    if [ ! -f "$f" ]; then
        ok 1 "$p was generated"
        continue
    fi
    name=${p%.[0-9]}
    left=$(grep -o '@[A-Z_]*@' "$f" | sort -u | tr '\n' ' ')
    is "$left" "" "$p: every @VARIABLE@ is substituted"

    run groff -man -ww -z "$f"
    is "$RC:$ERR" "0:" "$p: groff -man -ww renders it without a warning"

    if command -v man >/dev/null; then
        RC=0
        ERR=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >"$PT_TMP/page.txt") || RC=$?
        is "$RC:$ERR" "0:" "$p: man --warnings -l renders it without a warning"
        like "$(head -1 "$PT_TMP/page.txt")" "^$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]' | sed 's/\./\\./g')\(${p##*.}\)" \
            "$p: its header names ${name}(${p##*.})"
    else
        skip "$p: man --warnings" "man is not installed"
    fi

    if command -v mandoc >/dev/null; then
        run mandoc -Tlint -Wwarning "$f"
        is "$RC:$OUT$ERR" "0:" "$p: mandoc -Tlint has nothing to say"
    else
        skip "$p: mandoc -Tlint" "mandoc is not installed"
    fi

    if command -v lexgrog >/dev/null; then
        run lexgrog "$f"
        like "$OUT" "^$f: \"${name//./\\.} - [a-z]" "$p: lexgrog reads its NAME line (whatis, apropos)"
    else
        skip "$p: lexgrog" "man-db's lexgrog is not installed"
    fi
done

done_testing
