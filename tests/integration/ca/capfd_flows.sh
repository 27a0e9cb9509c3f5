#!/bin/bash
# capfd end to end: install (RSA, EC, EC preferred with RSA backup), upgrade,
# troubleshoot (LSC and MIC), delete, none and unknown device, with phone-sim;
# each LSC checked with openssl against the CAPF certificate and the profile of
# spec §11, server messages checked byte for byte against spec §10 and §12,
# the store checked with capfctl --json and sqlite3.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/ca/capfd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ca/capfd_lib.sh"

capfd_setup ""
ok $? "capfd starts on a free port with a TLS certificate issued through hsmd"

# --- the command itself --------------------------------------------------------------
run "$CAPFD" --help
is "$RC" 0 "capfd --help exits 0"
like "$OUT" "--check-config" "and lists --check-config"
run "$CAPFD"
is "$RC" 2 "capfd without --config is a usage error"
run "$CAPFD" --config "$CONF" --check-config
is "$RC" 0 "--check-config passes"
like "$OUT" "issuing CA: +CN=CAPF-1,O=Example,OU=VoIP,C=NZ" "and names the issuing CA from hsmd"
like "$OUT" "1 manufacturing CA" "and counts the manufacturing CAs"
printf '[limits]\nmax-session = 3\n' >"$PT_TMP/bad.conf"
run "$CAPFD" --config "$PT_TMP/bad.conf" --check-config
is "$RC" 2 "an unknown key is a usage error"
like "$ERR" "line 2: \[limits\]: unknown key 'max-session'" "and names the line and key"
printf '[tls]\ncertificate = x\nkey = y\n[service]\nvalidity-years = 12\n' >"$PT_TMP/bad.conf"
run "$CAPFD" --config "$PT_TMP/bad.conf" --check-config
is "$RC" 2 "an out-of-range value is a usage error"
like "$ERR" "validity-years" "and names the key"
TLS_TEXT=$(openssl x509 -in "$PT_TMP/tls.pem" -noout -text)
like "$TLS_TEXT" "Issuer: CN = CAPF-1, O = Example, OU = VoIP, C = NZ" \
    "--issue-tls-cert: the TLS certificate is issued by the CAPF CA"
like "$TLS_TEXT" "TLS Web Server Authentication" "with serverAuth"
run openssl verify -CAfile "$CA_DIR/ca.pem" "$PT_TMP/tls.pem"
is "$RC" 0 "openssl verifies the TLS certificate against the CAPF certificate"
is "$(stat -c %a "$PT_TMP/tls.key")" 600 "--new-key writes the key with mode 0600"

# check_lsc PEM DEVICE KEYTEXT: openssl's view of an LSC against spec §11.
check_lsc() {
    local pem=$1 dev=$2 key=$3 text years s e
    run openssl verify -CAfile "$CA_DIR/ca.pem" "$pem"
    is "$RC" 0 "$dev: openssl verifies the LSC against the CAPF certificate"
    text=$(openssl x509 -in "$pem" -noout -text)
    like "$text" "Subject: CN = $dev, O = Example, OU = VoIP, C = NZ" \
        "$dev: subject CN=device, then the CA's O, OU, C in order"
    like "$text" "Issuer: CN = CAPF-1, O = Example, OU = VoIP, C = NZ" "$dev: issuer is the CA's subject"
    like "$text" "Basic Constraints: critical" "$dev: basicConstraints critical"
    like "$text" "CA:FALSE" "$dev: not a CA"
    like "$text" "Key Usage: critical" "$dev: keyUsage critical"
    like "$text" "Digital Signature, Key Encipherment" "$dev: digitalSignature, keyEncipherment"
    like "$text" "TLS Web Server Authentication, TLS Web Client Authentication, IPSec End System" \
        "$dev: extKeyUsage serverAuth, clientAuth, ipsecEndSystem in order"
    like "$text" "URI:$dev" "$dev: subjectAltName URI = the device name"
    unlike "$text" "Subject Key Identifier|Authority Key Identifier" "$dev: no key identifiers"
    like "$text" "sha256WithRSAEncryption" "$dev: signed with SHA-256 and RSA"
    like "$text" "$key" "$dev: the key asked for ($key)"
    s=$(date -d "$(openssl x509 -in "$pem" -noout -startdate | cut -d= -f2)" +%s)
    e=$(date -d "$(openssl x509 -in "$pem" -noout -enddate | cut -d= -f2)" +%s)
    years=$(((e - s) / 86400 / 365))
    is "$years" 5 "$dev: valid 5 years (the default)"
    [ $((s - $(date +%s))) -le 5 ] && [ $(($(date +%s) - s)) -le 120 ]
    ok $? "$dev: notBefore is the time of issue"
    is "$(openssl x509 -in "$pem" -noout -ext basicConstraints,keyUsage,extendedKeyUsage,subjectAltName |
        grep -c critical)" 2 "$dev: exactly basicConstraints and keyUsage are critical"
}

