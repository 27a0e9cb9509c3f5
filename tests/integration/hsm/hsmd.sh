#!/bin/bash
# hsmd end to end on SoftHSM2: the key ceremony, then hsmd on a socket in the
# test's own directory. What it signs verifies with openssl and the TLV codec;
# what it must refuse is refused with the right code and reason and logged; its
# audit log verifies, fails at the record where one byte was changed, and a
# broken log stops hsmd from starting unless told to begin a new chain.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/hsm/hsmd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/hsm/hsmd_lib.sh"
command -v jq >/dev/null || skip_all "jq is not installed"
hsm_ceremony || skip_all "cannot create the HSM token"
ROOT_EXTRA=()
if [ "$(id -u)" -eq 0 ]; then
    # uid 65534 must reach the socket to be turned away by hsmd itself.
    chmod 711 "$PT_TMP"
    ROOT_EXTRA=("socket-group = 65534")
fi
write_config "$PT_SOFTHSM_MODULE" "${ROOT_EXTRA[@]}"

run "$HSMD" --help
is "$RC" 0 "hsmd --help exits 0"
run "$HSMD" --config "$PT_TMP/missing.conf"
is "$RC" 2 "a missing configuration is a configuration error"
run "$HSMD" --config "$CONF" --check-config
is "$RC" 0 "--check-config accepts the test configuration"
like "$OUT" "key CAPF: +token label 'CAPF', issue" "and describes the keys"

start_hsmd || {
    ok 1 "hsmd starts"
    # The systemd unit ------------------------------------------------------------------
UNIT=$PT_SOURCE_ROOT/hsm/hsmd.service
if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/sbin/hsmd|$HSMD|g" "$UNIT" >"$PT_TMP/hsmd.service"
    run systemd-analyze verify --man=no "$PT_TMP/hsmd.service"
    is "$RC" 0 "systemd-analyze verify accepts hsmd.service"
    [ "$RC" -eq 0 ] || pt_diag "$ERR"
else
    ok 0 "# SKIP systemd-analyze is not installed"
fi
like "$(grep '^Type=' "$UNIT")" "^Type=notify$" "the unit waits for hsmd's readiness"
like "$(grep '^RestartPreventExitStatus=' "$UNIT")" "=2 3 4$" \
    "the unit never restarts hsmd after a refused PIN (3), a bad configuration (2) or log (4)"
like "$(grep '^ExecStart=' "$UNIT")" "hsmd --config /etc/phonetrust/hsmd.conf$" \
    "and runs it in the foreground"

done_testing
}
ok 0 "hsmd starts and answers status"
like "$(stat -c %a "$SOCK")" "^660$" "the socket has the default mode 0660"
like "$(grep 'Max core file size' "/proc/$HSMD_PID/limits")" "size +0 +0 " \
    "hsmd runs with core dumps disabled"

# status and cert --------------------------------------------------------------
call status
is "$RC" 0 "status succeeds"
is "$(printf '%s' "$OUT" | jq -r .hsm.state)" ready "the HSM is ready"
is "$(printf '%s' "$OUT" | jq -r '[.keys[] | .name + ":" + .operation] | join(",")')" \
    "CAPF:issue,ITLRecovery:sign-tlv" "status lists the keys and their operations"
is "$(printf '%s' "$OUT" | jq -r '.keys[0].certificate.sha256')" \
    "$(openssl x509 -in "$OUTDIR/CAPF.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : |
        tr A-F a-f)" "status shows the CAPF certificate's fingerprint"
call cert CAPF -o "$PT_TMP/capf-from-hsmd.pem"
is "$RC" 0 "cert CAPF succeeds"
is "$(openssl x509 -in "$PT_TMP/capf-from-hsmd.pem" -noout -fingerprint -sha256)" \
    "$(openssl x509 -in "$OUTDIR/CAPF.pem" -noout -fingerprint -sha256)" \
    "cert CAPF returns the ceremony's certificate"

