#!/bin/bash
# hsmctl init / list / regenerate on a SoftHSM2 HSM token, checked with
# pkcs11-tool and openssl.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
pt_store_init
command -v pkcs11-tool >/dev/null || skip_all "pkcs11-tool (opensc) is not installed"
HSMCTL=$PT_BUILD_ROOT/hsm/hsmctl
M=$PT_SOFTHSM_MODULE
pt_add_token HSM >/dev/null
TOK="pkcs11:token=HSM?pin-source=file:$PT_TMP/pin"
OUTDIR=$PT_TMP/out

run "$HSMCTL" --help
is "$RC" 0 "hsmctl --help exits 0"
run "$HSMCTL" init --token "$TOK" --module "$M"
is "$RC" 2 "init without --subject and --out is a usage error"
run "$HSMCTL" init --token "$TOK" --module "$M" --subject CN=x --out "$OUTDIR" --capf-key ec:P-521
is "$RC" 2 "an unsupported CAPF key is a usage error"
run "$HSMCTL" init --token "$TOK" --module "$M" --subject CN=x --out "$OUTDIR" \
    --itlrecovery-key ec:P-256
is "$RC" 2 "an EC ITLRecovery key is refused (ITL files are RSA-signed)"

run "$HSMCTL" init --token "$TOK" --module "$M" --subject "CN=CAPF-1,O=Example,OU=VoIP,C=NZ" \
    --out "$OUTDIR" --capf-key ec:P-384
is "$RC" 0 "init generates both keys"
like "$OUT" "written: .*CAPF.pem" "and writes CAPF.pem"

# Both keys: sensitive, never extractable, on the token (pkcs11-tool's view).
pkcs11-tool --module "$M" --token-label HSM --login --pin env:PT_P11TOOL_PIN \
    --list-objects --type privkey >"$PT_TMP/objs" 2>&1
OBJS=$(cat "$PT_TMP/objs")
like "$OBJS" "label: +CAPF" "pkcs11-tool sees the CAPF key"
like "$OBJS" "label: +ITLRecovery" "pkcs11-tool sees the ITLRecovery key"
is "$(grep -c 'Access: *sensitive, always sensitive, never extractable' "$PT_TMP/objs")" 2 \
    "both keys are sensitive and never extractable"
pkcs11-tool --module "$M" --token-label HSM --list-objects --type pubkey >"$PT_TMP/pubs" 2>&1
PUBS=$(cat "$PT_TMP/pubs")
like "$PUBS" "EC_POINT 384 bits" "the CAPF key is EC P-384 as asked"
like "$PUBS" "RSA 2048 bits" "the ITLRecovery key is RSA 2048 by default"

# The certificates, read back from the token, equal the PEM files and verify.
for label in CAPF ITLRecovery; do
    pkcs11-tool --module "$M" --token-label HSM --read-object --type cert --label "$label" \
        -o "$PT_TMP/$label.der" >/dev/null 2>&1
    openssl x509 -inform DER -in "$PT_TMP/$label.der" -out "$PT_TMP/$label.pem"
    is "$(openssl x509 -in "$PT_TMP/$label.pem" -noout -fingerprint -sha256)" \
        "$(openssl x509 -in "$OUTDIR/$label.pem" -noout -fingerprint -sha256)" \
        "the $label certificate on the token is the one written to $label.pem"
    run openssl verify -CAfile "$OUTDIR/$label.pem" "$OUTDIR/$label.pem"
    is "$RC" 0 "openssl verifies the self-signed $label certificate"
