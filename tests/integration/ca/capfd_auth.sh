#!/bin/bash
# capfd end to end: every authentication mode and each of its failures
# (authentication string: right, wrong, missing, used, lockout and unlock;
# LSC and MIC precedence: the right certificate, a wrong one, another
# device's, a missing one, SUDI data), and operations past their deadline.
# Authentication strings go through files, never command lines.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/ca/capfd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ca/capfd_lib.sh"

capfd_setup ""
ok $? "capfd is running"

# set_string DEVICE DIGITS: give a device an authentication string (through a descriptor).
set_string() {
    "$CAPFCTL" set "$1" --auth-string-fd 3 3<<<"$2" >/dev/null
}
pw() { printf '%s\n' "$1" >"$PT_TMP/pw"; }
status() { "$CAPFCTL" show "$1" --json | jq -r '.status.text'; }

# --- authentication string ----------------------------------------------------------------
S=SEP00000000A001
"$CAPFCTL" add "$S" --operation install >/dev/null
set_string "$S" 123456
pw 654321
phone --device "$S" --password-file "$PT_TMP/pw"
like "$OUT" "end-session: 7" "a wrong authentication string ends with 7"
session_line "$LOG" "$SID"
like "$LINE" "result=failed end=7 reason=\"authentication failed: wrong authentication string\"" \
    "capfd logs the wrong string"
unlike "$(cat "$LOG")" "654321|123456" "capfd never logs an authentication string"
is "$(status "$S")" "install failed: authentication failed: wrong authentication string" \
    "the install is marked failed with the reason"
is "$(q "SELECT auth_failures FROM devices WHERE name = '$S'")" 1 "sqlite3: one failure counted"
phone --device "$S" --no-password
like "$OUT" "end-session: 7" "a missing PASSWORD is the empty string: wrong"
pw 123456
phone --device "$S" --password-file "$PT_TMP/pw" --out-lsc "$PT_TMP/s.pem"
like "$OUT" "end-session: 1" "the right string installs an LSC"
run openssl verify -CAfile "$CA_DIR/ca.pem" "$PT_TMP/s.pem"
is "$RC" 0 "and openssl verifies it"
is "$(q "SELECT coalesce(auth_string, '') || '|' || auth_failures FROM devices WHERE name = '$S'")" \
    "|0" "sqlite3: the one-time string is cleared after success, the count reset"
"$CAPFCTL" set "$S" --operation troubleshoot >/dev/null
phone --device "$S" --password-file "$PT_TMP/pw" --lsc "$PT_TMP/s.pem"
like "$OUT" "end-session: 7" "a used string does not authenticate again"
session_line "$LOG" "$SID"
like "$LINE" "no authentication string is set" "capfd says the string was used"

# --- lockout after max-failures (3) wrong strings, and unlock -----------------------------------
L=SEP00000000A002
"$CAPFCTL" add "$L" --operation install >/dev/null
set_string "$L" 11223344
pw 99999999
for i in 1 2 3; do
    phone --device "$L" --password-file "$PT_TMP/pw"
    like "$OUT" "end-session: 7" "wrong string $i of 3 ends with 7"
done
is "$(q "SELECT locked FROM devices WHERE name = '$L'")" 1 "sqlite3: the device is locked after 3"
session_line "$LOG" "$SID"
like "$LINE" "locked" "capfd logs the lock"
pw 11223344
phone --device "$L" --password-file "$PT_TMP/pw"
like "$OUT" "end-session: 7" "a locked device fails even with the right string"
is "$("$CAPFCTL" show "$L" --json | jq -r '.locked')" true "capfctl: locked"
"$CAPFCTL" unlock "$L" >/dev/null
phone --device "$L" --password-file "$PT_TMP/pw"
like "$OUT" "end-session: 1" "after capfctl unlock the right string works"

# --- certificate authentication: LSC precedence ------------------------------------------------
# An LSC for C1 from capfd itself, then authentication with it.
C1=SEP00000000C001
"$CAPFCTL" add "$C1" --operation install >/dev/null
phone --device "$C1" --out-lsc "$PT_TMP/c1.pem" --out-key "$PT_TMP/c1.key"
like "$OUT" "end-session: 1" "C1 gets an LSC"
make_cert "$MIC_CA" "$PT_TMP/c1-mic" "/CN=CP-8845-SEP00000000C001/O=Cisco"
"$CAPFCTL" set "$C1" --operation troubleshoot --auth lsc >/dev/null

phone --device "$C1" --lsc "$PT_TMP/c1.pem"
like "$OUT" "end-session: 7" "LSC mode: no certificate at all fails"
session_line "$LOG" "$SID"
like "$LINE" "needs a certificate and the phone sent none" "capfd says the certificate is missing"
is "$(status "$C1")" "troubleshoot failed: authentication failed: LSC authentication needs a certificate and the phone sent none" \
    "the operation is marked failed with the reason"

phone --device "$C1" --auth-cert "$PT_TMP/c1-mic.pem" --auth-key "$PT_TMP/c1-mic.key" \
    --lsc "$PT_TMP/c1.pem"
like "$OUT" "end-session: 7" "LSC precedence: a MIC is refused while the device has an LSC"
session_line "$LOG" "$SID"
like "$LINE" "LSC precedence" "capfd says why"

make_ca "$PT_TMP/rogue" "/CN=CAPF-1/O=Example/OU=VoIP/C=NZ"
make_cert "$PT_TMP/rogue" "$PT_TMP/rogue-lsc" "/CN=$C1/O=Example/OU=VoIP/C=NZ"
phone --device "$C1" --auth-cert "$PT_TMP/rogue-lsc.pem" --auth-key "$PT_TMP/rogue-lsc.key" \
    --lsc "$PT_TMP/c1.pem"