# hexline DUMP DIRECTION CMD: the first dumped message with that command byte.
hexline() { grep -m 1 "^$2 55 $3 " "$1"; }

# --- install, RSA 2048 (the default key), null authentication -------------------------------
D1=SEP001122334455
"$CAPFCTL" add "$D1" --operation install >/dev/null
phone --device "$D1" --dump "$PT_TMP/d1.dump" --strict-records --out-lsc "$PT_TMP/d1.pem" \
    --out-key "$PT_TMP/d1.key"
is "$RC" 0 "install RSA: phone-sim completes the session"
like "$OUT" "end-session: 1 \(OK\)" "install RSA: END_SESSION reason 1"
like "$OUT" "max-records-per-message: 1" "every server message came in one TLS record"
session_line "$LOG" "$SID"
like "$LINE" "device=$D1 operation=install result=success end=1" "capfd logs the session's outcome"
like "$LINE" "peer=127\.0\.0\.1:[0-9]+" "with the phone's address"
check_lsc "$PT_TMP/d1.pem" "$D1" "Public-Key: \(2048 bit\)"
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(hexline "$PT_TMP/d1.dump" 'S->C' 01)" "S->C 55 01 $SIDHEX 00 08 07 00 01 03 08 00 01 00" \
    "AUTH_REQUEST bytes as in spec §10.1 and §12"
is "$(hexline "$PT_TMP/d1.dump" 'S->C' 03)" "S->C 55 03 $SIDHEX 00 09 0A 00 02 08 00 11 00 01 00" \
    "KEY_GENERATE_REQUEST for RSA 2048 as in spec §12"
like "$(hexline "$PT_TMP/d1.dump" 'S->C' 09)" "^S->C 55 09 $SIDHEX [0-9A-F]{2} [0-9A-F]{2} 03 00 01 01 04 [0-9A-F]{2} [0-9A-F]{2} 01 [0-9A-F]{2} [0-9A-F]{2} 00 01 30 82 " \
    "STORE_CERTIFICATE_REQUEST: CERTIFICATE_TYPE 1, then the wrapped LSC (spec §8.1)"
DER_LEN=$(openssl x509 -in "$PT_TMP/d1.pem" -outform DER | wc -c)
STORE_BYTES=$(hexline "$PT_TMP/d1.dump" 'S->C' 09 | wc -w)
is "$((STORE_BYTES - 1))" "$((8 + 4 + 3 + 5 + DER_LEN))" \
    "STORE_CERTIFICATE_REQUEST is 8 + 4 + 3 + 5 + DER bytes long"
is "$(hexline "$PT_TMP/d1.dump" 'S->C' 0F)" "S->C 55 0F $SIDHEX 00 04 01 00 01 01" \
    "END_SESSION reason 1 after install (spec §12)"
SERIAL=$(openssl x509 -in "$PT_TMP/d1.pem" -noout -serial | cut -d= -f2)
run "$CAPFCTL" show "$D1" --json
is "$(printf '%s' "$OUT" | jq -r '.status.text')" "install success" "capfctl: status install success"
is "$(printf '%s' "$OUT" | jq -r '.operation')" "none" "capfctl: the operation is reset to none"
is "$(printf '%s' "$OUT" | jq -r '.lsc.serial')" "$SERIAL" "capfctl: the current LSC is the one issued"
is "$(printf '%s' "$OUT" | jq -r '[.history[].event] | join(",")')" \
    "added,op-started,cert-issued,op-succeeded" "capfctl: history added, started, issued, succeeded"
is "$(q "SELECT key_type || '|' || subject FROM certificates WHERE serial = '$SERIAL'")" \
    "RSA 2048|CN=$D1,O=Example,OU=VoIP,C=NZ" "sqlite3: the certificate is kept with its key type"
