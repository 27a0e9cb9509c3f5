# shellcheck shell=bash disable=SC2034
# (variables set here are used by the scripts that source this file)
# TAP helpers and private token stores for phonetrust's integration tests.
#
# Source it from a test script run by `meson test` (which sets PT_BUILD_ROOT,
# PT_SOURCE_ROOT and PT_SOFTHSM_MODULE). Every test gets its own temporary
# directory and its own SoftHSM2 token store, so tests run in parallel and
# never touch the machine's tokens. PINs are written to files, never passed
# on a command line.

set -u

PT_TEST_COUNT=0
PT_TEST_FAILURES=0
: "${PT_BUILD_ROOT:?run this test through meson test}"
: "${PT_SOURCE_ROOT:?run this test through meson test}"
PT_SOFTHSM_MODULE=${PT_SOFTHSM_MODULE:-}

CTLCLIENT=$PT_BUILD_ROOT/ctlclient/ctlclient
PT_SOFTHSM=$PT_BUILD_ROOT/token/phonetrust-softhsm
ETOKEN_SIM_MODULE=$PT_BUILD_ROOT/tests/etoken-sim/libetoken-sim.so
ETOKEN_SIM_CTL=$PT_BUILD_ROOT/tests/etoken-sim/etoken-sim-ctl
PTY_RUN=$PT_BUILD_ROOT/tests/lib/pty-run

PT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/phonetrust-test.XXXXXX")
trap 'rm -rf "$PT_TMP"' EXIT

# TAP output ---------------------------------------------------------------

pt_diag() {
    local line
    while IFS= read -r line; do printf '# %s\n' "$line"; done <<<"$*"
}

ok() { # ok CONDITION-EXIT-CODE DESCRIPTION
    local status=$1
    shift
    PT_TEST_COUNT=$((PT_TEST_COUNT + 1))
    if [ "$status" -eq 0 ]; then
        printf 'ok %d - %s\n' "$PT_TEST_COUNT" "$*"
    else
        printf 'not ok %d - %s\n' "$PT_TEST_COUNT" "$*"
        PT_TEST_FAILURES=$((PT_TEST_FAILURES + 1))
    fi
}

is() { # is GOT WANT DESCRIPTION
    if [ "$1" = "$2" ]; then
        ok 0 "$3"
    else
        ok 1 "$3"
        pt_diag "got:  '$1'" "want: '$2'"
    fi
}

like() { # like TEXT EXTENDED-REGEX DESCRIPTION
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        ok 0 "$3"
    else
        ok 1 "$3"
        pt_diag "text: $1"
        pt_diag "does not match: $2"
    fi
}

unlike() { # unlike TEXT EXTENDED-REGEX DESCRIPTION
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        ok 1 "$3"
        pt_diag "text: $1"
        pt_diag "matches: $2"
    else
        ok 0 "$3"
    fi
}

# run CMD...: runs a command, leaving its exit code in RC, stdout in OUT and
# stderr in ERR.
run() {
    local out_file=$PT_TMP/run.out err_file=$PT_TMP/run.err
    RC=0
    "$@" >"$out_file" 2>"$err_file" </dev/null || RC=$?
    OUT=$(cat "$out_file")
    ERR=$(cat "$err_file")
}

# at_terminal SCRIPT COMMAND...: run COMMAND on a pseudo-terminal, following
# SCRIPT (lines "expect TEXT" / "send TEXT", see tests/lib/pty_run.c); sets RC
# and OUT (everything shown on the terminal, without carriage returns).
at_terminal() {
    local script=$PT_TMP/pty.script
    printf '%s\n' "$1" >"$script"
    shift
    RC=0
    "$PTY_RUN" "$script" -- "$@" >"$PT_TMP/pty.out" 2>"$PT_TMP/pty.err" </dev/null || RC=$?
    OUT=$(tr -d '\r' <"$PT_TMP/pty.out")
    ERR=$(cat "$PT_TMP/pty.err")
}

skip_all() {
    printf '1..0 # SKIP %s\n' "$*"
    exit 0
}

done_testing() {
    printf '1..%d\n' "$PT_TEST_COUNT"
    [ "$PT_TEST_FAILURES" -eq 0 ]
    exit $?
}

# Token stores ------------------------------------------------------------

pt_require_softhsm() {
    if [ -z "$PT_SOFTHSM_MODULE" ] || [ ! -f "$PT_SOFTHSM_MODULE" ]; then
        skip_all "SoftHSM2 is not installed (apt-get install softhsm2)"
    fi
}

# pt_store_init: a fresh SoftHSM2 token store for this test.
pt_store_init() {
    pt_require_softhsm
    local line
    line=$("$PT_SOFTHSM" --module "$PT_SOFTHSM_MODULE" init "$PT_TMP/store") || return 1
    export SOFTHSM2_CONF=${line#export SOFTHSM2_CONF=}
    export ETOKEN_SIM_STATE=$PT_TMP/store/etoken-sim.state
    export ETOKEN_SIM_BACKEND=$PT_SOFTHSM_MODULE
    printf '%s\n' "${PT_TEST_PIN:-1234}" >"$PT_TMP/pin"
    printf '%s\n' "${PT_TEST_SO_PIN:-87654321}" >"$PT_TMP/so-pin"
    chmod 600 "$PT_TMP/pin" "$PT_TMP/so-pin"
    # pkcs11-tool, the independent checker, takes the PIN as --pin env:PT_P11TOOL_PIN,
    # so that it never appears on a command line.
    PT_P11TOOL_PIN=$(cat "$PT_TMP/pin")
    export PT_P11TOOL_PIN
}

# pt_add_token LABEL: creates a token; prints its URI (pkcs11:token=...;serial=...).
pt_add_token() {
    "$PT_SOFTHSM" --module "$PT_SOFTHSM_MODULE" add-token "$1" \
        --pin-file "$PT_TMP/pin" --so-pin-file "$PT_TMP/so-pin" 2>/dev/null
}

# pt_token_serial LABEL: the serial of a token in the store.
pt_token_serial() {
    "$CTLCLIENT" token list --json --module "$PT_SOFTHSM_MODULE" 2>/dev/null |
        jq -r --arg l "$1" '.[] | select(.label == $l) | .serial'
}

# pt_enroll LABEL SUBJECT [ctlclient options]: a token with a SAST key and certificate.
pt_enroll() {
    local label=$1 subject=$2
    shift 2
    pt_add_token "$label" >/dev/null &&
        "$CTLCLIENT" token enroll "pkcs11:token=$label;pin-source=file:$PT_TMP/pin" \
            --module "$PT_SOFTHSM_MODULE" --subject "$subject" "$@" >/dev/null
}
