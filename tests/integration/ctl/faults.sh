#!/bin/bash
# Tokens that fail while signing, and tokens the lockout policy protects:
# nothing is written anywhere, and no PIN reaches a token that could lock.
# shellcheck source=tests/integration/ctl/ctl-lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ctl/ctl-lib.sh"
ctl_setup 2
[ -f "$ETOKEN_SIM_MODULE" ] || skip_all "the eToken simulator was not built"
SIM=$ETOKEN_SIM_MODULE
mkcert ccm rsa
C=$PT_TMP
mkdir -p "$C/a" "$C/b"
wrong_count() { "$ETOKEN_SIM_CTL" show "$1" | sed -n 's/.* wrong=\([0-9]*\) .*/\1/p'; }
nothing_written() {
    [ ! -e "$C/a/CTLFile.tlv" ] && [ ! -e "$C/b/CTLFile.tlv" ] && no_temp_files "$C/a" &&
        no_temp_files "$C/b"
}
create() {
    run "$CTLCLIENT" create -o "$C/a/CTLFile.tlv" -o "$C/b/CTLFile.tlv" --sast "$U1" --sast "$U2" \
        --ccm-tftp "$C/ccm.pem" --module "$SIM" "$@"
}

"$ETOKEN_SIM_CTL" fault "$S1" remove-on-sign >/dev/null
create
is "$RC" 1 "a token pulled out while it signs fails"
like "$ERR" "removed|not present|went away|gone" "with a clear error"
like "$ERR" "nothing was written" "saying nothing was written"
ok "$(nothing_written; echo $?)" "and no file is written at any location"
"$ETOKEN_SIM_CTL" fault "$S1" none >/dev/null

"$ETOKEN_SIM_CTL" fault "$S1" sign-device-error >/dev/null
create
is "$RC" 1 "a token failing while it signs fails"
ok "$(nothing_written; echo $?)" "and no file is written at any location"
"$ETOKEN_SIM_CTL" fault "$S1" none >/dev/null

"$ETOKEN_SIM_CTL" set-tries "$S1" 15 >/dev/null
create
is "$RC" 1 "a signer at its final PIN try is refused without --allow-final-try"
like "$ERR" "--allow-final-try" "saying how to proceed"
is "$(wrong_count "$S1")" 15 "no PIN reached the token"
ok "$(nothing_written; echo $?)" "and nothing is written"
create --allow-final-try
is "$RC" 0 "with --allow-final-try and the right PIN it signs"
is "$(wrong_count "$S1")" 0 "and the token's counter is reset"
rm -f "$C/a/CTLFile.tlv" "$C/b/CTLFile.tlv"

"$ETOKEN_SIM_CTL" lock "$S1" >/dev/null
create
is "$RC" 1 "a locked signer is refused"
like "$OUT$ERR" "locked for good" "saying it is locked"
ok "$(nothing_written; echo $?)" "and nothing is written"
create --sign-with "$U2"
is "$RC" 0 "the other token can still sign a CTL listing the locked one"
like "$ERR" "is locked for good: it can never sign a CTL file" "with a warning about the locked one"
"$ETOKEN_SIM_CTL" reset "$S1" >/dev/null
rm -f "$C/a/CTLFile.tlv" "$C/b/CTLFile.tlv"

# The PIN from a descriptor, as the token layer reads it.
run "$CTLCLIENT" create -o "$C/a/CTLFile.tlv" --sast "pkcs11:token=SAST-1" --sast "$U2" \
    --ccm-tftp "$C/ccm.pem" --module "$SIM" --pin-fd 3 3<"$PIN"
is "$RC" 0 "--pin-fd gives the signer's PIN"

done_testing