q "SELECT pem FROM certificates WHERE serial = '$SERIAL'" >"$PT_TMP/d1-store.pem"
is "$(openssl x509 -in "$PT_TMP/d1-store.pem" -noout -fingerprint -sha256)" \
    "$(openssl x509 -in "$PT_TMP/d1.pem" -noout -fingerprint -sha256)" \
    "sqlite3: the stored PEM is the certificate the phone received"
is "$(q "SELECT session FROM history WHERE device = '$D1' AND event = 'cert-issued'")" \
    "$(printf '%08X' "$SID")" "sqlite3: the history names the CAPF session"
grep -qi "$SERIAL" "$PT_TMP/hsmd-audit.log"
ok $? "hsmd's audit log records the LSC's serial"
run "$HSMCTL" audit verify "$PT_TMP/hsmd-audit.log"
is "$RC" 0 "and its chain verifies (hsmctl audit verify)"

# --- install, EC P-384, and the session ID counter ---------------------------------------
D2=SEP0011223344EC
"$CAPFCTL" add "$D2" --operation install --key ec:P-384 >/dev/null
phone --device "$D2" --dump "$PT_TMP/d2.dump" --out-lsc "$PT_TMP/d2.pem"
like "$OUT" "end-session: 1" "install EC P-384 succeeds"
SID2=$SID
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(hexline "$PT_TMP/d2.dump" 'S->C' 03)" "S->C 55 03 $SIDHEX 00 08 11 00 01 01 12 00 01 01" \
    "KEY_GENERATE_REQUEST for EC P-384 as in spec §12"
check_lsc "$PT_TMP/d2.pem" "$D2" "NIST CURVE: P-384"
is "$(q "SELECT key_type FROM certificates WHERE device = '$D2'")" "EC P-384" \
    "sqlite3: the EC LSC is kept as EC P-384"

# --- EC preferred, RSA backup: a phone that cannot do EC -----------------------------------
D3=SEP0011223344EF
"$CAPFCTL" add "$D3" --operation install --key ec-preferred:P-256/rsa:3072 >/dev/null
phone --device "$D3" --no-ec --out-lsc "$PT_TMP/d3.pem"
like "$OUT" "end-session: 1" "EC preferred: a phone without EC still gets an LSC"
like "$OUT" "keygen-requests: 2" "after a second KEY_GENERATE_REQUEST (CAPF-U8)"
check_lsc "$PT_TMP/d3.pem" "$D3" "Public-Key: \(3072 bit\)"
D3B=SEP0011223344EE
"$CAPFCTL" add "$D3B" --operation install --key ec-preferred:P-256/rsa:2048 >/dev/null
phone --device "$D3B" --out-lsc "$PT_TMP/d3b.pem"
like "$OUT" "keygen-requests: 1" "EC preferred: a phone with EC is asked once"
like "$(openssl x509 -in "$PT_TMP/d3b.pem" -noout -text)" "NIST CURVE: P-256" "and gets an EC LSC"

# --- key generation that keeps failing ----------------------------------------------------
D4=SEP0011223344F0
"$CAPFCTL" add "$D4" --operation install >/dev/null
phone --device "$D4" --keygen-fail 9
like "$OUT" "end-session: 7" "a phone that cannot make a key gets END_SESSION 7"
like "$OUT" "keygen-requests: 3" "after keygen-attempts (3) requests"
is "$("$CAPFCTL" show "$D4" --json | jq -r '.status.text')" \
    "install failed: the phone could not generate a key (last asked RSA 2048, reason 7) after 3 attempt(s)" \
    "capfctl: install failed with the reason"
is "$("$CAPFCTL" show "$D4" --json | jq -r '.operation')" "install" \
    "the install stays scheduled (nothing was issued)"

# --- the phone fails to store the LSC --------------------------------------------------------
D5=SEP0011223344F1
"$CAPFCTL" add "$D5" --operation install >/dev/null
phone --device "$D5" --store-fail
like "$OUT" "end-session: 1" "a store failure still ends with 1, as known servers do (§10.2)"
run "$CAPFCTL" show "$D5" --json
like "$(printf '%s' "$OUT" | jq -r '.status.text')" "^install failed: the phone did not store the LSC" \
    "capfctl: install failed because the phone did not store it"
