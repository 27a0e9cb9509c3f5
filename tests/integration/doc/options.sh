#!/bin/bash
# The man pages against the programs: every long option that a command's
# --help (or a subcommand's --help) prints is documented in its man page; every
# option the page documents (SYNOPSIS, option lists) is one the --help prints
# (or one listed in help-exceptions.txt as missing from it) and one the
# program's parser accepts. Also the sections every page needs.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/doc/doclib.sh
. "$PT_SOURCE_ROOT/tests/integration/doc/doclib.sh"

for c in "${DOC_COMMANDS[@]}"; do
    page=$(doc_page "$c") || {
        ok 1 "$c has a man page"
        continue
    }
    name=${page##*/}
    [ -f "$page" ] || {
        ok 1 "$name was generated"
        continue
    }

    # Every --help of the command, and their options.
    help_opts=""
    n_ctx=0
    while IFS= read -r ctx; do
        # shellcheck disable=SC2086 # context words
        help_opts+=$(doc_help_options "$c" $ctx)$'\n'
        n_ctx=$((n_ctx + 1))
    done < <(doc_contexts "$c")
    help_opts=$(printf '%s' "$help_opts" | sed '/^$/d' | sort -u)
    [ -n "$help_opts" ]
    ok $? "$c: $n_ctx --help texts read, $(printf '%s\n' "$help_opts" | wc -l) long options"

    man_opts=$(doc_man_options "$page")
    man_long=$(printf '%s\n' "$man_opts" | grep -E '^--' || true)

    missing=$(doc_list_missing "$help_opts" "$man_long")
    [ -z "$missing" ]
    ok $? "$name documents every option of $c's --help"
    [ -z "$missing" ] || pt_diag "not documented in $name:" "$missing"

    omitted=$(doc_omitted "$c" | awk '{ print $2 }')
    extra=$(doc_list_missing "$man_long" "$help_opts"$'\n'"$omitted"$'\n--help')
    [ -z "$extra" ]
    ok $? "$name documents only options that $c's --help prints"
    [ -z "$extra" ] || pt_diag "in $name but in no --help of $c (fix one, or list it in help-exceptions.txt):" "$extra"

    rejected=""
    while IFS= read -r o; do
        [ -n "$o" ] || continue
        doc_accepted_somewhere "$c" "$o" || rejected+="$o "
    done <<<"$man_opts"
    [ -z "$rejected" ]
    ok $? "$c accepts every option $name documents"
    [ -z "$rejected" ] || pt_diag "$c rejects: $rejected"

    # help-exceptions.txt stays true: omitted options are accepted, and still omitted.
    while read -r ctx o; do
        doc_accepts "$c" "$ctx" "$o"
        ok $? "$c accepts $o in context '$ctx' (help-exceptions.txt)"
        ! printf '%s\n' "$help_opts" | grep -qxe "$o"
        ok $? "$c's --help still omits $o (else remove it from help-exceptions.txt)"
    done < <(doc_omitted "$c")
done

# The sections of every page; the pages they refer to exist.
for p in "${DOC_PAGES[@]}"; do
    f=$DOC_BUILD/$p
    want="NAME SYNOPSIS DESCRIPTION EXAMPLES FILES|ENVIRONMENT SEE.ALSO"
    case $p in
    *.5) ;;
    *) want+=" OPTIONS|COMMANDS EXIT.STATUS ENVIRONMENT" ;;
    esac
    case $p in
    ctlclient.1 | phonetrust-softhsm.1 | hsmctl.8 | hsmd.8 | capfd.8) want+=" PIN.HANDLING" ;;
    esac
    case $p in
    hsmd.8 | capfd.8) want+=" SIGNALS" ;;
    esac
    absent=""
    for s in $want; do
        grep -qE "^\.SH \"?($s)\"?\$" "$f" || absent+="$s "
    done
    [ -z "$absent" ]
    ok $? "$p has the sections $want"
    [ -z "$absent" ] || pt_diag "missing: $absent"

    grep -qE "^\.TH [A-Z.\\-]+ ${p##*.} \"[0-9-]+\" \"phonetrust $PT_DOC_VERSION\" " "$f"
    ok $? "$p has a .TH line with its section and the project's version"

    # References to the project's own pages name existing pages.
    bad=""
    while IFS= read -r ref; do
        case " ${DOC_PAGES[*]} " in *" $ref "*) ;; *) bad+="$ref " ;; esac
    done < <(sed -n 's/\\-/-/g; s/^\.BR \(ctlclient\|phonetrust-softhsm\|hsmctl\|hsmd\|hsmd\.conf\|capfd\|capfd\.conf\|capfctl\) (\([158]\)).*/\1.\2/p' "$f")
    [ -z "$bad" ]
    ok $? "$p refers to phonetrust pages by their right section"
    [ -z "$bad" ] || pt_diag "no such page: $bad"
done

done_testing
