#!/bin/bash
# ctlclient create, show and verify on SoftHSM2 tokens: round trips with RSA
# and EC server certificates, SHA-1 and SHA-512, non-secure mode, the
# refusals with their messages and exit codes, the limits, and writing to
# several locations when one of them fails.
# shellcheck source=tests/integration/ctl/ctl-lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ctl/ctl-lib.sh"
ctl_setup 3
command -v pkcs11-tool >/dev/null || skip_all "pkcs11-tool (opensc) is not installed"
for c in ccm:rsa ccm2:rsa tvs:rsa app:rsa capf:ec tftp:ec; do mkcert "${c%%:*}" "${c##*:}"; done
C=$PT_TMP
CTL=$CTLCLIENT
TS=1700000000
mkdir -p "$C/d1" "$C/d2"

# --- help and usage errors ---------------------------------------------------------
run "$CTL" create --help
is "$RC" 0 "create --help exits 0"
like "$OUT" "nonsecure: the cluster's non-secure mode" "--help explains non-secure mode"
like "$OUT" "except the SAST records, which keep theirs" "and why SAST records keep their certificates"
like "$OUT" "reproducible builds only" "--help says --timestamp is for reproducible builds"
for c in update show verify; do
    run "$CTL" "$c" --help
    is "$RC" 0 "$c --help exits 0"
done
run "$CTL" itl --help
is "$RC" 0 "itl --help exits 0"

run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 2 "one --sast is a usage error (2)"
like "$ERR" "You must have at least 2 security tokens in the CTL File" "with the classic message"
like "$ERR" "give --sast URI for each" "and what to do"
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" --capf "$C/capf.pem" --module "$M"
is "$RC" 2 "a CTL without a CallManager record is refused (2)"
like "$ERR" "needs a CallManager record: give --ccm-tftp" "saying what to add"
run "$CTL" create -o "$C/d1/CTLFile.tlv" -o "$C/d2/ctl.tlv" --sast "$U1" --sast "$U2" \
    --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 2 "locations with different base names are refused (2)"
like "$ERR" "different file names" "saying why"
run "$CTL" create --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 2 "no -o is a usage error"
for bad in "--digest md5" "--mode secure" "--timestamp -1" "--timestamp 4294967296" \
    "--ccm-tftp $C/ccm.pem,ip=::1" "--ccm-tftp $C/ccm.pem,host=a,colour=red" \
    "--ccm-tftp $C/ccm.pem,sha256=abcd" "--ccm-tftp tls://host" "--ccm-tftp tls://h:99999"; do
    # shellcheck disable=SC2086  # one option and its value, split on purpose
    run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" \
        --ccm-tftp "$C/ccm2.pem" $bad --module "$M"
    is "$RC" 2 "usage error for $bad"
done
ls "$C/d1" >"$C/ls"
is "$(cat "$C/ls")" "" "no usage error wrote anything"

# --- the same token twice, a signer that is not listed --------------------------------
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "pkcs11:serial=$S1" \
    --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 1 "the same token twice (by label and by serial) is refused"
like "$ERR" "The Security Token you have inserted already exists in the CTL File" \
    "with the classic message"
like "$ERR" "at least 2 distinct security tokens" "and what is needed"
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" --sign-with "$U3" \
    --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 1 "--sign-with a token that is not a --sast token is refused"
like "$ERR" "The Security Token cannot be used to sign the CTL File" "with the classic message"
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" \
    --ccm-tftp "$C/ccm.pem" --tvs "$C/tvs.pem" --tvs "$C/tvs.pem" --module "$M"
is "$RC" 1 "the same server certificate twice in a role is refused"
like "$ERR" "entry already exists" "with the classic message"
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" \
    --ccm-tftp "$C/missing.pem" --module "$M"
