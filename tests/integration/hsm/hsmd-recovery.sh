#!/bin/bash
# The HSM going away under a running hsmd, on the eToken simulator: requests
# are answered hsm-unavailable, then signed again once the token is back,
# without a restart; a device error likewise. A token that comes back with a
# PIN it refuses gets exactly one attempt (none at its final try) and hsmd
# waits in pin-rejected until SIGHUP.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/hsm/hsmd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/hsm/hsmd_lib.sh"
command -v jq >/dev/null || skip_all "jq is not installed"
SIM=${ETOKEN_SIM_MODULE_PATH:-$ETOKEN_SIM_MODULE}
[ -f "$SIM" ] || skip_all "the eToken simulator was not built"
hsm_ceremony || skip_all "cannot create the HSM token"
write_config "$SIM"
start_hsmd || {
    ok 1 "hsmd starts on the eToken simulator"
    done_testing
}
PID=$HSMD_PID
"$TOOL" tbs "$OUTDIR/CAPF.pem" "$PT_TMP/t.tbs"
sim() { "$ETOKEN_SIM_CTL" "$@" >/dev/null; }
wrong_pins() { "$ETOKEN_SIM_CTL" show "$HSM_SERIAL" | sed -n 's/.* wrong=\([0-9]*\) .*/\1/p'; }
# shellcheck disable=SC2317 # called through wait_until
wrong_pins_are() { [ "$(wrong_pins)" = "$1" ]; }

call issue CAPF "$PT_TMP/t.tbs"
is "$RC" 0 "hsmd signs through the simulator"

# Token removed -------------------------------------------------------------------
sim fault "$HSM_SERIAL" removed
call issue CAPF "$PT_TMP/t.tbs"
is "$RC" 1 "with the token removed a request fails"
like "$ERR" "hsmd refused: hsm-unavailable " "with hsm-unavailable"
wait_until "state unavailable" 30 status_is '.hsm.state == "unavailable"'
ok $? "status shows the HSM unavailable"
call status
like "$(printf '%s' "$OUT" | jq -r .hsm.detail)" "." "and why: $(printf '%s' "$OUT" | jq -r .hsm.detail)"
call issue CAPF "$PT_TMP/t.tbs"
like "$ERR" "hsmd refused: hsm-unavailable .*the HSM is unavailable" "requests keep getting hsm-unavailable"
call cert CAPF
is "$RC" 0 "the certificate is still served"
sim fault "$HSM_SERIAL" none
wait_until "state ready" 30 status_is '.hsm.state == "ready"'
ok $? "the HSM is ready again once the token is back"
call issue CAPF "$PT_TMP/t.tbs" -o "$PT_TMP/after-removal.pem"
is "$RC" 0 "and hsmd signs again"
run openssl verify -CAfile "$OUTDIR/CAPF.pem" "$PT_TMP/after-removal.pem"
is "$RC" 0 "a certificate that verifies"
is "$HSMD_PID" "$PID" "without a restart"
ok "$(hsmd_alive && echo 0 || echo 1)" "hsmd is the same process"
call status
is "$(printf '%s' "$OUT" | jq -r .hsm.recoveries)" 1 "status counts one recovery"

# Device error ----------------------------------------------------------------------
sim fault "$HSM_SERIAL" sign-device-error
call issue CAPF "$PT_TMP/t.tbs"
like "$ERR" "hsmd refused: hsm-unavailable " "a device error gives hsm-unavailable"
wait_until "state unavailable" 30 status_is '.hsm.state == "unavailable"'
ok $? "and the HSM is unavailable while the error lasts"
sim fault "$HSM_SERIAL" none
wait_until "state ready" 30 status_is '.hsm.state == "ready" and .hsm.recoveries == 2'
ok $? "it recovers when the device works again"
call issue CAPF "$PT_TMP/t.tbs"
is "$RC" 0 "and signs"

