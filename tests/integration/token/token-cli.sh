#!/bin/bash
# ctlclient token list / enroll / pin on SoftHSM2 tokens, checked with
# pkcs11-tool and openssl.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
pt_store_init
M=$PT_SOFTHSM_MODULE
PIN=$PT_TMP/pin

command -v pkcs11-tool >/dev/null || skip_all "pkcs11-tool (opensc) is not installed"

# --- help and usage ------------------------------------------------------
run "$CTLCLIENT" token --help
is "$RC" 0 "token --help exits 0"
like "$OUT" "enroll" "token --help describes enroll"
run "$CTLCLIENT" token frobnicate
is "$RC" 2 "an unknown token command is a usage error (2)"
run "$CTLCLIENT" token enroll "pkcs11:token=x"
is "$RC" 2 "enroll without --subject is a usage error"
like "$ERR" "needs --subject" "and says what is missing"

# --- list on an empty store ----------------------------------------------
run "$CTLCLIENT" token list --json --module "$M"
is "$RC" 0 "list on an empty store succeeds"
is "$(printf '%s' "$OUT" | jq 'length')" 0 "and lists no initialised token"

URI1=$(pt_add_token SAST-1)
pt_add_token SAST-2 >/dev/null
like "$URI1" '^pkcs11:token=SAST-1;serial=[0-9a-f]+$' "phonetrust-softhsm prints the new token's URI"

# --- enroll ----------------------------------------------------------------
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-1?pin-source=file:$PIN" --module "$M" \
    --subject "CN=SAST-1,O=Example,OU=VoIP,C=NZ" --days 365
is "$RC" 0 "enroll generates a key and a certificate"
like "$OUT" "CN=SAST-1,O=Example,OU=VoIP,C=NZ" "enroll shows the subject in certificate order"

run "$CTLCLIENT" token enroll "pkcs11:token=SAST-1;pin-source=file:$PIN" --module "$M" \
    --subject "CN=SAST-1"
is "$RC" 1 "enroll refuses a token that already holds a key with that label"
like "$ERR" "already holds a key labelled 'SAST'.*--force" "and says how to replace it"

# Key attributes, read by an independent tool.
pkcs11-tool --module "$M" --token-label SAST-1 --login --pin env:PT_P11TOOL_PIN \
    --list-objects --type privkey >"$PT_TMP/objs" 2>&1
OBJS=$(cat "$PT_TMP/objs")
like "$OBJS" "label: +SAST" "pkcs11-tool sees the private key labelled SAST"
like "$OBJS" "Access: +sensitive, always sensitive, never extractable" \
    "the private key is sensitive and never extractable"
like "$OBJS" "Usage: +sign" "the private key can sign"
unlike "$OBJS" "decrypt|unwrap|derive" "and do nothing else"
pkcs11-tool --module "$M" --token-label SAST-1 --list-objects --type cert >"$PT_TMP/certs" 2>&1
like "$(cat "$PT_TMP/certs")" "label: +SAST" "the certificate object is stored next to the key"

# The certificate: self-signed by the token's key, digitalSignature, valid 365 days.
pkcs11-tool --module "$M" --token-label SAST-1 --read-object --type cert --label SAST \
    -o "$PT_TMP/sast1.der" >/dev/null 2>&1
openssl x509 -inform DER -in "$PT_TMP/sast1.der" -out "$PT_TMP/sast1.pem"
run openssl verify -CAfile "$PT_TMP/sast1.pem" "$PT_TMP/sast1.pem"
is "$RC" 0 "openssl verifies the self-signed certificate (signed on the token)"
TEXT=$(openssl x509 -in "$PT_TMP/sast1.pem" -noout -text)
like "$TEXT" "Digital Signature" "keyUsage has digitalSignature"
like "$TEXT" "Public-Key: \(2048 bit\)" "the default key is RSA 2048"
like "$TEXT" "Subject: CN = SAST-1, O = Example, OU = VoIP, C = NZ" \
    "the subject is encoded in the order given"
START=$(date -d "$(openssl x509 -in "$PT_TMP/sast1.pem" -noout -startdate | cut -d= -f2)" +%s)
END=$(date -d "$(openssl x509 -in "$PT_TMP/sast1.pem" -noout -enddate | cut -d= -f2)" +%s)
is $(((END - START) / 86400)) 365 "--days 365 gives a 365-day certificate"

# The public key in the certificate is the token's key: sign with pkcs11-tool, verify with openssl.
printf 'phonetrust' >"$PT_TMP/data"
pkcs11-tool --module "$M" --token-label SAST-1 --login --pin env:PT_P11TOOL_PIN --sign \
    --mechanism SHA256-RSA-PKCS --label SAST -i "$PT_TMP/data" -o "$PT_TMP/sig" >/dev/null 2>&1
openssl x509 -in "$PT_TMP/sast1.pem" -noout -pubkey >"$PT_TMP/pub.pem"
run openssl dgst -sha256 -verify "$PT_TMP/pub.pem" -signature "$PT_TMP/sig" "$PT_TMP/data"
is "$RC" 0 "a signature by the token's key verifies with the certificate's public key"

run "$CTLCLIENT" token enroll "pkcs11:token=SAST-1;pin-source=file:$PIN" --module "$M" \
    --subject "CN=SAST-1 renewed" --key rsa:4096 --force
