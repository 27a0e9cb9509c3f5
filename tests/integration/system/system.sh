#!/bin/bash
# The whole system end to end, as the demo runs it, plus what an administrator
# meets in practice: a lost security token replaced (a phone holding the old
# CTL accepts the new one), the ITL re-signed with the ITLRecovery key through
# hsmd (a phone holding the old ITL accepts it), an LSC upgraded and deleted,
# and hsmd and capfd restarted in the middle with nothing lost.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
pt_require_softhsm
for tool in openssl pkcs11-tool jq sqlite3; do
    command -v "$tool" >/dev/null || skip_all "$tool is not installed"
done
SYS_BUILD=$PT_BUILD_ROOT
SYS_SRC=$PT_SOURCE_ROOT
SYS_WORK=$PT_TMP/work
SYS_SOFTHSM=$PT_SOFTHSM_MODULE
# shellcheck source=tests/lib/system.sh
. "$PT_SOURCE_ROOT/tests/lib/system.sh"
trap 'sys_stop_all; rm -rf "$PT_TMP"' EXIT
DEV=SEP001122334455

# Runs a step through run (RC, OUT, ERR) and reports it.
step() { # step DESCRIPTION FUNCTION [ARGS...]
    local what=$1
    shift
    run "$@"
    ok "$RC" "$what"
    [ "$RC" -eq 0 ] || pt_diag "$ERR"
}
audit_ops() { grep -ao ' op=[a-z-]*' "$SYS_AUDIT" | sort | uniq -c | tr -s ' '; }
audit_records() { grep -c '^v1 ' "$SYS_AUDIT"; }

# --- the demo's flow ----------------------------------------------------------
step "a private token store with random PINs" sys_init
step "two security tokens, the HSM token and the TFTP server's token" sys_tokens
step "the key ceremony in the HSM" sys_ceremony
step "the CTL, signed with SAST-1" sys_ctl_create
step "the ITL, signed with the TFTP key" sys_itl_build
run "$CTLCLIENT" show --json "$SYS_TFTP/CTLFile.tlv"
is "$(printf '%s' "$OUT" | jq -r '[.records[].role] | join(",")')" "SAST,SAST,CCM+TFTP,CAPF" \
    "the CTL lists both tokens, the CallManager/TFTP server and CAPF"
is "$(printf '%s' "$OUT" | jq -r '.signature_valid')" true "and its signature is valid"
run "$CTLCLIENT" show --json "$SYS_TFTP/ITLFile.tlv"
is "$(printf '%s' "$OUT" | jq -r '[.records[].role] | sort | join(",")')" \
    "CAPF,CCM+TFTP,SAST,SAST" "the ITL lists the TFTP key (SAST, CCM+TFTP), CAPF and ITLRecovery"

step "hsmd configured from hsm/hsmd.conf.example" sys_hsmd_config
step "hsmd starts" sys_start_hsmd
step "capfd configured from ca/capfd.conf.example, TLS certificate issued through hsmd" \
    sys_capfd_config
step "capfd starts on 127.0.0.1" sys_start_capfd
step "capfctl schedules an install with an authentication string" sys_add_phone "$DEV"
step "the simulated phone enrolls" sys_phone "$DEV" --password-file "$SYS_PHONE/$DEV.auth" \
    --out-lsc "$SYS_PHONE/lsc1.pem" --out-key "$SYS_PHONE/key1.pem"
unlike "$OUT$ERR" "$(cat "$SYS_PHONE/$DEV.auth")" "the authentication string is not printed"
run openssl verify -CAfile "$SYS_CERTS/CAPF.pem" "$SYS_PHONE/lsc1.pem"
is "$RC" 0 "the LSC verifies against the CAPF certificate"
is "$(openssl x509 -in "$SYS_PHONE/lsc1.pem" -noout -subject)" \
    "subject=CN = $DEV, O = Example, OU = VoIP, C = NZ" "the LSC names the phone"
SERIAL1=$(openssl x509 -in "$SYS_PHONE/lsc1.pem" -noout -serial | cut -d= -f2)
run "$CAPFCTL" show "$DEV" --json
is "$(printf '%s' "$OUT" | jq -r '.status.text')" "install success" "the store says install success"
is "$(printf '%s' "$OUT" | jq -r '.lsc.serial')" "$SERIAL1" "and records the LSC's serial"
like "$(grep -a " op=issue " "$SYS_AUDIT")" "serial=$SERIAL1" "hsmd's audit log has the LSC"
run "$HSMCTL" audit verify "$SYS_AUDIT"
is "$RC" 0 "the audit log verifies"
run "$CAPFCTL" report
like "$OUT" "$DEV,demo phone,string,,none,,install success,$SERIAL1" "the CAPF report lists it"

# --- a lost security token --------------------------------------------------------
# SAST-1 is lost: a new token SAST-3 replaces it, signed by the remaining SAST-2.
run sys_add_token SAST-3 sast
run "$CTLCLIENT" token enroll "$(sys_uri SAST-3 sast)" --module "$SYS_SOFTHSM" \
    --subject "CN=SAST-3,O=Example,OU=VoIP,C=NZ"
ok "$RC" "a new security token is enrolled"
LOST=$("$CTLCLIENT" show --json "$SYS_TFTP/CTLFile.tlv" |
    jq -r '.records[] | select(.role == "SAST" and (.subject | startswith("CN=SAST-1"))) | .serial')
mkdir -p "$SYS_WORK/tftp2"
step "the CTL is updated: SAST-3 added, SAST-1 removed, signed with SAST-2" \
    "$CTLCLIENT" update -i "$SYS_TFTP/CTLFile.tlv" -o "$SYS_WORK/tftp2/CTLFile.tlv" \
    --module "$SYS_SOFTHSM" --sign-with "$(sys_uri SAST-2 sast)" \
    --add-sast "$(sys_uri SAST-3 sast)" --remove-sast "$LOST"