is "$(printf '%s' "$OUT" | jq -r '.operation')" "none" \
    "the certificate was recorded before it was sent, so the operation is reset (§13)"
is "$(q "SELECT count(*) FROM certificates WHERE device = '$D5'")" 1 "sqlite3: it is kept"

# --- upgrade: a new LSC for a phone that has one, authenticated by it ---------------------------
"$CAPFCTL" set "$D1" --operation install --auth lsc >/dev/null
phone --device "$D1" --auth-cert "$PT_TMP/d1.pem" --auth-key "$PT_TMP/d1.key" \
    --lsc "$PT_TMP/d1.pem" --out-lsc "$PT_TMP/d1-new.pem" --out-key "$PT_TMP/d1-new.key"
like "$OUT" "end-session: 1" "upgrade with LSC authentication succeeds"
check_lsc "$PT_TMP/d1-new.pem" "$D1" "Public-Key: \(2048 bit\)"
NEW_SERIAL=$(openssl x509 -in "$PT_TMP/d1-new.pem" -noout -serial | cut -d= -f2)
[ "$NEW_SERIAL" != "$SERIAL" ]
ok $? "upgrade: the new LSC has a new serial"
run "$CAPFCTL" certs "$D1" --json
is "$(printf '%s' "$OUT" | jq -r '[.[] | select(.current)] | length')" 1 "capfctl certs: one current LSC"
is "$(printf '%s' "$OUT" | jq -r '[.[] | select(.current) | .serial][0]')" "$NEW_SERIAL" \
    "capfctl certs: the new one"
is "$(q "SELECT count(*) FROM certificates WHERE device = '$D1' AND superseded_at IS NOT NULL")" 1 \
    "sqlite3: the old LSC is marked superseded"

# --- troubleshoot: fetch the LSC, and a MIC --------------------------------------------------
"$CAPFCTL" set "$D1" --operation troubleshoot >/dev/null
phone --device "$D1" --auth-cert "$PT_TMP/d1-new.pem" --auth-key "$PT_TMP/d1-new.key" \
    --lsc "$PT_TMP/d1-new.pem" --dump "$PT_TMP/fetch.dump"
like "$OUT" "end-session: 0" "troubleshoot ends with reason 0 (§10.4)"
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(hexline "$PT_TMP/fetch.dump" 'S->C' 0B)" "S->C 55 0B $SIDHEX 00 00" \
    "FETCH_CERTIFICATE_REQUEST bytes (§12)"
is "$(hexline "$PT_TMP/fetch.dump" 'S->C' 0F)" "S->C 55 0F $SIDHEX 00 04 01 00 01 00" \
    "END_SESSION 0 after fetch (§12)"
is "$(q "SELECT kind || ' ' || serial FROM fetched_certificates WHERE device = '$D1'")" \
    "LSC $NEW_SERIAL" "sqlite3: the fetched LSC is recorded as an LSC"
is "$("$CAPFCTL" show "$D1" --json | jq -r '.status.text')" "troubleshoot success" \
    "capfctl: troubleshoot success"

make_cert "$MIC_CA" "$PT_TMP/mic6" "/CN=CP-8845-SEP0011223344F6/O=Cisco"
D6=SEP0011223344F6
"$CAPFCTL" add "$D6" --operation troubleshoot >/dev/null
phone --device "$D6" --mic "$PT_TMP/mic6.pem"
like "$OUT" "end-session: 0" "troubleshoot of a phone with only a MIC"
is "$(q "SELECT kind || ' ' || subject FROM fetched_certificates WHERE device = '$D6'")" \
    "MIC CN=CP-8845-SEP0011223344F6,O=Cisco" "sqlite3: the fetched MIC is recorded as a MIC"
D7=SEP0011223344F7
"$CAPFCTL" add "$D7" --operation troubleshoot >/dev/null
phone --device "$D7"
like "$OUT" "end-session: 0" "troubleshoot of a phone with no certificate still ends with 0"
is "$("$CAPFCTL" show "$D7" --json | jq -r '.status.text + " / " + .operation')" \
    "troubleshoot failed: the phone has no certificate to fetch (reason 7) / troubleshoot" \
    "capfctl: troubleshoot failed and stays scheduled (§13)"

