#!/bin/bash
# ctlclient itl build: an ITL signed by the TFTP key on a SoftHSM2 token, and
# one re-signed with the ITLRecovery key through hsmd (a stand-in speaking
# hsmd's protocol); phones holding the first accept the second. Also
# --sign-with hsmd: in create, a misbehaving hsmd, and the 64 KB warning.
# shellcheck source=tests/integration/ctl/ctl-lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ctl/ctl-lib.sh"
FAKE_HSMD=${1:?usage: itl.sh FAKE-HSMD}
ctl_setup 1
command -v pkcs11-tool >/dev/null || skip_all "pkcs11-tool (opensc) is not installed"
pt_enroll TFTP "CN=cucm-pub,O=Example,OU=VoIP" || { echo "Bail out! cannot enroll TFTP"; exit 1; }
for c in tvs:rsa capf:ec other:rsa; do mkcert "${c%%:*}" "${c##*:}"; done
C=$PT_TMP
CTL=$CTLCLIENT
TFTP_URI="pkcs11:token=TFTP?pin-source=file:$PIN"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/itlrec.key" -out "$C/itlrec.pem" \
    -subj "/CN=ITLRECOVERY_cucm-pub/O=Example" -days 7300 2>/dev/null
token_cert_pem TFTP "$C/tftp.pem"
roles() { json "$1" | jq -r '[.records[] | .role + ":" + (.subject | split(",")[0] | ltrimstr("CN="))] | join(" ")'; }
mkdir -p "$C/itl1" "$C/itl2" "$C/x"

# --- usage -------------------------------------------------------------------------
run "$CTL" itl build -o "$C/x/ITLFile.tlv"
is "$RC" 2 "itl build without --signer is a usage error"
run "$CTL" itl frob
is "$RC" 2 "an unknown itl command is a usage error"

# --- signed by the TFTP key on a token -----------------------------------------------------
run "$CTL" itl build -o "$C/itl1/ITLFile.tlv" --signer "$TFTP_URI" --tvs "$C/tvs.pem" \
    --capf "$C/capf.pem" --itlrecovery "$C/itlrec.pem" --module "$M"
is "$RC" 0 "an ITL signed by the TFTP key on a token"
ITL1=$C/itl1/ITLFile.tlv
is "$(roles "$ITL1")" "SAST:cucm-pub TFTP:cucm-pub TVS:tvs CAPF:capf SAST:ITLRECOVERY_cucm-pub" \
    "the signer is listed as SAST and TFTP, the ITLRecovery certificate as SAST"
J=$(json "$ITL1")
is "$(jq -r '.filename' <<<"$J")" "ITLFile.tlv" "the file name is ITLFile.tlv"
is "$(jq -r '.signer.record' <<<"$J")" 1 "signed by record 1"
is "$(jq -r '[.records[0,1].sha256] | unique | length' <<<"$J")" 1 "SAST and TFTP hold the same certificate"
is "$(jq -r '.records[0].sha256' <<<"$J")" "$(cert_sha256 "$C/tftp.pem")" "the token's certificate"
run "$CTL" verify "$ITL1"
is "$RC" 0 "verify accepts it"

run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$TFTP_URI" --signer-cert "$C/tftp.pem" \
    --signer-role ccm-tftp --tvs "$C/tvs.pem" --module "$M"
is "$RC" 0 "--signer-cert and --signer-role ccm-tftp"
is "$(roles "$C/x/ITLFile.tlv")" "SAST:cucm-pub CCM+TFTP:cucm-pub TVS:tvs" "the signer is SAST and CCM+TFTP"
rm -f "$C/x/ITLFile.tlv"
run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$TFTP_URI" --signer-cert "$C/other.pem" \
    --module "$M"
is "$RC" 1 "a --signer-cert that is not the token key's is refused"
like "$ERR" "is not the key of the signer's certificate" "saying so"
ok "$([ ! -e "$C/x/ITLFile.tlv" ]; echo $?)" "and nothing is written"

# --- re-signed with the ITLRecovery key through hsmd -------------------------------------
SOCK=$C/hsmd.sock
mkfifo "$C/hsmd.ready"
"$FAKE_HSMD" "$SOCK" ITLRecovery "$C/itlrec.key" "$C/itlrec.pem" >"$C/hsmd.ready" &
HSMD=$!
read -r -t 30 line <"$C/hsmd.ready"
is "$line" ready "the hsmd stand-in listens"
H="hsmd:$SOCK#ITLRecovery"