like "$OUT" "end-session: 7" "an LSC from a look-alike CA (same name, other key) is refused"
session_line "$LOG" "$SID"
like "$LINE" "authentication failed: certificate authentication: .*verif" \
    "capfd says the certificate does not verify"

phone --device "$C1" --auth-cert "$PT_TMP/c1.pem" --auth-key "$PT_TMP/rogue-lsc.key" \
    --lsc "$PT_TMP/c1.pem"
like "$OUT" "end-session: 7" "the right LSC signed with another key is refused"

C2=SEP00000000C002
"$CAPFCTL" add "$C2" --operation troubleshoot --auth lsc >/dev/null
phone --device "$C2" --auth-cert "$PT_TMP/c1.pem" --auth-key "$PT_TMP/c1.key" \
    --lsc "$PT_TMP/c1.pem"
like "$OUT" "end-session: 7" "another device's LSC is refused"
session_line "$LOG" "$SID"
like "$LINE" "names another device" "capfd says so"

phone --device "$C1" --auth-cert "$PT_TMP/c1.pem" --auth-key "$PT_TMP/c1.key" \
    --lsc "$PT_TMP/c1.pem"
like "$OUT" "end-session: 0" "LSC mode: the device's own LSC authenticates (troubleshoot done)"

C3=SEP00000000C003
make_cert "$MIC_CA" "$PT_TMP/c3-mic" "/CN=CP-8845-SEP00000000C003/O=Cisco"
"$CAPFCTL" add "$C3" --operation install --auth lsc >/dev/null
phone --device "$C3" --auth-cert "$PT_TMP/c3-mic.pem" --auth-key "$PT_TMP/c3-mic.key" \
    --mic "$PT_TMP/c3-mic.pem" --out-lsc "$PT_TMP/c3.pem"
like "$OUT" "end-session: 1" "LSC precedence: a device without an LSC authenticates with its MIC"

# --- MIC precedence, SUDI data -------------------------------------------------------------
C4=SEP00000000C004
make_cert "$MIC_CA" "$PT_TMP/c4-mic" "/CN=CP-8845-SEP00000000C004/O=Cisco"
"$CAPFCTL" add "$C4" --operation install --auth mic >/dev/null
phone --device "$C4" --auth-cert "$PT_TMP/c4-mic.pem" --auth-key "$PT_TMP/c4-mic.key" \
    --sudi-cert "$PT_TMP/c4-mic.pem" --sudi-key "$PT_TMP/c4-mic.key" \
    --out-lsc "$PT_TMP/c4.pem" --out-key "$PT_TMP/c4.key"
like "$OUT" "end-session: 1" "MIC mode: the MIC with SUDI data authenticates"
"$CAPFCTL" set "$C4" --operation troubleshoot >/dev/null
phone --device "$C4" --auth-cert "$PT_TMP/c4.pem" --auth-key "$PT_TMP/c4.key" \
    --sudi-cert "$PT_TMP/c4-mic.pem" --sudi-key "$PT_TMP/c4-mic.key" --lsc "$PT_TMP/c4.pem"
like "$OUT" "end-session: 7" "MIC precedence: the LSC is refused when the phone shows it has a MIC"
session_line "$LOG" "$SID"
like "$LINE" "MIC precedence" "capfd says why"
phone --device "$C4" --auth-cert "$PT_TMP/c4-mic.pem" --auth-key "$PT_TMP/c4-mic.key" \
    --sudi-cert "$PT_TMP/c4-mic.pem" --sudi-key "$PT_TMP/c1.key" --lsc "$PT_TMP/c4.pem"
like "$OUT" "end-session: 7" "SUDI data signed with the wrong key is refused"
session_line "$LOG" "$SID"
like "$LINE" "SUDI_DATA" "capfd names the SUDI data"
phone --device "$C4" --auth-cert "$PT_TMP/c4.pem" --auth-key "$PT_TMP/c4.key" \
    --lsc "$PT_TMP/c4.pem"
like "$OUT" "end-session: 0" "MIC precedence: a phone without a MIC may use its LSC"
make_cert "$PT_TMP/rogue" "$PT_TMP/rogue-mic" "/CN=CP-8845-SEP00000000C005/O=Cisco"
C5=SEP00000000C005
"$CAPFCTL" add "$C5" --operation install --auth mic >/dev/null
phone --device "$C5" --auth-cert "$PT_TMP/rogue-mic.pem" --auth-key "$PT_TMP/rogue-mic.key"
like "$OUT" "end-session: 7" "a MIC from an untrusted manufacturer CA is refused"
is "$(q "SELECT count(*) FROM certificates WHERE device = '$C5'")" 0 "and nothing is issued"

# --- deadlines ---------------------------------------------------------------------------
E=SEP00000000E001
"$CAPFCTL" add "$E" --operation install --deadline 2020-01-01T00:00:00Z >/dev/null
phone --device "$E"
like "$OUT" "end-session: 7" "an operation past its deadline is not performed"
session_line "$LOG" "$SID"
like "$LINE" "operation=install result=failed end=7 reason=\"expired" "capfd logs it as expired"
is "$(status "$E")" "install failed: expired" "capfctl: install failed: expired"
is "$(q "SELECT count(*) FROM certificates WHERE device = '$E'")" 0 "no certificate was issued"
is "$(q "SELECT count(*) FROM history WHERE device = '$E' AND event = 'op-expired'")" 1 \
    "sqlite3: the expiry is in the history"
"$CAPFCTL" set "$E" --deadline "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
phone --device "$E"
like "$OUT" "end-session: 1" "with the deadline moved to tomorrow the install happens"

done_testing
