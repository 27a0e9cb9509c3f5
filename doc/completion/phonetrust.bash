# shellcheck shell=bash
# Bash completion for phonetrust's commands: ctlclient, phonetrust-softhsm,
# hsmctl, hsmd, capfd and capfctl. Installed once per command name in
# bash-completion's completions directory (every name loads this file, which
# registers all six). It needs bash only, not the bash-completion package.
#
# Option lists here are checked against each command's --help by
# tests/integration/doc/completion.sh: add an option there and here together.

# _phonetrust_init: sets words, cword, cur and prev from COMP_WORDS and
# COMP_CWORD, with the words that readline splits at ':' and '=' (key specs such
# as rsa:2048, PKCS#11 URIs, --opt=value) joined again.
_phonetrust_init() {
    local i w breaks='' glue=0
    [[ $COMP_WORDBREAKS == *:* ]] && breaks+=':'
    [[ $COMP_WORDBREAKS == *=* ]] && breaks+='='
    words=()
    cword=0
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if ((i > 0)) && [[ -n $breaks ]] && [[ $w =~ ^[$breaks]+$ ]]; then
            words[${#words[@]} - 1]+=$w
            glue=1
        elif ((glue)); then
            words[${#words[@]} - 1]+=$w
            glue=0
        else
            words+=("$w")
        fi
        ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
    done
    cur=${words[cword]-}
    prev=''
    ((cword > 0)) && prev=${words[cword - 1]}
    return 0
}

# _phonetrust_reply WORD...: the words that begin with cur.
_phonetrust_reply() {
    local w
    COMPREPLY=()
    for w in "$@"; do
        [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
    done
}

# _phonetrust_files [GLOB...]: directories, and files matching one of the
# globs (every file without a glob).
_phonetrust_files() {
    local f g
    COMPREPLY=()
    compopt -o filenames 2>/dev/null
    while IFS= read -r f; do
        if [[ -d $f ]] || (($# == 0)); then
            COMPREPLY+=("$f")
            continue
        fi
        for g in "$@"; do
            # shellcheck disable=SC2053 # $g is a glob on purpose
            if [[ ${f##*/} == $g ]]; then
                COMPREPLY+=("$f")
                break
            fi
        done
    done < <(compgen -f -- "$cur")
}

_phonetrust_dirs() {
    COMPREPLY=()
    compopt -o filenames 2>/dev/null
    local f
    while IFS= read -r f; do COMPREPLY+=("$f"); done < <(compgen -d -- "$cur")
}

# PKCS#11 modules: the usual places first, then any *.so file.
_phonetrust_modules() {
    local m known=() nullglob
    nullglob=$(shopt -p nullglob)
    shopt -s nullglob
    for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so \
        /usr/lib/*/p11-kit-proxy.so /usr/lib/*/opensc-pkcs11.so /usr/lib/*/pkcs11/*.so \
        /usr/lib/pkcs11/*.so /usr/lib64/pkcs11/*.so /usr/lib/libeToken.so /usr/lib/libeTPkcs11.so \
        /usr/safenet/lunaclient/lib/libCryptoki2_64.so /opt/nfast/toolkits/pkcs11/libcknfast.so; do
        [[ -f $m ]] && known+=("$m")
    done
    eval "$nullglob"
    if [[ -z $cur ]]; then
        COMPREPLY=("${known[@]}")
        return
    fi
    _phonetrust_files '*.so' '*.so.*'
    for m in "${known[@]}"; do
        [[ $m == "$cur"* && ! " ${COMPREPLY[*]} " == *" $m "* ]] && COMPREPLY+=("$m")
    done
}

_phonetrust_certs() {
    if [[ $cur == t* ]]; then
        _phonetrust_reply 'tls://'
        compopt -o nospace 2>/dev/null
        return
    fi
    _phonetrust_files '*.pem' '*.der' '*.crt' '*.cer'
}

# A token URI, or (signers) an hsmd key.
_phonetrust_uris() {
    _phonetrust_reply 'pkcs11:token=' 'pkcs11:serial=' "$@"
    compopt -o nospace 2>/dev/null
}

# _phonetrust_finish: strip what readline keeps before the last ':' or '=' of
# the current word, since it replaces only the text after it.
_phonetrust_finish() {
    local breaks='' prefix i
    [[ $COMP_WORDBREAKS == *:* ]] && breaks+=':'
    [[ $COMP_WORDBREAKS == *=* ]] && breaks+='='
    [[ -n $breaks && $cur == *[$breaks]* ]] || return 0
    prefix=${cur%"${cur##*["$breaks"]}"}
    for i in "${!COMPREPLY[@]}"; do
        COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}
    done
}

# _phonetrust_options ARGOPTS OPTIONS: complete OPTIONS when cur is an option;
# returns 1 when the word is an option's argument (prev in ARGOPTS, or
# --opt=value), setting opt and cur for the caller; else 0.
_phonetrust_options() {
    local argopts=" ${1//$'\n'/ } " options=$2
    opt=''
    if [[ $cur == --*=* ]]; then
        opt=${cur%%=*}
        cur=${cur#*=}
        [[ $argopts == *" $opt "* ]] && return 1
        COMPREPLY=()
        return 0
    fi
    if [[ -n $prev && $argopts == *" $prev "* ]]; then
        opt=$prev
        return 1
    fi
    if [[ $cur == -* ]]; then
        # shellcheck disable=SC2086 # a word list
        _phonetrust_reply $options
        return 0
    fi
    return 2
}

# ---- ctlclient --------------------------------------------------------------

_phonetrust_ctlclient_arg() {
    case $opt in
    -o | --output | -i | --input | --previous) _phonetrust_files '*.tlv' ;;
    --sast | --sign-with | --add-sast | --signer) _phonetrust_uris 'hsmd:/run/phonetrust/hsmd.sock#' ;;
    --ccm-tftp | --ccm | --tftp | --add-tftp | --capf | --tvs | --app-server | --signer-cert | --itlrecovery)
        _phonetrust_certs
        ;;
    --mode) _phonetrust_reply mixed nonsecure ;;
    --digest) _phonetrust_reply sha1 sha512 ;;
    --signer-role) _phonetrust_reply tftp ccm-tftp ;;
    --key) _phonetrust_reply rsa:2048 rsa:3072 rsa:4096 ;;
    --module) _phonetrust_modules ;;
    *) COMPREPLY=() ;;
    esac
}

_phonetrust_ctlclient() {
    local cur prev words cword opt i sub='' subsub='' options=''
    _phonetrust_init
    for ((i = 1; i < cword; i++)); do
        if [[ -z $sub ]]; then
            [[ ${words[i]} == -* ]] || sub=${words[i]}
        elif [[ $sub == token || $sub == itl ]]; then
            [[ -z $subsub ]] && subsub=${words[i]}
            break
        fi
    done
    local common='--module --pin-fd --allow-final-try --help'
    local argopts='-o --output -i --input --sast --sign-with --add-sast --remove-sast --remove
        --add-tftp --tftp --ccm-tftp --ccm --capf --tvs --app-server --mode --digest --timestamp
        --tls-timeout --module --pin-fd --new-pin-fd --signer --signer-cert --signer-role
        --itlrecovery --subject --key --days --label --previous'
    case $sub in
    '')
        options='-v --verbose --version --help'
        if [[ $cur != -* ]]; then
            _phonetrust_reply create update show verify itl token
            return
        fi
        ;;
    create)
        options="-o --output --sast --sign-with --ccm-tftp --ccm --tftp --capf --tvs --app-server
            --mode --digest --timestamp --tls-timeout $common"
        ;;
    update)
        options="-i --input -o --output --sign-with --add-sast --remove-sast --add-tftp --tftp
            --remove --ccm-tftp --ccm --capf --tvs --app-server --mode --digest --timestamp
            --tls-timeout $common"
        ;;
    show) options='--json --help' ;;
    verify) options='--previous --help' ;;
    itl)
        if [[ -z $subsub ]]; then
            _phonetrust_reply build
            return
        fi
        options="-o --output --signer --signer-cert --signer-role --tftp --ccm-tftp --tvs --capf
            --itlrecovery --digest --timestamp --tls-timeout $common"
        ;;
    token)
        case $subsub in
        '')
            _phonetrust_reply list check pin enroll
            return
            ;;
        list) options='--json --module --help' ;;
        pin | check) options="--new-pin-fd $common" ;;
        enroll) options="--subject --key --days --label --force --new-pin-fd $common" ;;
        *) return ;;
        esac
        ;;
    *) return ;;
    esac
    _phonetrust_options "$argopts" "$options"
    case $? in
    0) ;;
    1) _phonetrust_ctlclient_arg ;;
    *)
        case $sub in
        show | verify) _phonetrust_files '*.tlv' ;;
        token) [[ $subsub != list ]] && _phonetrust_uris ;;
        esac
        ;;
    esac
    _phonetrust_finish
}

# ---- phonetrust-softhsm -----------------------------------------------------

_phonetrust_softhsm() {
    local cur prev words cword opt i cmd=''
    _phonetrust_init
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --dir | --module | --pin-file | --pin-fd | --so-pin-file | --so-pin-fd) ((i++)) ;;
        -*) ;;
        *)
            cmd=${words[i]}
            break
            ;;
        esac
    done
    _phonetrust_options '--dir --module --pin-file --pin-fd --so-pin-file --so-pin-fd' \
        '--dir --module --pin-file --pin-fd --so-pin-file --so-pin-fd --help'
    case $? in
    0) ;;
    1)
        case $opt in
        --dir) _phonetrust_dirs ;;
        --module) _phonetrust_modules ;;
        --pin-file | --so-pin-file) _phonetrust_files ;;
        *) COMPREPLY=() ;;
        esac
        ;;
    *)
        case $cmd in
        '') _phonetrust_reply init add-token ;;
        init) _phonetrust_dirs ;;
        *) COMPREPLY=() ;;
        esac
        ;;
    esac
    _phonetrust_finish
}

# ---- hsmctl -----------------------------------------------------------------

_phonetrust_hsmctl() {
    local cur prev words cword opt i
    local argopts='--token --module --pin-fd --subject --itlrecovery-subject --out --capf-key
        --itlrecovery-key --capf-years --itlrecovery-years --socket -o --output --timeout'
    local args=()
    _phonetrust_init
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --*=*) ;;
        -*) [[ " ${argopts//$'\n'/ } " == *" ${words[i]} "* ]] && ((i++)) ;;
        *) args+=("${words[i]}") ;;
        esac
    done
    local token='--token --module --pin-fd --allow-final-try'
    local options='-v --verbose --version --help'
    case ${args[0]-} in
    init)
        options="$token --subject --out --capf-key --capf-years --itlrecovery-key --itlrecovery-years
            --itlrecovery-subject --verbose --help"
        ;;
    regenerate)
        options="$token --yes --out --capf-key --capf-years --itlrecovery-key --itlrecovery-years
            --verbose --help"
        ;;
    list) options="$token --json --verbose --help" ;;
    audit) options='--help' ;;
    call) options='--socket -o --output --timeout --verbose --help' ;;
    esac
    _phonetrust_options "$argopts" "$options"
    case $? in
    0) ;;
    1)
        case $opt in
        --token) _phonetrust_uris ;;
        --module) _phonetrust_modules ;;
        --out) _phonetrust_dirs ;;
        --capf-key) _phonetrust_reply rsa:2048 rsa:4096 ec:P-256 ec:P-384 ;;
        --itlrecovery-key) _phonetrust_reply rsa:2048 rsa:4096 ;;
        --socket | -o | --output) _phonetrust_files ;;
        *) COMPREPLY=() ;;
        esac
        ;;
    *)
        case ${#args[@]}:${args[0]-} in
        0:) _phonetrust_reply init regenerate list audit call ;;
        1:regenerate) _phonetrust_reply capf itlrecovery ;;
        1:audit) _phonetrust_reply verify ;;
        2:audit) _phonetrust_files ;;
        1:call) _phonetrust_reply status cert issue sign-tlv ;;
        2:call) [[ ${args[1]} != status ]] && _phonetrust_reply CAPF ITLRecovery ;;
        3:call)
            case ${args[1]} in
            issue) _phonetrust_files '*.der' ;;
            sign-tlv) _phonetrust_files '*.tlv' ;;
            esac
            ;;
        *) COMPREPLY=() ;;
        esac
        ;;
    esac
    _phonetrust_finish
}

# ---- hsmd and capfd ---------------------------------------------------------

_phonetrust_hsmd() {
    local cur prev words cword opt
    _phonetrust_init
    _phonetrust_options '--config' '--config --new-audit-chain --check-config -v --verbose
        -V --version --help'
    case $? in
    1)
        case $opt in
        --config) _phonetrust_files '*.conf' ;;
        esac
        ;;
    2) COMPREPLY=() ;;
    esac
    _phonetrust_finish
}

_phonetrust_capfd() {
    local cur prev words cword opt
    _phonetrust_init
    _phonetrust_options '--config --issue-tls-cert --new-key' '--config --check-config
        --issue-tls-cert --new-key --version --help'
    case $? in
    1)
        case $opt in
        --config) _phonetrust_files '*.conf' ;;
        --issue-tls-cert) mapfile -t COMPREPLY < <(compgen -A hostname -- "$cur") ;;
        --new-key) _phonetrust_reply rsa:2048 rsa:3072 ec:P-256 ;;
        esac
        ;;
    2) COMPREPLY=() ;;
    esac
    _phonetrust_finish
}

# ---- capfctl ----------------------------------------------------------------

_phonetrust_capfctl() {
    local cur prev words cword opt i sub='' nargs=0
    local argopts='--db --description --operation --auth --auth-string --auth-string-fd
        --string-length --key --deadline --lsc-status -o --output'
    _phonetrust_init
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --*=*) ;;
        -*) [[ " ${argopts//$'\n'/ } " == *" ${words[i]} "* ]] && ((i++)) ;;
        *)
            if [[ -z $sub ]]; then
                sub=${words[i]}
            else
                ((nargs++))
            fi
            ;;
        esac
    done
    local options
    case $sub in
    '') options='--db --version --help' ;;
    add | set)
        options='--description --operation --auth --auth-string --auth-string-fd --generate-string
            --string-length --key --deadline --no-deadline --db --help'
        ;;
    show) options='--json --db --help' ;;
    delete | unlock) options='--db --help' ;;
    certs) options='--json --pem --db --help' ;;
    find) options='--lsc-status --operation --auth-string --auth-string-fd --json --db --help' ;;
    report) options='-o --output --db --help' ;;
    import) options='--db --help' ;;
    *) return ;;
    esac
    _phonetrust_options "$argopts" "$options"
    case $? in
    0) ;;
    1)
        case $opt in
        --db)
            if [[ $cur == sqlite:* ]]; then
                local store=${cur#sqlite:}
                cur=$store
                _phonetrust_files '*.db'
                cur=sqlite:$store
                COMPREPLY=("${COMPREPLY[@]/#/sqlite:}")
            else
                _phonetrust_reply sqlite:
                compopt -o nospace 2>/dev/null
            fi
            ;;
        --operation) _phonetrust_reply install delete troubleshoot none ;;
        --auth) _phonetrust_reply null string lsc mic ;;
        --key)
            _phonetrust_reply default rsa:1024 rsa:2048 rsa:3072 rsa:4096 ec:P-256 ec:P-384 \
                ec:P-521 ec-preferred:P-256/rsa:2048
            ;;
        --lsc-status)
            local s o all=(pending success failed none)
            for o in install delete troubleshoot; do
                for s in pending success failed; do all+=("$o-$s"); done
            done
            _phonetrust_reply "${all[@]}"
            ;;
        --string-length) _phonetrust_reply 4 5 6 7 8 9 10 ;;
        -o | --output) _phonetrust_files '*.csv' ;;
        *) COMPREPLY=() ;;
        esac
        ;;
    *)
        case $sub:$nargs in
        :0) _phonetrust_reply add set show delete unlock certs find report import ;;
        import:0) _phonetrust_files '*.csv' ;;
        *) COMPREPLY=() ;;
        esac
        ;;
    esac
    _phonetrust_finish
}

complete -F _phonetrust_ctlclient ctlclient
complete -F _phonetrust_softhsm phonetrust-softhsm
complete -F _phonetrust_hsmctl hsmctl
complete -F _phonetrust_hsmd hsmd
complete -F _phonetrust_capfd capfd
complete -F _phonetrust_capfctl capfctl