# issue ----------------------------------------------------------------------------
"$TOOL" tbs "$OUTDIR/CAPF.pem" "$PT_TMP/good.tbs" --subject "CN=SEP001122334455,O=Example"
call issue CAPF "$PT_TMP/good.tbs" -o "$PT_TMP/lsc.pem"
is "$RC" 0 "issue signs a good TBSCertificate"
run openssl verify -CAfile "$OUTDIR/CAPF.pem" "$PT_TMP/lsc.pem"
is "$RC" 0 "openssl verify accepts the certificate with CAPF.pem as the CA"
like "$OUT" "lsc.pem: OK" "and says so"
LSC_SERIAL=$(openssl x509 -in "$PT_TMP/lsc.pem" -noout -serial | cut -d= -f2)
"$TOOL" tbs "$OUTDIR/CAPF.pem" "$PT_TMP/five-years.tbs" --days 1826
call issue CAPF "$PT_TMP/five-years.tbs" -o "$PT_TMP/lsc5y.pem"
is "$RC" 0 "a certificate of 1826 days (five years) is within the default maximum"

refused() { # refused DESCRIPTION CODE REASON-REGEX ARGS...: hsmctl call ARGS is refused
    local what=$1 code=$2 reason=$3
    shift 3
    call "$@"
    if [ "$RC" -eq 1 ] && printf '%s' "$ERR" | grep -Eq -- "hsmd refused: $code .*$reason"; then
        ok 0 "$what: $code"
    else
        ok 1 "$what: $code"
        pt_diag "exit $RC" "$ERR"
    fi
}
tbs() { # tbs NAME OPTIONS...: a TBS in $PT_TMP/NAME.tbs
    local name=$1
    shift
    "$TOOL" tbs "$OUTDIR/CAPF.pem" "$PT_TMP/$name.tbs" "$@"
}
tbs ca-true --ca-true
refused "a CA:TRUE TBSCertificate" refused-by-policy "CA:TRUE" issue CAPF "$PT_TMP/ca-true.tbs"
tbs cert-sign --key-cert-sign
refused "keyUsage keyCertSign" refused-by-policy "keyCertSign" issue CAPF "$PT_TMP/cert-sign.tbs"
tbs wrong-issuer --issuer "CN=Somebody Else,O=Example"
refused "a wrong issuer" refused-by-policy "issuer .*Somebody Else" \
    issue CAPF "$PT_TMP/wrong-issuer.tbs"
tbs too-long --days 1828
refused "a validity over the maximum" refused-by-policy "maximum of 1827 days" \
    issue CAPF "$PT_TMP/too-long.tbs"
tbs old --start -172800
refused "notBefore two days ago" refused-by-policy "more than one day in the past" \
    issue CAPF "$PT_TMP/old.tbs"
tbs ecdsa --alg ecdsa-sha256
refused "an ECDSA signature algorithm for the RSA key" refused-by-policy \
    "does not match the key, which is RSA" issue CAPF "$PT_TMP/ecdsa.tbs"
tbs sha1 --alg rsa-sha1
refused "SHA-1 with RSA" refused-by-policy "digest this key does not sign with" \
    issue CAPF "$PT_TMP/sha1.tbs"
refused "the ITLRecovery key asked to issue" not-allowed "serves sign-tlv, not issue" \
    issue ITLRecovery "$PT_TMP/good.tbs"
refused "an unknown key" unknown-key "no key called 'NoSuchKey'" issue NoSuchKey "$PT_TMP/good.tbs"
head -c 300 /dev/urandom >"$PT_TMP/garbage.bin"
refused "random bytes as a TBSCertificate" bad-request "not a DER TBSCertificate" \
    issue CAPF "$PT_TMP/garbage.bin"

# sign-tlv -----------------------------------------------------------------------
"$TOOL" itl "$OUTDIR/ITLRecovery.pem" "$PT_TMP/itl.tlv" --add "$OUTDIR/CAPF.pem"
call sign-tlv ITLRecovery "$PT_TMP/itl.tlv" -o "$PT_TMP/itl-signed.tlv"
is "$RC" 0 "sign-tlv signs an ITL whose SAST record is the ITLRecovery certificate"
is "$(stat -c %s "$PT_TMP/itl-signed.tlv")" "$(stat -c %s "$PT_TMP/itl.tlv")" \
    "the signed ITL has the unsigned one's length"
"$TOOL" covered "$PT_TMP/itl-signed.tlv" "$PT_TMP/covered.bin" "$PT_TMP/sig.bin"
openssl x509 -in "$OUTDIR/ITLRecovery.pem" -noout -pubkey >"$PT_TMP/itlr-pub.pem"
run openssl dgst -sha1 -verify "$PT_TMP/itlr-pub.pem" -signature "$PT_TMP/sig.bin" \
    "$PT_TMP/covered.bin"
