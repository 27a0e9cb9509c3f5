#!/bin/bash
# ctlclient update: chains of CTLs as phones see them (verify --previous), the
# lost-token procedure, replacing and removing servers, non-secure mode, and
# every refusal with its message and exit code.
# shellcheck source=tests/integration/ctl/ctl-lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ctl/ctl-lib.sh"
ctl_setup 4
[ -f "$ETOKEN_SIM_MODULE" ] || skip_all "the eToken simulator was not built"
for c in ccm:rsa ccm2:rsa tftp2:ec capf:ec tvs:rsa; do mkcert "${c%%:*}" "${c##*:}"; done
C=$PT_TMP
CTL=$CTLCLIENT
sast_serial() { json "$1" | jq -r --arg s "SAST-$2" '.records[] | select(.role == "SAST" and (.subject | startswith("CN=" + $s + ","))) | .serial'; }
roles() { json "$1" | jq -r '[.records[] | .role + ":" + (.subject | split(",")[0] | ltrimstr("CN="))] | join(" ")'; }

mkdir -p "$C/v1" "$C/v2" "$C/v3" "$C/x"
run "$CTL" create -o "$C/v1/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" \
    --capf "$C/capf.pem" --module "$M"
is "$RC" 0 "v1: SAST-1 and SAST-2, signed by SAST-1"
V1=$C/v1/CTLFile.tlv
A=$(sast_serial "$V1" 1)
B=$(sast_serial "$V1" 2)
CCM=$(cert_serial "$C/ccm.pem")
CAPF=$(cert_serial "$C/capf.pem")
X=$C/x/CTLFile.tlv

# --- usage -------------------------------------------------------------------------
run "$CTL" update -o "$X" --sign-with "$U1" --module "$M"
is "$RC" 2 "update without -i is a usage error"
like "$ERR" "needs -i OLD" "saying what is missing"
run "$CTL" update -i "$V1" -o "$X" --module "$M"
is "$RC" 2 "update without --sign-with is a usage error"
run "$CTL" update -i "$V1" --sign-with "$U1" --module "$M"
is "$RC" 2 "update without -o is a usage error"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --remove-sast zz --module "$M"
is "$RC" 2 "a serial that is not hex is a usage error"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --remove-sast : --module "$M"
is "$RC" 2 "a serial with no digits is a usage error (no leak: LeakSanitizer would change the status)"
like "$ERR" "expected a serial number in hex" "saying what is expected"

# --- refusals ------------------------------------------------------------------------
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U3" --add-sast "$U4" --module "$M"
is "$RC" 1 "a token that v1 does not list cannot sign"
like "$ERR" "The Security Token cannot be used to sign the CTL File. The token must already exist in the CTL file" \
    "with the classic message"
like "$ERR" "ctlclient show" "and how to see which tokens can"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --add-sast "$U2" --module "$M"
is "$RC" 1 "adding a token that is already listed is refused"
like "$ERR" "The Security Token you have inserted already exists in the CTL File" "with the classic message"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --remove-sast "$B" --module "$M"
is "$RC" 1 "removing a token that leaves one is refused"
like "$ERR" "You must have at least 2 security tokens in the CTL File: this update would leave 1" \
    "with the classic message"