run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$H" --tvs "$C/tvs.pem"
is "$RC" 2 "an hsmd signer without the TFTP server's certificate is a usage error"
like "$ERR" "give the TFTP server's certificate with --tftp" "saying what to add"
run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$H" --signer-role tftp --tftp "$C/tftp.pem"
is "$RC" 2 "--signer-role with an hsmd signer is a usage error"

run "$CTL" itl build -o "$C/itl2/ITLFile.tlv" --signer "$H" --tftp "$C/tftp.pem" \
    --tvs "$C/tvs.pem" --capf "$C/capf.pem" --itlrecovery "$C/itlrec.pem"
is "$RC" 0 "an ITL re-signed through hsmd with the ITLRecovery key"
like "$OUT" "signed by hsmd key 'ITLRecovery' at $SOCK" "saying who signed"
ITL2=$C/itl2/ITLFile.tlv
is "$(roles "$ITL2")" "SAST:ITLRECOVERY_cucm-pub TFTP:cucm-pub TVS:tvs CAPF:capf" \
    "the ITLRecovery certificate is listed once, as SAST; the TFTP server as TFTP"
run "$CTL" verify "$ITL2" --previous "$ITL1"
is "$RC" 0 "phones holding the TFTP-signed ITL accept the ITLRecovery-signed one"
run "$CTL" verify "$ITL1" --previous "$ITL2"
is "$RC" 1 "but not the reverse: the TFTP key is not a SAST of the recovery ITL"

run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "hsmd:$SOCK#NoSuchKey" --tftp "$C/tftp.pem"
is "$RC" 1 "an unknown hsmd key fails"
like "$ERR" "unknown key" "with hsmd's reason"

# --sign-with hsmd: in create.
run "$CTL" create -o "$C/x/CTLFile.tlv" --sast "$U1" --sast "$H" --sign-with "$H" \
    --ccm-tftp "$C/tftp.pem" --module "$M"
is "$RC" 0 "create --sign-with hsmd:SOCKET#LABEL"
is "$(json "$C/x/CTLFile.tlv" | jq -r '.signer.name')" "CN=ITLRECOVERY_cucm-pub,O=Example" \
    "the CTL is signed through hsmd"
run "$CTL" verify "$C/x/CTLFile.tlv"
is "$RC" 0 "and verifies"
mkdir -p "$C/y"
run "$CTL" update -i "$C/x/CTLFile.tlv" -o "$C/y/CTLFile.tlv" --sign-with "$H" --tvs "$C/tvs.pem" \
    --module "$M"
is "$RC" 0 "update --sign-with hsmd:SOCKET#LABEL"
run "$CTL" verify "$C/y/CTLFile.tlv" --previous "$C/x/CTLFile.tlv"
is "$RC" 0 "and phones holding the old CTL accept it"
kill "$HSMD"
wait "$HSMD" 2>/dev/null

# An hsmd that changes more than the signature is not believed.
rm -f "$SOCK" "$C/x/ITLFile.tlv"
"$FAKE_HSMD" --tamper "$SOCK" ITLRecovery "$C/itlrec.key" "$C/itlrec.pem" >"$C/hsmd.ready" &
HSMD=$!
read -r -t 30 line <"$C/hsmd.ready"
run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$H" --tftp "$C/tftp.pem"
is "$RC" 1 "a signed file that differs from the one sent is refused"
like "$ERR" "hsmd changed more than the signature" "saying so"
ok "$([ ! -e "$C/x/ITLFile.tlv" ]; echo $?)" "and nothing is written"
kill "$HSMD"
wait "$HSMD" 2>/dev/null
run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$H" --tftp "$C/tftp.pem"
is "$RC" 1 "an hsmd that is not running fails"
like "$ERR" "$SOCK" "naming the socket"

# --- over 64 KB: a warning, and the file is still written ---------------------------------
args=()
for i in $(seq 28); do
    mkcert "big$i" rsa4096 "/CN=big-tvs-$i/O=Example/OU=VoIP"
    args+=(--tvs "$C/big$i.pem")
done
run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$TFTP_URI" "${args[@]:0:40}" --module "$M"
is "$RC" 0 "an ITL under 64 KB"
unlike "$ERR" "64 KB" "has no size warning"
run "$CTL" itl build -o "$C/x/ITLFile.tlv" --signer "$TFTP_URI" "${args[@]}" --module "$M"
is "$RC" 0 "an ITL over 64 KB is still built"
like "$ERR" "warning: the ITL is [0-9]+ bytes, over 64 KB .*phones fail to load" "with a warning"
size=$(stat -c %s "$C/x/ITLFile.tlv")
ok $((size > 65536 ? 0 : 1)) "the file is over 64 KB ($size bytes)"
run "$CTL" verify "$C/x/ITLFile.tlv"
is "$RC" 0 "and verifies"

done_testing