like "$OUT" "Verified OK" "openssl dgst -sha1 -verify accepts the signature over the covered bytes"
run "$TOOL" tlv-verify "$PT_TMP/itl-signed.tlv"
is "$RC" 0 "tlv_file_verify accepts the signed ITL"
"$TOOL" itl "$OUTDIR/ITLRecovery.pem" "$PT_TMP/itl512.tlv" --digest sha512
call sign-tlv ITLRecovery "$PT_TMP/itl512.tlv" -o "$PT_TMP/itl512-signed.tlv"
is "$RC" 0 "sign-tlv signs a SHA-512 ITL"
"$TOOL" covered "$PT_TMP/itl512-signed.tlv" "$PT_TMP/covered512.bin" "$PT_TMP/sig512.bin"
run openssl dgst -sha512 -verify "$PT_TMP/itlr-pub.pem" -signature "$PT_TMP/sig512.bin" \
    "$PT_TMP/covered512.bin"
like "$OUT" "Verified OK" "openssl verifies the SHA-512 signature"
refused "the CAPF key asked to sign an ITL" not-allowed "serves issue, not sign-tlv" \
    sign-tlv CAPF "$PT_TMP/itl.tlv" -o "$PT_TMP/x.tlv"
"$TOOL" itl "$OUTDIR/CAPF.pem" "$PT_TMP/itl-capf.tlv"
refused "an ITL naming another signer" refused-by-policy "SIGNER_NAME" \
    sign-tlv ITLRecovery "$PT_TMP/itl-capf.tlv" -o "$PT_TMP/x.tlv"
refused "random bytes as an ITL" bad-request "not a well-formed CTL/ITL" \
    sign-tlv ITLRecovery "$PT_TMP/garbage.bin" -o "$PT_TMP/x.tlv"
cp "$PT_TMP/itl-signed.tlv" "$PT_TMP/itl-presigned.tlv"
refused "an ITL that is already signed" refused-by-policy "not zero-filled" \
    sign-tlv ITLRecovery "$PT_TMP/itl-presigned.tlv" -o "$PT_TMP/x.tlv"

# frames ---------------------------------------------------------------------------
raw() { # raw NAME PRINTF-FORMAT: send the bytes, OUT holds the answer
    # shellcheck disable=SC2059
    printf "$2" >"$PT_TMP/$1.frame"
    run "$TOOL" raw "$SOCK" "$PT_TMP/$1.frame"
}
raw garbage '\x00\x00\x00\x0cGARBAGEGARBA'
like "$OUT" "^error bad-request: malformed request" "a frame that is not an hsmd body: bad-request"
like "$OUT" "then closed" "and hsmd hangs up"
raw oversized '\x01\x00\x00\x00HSMD\x01\x01\x00\x00\x00\x01'
like "$OUT" "^error bad-request: bad frame: frame of 16777216 bytes is over the limit" \
    "an oversized frame is refused from its length alone"
like "$OUT" "then closed" "and hsmd hangs up"
raw short '\x00\x00\x00\x05HSMD\x01'
like "$OUT" "^error bad-request: bad frame: .*shorter than" "a frame shorter than a header"
raw version2 '\x00\x00\x00\x0aHSMD\x02\x01\x00\x00\x00\x07'
like "$OUT" "^error unsupported-version: protocol version 2 is not supported" \
    "another protocol version: unsupported-version"
raw type99 '\x00\x00\x00\x0aHSMD\x01\x99\x00\x00\x00\x07'
like "$OUT" "^error bad-request" "an unknown message type: bad-request"
raw response '\x00\x00\x00\x11HSMD\x01\x81\x00\x00\x00\x01\x10\x00\x00\x00\x02{}'
like "$OUT" "^error bad-request" "a response sent as a request: bad-request"
ok "$(hsmd_alive && echo 0 || echo 1)" "hsmd is still running after the bad frames"
call status
is "$(printf '%s' "$OUT" | jq -r .status)" ok "and still answers status"

