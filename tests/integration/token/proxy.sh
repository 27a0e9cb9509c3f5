#!/bin/bash
# The default module, p11-kit's proxy, which gives each caller its own
# instance with its own slot numbers: listing, enrolling and logging in
# through it reach the same SoftHSM2 tokens as the module itself.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
pt_store_init
command -v p11-kit >/dev/null || skip_all "p11-kit is not installed"
p11-kit list-modules 2>/dev/null | grep -q softhsm ||
    skip_all "SoftHSM2 is not registered with p11-kit (/usr/share/p11-kit/modules/softhsm2.module)"
pt_add_token SAST-1 >/dev/null
pt_add_token SAST-2 >/dev/null

run "$CTLCLIENT" token list --json
is "$RC" 0 "token list without --module uses p11-kit's proxy"
is "$(printf '%s' "$OUT" | jq -r '[.[].label | select(startswith("SAST"))] | sort | join(",")')" \
    "SAST-1,SAST-2" "and sees the store's tokens"

run "$CTLCLIENT" token enroll "pkcs11:token=SAST-1?pin-source=file:$PT_TMP/pin" \
    --subject "CN=SAST-1,O=Example"
is "$RC" 0 "enroll through the proxy logs in and generates a key"
run "$CTLCLIENT" token check "pkcs11:token=SAST-1?pin-source=file:$PT_TMP/pin"
is "$RC" 0 "check through the proxy logs in"
like "$OUT" "certificate: +CN=SAST-1,O=Example" "and finds the key and certificate"
run "$CTLCLIENT" token check "pkcs11:token=SAST-1?pin-source=file:$PT_TMP/pin" \
    --module "$PT_SOFTHSM_MODULE"
is "$RC" 0 "the module itself sees what was made through the proxy"

PROXY_SLOT=$("$CTLCLIENT" token list --json | jq -r '.[] | select(.label == "SAST-2") | .slot')
run "$CTLCLIENT" token check "pkcs11:slot-id=$PROXY_SLOT?pin-source=file:$PT_TMP/pin"
is "$RC" 1 "slot-id= uses the slot numbers token list shows (SAST-2 has no key yet)"
like "$ERR" "token 'SAST-2'" "and selects the token in that slot"

done_testing