# Back with a PIN it refuses ----------------------------------------------------------
sim fault "$HSM_SERIAL" removed
wait_until "state unavailable" 30 status_is '.hsm.state == "unavailable"'
cp "$PT_TMP/pin" "$PT_TMP/pin.good"
printf '0000\n' >"$PT_TMP/pin"
sim fault "$HSM_SERIAL" none
wait_until "state pin-rejected" 30 status_is '.hsm.state == "pin-rejected"'
ok $? "a refused PIN stops recovery (pin-rejected)"
is "$(wrong_pins)" 1 "after exactly one wrong PIN"
call status
like "$(printf '%s' "$OUT" | jq -r .hsm.detail)" "SIGHUP" "status says what to do"
up=$(printf '%s' "$OUT" | jq -r .uptime_seconds)
attempts=$(printf '%s' "$OUT" | jq -r .hsm.recovery_attempts)
# Let at least ten recovery intervals (100 ms) pass.
wait_until "two seconds of uptime" 30 status_is ".uptime_seconds >= $((up + 2))"
is "$(wrong_pins)" 1 "no PIN is sent again while hsmd waits"
is "$(hsmd_status | jq -r .hsm.recovery_attempts)" "$attempts" "and no recovery is attempted"
call issue CAPF "$PT_TMP/t.tbs"
like "$ERR" "hsmd refused: hsm-unavailable .*pin-rejected.*SIGHUP" \
    "requests are told the PIN was refused"
kill -HUP "$HSMD_PID"
wait_until "a second wrong PIN" 30 wrong_pins_are 2
ok $? "SIGHUP makes exactly one new attempt (the PIN is still wrong)"
wait_until "pin-rejected again" 30 status_is '.hsm.state == "pin-rejected"'
ok $? "and hsmd waits again"
cp "$PT_TMP/pin.good" "$PT_TMP/pin"
kill -HUP "$HSMD_PID"
wait_until "state ready" 30 status_is '.hsm.state == "ready"'
ok $? "with the PIN fixed, SIGHUP brings the HSM back"
is "$(wrong_pins)" 0 "the good PIN reset the token's count"
call issue CAPF "$PT_TMP/t.tbs"
is "$RC" 0 "and hsmd signs"

# At its final try the token is not even tried.
sim fault "$HSM_SERIAL" removed
wait_until "state unavailable" 30 status_is '.hsm.state == "unavailable"'
sim set-tries "$HSM_SERIAL" 15
sim fault "$HSM_SERIAL" none
wait_until "state pin-rejected" 30 status_is '.hsm.state == "pin-rejected"'
ok $? "a token at its final try leaves hsmd in pin-rejected"
like "$(hsmd_status | jq -r .hsm.detail)" "one more PIN attempt" "and says why"
is "$(wrong_pins)" 15 "without spending the last try"
sim set-tries "$HSM_SERIAL" 0

# A key that changed while hsmd was away from the token is not used -----------------
if command -v pkcs11-tool >/dev/null; then
    p11() { # on SoftHSM2 itself, not through the simulator's retry counter
        PT_P11TOOL_PIN=$(cat "$PT_TMP/pin") pkcs11-tool --module "$PT_SOFTHSM_MODULE" \
            --token-label HSM --login --pin env:PT_P11TOOL_PIN "$@" >/dev/null 2>&1
    }
    p11 --delete-object --type privkey --label CAPF
    p11 --keypairgen --key-type EC:prime256v1 --label CAPF
    ok $? "the CAPF key is replaced by an EC key while hsmd waits in pin-rejected"
    kill -HUP "$HSMD_PID"
    wait_until "the key check" 30 status_is '.hsm.detail | test("no longer RSA 2048")'
    ok $? "recovery refuses the key: $(hsmd_status | jq -r .hsm.detail)"
    is "$(hsmd_status | jq -r .hsm.state)" unavailable "and the HSM stays unavailable"
    call issue CAPF "$PT_TMP/t.tbs"
    like "$ERR" "hsmd refused: hsm-unavailable " "requests are not signed with the other key"
fi

stop_hsmd
is "$HSMD_STATUS" 0 "hsmd stops cleanly on SIGTERM"
run "$HSMCTL" audit verify "$AUDIT"
is "$RC" 0 "the audit log verifies"
is "$(grep -c 'result=error' "$AUDIT")" \
    "$(grep -c 'op=issue .*result=error' "$AUDIT")" "hsm-unavailable answers are logged as errors"
done_testing