is "$RC" 1 "a missing certificate file fails"
like "$ERR" "missing.pem" "naming the file"
ls "$C/d1" >"$C/ls"
is "$(cat "$C/ls")" "" "no refusal wrote anything"
run setsid -w "$CTL" create -o "$C/d1/CTLFile.tlv" --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 2 "without --sast and without a terminal, create is a usage error"
like "$ERR" "give --sast URI at least twice" "saying what to do"

# --- a round trip: RSA and EC records, DER and PEM, two locations --------------------------
run "$CTL" create -o "$C/d1/CTLFile.tlv" -o "$C/d2/CTLFile.tlv" --sast "$U1" --sast "$U2" \
    --ccm-tftp "$C/ccm.pem,host=cucm1.example.com,ip=192.0.2.10" --capf "$C/capf.pem" \
    --tvs "$C/tvs.der" --tftp "$C/tftp.der,host=tftp2.example.com" --app-server "$C/app.pem" \
    --timestamp "$TS" --module "$M"
is "$RC" 0 "create succeeds"
like "$OUT" "CTLFile.tlv: 7 records, [0-9]+ bytes, SHA-1, signed by token 'SAST-1'" \
    "and says what it built and who signed"
like "$OUT" "wrote $C/d1/CTLFile.tlv" "reports the first location"
like "$OUT" "wrote $C/d2/CTLFile.tlv" "reports the second location"
run cmp "$C/d1/CTLFile.tlv" "$C/d2/CTLFile.tlv"
is "$RC" 0 "both locations hold the same file"
run "$CTL" verify "$C/d1/CTLFile.tlv"
is "$RC" 0 "verify accepts it"
like "$OUT" "signature valid \(SHA-1\), signed by CN=SAST-1,O=Example,OU=VoIP,C=NZ" "and says who signed"
J=$(json "$C/d1/CTLFile.tlv")
is "$(jq -r '.version' <<<"$J")" "1.2" "show --json: version"
is "$(jq -r '.digest' <<<"$J")" "SHA-1" "show --json: digest"
is "$(jq -r '.timestamp' <<<"$J")" "$TS" "show --json: the --timestamp given"
is "$(jq -r '.filename' <<<"$J")" "CTLFile.tlv" "show --json: the -o base name is the file name"
is "$(jq -r '.signature_valid' <<<"$J")" true "show --json: signature valid"
is "$(jq -r '.signer.record' <<<"$J")" 1 "show --json: signed by record 1"
is "$(jq -r '.signer.name' <<<"$J")" "CN=SAST-1,O=Example,OU=VoIP,C=NZ" "show --json: signer name"
is "$(jq -r '[.records[].role] | join(" ")' <<<"$J")" "SAST SAST CCM+TFTP CAPF TVS TFTP APP-SERVER" \
    "show --json: the records' roles in order"
token_cert_pem SAST-2 "$C/sast2.pem"
is "$(jq -r '.records[1].sha256' <<<"$J")" "$(cert_sha256 "$C/sast2.pem")" \
    "the SAST-2 record holds the token's certificate (read with pkcs11-tool)"
