#!/bin/bash
# `meson install --destdir` puts every man page under mandir, where man finds
# it by name and section, and the completion script under bash-completion's
# directory once per command, each name loading a script that completes it.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/doc/doclib.sh
. "$PT_SOURCE_ROOT/tests/integration/doc/doclib.sh"

[ -n "${PT_MESON:-}" ] || skip_all "meson was not found when the build was set up"

dest=$PT_TMP/root
run "$PT_MESON" install -C "$PT_BUILD_ROOT" --no-rebuild --quiet --destdir "$dest"
is "$RC" 0 "meson install --destdir succeeds"
[ "$RC" -eq 0 ] || pt_diag "$ERR"

mandir=$dest$PT_DOC_MANDIR
for p in "${DOC_PAGES[@]}"; do
    sec=${p##*.}
    f=$mandir/man$sec/$p
    [ -f "$f" ]
    ok $? "$p is installed in man$sec"
    cmp -s "$f" "$DOC_BUILD/$p"
    ok $? "$p: the installed page is the generated one"
    if command -v man >/dev/null; then
        is "$(man -M "$mandir" -w "$sec" "${p%.*}" 2>&1)" "$f" "man -M MANDIR $sec ${p%.*} finds it"
    fi
done
is "$(find "$mandir" -type f | wc -l)" "${#DOC_PAGES[@]}" "no other page is installed"

compdir=$dest$PT_DOC_COMPLETIONSDIR
for c in "${DOC_COMMANDS[@]}"; do
    f=$compdir/$c
    [ -f "$f" ]
    ok $? "the completion for $c is installed as $PT_DOC_COMPLETIONSDIR/$c"
    run bash --norc --noprofile -c '. "$1" && complete -p "$2"' - "$f" "$c"
    like "$RC:$OUT" "^0:complete -F _phonetrust_[a-z]+ $c\$" "sourcing it, as bash-completion does, completes $c"
done
cmp -s "$compdir/${DOC_COMMANDS[0]}" "$DOC_COMPLETION"
ok $? "the installed script is doc/completion/phonetrust.bash"

done_testing