like "$ERR" "--add-sast" "and what to do"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --add-sast "$U3" --remove-sast "$A" --module "$M"
is "$RC" 1 "removing the token that signs is refused"
like "$ERR" "the token signing this update" "saying why"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --remove "$CCM" --module "$M"
is "$RC" 1 "removing the CallManager without a replacement is refused"
like "$ERR" "only when they are replaced" "saying when it is allowed"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --remove "$CAPF" --module "$M"
is "$RC" 1 "removing the CAPF without a replacement is refused"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --capf "$C/capf.pem" --module "$M"
is "$RC" 1 "adding a record that exists is refused"
like "$ERR" "entry already exists" "with the classic message"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --remove 0123456789 --module "$M"
is "$RC" 1 "removing a record that does not exist fails"
like "$ERR" "no record with that serial" "saying so"
run "$CTL" update -i "$V1" -o "$X" --sign-with "$U1" --remove "$B" --module "$M"
is "$RC" 2 "--remove of a token says to use --remove-sast"
like "$ERR" "use --remove-sast" "saying so"
cp "$V1" "$C/tampered.tlv"
printf 'Z' | dd of="$C/tampered.tlv" bs=1 seek=$(($(u16 "$V1" 8) + 8)) conv=notrunc 2>/dev/null
run "$CTL" update -i "$C/tampered.tlv" -o "$X" --sign-with "$U1" --add-sast "$U3" --module "$M"
is "$RC" 1 "an old CTL that does not verify is refused"
like "$ERR" "does not verify" "saying so"
ok "$([ ! -e "$X" ]; echo $?)" "no refusal wrote anything"

# --- a chain: A signs v1; B adds C and removes A in v2; C signs v3 --------------------------
run "$CTL" update -i "$V1" -o "$C/v2/CTLFile.tlv" --sign-with "$U2" --add-sast "$U3" \
    --remove-sast "$A" --module "$M"
is "$RC" 0 "v2: signed by SAST-2, SAST-3 added, SAST-1 removed"
V2=$C/v2/CTLFile.tlv
is "$(roles "$V2")" "SAST:SAST-2 CCM+TFTP:ccm CAPF:capf SAST:SAST-3" "v2 lists the right records"
run "$CTL" verify "$V2" --previous "$V1"
is "$RC" 0 "a phone holding v1 accepts v2 (signed by SAST-2, which v1 lists)"
like "$OUT" "a security token listed in" "verify says so"
run "$CTL" update -i "$V2" -o "$C/v3/CTLFile.tlv" --sign-with "$U3" --add-tftp "$C/tftp2.pem" \
    --module "$M"
is "$RC" 0 "v3: signed by SAST-3, an alternate TFTP server added"
V3=$C/v3/CTLFile.tlv
run "$CTL" verify "$V3" --previous "$V2"
is "$RC" 0 "a phone holding v2 accepts v3"
run "$CTL" verify "$V3" --previous "$V1"
is "$RC" 1 "a phone holding v1 does not accept v3 (SAST-3 is not in v1)"
like "$ERR" "v3/CTLFile.tlv: " "with a one-line reason naming the file"
is "$(printf '%s\n' "$ERR" | wc -l)" 1 "on one line"
run "$CTL" update -i "$V2" -o "$X" --sign-with "$U1" --add-sast "$U4" --module "$M"
is "$RC" 1 "the removed token SAST-1 can no longer sign"

# --- the lost-token procedure: SAST-1 is gone; SAST-2 adds SAST-4 and removes SAST-1 ---------
"$ETOKEN_SIM_CTL" fault "$S1" removed >/dev/null
run "$CTL" token list --module "$ETOKEN_SIM_MODULE"
unlike "$OUT" "SAST-1" "SAST-1 is not present any more"
run "$CTL" update -i "$V1" -o "$C/lost/CTLFile.tlv" --sign-with "pkcs11:token=SAST-2" \
    --add-sast "$U4" --remove-sast "$A" --module "$ETOKEN_SIM_MODULE" --pin-fd 3 3<"$PIN"
is "$RC" 1 "the output directory must exist"
mkdir -p "$C/lost"
run "$CTL" update -i "$V1" -o "$C/lost/CTLFile.tlv" --sign-with "pkcs11:token=SAST-2" \
    --add-sast "$U4" --remove-sast "$A" --module "$ETOKEN_SIM_MODULE" --pin-fd 3 3<"$PIN"