is "$(jq -r '.records[1].serial' <<<"$J")" "$(cert_serial "$C/sast2.pem")" "with its serial"
is "$(jq -r '.records[2].sha256' <<<"$J")" "$(cert_sha256 "$C/ccm.pem")" "CCM+TFTP certificate"
is "$(jq -r '.records[2].subject' <<<"$J")" "CN=ccm,O=Example,OU=VoIP" "CCM+TFTP subject"
is "$(jq -r '.records[2].issuer' <<<"$J")" "CN=ccm,O=Example,OU=VoIP" "CCM+TFTP issuer"
is "$(jq -r '.records[2].serial' <<<"$J")" "$(cert_serial "$C/ccm.pem")" "CCM+TFTP serial"
is "$(jq -r '.records[2].dns_name' <<<"$J")" "cucm1.example.com" "host= is the DNS name"
is "$(jq -r '.records[2].ip_address' <<<"$J")" "192.0.2.10" "ip= is the IP address"
is "$(jq -r '.records[3].key' <<<"$J")" "EC P-256" "an EC record (CAPF)"
is "$(jq -r '.records[3].sha256' <<<"$J")" "$(cert_sha256 "$C/capf.pem")" "EC certificate kept"
is "$(jq -r '.records[4].sha256' <<<"$J")" "$(cert_sha256 "$C/tvs.pem")" "a DER file (TVS)"
is "$(jq -r '.records[5].dns_name' <<<"$J")" "tftp2.example.com" "host= on a DER file"
is "$(jq -r '.records[5].ip_address' <<<"$J")" "null" "no ip= gives no IP address"
run "$CTL" show "$C/d1/CTLFile.tlv"
is "$RC" 0 "show exits 0"
like "$OUT" "signed by: +record 1 \(SAST\)" "show says which record signed"
like "$OUT" "signature valid: yes" "and that the signature is valid"
like "$OUT" "Record 3: CCM\+TFTP" "role names"
like "$OUT" "DNS name: +cucm1.example.com" "DNS names"
like "$OUT" "IP address: +192.0.2.10" "IP addresses"
like "$OUT" "time stamp: +2023-11-14T22:13:20Z \(1700000000\)" "the time stamp in UTC"
like "$OUT" "valid: +[0-9-]+T[0-9:]+Z to " "validity"

# The default time stamp is now.
before=$(date +%s)
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" \
    --module "$M"
after=$(date +%s)
t=$(json "$C/d1/CTLFile.tlv" | jq -r .timestamp)
ok $((t >= before && t <= after ? 0 : 1)) "without --timestamp the time stamp is the current time"

# --- SHA-512, signed by the second token ------------------------------------------------
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" --sast "$U3" --sign-with "$U2" \
    --ccm "$C/ccm.pem" --digest sha512 --module "$M"
is "$RC" 0 "create with SHA-512 and --sign-with the second token"
J=$(json "$C/d1/CTLFile.tlv")
is "$(jq -r '.digest' <<<"$J")" "SHA-512" "the digest is SHA-512"
is "$(jq -r '.signer.record' <<<"$J")" 2 "the signer is record 2"
is "$(jq -r '[.records[].role] | join(" ")' <<<"$J")" "SAST SAST SAST CCM" "three SAST records and a CCM"
run "$CTL" verify "$C/d1/CTLFile.tlv"
is "$RC" 0 "verify accepts it"

# --sign-with naming a --sast token by another URI (its serial) still picks that token.
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" \
    --sign-with "pkcs11:serial=$S2?pin-source=file:$PIN" --ccm "$C/ccm.pem" --module "$M"
is "$RC" 0 "--sign-with a --sast token named by its serial"
is "$(json "$C/d1/CTLFile.tlv" | jq -r '.signer.record')" 2 "signs with that token"

# --- non-secure mode -------------------------------------------------------------------
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" \
    --capf "$C/capf.pem" --mode nonsecure --module "$M"
is "$RC" 0 "create --mode nonsecure"
J=$(json "$C/d1/CTLFile.tlv")
is "$(jq -r '[.records[].has_certificate] | join(" ")' <<<"$J")" "true true false false" \
    "server records carry no certificate, SAST records keep theirs"
is "$(jq -r '.records[2].serial' <<<"$J")" "$(cert_serial "$C/ccm.pem")" \
    "a non-secure record still names its certificate's serial"
run "$CTL" verify "$C/d1/CTLFile.tlv"
is "$RC" 0 "a non-secure CTL verifies"
run "$CTL" show "$C/d1/CTLFile.tlv"
like "$OUT" "certificate: none \(non-secure mode\)" "show says why a record has no certificate"