run "$CTLCLIENT" verify "$SYS_WORK/tftp2/CTLFile.tlv" --previous "$SYS_TFTP/CTLFile.tlv"
is "$RC" 0 "a phone holding the old CTL accepts the new one"
run "$CTLCLIENT" show --json "$SYS_WORK/tftp2/CTLFile.tlv"
is "$(printf '%s' "$OUT" | jq -r '[.records[] | select(.role == "SAST") | .subject] | sort | join(";")')" \
    "CN=SAST-2,O=Example,OU=VoIP,C=NZ;CN=SAST-3,O=Example,OU=VoIP,C=NZ" \
    "the new CTL lists SAST-2 and SAST-3, not the lost token"
run "$CTLCLIENT" update -i "$SYS_WORK/tftp2/CTLFile.tlv" -o "$SYS_WORK/tftp2/CTLFile.tlv" \
    --module "$SYS_SOFTHSM" --sign-with "$(sys_uri SAST-1 sast)" --tftp "$SYS_CERTS/tftp.pem"
is "$RC" 1 "the lost token can no longer sign the CTL"
like "$ERR" "must already exist in the CTL" "with the classic message"

# --- the ITL re-signed with the ITLRecovery key through hsmd ---------------------------
mkdir -p "$SYS_WORK/recovery"
step "the ITL is re-signed with the ITLRecovery key through hsmd" \
    "$CTLCLIENT" itl build -o "$SYS_WORK/recovery/ITLFile.tlv" \
    --signer "hsmd:$SYS_HSMD_SOCK#ITLRecovery" --ccm-tftp "$SYS_CERTS/tftp.pem" \
    --capf "$SYS_CERTS/CAPF.pem"
run "$CTLCLIENT" verify "$SYS_WORK/recovery/ITLFile.tlv" --previous "$SYS_TFTP/ITLFile.tlv"
is "$RC" 0 "a phone holding the old ITL accepts the recovery ITL"
like "$(grep -a ' op=sign-tlv ' "$SYS_AUDIT")" "result=ok" "hsmd's audit log has the ITL signature"

# --- restart hsmd and capfd in the middle: nothing lost ----------------------------------
BEFORE=$(audit_records)
cp "$SYS_AUDIT" "$PT_TMP/audit-before.log"
sys_stop_all
step "hsmd starts again on the same audit log" sys_start_hsmd
step "capfd starts again on the same store" sys_start_capfd
run "$HSMCTL" audit verify "$SYS_AUDIT"
is "$RC" 0 "the audit log still verifies after the restart"
run cmp -n "$(stat -c %s "$PT_TMP/audit-before.log")" "$PT_TMP/audit-before.log" "$SYS_AUDIT"
is "$RC" 0 "and keeps every record written before it, unchanged"
ok $(($(audit_records) >= BEFORE ? 0 : 1)) "and only adds to it"
run "$CAPFCTL" show "$DEV" --json
is "$(printf '%s' "$OUT" | jq -r '.lsc.serial')" "$SERIAL1" "the store still holds the phone's LSC"

# --- an LSC upgraded, the phone authenticating with its current LSC ----------------------
run "$CAPFCTL" set "$DEV" --operation install --auth lsc
ok "$RC" "capfctl schedules an upgrade authenticated by the current LSC"
step "the phone upgrades its LSC" sys_phone "$DEV" --lsc "$SYS_PHONE/lsc1.pem" \
    --auth-cert "$SYS_PHONE/lsc1.pem" --auth-key "$SYS_PHONE/key1.pem" \
    --out-lsc "$SYS_PHONE/lsc2.pem" --out-key "$SYS_PHONE/key2.pem"
SERIAL2=$(openssl x509 -in "$SYS_PHONE/lsc2.pem" -noout -serial | cut -d= -f2)
isnt=$([ "$SERIAL2" != "$SERIAL1" ] && echo yes || echo no)
is "$isnt" yes "the phone received a new LSC"
run openssl verify -CAfile "$SYS_CERTS/CAPF.pem" "$SYS_PHONE/lsc2.pem"
is "$RC" 0 "which verifies against the CAPF certificate"
run "$CAPFCTL" certs "$DEV" --json
is "$(printf '%s' "$OUT" | jq -r '[.[].serial] | sort | join(",")')" \
    "$(printf '%s\n%s\n' "$SERIAL1" "$SERIAL2" | sort | paste -sd,)" \
    "the store keeps both certificates"

# --- the LSC deleted ----------------------------------------------------------------------
run "$CAPFCTL" set "$DEV" --operation delete --auth null
ok "$RC" "capfctl schedules a delete"
step "the phone deletes its LSC" sys_phone "$DEV" --lsc "$SYS_PHONE/lsc2.pem"
run "$CAPFCTL" show "$DEV" --json
is "$(printf '%s' "$OUT" | jq -r '.status.text')" "delete success" "the store says delete success"
is "$(printf '%s' "$OUT" | jq -r '.lsc')" "null" "and the phone has no LSC any more"

# --- the end: every signature hsmd made is in the audit log ------------------------------
run "$HSMCTL" audit verify "$SYS_AUDIT"
is "$RC" 0 "the audit log verifies at the end"
is "$(grep -ac ' op=issue .*result=ok' "$SYS_AUDIT")" 3 \
    "it holds the three certificates hsmd issued (capfd's TLS certificate and two LSCs)"
pt_diag "audit operations: $(audit_ops | paste -sd' ')"
sys_stop_all
run "$CTLCLIENT" verify "$SYS_TFTP/ITLFile.tlv"
is "$RC" 0 "the files on the TFTP server still verify after everything stopped"

done_testing