# --- delete ---------------------------------------------------------------------------
"$CAPFCTL" set "$D1" --operation delete >/dev/null
phone --device "$D1" --auth-cert "$PT_TMP/d1-new.pem" --auth-key "$PT_TMP/d1-new.key" \
    --lsc "$PT_TMP/d1-new.pem" --dump "$PT_TMP/delete.dump"
like "$OUT" "deleted: yes" "delete: the phone deletes its LSC"
like "$OUT" "end-session: 1" "delete ends with reason 1 (§10.5)"
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(hexline "$PT_TMP/delete.dump" 'S->C' 0D)" "S->C 55 0D $SIDHEX 00 00" \
    "DELETE_CERTIFICATE_REQUEST bytes (§10.5)"
run "$CAPFCTL" show "$D1" --json
is "$(printf '%s' "$OUT" | jq -r '.status.text')" "delete success" "capfctl: delete success"
is "$(printf '%s' "$OUT" | jq -r '.lsc')" "null" "capfctl: no current LSC after delete"
is "$(q "SELECT count(*) FROM certificates WHERE device = '$D1'")" 2 \
    "sqlite3: the deleted LSCs are still kept"
"$CAPFCTL" set "$D2" --operation delete >/dev/null
phone --device "$D2"
like "$OUT" "end-session: 1" "delete on a phone without an LSC also ends with 1"
like "$("$CAPFCTL" show "$D2" --json | jq -r '.status.text')" "^delete failed: the phone had no LSC" \
    "capfctl: delete failed with the reason"

# --- none and unknown device ---------------------------------------------------------------
phone --device "$D6" --dump "$PT_TMP/none.dump"
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(hexline "$PT_TMP/none.dump" 'S->C' 0F)" "S->C 55 0F $SIDHEX 00 04 01 00 01 00" \
    "nothing scheduled: END_SESSION 0 (§10.6)"
session_line "$LOG" "$SID"
like "$LINE" "operation=none result=none end=0" "capfd logs it as none"
phone --device SEP00000000DEAD --dump "$PT_TMP/unknown.dump"
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(hexline "$PT_TMP/unknown.dump" 'S->C' 0F)" "S->C 55 0F $SIDHEX 00 04 01 00 01 09" \
    "unknown device: END_SESSION 9 (§10.6, §12)"
session_line "$LOG" "$SID"
like "$LINE" "device=SEP00000000DEAD operation=none result=unknown-device end=9" \
    "capfd logs the unknown device"
[ "$SID" -gt "$SID2" ]
ok $? "session IDs count up per connection (§3)"

# --- VERSION 2 is accepted (CAPF-U4), others are not -----------------------------------------
phone --device "$D6" --version-send 2
like "$OUT" "end-session: 0" "AUTH_RESPONSE with VERSION 2 is accepted"
phone --device "$D6" --version-send 4
like "$OUT" "end-session: 7" "AUTH_RESPONSE with VERSION 4 ends with 7"
phone --device "$D6" --no-password
like "$OUT" "end-session: 0" "a missing PASSWORD element is fine with null authentication"

# --- TLS: versions, ciphers, server verification -------------------------------------------
phone --device "$D6" --tls-max TLSv1.2 --strict-records
like "$OUT" "end-session: 0" "a TLS 1.2 phone completes a session"
for cipher in AES128-SHA AES256-SHA AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA; do
    out=$(openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 -cipher "$cipher" \
        -CAfile "$CA_DIR/ca.pem" </dev/null 2>&1)
    like "$out" "Cipher is $cipher" "TLS 1.2 with $cipher (RSA-authenticated, §1.6)"
done
like "$out" "No client certificate CA names sent" "no client certificate is requested"
like "$out" "Verify return code: 0 \(ok\)" "the server verifies against the CAPF certificate"
make_ca "$PT_TMP/other-ca" "/CN=Other CAPF/O=Elsewhere"
run "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$PT_TMP/other-ca/ca.pem" --device "$D6"
is "$RC" 1 "a phone that knows another CAPF certificate refuses the server"
like "$OUT" "certificate verify failed" "because the certificate does not verify"

# --- stopping ----------------------------------------------------------------------------
kill -TERM "$CAPFD_PID"
wait "$CAPFD_PID"
is "$?" 0 "capfd exits 0 on SIGTERM"
like "$(tail -n 1 "$LOG")" "capfd: stopped" "and says so"

done_testing
