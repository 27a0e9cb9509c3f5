#!/bin/bash
# The retry-lockout policy, rule by rule, against the eToken simulator (a
# PKCS#11 module over SoftHSM2 with a 15-try counter, the PIN flags,
# permanent lock, default-PIN mode and faults). The simulator's own state,
# read with etoken-sim-ctl, is the independent record of what reached the
# token.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
pt_store_init
[ -f "$ETOKEN_SIM_MODULE" ] || skip_all "the eToken simulator was not built"
SIM=$ETOKEN_SIM_MODULE
pt_enroll SAST-1 "CN=SAST-1,O=Example" || { echo "Bail out! cannot enroll"; exit 1; }
pt_enroll SAST-2 "CN=SAST-2,O=Example" || { echo "Bail out! cannot enroll"; exit 1; }
S1=$(pt_token_serial SAST-1)
S2=$(pt_token_serial SAST-2)
printf '9999\n' >"$PT_TMP/bad"
GOOD="pkcs11:token=SAST-1?pin-source=file:$PT_TMP/pin"
BAD="pkcs11:token=SAST-1?pin-source=file:$PT_TMP/bad"

wrong_count() { "$ETOKEN_SIM_CTL" show "$1" | sed -n 's/.* wrong=\([0-9]*\) .*/\1/p'; }
sim_field() { "$ETOKEN_SIM_CTL" show "$1" | sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p"; }
pin_state() {
    "$CTLCLIENT" token list --json --module "$SIM" 2>/dev/null |
        jq -r --arg l "$1" '.[] | select(.label == $l) | .pin_state'
}

# --- a good PIN ----------------------------------------------------------------
run "$CTLCLIENT" token check "$GOOD" --module "$SIM"
is "$RC" 0 "a good PIN logs in"
like "$OUT" "PIN accepted, PIN state now ok" "and shows the PIN state"
like "$OUT" "certificate: +CN=SAST-1,O=Example" "and the SAST certificate"
is "$(pin_state SAST-1)" ok "token list says ok"

# --- a wrong PIN from a file: one attempt, then stop ------------------------------
run "$CTLCLIENT" token check "$BAD" --module "$SIM"
is "$RC" 1 "a wrong PIN from a file fails"
is "$(wrong_count "$S1")" 1 "exactly one wrong PIN reached the token (never retried)"
like "$ERR" "rejected the PIN from file .*not retried \(PIN state now: count-low\)" \
    "the error says it was not retried and shows the new state"
is "$(pin_state SAST-1)" count-low "token list says count-low"
run "$CTLCLIENT" token check "$GOOD" --module "$SIM" --pin-fd 3 3<"$PT_TMP/bad"
is "$(wrong_count "$S1")" 2 "--pin-fd takes precedence over the URI's pin-source and is tried once"

# A good PIN resets the counter.
run "$CTLCLIENT" token check "$GOOD" --module "$SIM"
is "$RC" 0 "a good PIN after wrong ones logs in"
is "$(wrong_count "$S1")" 0 "and resets the token's counter"
is "$(pin_state SAST-1)" ok "and the state is ok again"

# --- 14 wrong PINs: count-low; the 15th: final try -------------------------------
for _ in $(seq 14); do "$CTLCLIENT" token check "$BAD" --module "$SIM" >/dev/null 2>&1; done
is "$(wrong_count "$S1")" 14 "14 wrong PINs in a row reached the token"
is "$(pin_state SAST-1)" count-low "after 14 wrong PINs the state is count-low"
run "$CTLCLIENT" token check "$GOOD" --module "$SIM" --pin-fd 3 3</dev/null
like "$ERR" "warning: .*count-low" "a login at count-low warns before asking"
"$ETOKEN_SIM_CTL" set-tries "$S1" 14 >/dev/null
run "$CTLCLIENT" token check "$BAD" --module "$SIM"
is "$(wrong_count "$S1")" 15 "the 15th wrong PIN reached the token"
is "$(pin_state SAST-1)" final-try "after 15 wrong PINs the state is final-try"

# --- the 16th is refused without consent -------------------------------------------
run "$CTLCLIENT" token check "$BAD" --module "$SIM"
is "$RC" 1 "at final-try a login without --allow-final-try is refused"
like "$ERR" "one more wrong PIN locks it permanently.*Nothing was sent.*--allow-final-try" \
    "the refusal says why and how to proceed"
is "$(wrong_count "$S1")" 15 "nothing reached the token"
run "$CTLCLIENT" token check "$GOOD" --module "$SIM"
is "$RC" 1 "even the right PIN is not sent at final-try without consent"
is "$(wrong_count "$S1")" 15 "still nothing reached the token"
run "$CTLCLIENT" token pin "$BAD" --module "$SIM"
is "$RC" 1 "a PIN change at final-try is refused too (it also counts wrong PINs)"
is "$(wrong_count "$S1")" 15 "and nothing reached the token"

# --- with consent and the right PIN: logged in, counter reset -----------------------
run "$CTLCLIENT" token check "$GOOD" --module "$SIM" --allow-final-try
is "$RC" 0 "--allow-final-try with the right PIN logs in"
like "$ERR" "FINAL TRY" "after a warning"
is "$(wrong_count "$S1")" 0 "and the counter is reset"

# --- with consent and a wrong PIN: locked for good ------------------------------------
"$ETOKEN_SIM_CTL" set-tries "$S1" 15 >/dev/null
run "$CTLCLIENT" token check "$BAD" --module "$SIM" --allow-final-try
is "$RC" 1 "--allow-final-try with a wrong PIN fails"
is "$(sim_field "$S1" locked)" yes "and the 16th wrong PIN locked the token"
like "$ERR" "is locked for good.*cannot be unlocked.*Add a new token to the CTL" \
    "the lock is reported clearly, with what to do"
is "$(pin_state SAST-1)" locked "token list says locked"
run "$CTLCLIENT" token check "$GOOD" --module "$SIM" --allow-final-try
is "$RC" 1 "a locked token is refused even with the right PIN"
like "$ERR" "locked for good" "with the same explanation"
run "$CTLCLIENT" token list --module "$SIM"
like "$OUT" "PIN state: +locked" "the text listing shows locked"

# --- interactive: at most three attempts, state shown each time ----------------------
P="PIN for token 'SAST-2': "
at_terminal "expect $P
send 1111
expect Attempt 2 of 3
expect $P
send 2222
expect Attempt 3 of 3
expect $P
send 3333" "$CTLCLIENT" token check "pkcs11:token=SAST-2" --module "$SIM"
is "$RC" 1 "three wrong PINs at the terminal fail"
is "$(wrong_count "$S2")" 3 "exactly three attempts reached the token, and no fourth was asked"
like "$OUT" "Wrong PIN for token 'SAST-2'.*PIN state now: count-low. Attempt 2 of 3" \
    "each attempt shows the token's state"
like "$OUT" "3 wrong PINs for token 'SAST-2'.*in this run; stopping" "and then it stops"
unlike "$OUT" "1111|2222|3333" "the typed PINs are not echoed"
at_terminal "expect $P
send 1111
expect $P
send 1234" "$CTLCLIENT" token check "pkcs11:token=SAST-2" --module "$SIM"
is "$RC" 0 "a right PIN on the second attempt logs in"
is "$(wrong_count "$S2")" 0 "and resets the counter"

"$ETOKEN_SIM_CTL" set-tries "$S2" 15 >/dev/null
at_terminal "expect to use the last attempt
send no" "$CTLCLIENT" token check "pkcs11:token=SAST-2" --module "$SIM"
is "$RC" 1 "at the final try the terminal asks for confirmation, and 'no' stops"
like "$OUT" "allows ONE more PIN attempt" "after explaining the risk"
is "$(wrong_count "$S2")" 15 "nothing reached the token"
at_terminal "expect to use the last attempt
send final try
expect $P
send 1234" "$CTLCLIENT" token check "pkcs11:token=SAST-2" --module "$SIM"
is "$RC" 0 "typing the confirmation and the right PIN logs in"
is "$(wrong_count "$S2")" 0 "and resets the counter"
"$ETOKEN_SIM_CTL" set-tries "$S2" 15 >/dev/null
at_terminal "expect to use the last attempt
send final try
expect $P
send 5555" "$CTLCLIENT" token check "pkcs11:token=SAST-2" --module "$SIM"
is "$RC" 1 "a wrong PIN on the confirmed final try locks the token"
is "$(sim_field "$S2" locked)" yes "the token is locked"
like "$OUT" "locked for good" "and the lock is reported, with no further prompt"
"$ETOKEN_SIM_CTL" reset "$S2" >/dev/null

# A default PIN changed at the terminal: old PIN, then the new one twice.
"$ETOKEN_SIM_CTL" default-pin "$S2" on >/dev/null
at_terminal "expect $P
send 1234
expect New PIN for token 'SAST-2':
send 4321
expect New PIN again for token 'SAST-2':
send 4321" "$CTLCLIENT" token check "pkcs11:token=SAST-2" --module "$SIM"
is "$RC" 0 "at the terminal a default PIN is changed and the login continues"
is "$(sim_field "$S2" default-pin)" no "the token no longer asks for a change"
exec 3<<<"$(printf '4321\n1234\n1234\n')"
run "$CTLCLIENT" token pin "pkcs11:token=SAST-2" --module "$SIM" --pin-fd 3
exec 3<&-
is "$RC" 0 "token pin changes it back"

# --- a default PIN must be changed first -------------------------------------------
"$ETOKEN_SIM_CTL" default-pin "$S2" on >/dev/null
is "$(pin_state SAST-2)" to-be-changed "token list says to-be-changed"
run "$CTLCLIENT" token check "pkcs11:token=SAST-2?pin-source=file:$PT_TMP/pin" --module "$SIM"
is "$RC" 1 "a default PIN without a way to enter a new one fails"
like "$ERR" "must have its default PIN changed|--new-pin-fd" "and says how to give a new PIN"
is "$(sim_field "$S2" default-pin)" yes "the PIN was not changed"
exec 3<<<"$(printf '1234\n5678\n5678\n')"
run "$CTLCLIENT" token check "pkcs11:token=SAST-2" --module "$SIM" --pin-fd 3
exec 3<&-
is "$RC" 0 "with old and new PINs on --pin-fd the PIN is changed and the login continues"
like "$OUT" "PIN accepted, PIN state now ok" "the token can be used afterwards"
is "$(sim_field "$S2" default-pin)" no "the token no longer asks for a change"
printf '5678\n' >"$PT_TMP/new"
run "$CTLCLIENT" token check "pkcs11:token=SAST-2?pin-source=file:$PT_TMP/new" --module "$SIM"
is "$RC" 0 "the new PIN works"

# --- a token that goes away ------------------------------------------------------
"$ETOKEN_SIM_CTL" fault "$S2" removed >/dev/null
run "$CTLCLIENT" token check "pkcs11:token=SAST-2?pin-source=file:$PT_TMP/new" --module "$SIM"
is "$RC" 1 "a removed token cannot be used"
like "$ERR" "no token matches" "and is reported as absent"
"$ETOKEN_SIM_CTL" fault "$S2" remove-on-sign >/dev/null
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-2?pin-source=file:$PT_TMP/new" --module "$SIM" \
    --subject CN=x --force
is "$RC" 1 "a token pulled out while signing fails"
like "$ERR" "removed" "with a clear error"
is "$OUT" "" "and no partial output"
"$ETOKEN_SIM_CTL" fault "$S2" sign-device-error >/dev/null
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-2?pin-source=file:$PT_TMP/new" --module "$SIM" \
    --subject CN=x --force
is "$RC" 1 "a device error while signing fails"
like "$ERR" "CKR_DEVICE_ERROR|failed" "with a clear error"
is "$OUT" "" "and no partial output"

done_testing