# --- a wrong PIN: one attempt, nothing written ------------------------------------------------
printf '9999\n' >"$C/bad"
rm -f "$C/d2/CTLFile.tlv"
run "$CTL" create -o "$C/d2/CTLFile.tlv" --sast "pkcs11:token=SAST-1?pin-source=file:$C/bad" \
    --sast "$U2" --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 1 "a wrong PIN fails"
like "$ERR" "not retried" "and is not retried"
like "$ERR" "nothing was written" "and says nothing was written"
ok "$([ ! -e "$C/d2/CTLFile.tlv" ]; echo $?)" "no file was written"

# --- one location fails: the others are written, the failed one is untouched ----------------
mkdir -p "$C/ok1" "$C/ok2" "$C/busy/CTLFile.tlv"
printf 'old\n' >"$C/ok1/CTLFile.tlv"
printf 'a regular file\n' >"$C/plain"
touch "$C/busy/CTLFile.tlv/keep"
run "$CTL" create -o "$C/ok1/CTLFile.tlv" -o "$C/plain/CTLFile.tlv" -o "$C/busy/CTLFile.tlv" \
    -o "$C/ok2/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" --module "$M"
is "$RC" 1 "a failed location makes the command fail"
like "$OUT" "wrote $C/ok1/CTLFile.tlv" "the first location is reported written"
like "$OUT" "FAILED $C/plain/CTLFile.tlv: .*left as it was" "the location under a file is reported failed"
like "$OUT" "FAILED $C/busy/CTLFile.tlv: " "the location that is a directory is reported failed"
like "$OUT" "wrote $C/ok2/CTLFile.tlv" "the location after the failed ones is still written"
like "$ERR" "2 of 4 locations could not be written" "the error counts the failures"
run "$CTL" verify "$C/ok1/CTLFile.tlv"
is "$RC" 0 "the replaced file is a complete, valid CTL"
run cmp "$C/ok1/CTLFile.tlv" "$C/ok2/CTLFile.tlv"
is "$RC" 0 "both good locations hold the same file"
is "$(cat "$C/plain")" "a regular file" "the file in the failed path is untouched"
is "$(ls -A "$C/busy/CTLFile.tlv")" "keep" "the directory in the failed path is untouched"
ok "$(no_temp_files "$C/ok1" && no_temp_files "$C/ok2" && no_temp_files "$C/busy"; echo $?)" \
    "no temporary file is left anywhere"

# --- limits: 100 records and 75 KB -------------------------------------------------------
args=()
for i in $(seq 98); do
    mkcert "t$i" ec "/CN=tvs$i/O=Example"
    args+=(--tvs "$C/t$i.pem")
done
run "$CTL" create -o "$C/d1/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" \
    "${args[@]:0:194}" --module "$M"
is "$RC" 0 "a CTL of exactly 100 records is built"
is "$(json "$C/d1/CTLFile.tlv" | jq '.records | length')" 100 "with 100 records"
rm -f "$C/d2/CTLFile.tlv"
run "$CTL" create -o "$C/d2/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" \
    "${args[@]}" --module "$M"
is "$RC" 1 "101 records are refused"
like "$ERR" "Total number of CTL Records has exceeded the Maximum" "with the classic message"
like "$ERR" "at most 100" "and the limit"
ok "$([ ! -e "$C/d2/CTLFile.tlv" ]; echo $?)" "and nothing is written"
args=()
for i in $(seq 40); do
    mkcert "big$i" rsa4096 "/CN=big-tvs-$i/O=Example/OU=VoIP"
    args+=(--tvs "$C/big$i.pem")
done
run "$CTL" create -o "$C/d2/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" \
    "${args[@]}" --module "$M"
is "$RC" 1 "a CTL over 75 KB is refused"
like "$ERR" "file size \([0-9]+ bytes\) has exceeded the Maximum \(76800 bytes\)" "saying how big"
like "$ERR" "remove records" "and what to do"
ok "$([ ! -e "$C/d2/CTLFile.tlv" ]; echo $?)" "and nothing is written"

done_testing
