# shellcheck shell=bash disable=SC2034
# (variables set here are used by the scripts that source this file)
# Shared by the documentation tests (render.sh, options.sh, completion.sh,
# install.sh), which doc/meson.build declares: the commands, their --help texts
# and contexts (COMMAND [SUBCOMMAND [SUBSUBCOMMAND]]), the options a man page
# documents, and whether a command really accepts an option. Source after
# tests/lib/testlib.sh.

DOC_BUILD=$PT_BUILD_ROOT/doc
DOC_SRC=$PT_SOURCE_ROOT/doc
DOC_COMPLETION=$DOC_SRC/completion/phonetrust.bash
DOC_EXCEPTIONS=$PT_SOURCE_ROOT/tests/integration/doc/help-exceptions.txt
read -ra DOC_PAGES <<<"${PT_DOC_PAGES:?run this test through meson test}"
read -ra DOC_COMMANDS <<<"${PT_DOC_COMMANDS:?run this test through meson test}"

# doc_exe COMMAND: the built program.
doc_exe() {
    case $1 in
    ctlclient) printf '%s\n' "$PT_BUILD_ROOT/ctlclient/ctlclient" ;;
    phonetrust-softhsm) printf '%s\n' "$PT_BUILD_ROOT/token/phonetrust-softhsm" ;;
    hsmctl | hsmd) printf '%s\n' "$PT_BUILD_ROOT/hsm/$1" ;;
    capfd | capfctl) printf '%s\n' "$PT_BUILD_ROOT/ca/$1" ;;
    *) return 1 ;;
    esac
}

# doc_page COMMAND: the generated man page of a command.
doc_page() {
    local p
    for p in "${DOC_PAGES[@]}"; do
        if [ "${p%.[0-9]}" = "$1" ]; then
            printf '%s\n' "$DOC_BUILD/$p"
            return 0
        fi
    done
    return 1
}

# The programs run with a private HOME, store and SoftHSM2 configuration, so
# that nothing here touches the machine's tokens or devices.
doc_run() {
    HOME=$PT_TMP CAPFCTL_DB=sqlite:$PT_TMP/doc-test.db SOFTHSM2_CONF=$PT_TMP/none.conf \
        timeout 20 "$@" </dev/null
}

# doc_help COMMAND [CONTEXT WORDS...]: the --help text of a context.
doc_help() {
    local exe
    exe=$(doc_exe "$1") || return 1
    shift
    doc_run "$exe" "$@" --help 2>&1
}

# doc_contexts COMMAND: one line per context, "" for the command itself, then
# "SUB" and "SUB SUBSUB", read from the "Commands:" part of its --help (a line
# "  SUB [a|b|c]  what it does", two blanks before the name).
doc_contexts() {
    echo ""
    doc_help "$1" | awk '
        /^Commands:/ { on = 1; next }
        on && /^$/ { exit }
        on && match($0, /^  [a-z][a-z-]*( [a-z|]+)?/) {
            n = split(substr($0, 3, RLENGTH - 2), w, " ")
            print w[1]
            if (n > 1) { k = split(w[2], s, "|"); for (i = 1; i <= k; i++) print w[1] " " s[i] }
        }'
}

# doc_subcommands COMMAND [SUB]: the names a context offers next, one per line.
doc_subcommands() {
    local c=$1 sub=${2-} line
    doc_contexts "$c" | while IFS= read -r line; do
        [ -n "$line" ] || continue
        if [ -z "$sub" ]; then
            [ "${line#* }" = "$line" ] && printf '%s\n' "$line"
        else
            case $line in "$sub "*) printf '%s\n' "${line#* }" ;; esac
        fi
    done
}

# doc_options: the long options in a text on standard input, one per line, sorted.
doc_options() {
    grep -oE -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' | sed 's/^[^-]*//' | sort -u
}

# doc_help_options COMMAND [CONTEXT...]: the long options a context's --help
# prints, minus those its help names as another command's options
# (help-exceptions.txt, "mention").
doc_help_options() {
    local c=$1 ctx
    shift
    ctx=$(doc_ctx_key "$@")
    doc_help "$c" "$@" | doc_options | while IFS= read -r o; do
        doc_exception "$c" "$ctx" "$o" mention || printf '%s\n' "$o"
    done
}

