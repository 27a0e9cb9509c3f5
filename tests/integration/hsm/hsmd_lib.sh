# shellcheck shell=bash disable=SC2034
# (variables set here are used by the scripts that source this file)
# Shared set-up of the hsmd integration tests: a SoftHSM2 HSM token with the
# key ceremony done, an hsmd configuration, and starting and stopping hsmd.
# Source after tests/lib/testlib.sh.

HSMD=$PT_BUILD_ROOT/hsm/hsmd
HSMCTL=$PT_BUILD_ROOT/hsm/hsmctl
TOOL=$PT_BUILD_ROOT/tests/integration/hsm/hsmd-testtool
SOCK=$PT_TMP/hsmd.sock
AUDIT=$PT_TMP/audit.log
CONF=$PT_TMP/hsmd.conf
OUTDIR=$PT_TMP/out
HSMD_PID=

# hsm_ceremony [MODULE]: a token labelled HSM with the CAPF (RSA 2048) and
# ITLRecovery keys, their certificates in $OUTDIR; sets HSM_SERIAL.
hsm_ceremony() {
    pt_store_init || return 1
    pt_add_token HSM >/dev/null || return 1
    HSM_SERIAL=$(pt_token_serial HSM)
    "$HSMCTL" init --token "pkcs11:token=HSM?pin-source=file:$PT_TMP/pin" \
        --module "$PT_SOFTHSM_MODULE" --subject "CN=CAPF-1,O=Example,OU=VoIP,C=NZ" \
        --out "$OUTDIR" >/dev/null
}

# write_config MODULE [extra [hsmd] lines] — keys CAPF (issue) and ITLRecovery
# (sign-tlv), both for the current user; KEY_EXTRA is appended to [key CAPF].
write_config() {
    local module=$1
    shift
    {
        printf '[hsmd]\nmodule = %s\n' "$module"
        printf 'token = pkcs11:token=HSM?pin-source=file:%s\n' "$PT_TMP/pin"
        printf 'socket = %s\naudit-log = %s\nrecovery-interval-ms = 100\n' "$SOCK" "$AUDIT"
        local l
        for l in "$@"; do printf '%s\n' "$l"; done
        printf '\n[key CAPF]\noperation = issue\nallow-users = %s\n' "$(id -u)"
        printf '%s\n' "${KEY_EXTRA:-}"
        printf '\n[key ITLRecovery]\noperation = sign-tlv\nallow-users = %s\n' "$(id -u)"
    } >"$CONF"
}

# wait_until DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds or the deadline passes.
wait_until() {
    local what=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            pt_diag "timed out after ${secs}s waiting for: $what"
            return 1
        fi
        sleep 0.05
    done
}

hsmd_status() { "$HSMCTL" call --socket "$SOCK" status 2>/dev/null; }

# status_is JQ-FILTER: the status answer satisfies the filter.
status_is() { hsmd_status | jq -e "$1" >/dev/null; }

hsmd_alive() { [ -n "$HSMD_PID" ] && kill -0 "$HSMD_PID" 2>/dev/null; }

# start_hsmd_with [hsmd options]: start in the background and wait until it answers.
# shellcheck disable=SC2120 # hsmd.sh passes options
start_hsmd_with() {
    "$HSMD" --config "$CONF" "$@" 2>>"$PT_TMP/hsmd.err" &
    HSMD_PID=$!
    local deadline=$((SECONDS + 30))
    until hsmd_status >/dev/null; do
        if ! hsmd_alive || [ "$SECONDS" -ge "$deadline" ]; then
            pt_diag "hsmd did not start:" "$(tail -5 "$PT_TMP/hsmd.err")"
            return 1
        fi
        sleep 0.05
    done
}

# shellcheck disable=SC2119 # no options
start_hsmd() { start_hsmd_with; }

# stop_hsmd: SIGTERM, and HSMD_STATUS is its exit status (0: stopped cleanly, and
# under AddressSanitizer also without leaks).
stop_hsmd() {
    HSMD_STATUS=
    if hsmd_alive; then
        kill -TERM "$HSMD_PID"
        HSMD_STATUS=0
        wait "$HSMD_PID" 2>/dev/null || HSMD_STATUS=$?
    fi
    HSMD_PID=
}

# call ARGS...: hsmctl call on the test socket; RC, OUT, ERR as run sets them.
call() { run "$HSMCTL" call --socket "$SOCK" "$@"; }

trap 'stop_hsmd; [ -n "${PT_KEEP_TMP:-}" ] || rm -rf "$PT_TMP"' EXIT