# an unauthorised peer ---------------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null &&
    setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$HSMCTL"; then
    nobody() { run setpriv --reuid=65534 --regid=65534 --clear-groups "$HSMCTL" call \
        --socket "$SOCK" "$@"; }
    nobody status
    like "$ERR" "hsmd refused: not-allowed .*uid 65534 may not ask for hsmd's status" \
        "uid 65534 may not see the status"
    nobody issue CAPF "$PT_TMP/good.tbs"
    like "$ERR" "hsmd refused: not-allowed .*uid 65534 may not use key CAPF" \
        "uid 65534 may not issue with CAPF"
else
    ok 0 "# SKIP the setpriv checks need root"
    ok 0 "# SKIP the setpriv checks need root"
fi
# A second hsmd whose keys are for uid 4242 and group 4343 only: we are turned away by
# SO_PEERCRED, and (as root) uid 65534 gets in through a supplementary group.
sed -e "s|^allow-users = .*|allow-users = 4242\nallow-groups = 4343|" \
    -e "s|^socket = .*|socket = $PT_TMP/other.sock|" \
    -e "s|^audit-log = .*|audit-log = $PT_TMP/other-audit.log|" "$CONF" >"$PT_TMP/other.conf"
"$HSMD" --config "$PT_TMP/other.conf" 2>>"$PT_TMP/other.err" &
OTHER_PID=$!
wait_until "the second hsmd's socket" 30 test -S "$PT_TMP/other.sock"
run "$HSMCTL" call --socket "$PT_TMP/other.sock" issue CAPF "$PT_TMP/good.tbs"
like "$ERR" "hsmd refused: not-allowed .*uid $(id -u) may not use key CAPF" \
    "a uid not in allow-users is refused"
run "$HSMCTL" call --socket "$PT_TMP/other.sock" cert CAPF
like "$ERR" "hsmd refused: not-allowed" "and may not fetch the certificate either"
if [ "$(id -u)" -eq 0 ] && setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$HSMCTL"
then
    run setpriv --reuid=65534 --regid=65534 --groups=4343 "$HSMCTL" call \
        --socket "$PT_TMP/other.sock" issue CAPF "$PT_TMP/good.tbs"
    is "$RC" 0 "a client in an allowed supplementary group may issue (SO_PEERGROUPS)"
    run setpriv --reuid=65534 --regid=65534 --groups=4444 "$HSMCTL" call \
        --socket "$PT_TMP/other.sock" issue CAPF "$PT_TMP/good.tbs"
    like "$ERR" "hsmd refused: not-allowed .*uid 65534" "in another group it may not"
else
    ok 0 "# SKIP the group checks need root"
    ok 0 "# SKIP the group checks need root"
fi
kill -TERM "$OTHER_PID"
wait "$OTHER_PID"
is "$?" 0 "the second hsmd stops cleanly on SIGTERM"
like "$(grep -c 'result=refused:not-allowed' "$PT_TMP/other-audit.log")" "^[23]$" \
    "its audit log records the refusals"

# the audit log ---------------------------------------------------------------------
call status
# The log also holds chain-start and this status request, which the answer cannot count yet.
is "$(printf '%s' "$OUT" | jq -r .counters.ok)" \
    "$(grep -c 'result=ok' "$AUDIT" | awk '{print $1 - 2}')" \
    "every answer counted ok has an ok record"
stop_hsmd
run "$HSMCTL" audit verify "$AUDIT"
is "$RC" 0 "hsmctl audit verify accepts the log"
like "$OUT" "intact" "and calls it intact"
like "$(grep " op=issue key=CAPF " "$AUDIT" | grep result=ok)" "serial=$LSC_SERIAL " \
    "the issued certificate's serial is in the log"
is "$(grep -c 'op=issue key=CAPF .*result=refused:refused-by-policy' "$AUDIT")" 7 \
    "each policy refusal of an issue request is logged"
like "$(grep 'result=refused:unknown-key' "$AUDIT")" "key=NoSuchKey" \
    "the unknown key is logged with its name"
like "$(grep 'op=invalid' "$AUDIT" | grep -c 'refused:unsupported-version')" "^1$" \
    "the other protocol version is logged"
like "$(grep -c 'op=invalid .*result=refused:bad-request' "$AUDIT")" "^[5-9]$" \
    "the bad frames are logged"