# doc_ctx_key [CONTEXT WORDS...]: "-" for none, else the words joined with "/".
doc_ctx_key() {
    if [ $# -eq 0 ]; then
        echo -
    else
        local IFS=/
        echo "$*"
    fi
}

# doc_exception COMMAND CONTEXT-KEY OPTION KIND: listed in help-exceptions.txt?
doc_exception() {
    awk -v c="$1" -v x="$2" -v o="$3" -v k="$4" '
        !/^#/ && NF >= 4 && $1 == c && ($2 == x || x == "*") && $3 == o && $4 == k { f = 1 }
        END { exit !f }' "$DOC_EXCEPTIONS"
}

# doc_omitted COMMAND: the options listed as accepted but not printed by --help,
# "CONTEXT-KEY OPTION" per line.
doc_omitted() {
    awk -v c="$1" '!/^#/ && NF >= 4 && $1 == c && $4 == "omitted" { print $2, $3 }' "$DOC_EXCEPTIONS"
}

# doc_man_options PAGE: the options (long and short) a man page documents: in
# its SYNOPSIS and in the tags of its .TP lists.
doc_man_options() {
    awk '
        /^\.SH/ { syn = ($0 ~ /SYNOPSIS/); next }
        /^\.TP/ { tag = 1; next }
        syn || tag { print; tag = 0 }' "$1" |
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' |
        grep -oE -- '(^|[] [(|,])--?[A-Za-z][a-z0-9-]*' | sed 's/^[^-]*//' | sort -u
}

# doc_rejected COMMAND CONTEXT-KEY OPTION: does the program's parser call the
# option unknown in that context? It is given where the context takes options,
# with extra arguments that make the command stop at a usage error before doing
# anything (or, when it takes an argument, without one).
doc_rejected() {
    local c=$1 ctx=$2 o=$3 exe err words=()
    exe=$(doc_exe "$c") || return 1
    [ "$ctx" = - ] || IFS=/ read -ra words <<<"$ctx"
    if [ ${#words[@]} -eq 0 ]; then
        err=$(doc_run "$exe" "$o" zz-not-a-command 2>&1 >/dev/null)
    else
        err=$(doc_run "$exe" "${words[@]}" zz-1 zz-2 zz-3 zz-4 "$o" 2>&1 >/dev/null)
    fi
    case $o in
    --*) printf '%s\n' "$err" | grep -qE -- "(unrecognized|unknown) option '$o'" && return 0 ;;
    *) printf '%s\n' "$err" | grep -qE -- "(invalid option -- '${o#-}'|unknown option '$o')" && return 0 ;;
    esac
    # An option the parser knows but this command does not take ("unknown option
    # for 'delete'"), unless it only lacks its argument.
    printf '%s\n' "$err" | grep -q "unknown option for" &&
        ! printf '%s\n' "$err" | grep -q "requires an argument"
}

# doc_accepts COMMAND CONTEXT-KEY OPTION: the parser of that context knows the
# option. Only a context that rejects an option that does not exist can tell:
# one that stops before reading options (a dispatcher such as "ctlclient itl"
# given a wrong subcommand) accepts nothing here.
doc_accepts() {
    doc_rejected "$1" "$2" --zz-no-such-option && doc_rejected "$1" "$2" -Z &&
        ! doc_rejected "$1" "$2" "$3"
}

# doc_accepted_somewhere COMMAND OPTION: accepted in some context of the command.
doc_accepted_somewhere() {
    local c=$1 o=$2 ctx
    while IFS= read -r ctx; do
        # shellcheck disable=SC2086 # context words
        doc_accepts "$c" "$(doc_ctx_key $ctx)" "$o" && return 0
    done < <(doc_contexts "$c")
    return 1
}

# doc_list_missing WANT HAVE: the lines of WANT that are not in HAVE (both sorted).
doc_list_missing() {
    comm -23 <(printf '%s\n' "$1" | sed '/^$/d' | sort -u) <(printf '%s\n' "$2" | sed '/^$/d' | sort -u)
}
