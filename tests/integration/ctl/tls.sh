#!/bin/bash
# CERT arguments of the form tls://HOST:PORT: the certificate a local
# openssl s_server presents is fetched, its fingerprint shown, and used only
# when it matches sha256= or is confirmed at the terminal (driven by pty-run).
# shellcheck source=tests/integration/ctl/ctl-lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ctl/ctl-lib.sh"
ctl_setup 2
mkcert ccm rsa
mkcert other rsa
C=$PT_TMP
CTL=$CTLCLIENT
OUTF=$C/out/CTLFile.tlv
mkdir -p "$C/out"
FP=$(cert_sha256 "$C/ccm.pem")
OTHER_FP=$(cert_sha256 "$C/other.pem")

# A TLS server on 127.0.0.1 for exactly the connections below; its port is read
# from what it prints, so nothing waits on time.
mkfifo "$C/sserver.out"
timeout 120 openssl s_server -accept 127.0.0.1:0 -cert "$C/ccm.pem" -key "$C/ccm.key" -naccept 5 -www \
    >"$C/sserver.out" 2>&1 </dev/null &
SERVER=$!
exec 9<"$C/sserver.out"
PORT=""
while IFS= read -r -t 30 -u 9 line; do
    case $line in ACCEPT*) PORT=${line##*:}; break ;; esac
done
[ -n "$PORT" ] || { echo "Bail out! openssl s_server did not start"; exit 1; }
# Keep draining the server's output so it never blocks on a full pipe.
cat <&9 >/dev/null &
DRAIN=$!
T=tls://127.0.0.1:$PORT

create() { run "$CTL" create -o "$OUTF" --sast "$U1" --sast "$U2" --module "$M" "$@"; }

# 1. sha256= matches
create --ccm-tftp "$T,sha256=$FP,host=cucm.example.com"
is "$RC" 0 "a tls:// certificate whose fingerprint matches sha256= is used"
like "$ERR" "SHA-256 fingerprint $FP matches sha256=" "the fingerprint is shown"
J=$(json "$OUTF")
is "$(jq -r '.records[2].sha256' <<<"$J")" "$FP" "the record holds the server's certificate"
is "$(jq -r '.records[2].dns_name' <<<"$J")" "cucm.example.com" "with host= as its DNS name"
rm -f "$OUTF"

# 2. sha256= does not match
create --ccm-tftp "$T,sha256=$OTHER_FP"
is "$RC" 1 "a fingerprint that does not match sha256= is refused"
like "$ERR" "fingerprint is $FP, not $OTHER_FP as sha256= says" "with both fingerprints"
ok "$([ ! -e "$OUTF" ]; echo $?)" "and nothing is written"

# 3. no sha256= and no terminal to confirm at
run setsid -w "$CTL" create -o "$OUTF" --sast "$U1" --sast "$U2" --module "$M" --ccm-tftp "$T"
is "$RC" 1 "without sha256= and without a terminal the certificate is refused"
like "$ERR" "cannot be confirmed without a terminal.*add ,sha256=$FP" "saying how to give the fingerprint"
like "$ERR" "SHA-256: +$FP" "after showing it"
ok "$([ ! -e "$OUTF" ]; echo $?)" "and nothing is written"

# 4. confirmed at the terminal
at_terminal "expect SHA-256:  $FP
expect Type 'yes' to use it:
send yes" "$CTL" create -o "$OUTF" --sast "$U1" --sast "$U2" --module "$M" --ccm-tftp "$T"
is "$RC" 0 "a certificate confirmed at the terminal is used"
like "$OUT" "presents this certificate" "after the certificate is shown"
is "$(json "$OUTF" | jq -r '.records[2].sha256')" "$FP" "the record holds it"
rm -f "$OUTF"

# 5. declined at the terminal
at_terminal "expect Type 'yes' to use it:
send no" "$CTL" create -o "$OUTF" --sast "$U1" --sast "$U2" --module "$M" --ccm-tftp "$T"
is "$RC" 1 "a certificate declined at the terminal is not used"
like "$OUT" "not confirmed; nothing was written" "saying so"
ok "$([ ! -e "$OUTF" ]; echo $?)" "and nothing is written"

wait "$SERVER"
is "$?" 0 "the TLS server saw exactly the five connections"
kill "$DRAIN" 2>/dev/null
exec 9<&-

# Nothing listening: a clear error at once.
create --ccm-tftp "$T,sha256=$FP"
is "$RC" 1 "a server that is not there fails"
like "$ERR" "tls://127.0.0.1:$PORT: cannot connect" "naming it"

# A server that accepts but never answers the handshake: bounded by --tls-timeout.
if command -v python3 >/dev/null; then
    mkfifo "$C/silent.out"
    timeout 60 python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
while c.recv(4096):
    pass' >"$C/silent.out" &
    SILENT=$!
    read -r -t 30 SPORT <"$C/silent.out"
    create --ccm-tftp "tls://127.0.0.1:$SPORT,sha256=$FP" --tls-timeout 1
    is "$RC" 1 "a server that never answers the handshake fails"
    like "$ERR" "no answer in time" "once --tls-timeout has passed"
    wait "$SILENT"
    is "$?" 0 "the silent server saw the client give up and close"
fi

done_testing