is "$RC" 0 "enroll --force replaces the key"
pkcs11-tool --module "$M" --token-label SAST-1 --login --pin env:PT_P11TOOL_PIN \
    --list-objects --type privkey 2>/dev/null | grep -c 'Private Key Object' >"$PT_TMP/n"
is "$(cat "$PT_TMP/n")" 1 "and leaves exactly one private key"

# --- list ----------------------------------------------------------------
run "$CTLCLIENT" token list --json --module "$M"
is "$RC" 0 "list --json succeeds"
is "$(printf '%s' "$OUT" | jq -r '[.[].label] | sort | join(",")')" "SAST-1,SAST-2" \
    "list shows both tokens"
is "$(printf '%s' "$OUT" | jq -r '.[0] | keys | sort | join(",")')" \
    "certificate,label,manufacturer,model,pin_state,serial,slot" "each entry has the documented keys"
C1=$(printf '%s' "$OUT" | jq -c '.[] | select(.label == "SAST-1") | .certificate')
is "$(printf '%s' "$C1" | jq -r '.subject')" "CN=SAST-1 renewed" "SAST-1's certificate subject"
is "$(printf '%s' "$C1" | jq -r '.sha256')" \
    "$(openssl x509 -in <(pkcs11-tool --module "$M" --token-label SAST-1 --read-object --type cert \
        --label SAST 2>/dev/null) -inform DER -noout -fingerprint -sha256 | cut -d= -f2 |
        tr -d : | tr A-F a-f)" "the fingerprint matches openssl's"
is "$(printf '%s' "$OUT" | jq -c '.[] | select(.label == "SAST-2") | .certificate')" "null" \
    "a token without a certificate shows null"
is "$(printf '%s' "$OUT" | jq -r '.[0].pin_state')" "ok" "PIN state ok"
run "$CTLCLIENT" token list --module "$M"
like "$OUT" "PIN state: +ok" "the text listing shows the PIN state"

# --- URI selection ---------------------------------------------------------
run "$CTLCLIENT" token enroll "pkcs11:token=NOPE;pin-source=file:$PIN" --module "$M" --subject CN=x
is "$RC" 1 "a URI that matches no token fails"
like "$ERR" "no token matches pkcs11:token=NOPE.*SAST-1" "and lists the tokens present"
run "$CTLCLIENT" token enroll "pkcs11:model=SoftHSM%20v2;pin-source=file:$PIN" --module "$M" \
    --subject CN=x
is "$RC" 1 "a URI that matches two tokens fails"
like "$ERR" "2 tokens match.*add token= or serial=" "and says how to choose one"
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-2?pin-value=1234" --module "$M" --subject CN=x
is "$RC" 2 "pin-value in a URI is refused as a usage error"
like "$ERR" "pin-value is not accepted" "with the reason"
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-2?module-path=/nonexistent.so" --subject CN=x
is "$RC" 1 "module-path= in the URI is used"
like "$ERR" "/nonexistent.so does not exist" "and a missing module is named"
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-2;module-path=/x.so" --subject CN=x
is "$RC" 2 "module-path before '?' is refused"
like "$ERR" "after it" "with a hint where it goes"
run "$CTLCLIENT" token list --module /nonexistent.so
is "$RC" 1 "--module with a missing module fails"

# --- PIN change -------------------------------------------------------------
exec 3<<<"$(printf '1234\n24680\n24680\n')"
run "$CTLCLIENT" token pin "pkcs11:token=SAST-2" --module "$M" --pin-fd 3
is "$RC" 0 "token pin changes the PIN (old and new PINs on --pin-fd)"
exec 3<&-
printf '24680\n' >"$PT_TMP/newpin"
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-2;pin-source=file:$PT_TMP/newpin" --module "$M" \
    --subject "CN=SAST-2"
is "$RC" 0 "the new PIN works"
exec 3<<<"$(printf '24680\n1111\n2222\n')"
run "$CTLCLIENT" token pin "pkcs11:token=SAST-2" --module "$M" --pin-fd 3
is "$RC" 1 "two different new PINs are refused"
like "$ERR" "differ" "with the reason"
exec 3<&-

# --- a wrong PIN from a file stops at once -----------------------------------
printf '9999\n' >"$PT_TMP/badpin"
run "$CTLCLIENT" token enroll "pkcs11:token=SAST-2;pin-source=file:$PT_TMP/badpin" --module "$M" \
    --subject "CN=SAST-2" --force
is "$RC" 1 "a wrong PIN fails"
like "$ERR" "rejected the PIN from file .*not retried" "and says it was not retried"
unlike "$ERR$OUT" "9999" "the PIN does not appear in any output"

# --- token check tests the key signing would use ------------------------------
PT_P11TOOL_PIN=24680 pkcs11-tool --module "$M" --token-label SAST-2 --login \
    --pin env:PT_P11TOOL_PIN --keypairgen --key-type EC:prime256v1 --label OTHER --id 42 \
    >/dev/null 2>&1
run "$CTLCLIENT" token check "pkcs11:token=SAST-2;pin-source=file:$PT_TMP/newpin" --module "$M"
is "$RC" 0 "token check without object= or id= succeeds"
like "$OUT" "key: +'SAST'" "and checks the key labelled SAST"
run "$CTLCLIENT" token check "pkcs11:token=SAST-2;id=%42?pin-source=file:$PT_TMP/newpin" \
    --module "$M"
is "$RC" 0 "token check with id= succeeds"
like "$OUT" "key: +'OTHER'" "and checks the key with that id, as signing would"

done_testing