good_sha=$(sha256sum "$PT_TMP/good.tbs" | cut -d' ' -f1)
like "$(grep "input=$good_sha" "$AUDIT" | head -1)" "op=issue key=CAPF .*result=ok" \
    "a record carries the SHA-256 of the TBSCertificate it signed"
itl_sha=$(sha256sum "$PT_TMP/itl.tlv" | cut -d' ' -f1)
like "$(grep "input=$itl_sha" "$AUDIT" | grep op=sign-tlv | head -1)" "result=ok" \
    "and of the ITL it signed"

# One changed byte: the year of record 3's time.
cp "$AUDIT" "$PT_TMP/tampered.log"
off=$(($(head -n 2 "$PT_TMP/tampered.log" | wc -c) + 14))
printf '3' | dd of="$PT_TMP/tampered.log" bs=1 seek="$off" conv=notrunc status=none
is "$(cmp -l "$AUDIT" "$PT_TMP/tampered.log" | wc -l)" 1 "the copy differs in exactly one byte"
run "$HSMCTL" audit verify "$PT_TMP/tampered.log"
is "$RC" 1 "audit verify fails on the altered log"
like "$OUT" "BROKEN at line 3 \(record seq 3 expected there\): altered content" \
    "and names line 3 and why"
sed 2d "$AUDIT" >"$PT_TMP/cut.log"
run "$HSMCTL" audit verify "$PT_TMP/cut.log"
like "$OUT" "BROKEN at line 2 .*sequence gap" "a removed record is reported where it is missing"

# hsmd refuses to add to a broken log ---------------------------------------------------
cp "$PT_TMP/tampered.log" "$AUDIT"
before=$(sha256sum "$AUDIT")
run "$HSMD" --config "$CONF"
is "$RC" 4 "hsmd refuses to start on a broken audit log"
like "$ERR" "broken at line 3" "and says where it is broken"
like "$ERR" "start hsmd with --new-audit-chain" "and what to do"
is "$(sha256sum "$AUDIT")" "$before" "the broken log is left as it was"
start_hsmd_with --new-audit-chain
ok $? "with --new-audit-chain it starts"
call issue CAPF "$PT_TMP/good.tbs" -o "$PT_TMP/lsc2.pem"
is "$RC" 0 "and signs"
stop_hsmd
broken=$(find "$PT_TMP" -maxdepth 1 -name 'audit.log.broken-*' | head -1)
ok "$([ -n "$broken" ] && cmp -s "$broken" "$PT_TMP/tampered.log" && echo 0 || echo 1)" \
    "the broken log was moved aside unchanged"
run "$HSMCTL" audit verify "$AUDIT"
is "$RC" 0 "the new log verifies"
like "$(head -1 "$AUDIT")" "op=chain-start .*note=.*broken" "and starts by naming the broken one"

# A record cut short (a crash mid-write) is repaired at start-up.
printf 'v1 seq=99 time=2026' >>"$AUDIT"
start_hsmd
ok $? "hsmd starts on a log whose last line is incomplete"
stop_hsmd
run "$HSMCTL" audit verify "$AUDIT"
is "$RC" 0 "the log verifies again after the repair"
like "$(grep op=repair "$AUDIT")" "note=cut%20an%20incomplete%20last%20line%20of%2019%20bytes" \
    "and records the repair"

# The systemd unit ------------------------------------------------------------------
UNIT=$PT_SOURCE_ROOT/hsm/hsmd.service
if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/sbin/hsmd|$HSMD|g" "$UNIT" >"$PT_TMP/hsmd.service"
    run systemd-analyze verify --man=no "$PT_TMP/hsmd.service"
    is "$RC" 0 "systemd-analyze verify accepts hsmd.service"
    [ "$RC" -eq 0 ] || pt_diag "$ERR"
else
    ok 0 "# SKIP systemd-analyze is not installed"
fi
like "$(grep '^Type=' "$UNIT")" "^Type=notify$" "the unit waits for hsmd's readiness"
like "$(grep '^RestartPreventExitStatus=' "$UNIT")" "=2 3 4$" \
    "the unit never restarts hsmd after a refused PIN (3), a bad configuration (2) or log (4)"
like "$(grep '^ExecStart=' "$UNIT")" "hsmd --config /etc/phonetrust/hsmd.conf$" \
    "and runs it in the foreground"

done_testing
