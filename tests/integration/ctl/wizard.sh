#!/bin/bash
# ctlclient create without --sast: the tokens are inserted one at a time at
# the terminal. Inserting and pulling out tokens is simulated with the eToken
# simulator's "removed" fault while ctlclient waits at its prompt, and the
# terminal is driven step by step through pty-run.
# shellcheck source=tests/integration/ctl/ctl-lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ctl/ctl-lib.sh"
ctl_setup 3
[ -f "$ETOKEN_SIM_MODULE" ] || skip_all "the eToken simulator was not built"
SIM=$ETOKEN_SIM_MODULE
mkcert ccm rsa
C=$PT_TMP
OUTF=$C/out/CTLFile.tlv
mkdir -p "$C/out"
insert() { "$ETOKEN_SIM_CTL" fault "$1" none >/dev/null; }
pull() { "$ETOKEN_SIM_CTL" fault "$1" removed >/dev/null; }
step() { pty_expect "$1" || ok 1 "prompt shown: $1"; }

pull "$S1"
pull "$S2"
pull "$S3"
pty_start "$CTLCLIENT" create -o "$OUTF" --ccm-tftp "$C/ccm.pem" --module "$SIM"
step "Insert security token 1 of at least 2 (only that one), then press Enter: "
pty_send ""
step "No security token is inserted."
step "Insert security token 1 of at least 2"
insert "$S1"
pty_send ""
step "Security token 1: 'SAST-1' (serial $S1), PIN state ok"
step "Insert security token 2 of at least 2"
# Token 1 is still in: it is the one already added.
pty_send ""
step "The Security Token you have inserted already exists in the CTL File ('SAST-1', serial $S1)"
step "Insert security token 2 of at least 2"
# Tokens 1 and 2 in at once.
insert "$S2"
pty_send ""
step "2 security tokens are inserted at once: insert one security token at a time"
step "Insert security token 2 of at least 2"
pull "$S1"
pty_send ""
step "Security token 2: 'SAST-2' (serial $S2), PIN state ok"
step "2 security tokens added. Add another security token? [y/N]: "
pty_send "n"
step "Insert security token 'SAST-1' (serial $S1) again to sign the CTL file, then press Enter: "
pull "$S2"
insert "$S1"
pty_send ""
step "PIN for token 'SAST-1': "
pty_send "$(cat "$PIN")"
pty_finish
is "$RC" 0 "the wizard builds and signs a CTL"
like "$OUT" "certificate: CN=SAST-1,O=Example,OU=VoIP,C=NZ" "it shows token 1's certificate"
like "$OUT" "certificate: CN=SAST-2,O=Example,OU=VoIP,C=NZ" "and token 2's"
like "$OUT" "SHA-256: +[0-9a-f]{64}" "with fingerprints"
unlike "$OUT" "$(cat "$PIN")" "the PIN is not echoed"
before_pin=${OUT%%PIN for token*}
like "$before_pin" "Add another security token" "the PIN is asked for only after the tokens are collected"
unlike "$before_pin" "PIN for" "and not before"
like "$OUT" "wrote $OUTF" "and the location is reported"
J=$(json "$OUTF")
is "$(jq -r '[.records[] | .role + ":" + (.subject | split(",")[0])] | join(" ")' <<<"$J")" \
    "SAST:CN=SAST-1 SAST:CN=SAST-2 CCM+TFTP:CN=ccm" "the CTL lists both tokens and the CallManager"
is "$(jq -r '.signer.record' <<<"$J")" 1 "signed by the first token"
run "$CTLCLIENT" verify "$OUTF"
is "$RC" 0 "and verifies"

# A third token, then quitting at the signing prompt: nothing is written.
rm -f "$OUTF"
pull "$S1"
insert "$S3"
pty_start "$CTLCLIENT" create -o "$OUTF" --ccm-tftp "$C/ccm.pem" --module "$SIM"
step "Insert security token 1 of at least 2"
pty_send ""
step "Security token 1: 'SAST-3'"
pull "$S3"
insert "$S2"
step "Insert security token 2 of at least 2"
pty_send ""
step "Add another security token? [y/N]: "
pty_send "y"
step "Insert security token 3 (only that one), then press Enter: "
pull "$S2"
insert "$S1"
pty_send ""
step "Security token 3: 'SAST-1'"
step "3 security tokens added. Add another security token? [y/N]: "
pty_send "n"
step "Insert security token 'SAST-3' (serial $S3) again to sign the CTL file"
pty_send "q"
pty_finish
is "$RC" 1 "quitting at a prompt fails"
like "$OUT" "stopped at the user's request; nothing was written" "saying nothing was written"
ok "$([ ! -e "$OUTF" ]; echo $?)" "and nothing is written"
ok "$(no_temp_files "$C/out"; echo $?)" "not even a temporary file"

done_testing
