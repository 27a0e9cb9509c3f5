#!/bin/bash
# The bash completion script (doc/completion/phonetrust.bash), sourced in a
# non-interactive bash whose completion functions are called with COMP_WORDS as
# readline splits them: it registers every command; in every context (command,
# subcommand, subsubcommand) it offers the subcommands the --help lists, every
# option that context's --help prints, only options the parser accepts there,
# and the values a --help lists for an option (--mode mixed|nonsecure); and it
# completes key specs, URIs, modules and files as expected.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/doc/doclib.sh
. "$PT_SOURCE_ROOT/tests/integration/doc/doclib.sh"

# comp WORD...: the completions for a command line whose last word is being
# completed, one per line, sorted (run in a fresh bash from $PT_TMP/cwd).
comp() {
    (
        cd "$PT_TMP/cwd" || exit 1
        bash --norc --noprofile -c '
            . "$1" || exit 1
            shift
            COMP_WORDS=("$@")
            COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            COMP_LINE="$*"
            COMP_POINT=${#COMP_LINE}
            spec=$(complete -p "$1") || exit 1
            fn=${spec#*-F }
            fn=${fn%% *}
            COMPREPLY=()
            "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
            printf "%s\n" "${COMPREPLY[@]}"
        ' comp "$DOC_COMPLETION" "$@" | sed '/^$/d' | sort
    )
}

# is_set GOT WANT DESCRIPTION: the same lines, in any order.
is_set() {
    is "$(printf '%s\n' "$1" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')" \
        "$(printf '%s\n' "$2" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')" "$3"
}

mkdir -p "$PT_TMP/cwd/dir" "$PT_TMP/cwd/mods"
touch "$PT_TMP/cwd/CTLFile.tlv" "$PT_TMP/cwd/notes.txt" "$PT_TMP/cwd/hsmd.conf" \
    "$PT_TMP/cwd/devices.csv" "$PT_TMP/cwd/capf.db" "$PT_TMP/cwd/cucm.pem" \
    "$PT_TMP/cwd/mods/libvendor-pkcs11.so" "$PT_TMP/cwd/mods/README"

# --- the script itself -------------------------------------------------------
if command -v shellcheck >/dev/null; then
    out=$(shellcheck -s bash "$DOC_COMPLETION" 2>&1)
    ok $? "shellcheck has nothing to say about phonetrust.bash"
    [ -z "$out" ] || pt_diag "$out"
else
    printf 'ok %d - shellcheck # SKIP shellcheck is not installed\n' $((PT_TEST_COUNT += 1))
fi
run bash --norc --noprofile -c '. "$1" && for c in "${@:2}"; do complete -p "$c" || exit 1; done' \
    - "$DOC_COMPLETION" "${DOC_COMMANDS[@]}"
is "$RC" 0 "sourcing it registers a completion for ${DOC_COMMANDS[*]}"
is "$(printf '%s\n' "$OUT" | grep -c -- '-F _phonetrust_')" "${#DOC_COMMANDS[@]}" \
    "each with a function of its own"
is "$ERR" "" "and prints nothing"

# --- every context against the --help texts -----------------------------------
for c in "${DOC_COMMANDS[@]}"; do
    # shellcheck disable=SC2086 # context words
    union=$(doc_contexts "$c" | while IFS= read -r ctx; do doc_help_options "$c" $ctx; done | sort -u)
    omitted=$(doc_omitted "$c" | awk '{ print $2 }')
    declare -A group_offered=() group_help=() group_text=() group_ctxs=()
    while IFS= read -r ctx; do
        # shellcheck disable=SC2206 # context words
        words=($ctx)
        key=$(doc_ctx_key "${words[@]}")
        help=$(doc_help "$c" "${words[@]}")
        h=$(printf '%s' "$help" | cksum | cut -d' ' -f1)
        group_help[$h]=$(doc_help_options "$c" "${words[@]}")
        group_text[$h]=$help
        group_ctxs[$h]+="$key "

        # Subcommands.
        subs=$(doc_subcommands "$c" "$ctx")
        if [ -n "$subs" ]; then
            is_set "$(comp "$c" "${words[@]}" '')" "$subs" "$c ${ctx:+$ctx }<TAB> offers the subcommands its --help lists"
        fi

        # Options.
        offered=$(comp "$c" "${words[@]}" -)
        group_offered[$h]+=$offered$'\n'
        rejected=""
        for o in $offered; do
            doc_accepts "$c" "$key" "$o" || rejected+="$o "
        done
        [ -z "$rejected" ]
        ok $? "$c ${ctx:+$ctx }-<TAB> offers only options the parser takes there"
        [ -z "$rejected" ] || pt_diag "not accepted: $rejected"
        unknown=$(doc_list_missing "$(printf '%s\n' "$offered" | grep -E '^--')" "$union"$'\n'"$omitted"$'\n--help')
        [ -z "$unknown" ]
        ok $? "$c ${ctx:+$ctx }-<TAB> offers only options some --help of $c prints"
        [ -z "$unknown" ] || pt_diag "in no --help: $unknown"
    done < <(doc_contexts "$c")

    for h in "${!group_help[@]}"; do
        missing=$(doc_list_missing "${group_help[$h]}" "${group_offered[$h]}")
        [ -z "$missing" ]
        ok $? "$c (contexts ${group_ctxs[$h]% }): every option of their --help is offered"
        [ -z "$missing" ] || pt_diag "never offered: $missing"

        # Values a --help lists with an option ("--mode mixed|nonsecure").
        while read -r opt vals; do
            found=0
            for key in ${group_ctxs[$h]}; do
                words=()
                [ "$key" = - ] || IFS=/ read -ra words <<<"$key"
                got=$(comp "$c" "${words[@]}" "$opt" '')
                [ -z "$(doc_list_missing "$(printf '%s\n' "${vals//|/$'\n'}")" "$got")" ] && found=1 && break
            done
            ok $((!found)) "$c (contexts ${group_ctxs[$h]% }) $opt <TAB> offers $vals"
        done < <(printf '%s\n' "${group_text[$h]}" | grep -oE -- '--[a-z][a-z-]* [A-Za-z0-9:/-]+(\|[A-Za-z0-9:/-]+)+' | sort -u)
    done
    unset group_offered group_help group_text group_ctxs
done

# --- arguments ----------------------------------------------------------------
is_set "$(comp ctlclient create --mode '')" "mixed nonsecure" "--mode: mixed, nonsecure"
is_set "$(comp ctlclient create --digest = '')" "sha1 sha512" "--digest=<TAB>: sha1, sha512"
is_set "$(comp ctlclient token enroll pkcs11:token=A --key rsa :)" $'2048\n3072\n4096' \
    "--key rsa:<TAB>, split at ':' by readline: the sizes"
is_set "$(comp ctlclient token enroll pkcs11:token=A --key rsa : 4)" 4096 "--key rsa:4<TAB>: 4096"
is_set "$(comp hsmctl init --capf-key ec : P-3)" P-384 "hsmctl --capf-key ec:P-3<TAB>: P-384"
is_set "$(comp hsmctl init --itlrecovery-key '')" $'rsa:2048\nrsa:4096' "--itlrecovery-key: RSA only"
is_set "$(comp capfd --new-key '')" $'rsa:2048\nrsa:3072\nec:P-256' "capfd --new-key: the three specs"
is_set "$(comp capfctl add SEP58971ECC97C1 --key ec-preferred : '')" P-256/rsa:2048 \
    "capfctl --key ec-preferred:<TAB>"
is_set "$(comp capfctl find --lsc-status install-f)" install-failed "--lsc-status install-f<TAB>"
is_set "$(comp capfctl set SEP58971ECC97C1 --auth '')" "null string lsc mic" "--auth: the four modes"
is_set "$(comp ctlclient create --sast '')" \
    $'pkcs11:token=\npkcs11:serial=\nhsmd:/run/phonetrust/hsmd.sock#' "--sast: a PKCS#11 URI or an hsmd key"
is_set "$(comp ctlclient create --ccm-tftp t)" tls:// "--ccm-tftp t<TAB>: tls://"
is_set "$(comp ctlclient create --ccm-tftp '')" $'cucm.pem\ndir\nmods' "--ccm-tftp: certificate files"
is_set "$(comp ctlclient token pin '')" $'pkcs11:token=\npkcs11:serial=' "token pin: a URI"
is_set "$(comp ctlclient show '')" $'CTLFile.tlv\ndir\nmods' "show: .tlv files"
is_set "$(comp ctlclient update -i '')" $'CTLFile.tlv\ndir\nmods' "update -i: .tlv files"
is_set "$(comp ctlclient token list --module mods/)" mods/libvendor-pkcs11.so "--module: .so files"
got=$(comp hsmctl list --module '')
unlike "$got" 'notes|README' "--module with nothing typed: only modules"
is_set "$(comp hsmd --config '')" $'dir\nhsmd.conf\nmods' "hsmd --config: .conf files"
is_set "$(comp capfd --config = '')" $'dir\nhsmd.conf\nmods' "capfd --config=<TAB>"
is_set "$(comp capfctl import '')" $'devices.csv\ndir\nmods' "capfctl import: .csv files"
is_set "$(comp capfctl report -o '')" $'devices.csv\ndir\nmods' "capfctl report -o: .csv files"
is_set "$(comp capfctl --db '')" sqlite: "--db: sqlite:"
is_set "$(comp capfctl --db sqlite : c)" capf.db "--db sqlite:c<TAB>: the store file"
is_set "$(comp capfctl --db = sqlite : c)" capf.db "--db=sqlite:c<TAB>"
is_set "$(comp hsmctl regenerate '')" "capf itlrecovery" "hsmctl regenerate: the two keys"
is_set "$(comp hsmctl call '')" "status cert issue sign-tlv" "hsmctl call: the four requests"
is_set "$(comp hsmctl call --socket /run/x.sock cert '')" "CAPF ITLRecovery" "hsmctl call cert: key labels"
is_set "$(comp hsmctl audit verify '')" $'capf.db\nCTLFile.tlv\ncucm.pem\ndevices.csv\ndir\nhsmd.conf\nmods\nnotes.txt' \
    "hsmctl audit verify: any file"
is_set "$(comp phonetrust-softhsm --dir dir add-token --pin-file n)" notes.txt "phonetrust-softhsm --pin-file: files"
is_set "$(comp phonetrust-softhsm init '')" $'dir\nmods' "phonetrust-softhsm init: a directory"
is_set "$(comp ctlclient update --remove-sast '')" "" "--remove-sast SERIAL: nothing to guess"
is_set "$(comp ctlclient -v '')" "create update show verify itl token" "after -v: the commands"

done_testing