done
CAPF_TEXT=$(openssl x509 -in "$OUTDIR/CAPF.pem" -noout -text)
like "$CAPF_TEXT" "CA:TRUE" "CAPF is a CA certificate"
like "$CAPF_TEXT" "Digital Signature, Certificate Sign" "CAPF has keyCertSign and digitalSignature"
like "$CAPF_TEXT" "ecdsa-with-SHA256" "CAPF is signed with its EC key"
ITLR_TEXT=$(openssl x509 -in "$OUTDIR/ITLRecovery.pem" -noout -text)
like "$ITLR_TEXT" "CA:FALSE" "ITLRecovery is not a CA"
like "$ITLR_TEXT" "Digital Signature$" "ITLRecovery has digitalSignature only"
like "$ITLR_TEXT" "Subject: CN = ITLRECOVERY_CAPF-1, O = Example" \
    "ITLRecovery's subject derives from the CAPF subject"
years() {
    local s e
    s=$(date -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%Y)
    e=$(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%Y)
    echo $((e - s))
}
is "$(years "$OUTDIR/CAPF.pem")" 5 "CAPF is valid 5 years by default"
is "$(years "$OUTDIR/ITLRecovery.pem")" 20 "ITLRecovery is valid 20 years by default"

# A second init changes nothing.
before=$(pkcs11-tool --module "$M" --token-label HSM --login --pin env:PT_P11TOOL_PIN \
    --list-objects 2>/dev/null | md5sum)
run "$HSMCTL" init --token "$TOK" --module "$M" --subject CN=again --out "$OUTDIR"
is "$RC" 1 "init is refused when the keys exist"
like "$ERR" "already holds a CAPF key and an ITLRecovery key" "and says why"
after=$(pkcs11-tool --module "$M" --token-label HSM --login --pin env:PT_P11TOOL_PIN \
    --list-objects 2>/dev/null | md5sum)
is "$after" "$before" "the token is unchanged"

# list
run "$HSMCTL" list --token "$TOK" --module "$M" --json
is "$RC" 0 "list --json succeeds"
is "$(printf '%s' "$OUT" | jq -r '[.[].label] | sort | join(",")')" "CAPF,ITLRecovery" \
    "list shows both keys"
is "$(printf '%s' "$OUT" | jq -r '[.[] | .sensitive and .never_extractable and (.extractable | not)] | all')" \
    true "list reports both keys protected"
is "$(printf '%s' "$OUT" | jq -r '.[] | select(.label == "CAPF") | .certificate.sha256')" \
    "$(openssl x509 -in "$PT_TMP/CAPF.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : |
        tr A-F a-f)" "list shows the CAPF fingerprint openssl computes"
is "$(printf '%s' "$OUT" | jq -r '.[] | select(.label == "CAPF") | .algorithm')" "EC P-384" \
    "list shows the algorithm"

# regenerate
run "$HSMCTL" regenerate itlrecovery --token "$TOK" --module "$M"
is "$RC" 1 "regenerate without --yes changes nothing"
like "$OUT" "every phone's ITL must be re-signed" "and warns what breaks"
cp "$OUTDIR/ITLRecovery.pem" "$PT_TMP/old-itlr.pem"
run "$HSMCTL" regenerate itlrecovery --token "$TOK" --module "$M" --yes --out "$OUTDIR"
is "$RC" 0 "regenerate --yes replaces the key"
isnt_same=$(cmp -s "$PT_TMP/old-itlr.pem" "$OUTDIR/ITLRecovery.pem" && echo same || echo different)
is "$isnt_same" different "a new ITLRecovery certificate is written"
is "$(openssl x509 -in "$OUTDIR/ITLRecovery.pem" -noout -subject)" \
    "$(openssl x509 -in "$PT_TMP/old-itlr.pem" -noout -subject)" "with the same subject"
run "$HSMCTL" list --token "$TOK" --module "$M" --json
is "$(printf '%s' "$OUT" | jq 'length')" 2 "still exactly two keys on the token"

# a wrong PIN stops at once
printf '0000\n' >"$PT_TMP/bad"
run "$HSMCTL" list --token "pkcs11:token=HSM?pin-source=file:$PT_TMP/bad" --module "$M"
is "$RC" 1 "a wrong HSM PIN fails"
like "$ERR" "not retried" "and is not retried"

done_testing