is "$RC" 0 "lost token: a remaining token adds a new one and removes the lost one"
is "$(roles "$C/lost/CTLFile.tlv")" "SAST:SAST-2 CCM+TFTP:ccm CAPF:capf SAST:SAST-4" \
    "the new CTL lists SAST-2 and SAST-4"
run "$CTL" verify "$C/lost/CTLFile.tlv" --previous "$V1"
is "$RC" 0 "phones holding the old CTL accept the new one"
"$ETOKEN_SIM_CTL" fault "$S1" none >/dev/null

# --- replacing servers, removing an alternate TFTP server -------------------------------
TFTP2=$(cert_serial "$C/tftp2.pem")
run "$CTL" update -i "$V3" -o "$X" --sign-with "$U2" --remove "$CCM" --ccm-tftp "$C/ccm2.pem" \
    --remove "$TFTP2" --module "$M"
is "$RC" 0 "the CallManager is replaced and the alternate TFTP server removed"
is "$(roles "$X")" "SAST:SAST-2 CAPF:capf SAST:SAST-3 CCM+TFTP:ccm2" "the records are as asked"
run "$CTL" verify "$X" --previous "$V3"
is "$RC" 0 "and phones holding v3 accept it"

# --- digest and mode carry over; non-secure and back ------------------------------------
mkdir -p "$C/ns" "$C/ns2" "$C/mx"
run "$CTL" update -i "$V3" -o "$C/ns/CTLFile.tlv" --sign-with "$U2" --mode nonsecure --digest sha512 \
    --module "$M"
is "$RC" 0 "update to non-secure mode with SHA-512"
NS=$C/ns/CTLFile.tlv
is "$(json "$NS" | jq -r '[.records[].has_certificate] | join(" ")')" "true false false true false" \
    "only the SAST records keep certificates"
# Records without a certificate cannot be rebuilt from nothing: they are given again.
run "$CTL" update -i "$NS" -o "$C/ns2/CTLFile.tlv" --sign-with "$U2" --add-sast "$U4" --module "$M"
is "$RC" 1 "an update of a non-secure CTL needs the server certificates again"
like "$ERR" "carries no certificate \(non-secure mode\), so it cannot be carried over" "saying why"
run "$CTL" update -i "$NS" -o "$C/ns2/CTLFile.tlv" --sign-with "$U2" --add-sast "$U4" \
    --ccm-tftp "$C/ccm.pem" --capf "$C/capf.pem" --tftp "$C/tftp2.pem" --module "$M"
is "$RC" 0 "an update of a non-secure CTL with the server certificates given again"
J=$(json "$C/ns2/CTLFile.tlv")
is "$(jq -r '.digest' <<<"$J")" "SHA-512" "keeps the old digest"
is "$(jq -r '[.records[] | select(.role != "SAST") | .has_certificate] | unique | join(" ")' <<<"$J")" \
    "false" "and non-secure mode"
run "$CTL" update -i "$NS" -o "$X" --sign-with "$U2" --mode mixed --module "$M"
is "$RC" 1 "back to mixed mode without the server certificates is refused"
like "$ERR" "carries no certificate \(non-secure mode\).*give its certificate again" "saying what to do"
run "$CTL" update -i "$NS" -o "$C/mx/CTLFile.tlv" --sign-with "$U2" --mode mixed --digest sha1 \
    --ccm-tftp "$C/ccm.pem" --capf "$C/capf.pem" --tftp "$C/tftp2.pem" --module "$M"
is "$RC" 0 "back to mixed mode with the certificates given again"
J=$(json "$C/mx/CTLFile.tlv")
is "$(jq -r '[.records[].has_certificate] | unique | join(" ")' <<<"$J")" "true" "every record has its certificate"
is "$(jq -r '.digest' <<<"$J")" "SHA-1" "--digest overrides the old digest"
run "$CTL" verify "$C/mx/CTLFile.tlv" --previous "$NS"
is "$RC" 0 "phones holding the non-secure CTL accept it"

done_testing
