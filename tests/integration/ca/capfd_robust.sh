#!/bin/bash
# capfd end to end under bad conditions: malformed, oversized, wrong-session,
# silent, slow and vanishing clients while another phone enrolls; hsmd down and
# back; the session limit (RETRY_LATER, or closing); a TLS key on a PKCS#11
# token (SoftHSM2). Every failure must end only its own session, with a logged
# reason.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/ca/capfd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ca/capfd_lib.sh"

capfd_setup "[limits]
max-sessions = 16"
ok $? "capfd is running"

# --- misbehaving clients while a good phone enrolls -----------------------------------------
declare -A want=(
    [garbage]="not a CAPF message: CAPF header: PROTOCOL_ID is 0xa5"
    [bad-header]="not a CAPF message: CAPF header: PROTOCOL_ID is 0x54"
    [oversized]="oversized message: CAPF header: AUTH_RESPONSE announces 65535 bytes"
    [malformed]="malformed message: .*crosses the end"
    [truncated]="timed out waiting for AUTH_RESPONSE"
    [wrong-sid]="wrong session ID: AUTH_RESPONSE carries session ID"
    [silent]="timed out waiting for AUTH_RESPONSE"
    [vanish-auth]="the phone closed the connection while waiting for AUTH_RESPONSE"
    [vanish-keygen]="the phone closed the connection while waiting for KEY_GENERATE_RESPONSE"
    [slow-keygen]="timed out waiting for KEY_GENERATE_RESPONSE"
    [unexpected]="expected KEY_GENERATE_RESPONSE, got command 12 \(FETCH_CERTIFICATE_RESPONSE\)"
)
# The ones that get as far as their end: END_SESSION 7 reaches them.
declare -A gets_end=([garbage]=1 [bad-header]=1 [oversized]=1 [malformed]=1 [truncated]=1
    [wrong-sid]=1 [silent]=1 [slow-keygen]=1 [unexpected]=1)
n=0
declare -A dev=()
for kind in "${!want[@]}"; do
    n=$((n + 1))
    dev[$kind]=$(printf 'SEP0000000BAD%02X' "$n")
    "$CAPFCTL" add "${dev[$kind]}" --operation install >/dev/null
    "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$CA_DIR/ca.pem" --key-dir "$KEYS" \
        --device "${dev[$kind]}" --misbehave "$kind" --timeout 15 \
        >"$PT_TMP/bad-$kind.out" 2>&1 &
    PIDS+=($!)
    bad_pid[n]=$!
done
GOOD=SEP00000000600D
"$CAPFCTL" add "$GOOD" --operation install >/dev/null
phone --device "$GOOD" --out-lsc "$PT_TMP/good.pem"
like "$OUT" "end-session: 1" "a good phone enrolls while ${#want[@]} others misbehave"
run openssl verify -CAfile "$CA_DIR/ca.pem" "$PT_TMP/good.pem"
is "$RC" 0 "and its LSC verifies"
for i in $(seq 1 "$n"); do wait "${bad_pid[i]}"; done
for kind in "${!want[@]}"; do
    out=$(cat "$PT_TMP/bad-$kind.out")
    sid=$(printf '%s\n' "$out" | sed -n 's/^session-id: //p')
    session_line "$LOG" "$sid"
    like "$LINE" "device=(${dev[$kind]}|-) .*result=failed .*reason=\".*${want[$kind]}" \
        "$kind: the session ends with a logged reason"
    if [ -n "${gets_end[$kind]:-}" ]; then
        like "$out" "end-session: 7" "$kind: the client is told END_SESSION 7"
    fi
done
like "$("$CAPFCTL" show "${dev[vanish-keygen]}" --json | jq -r '.status.text')" \
    "^install failed: the phone closed the connection" \
    "a phone that vanished mid-install: install failed with the reason"
is "$(q "SELECT count(*) FROM certificates WHERE device LIKE 'SEP0000000BAD%'")" 0 \
    "no misbehaving phone got a certificate"
kill -0 "$CAPFD_PID"
ok $? "capfd is still running"
phone --device "$GOOD"
like "$OUT" "end-session: 0" "and serves the next phone"

# --- hsmd down, then back -----------------------------------------------------------------
stop_hsmd
H=SEP00000000D0D0
"$CAPFCTL" add "$H" --operation install >/dev/null
phone --device "$H"
like "$OUT" "end-session: 7" "with hsmd down an install ends with 7"
session_line "$LOG" "$SID"
like "$LINE" "result=failed end=7 reason=\"issuing the LSC failed: hsmd \(key CAPF\): hsmd socket .* does not exist: is hsmd running" \
    "capfd logs that hsmd is not there"
like "$("$CAPFCTL" show "$H" --json | jq -r '.status.text')" "^install failed: issuing the LSC failed" \
    "capfctl: install failed with the reason"
is "$(q "SELECT count(*) FROM certificates WHERE device = '$H'")" 0 "nothing is recorded"
phone --device "$GOOD"
like "$OUT" "end-session: 0" "sessions that need no signature go on"
start_hsmd
phone --device "$H" --out-lsc "$PT_TMP/h.pem"
like "$OUT" "end-session: 1" "when hsmd is back the install succeeds"

# --- the session limit: RETRY_LATER (default) or close -------------------------------------
# shellcheck disable=SC2317 # called through wait_for
held_session() { grep -q '^S->C 55 01' "$1"; }
limit_test() { # limit_test NAME EXTRA: a capfd with one session; a second phone arrives
    local name=$1 conf=$PT_TMP/$1.conf log=$PT_TMP/$1.log
    write_conf "$conf" "[limits]
max-sessions = 1
io-timeout = 20s
$2"
    start_capfd "$conf" "$log" || return 1
    LIMIT_PID=$CAPFD_PID
    "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$CA_DIR/ca.pem" --device "$GOOD" \
        --misbehave silent --timeout 20 --dump "$PT_TMP/$name-held.dump" >/dev/null 2>&1 &
    HELD=$!
    PIDS+=("$HELD")
    wait_for 15 held_session "$PT_TMP/$name-held.dump"
}
limit_test retry ""
ok $? "a capfd with max-sessions = 1 holds one silent phone"
phone --device "$GOOD" --dump "$PT_TMP/retry.dump"
is "$RC" 0 "at the limit a phone is answered"
like "$OUT" "retry-later: yes" "with RETRY_LATER (the default, at-limit = retry-later)"
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(head -n 1 "$PT_TMP/retry.dump")" "S->C 55 10 $SIDHEX 00 05 0C 00 02 00 3C" \
    "RETRY_LATER{RETRY_DELAY u16 60} in place of AUTH_REQUEST (the default elements)"
session_line "$PT_TMP/retry.log" "$SID"
like "$LINE" "result=retry-later .*at the session limit \(1\): RETRY_LATER sent" "capfd logs it"
kill "$HELD" "$LIMIT_PID"
wait "$LIMIT_PID"

limit_test close "at-limit = close"
ok $? "a capfd with at-limit = close holds one silent phone"
phone --device "$GOOD"
is "$RC" 1 "at the limit the phone gets no answer"
like "$OUT" "closed the connection|TLS handshake" "the connection is closed"
# shellcheck disable=SC2317 # called through wait_for
log_closed() { grep -q 'result=closed' "$PT_TMP/close.log"; }
wait_for 15 log_closed
like "$(grep 'result=closed' "$PT_TMP/close.log")" \
    "device=- operation=none result=closed end=- reason=\"at the session limit \(1\): closed without an answer" \
    "capfd logs it"
kill "$HELD" "$LIMIT_PID"
wait "$LIMIT_PID"

limit_test elements "retry-later-elements = REASON=u8:7 RETRY_DELAY=hex:0000012C"
ok $? "a capfd with its own RETRY_LATER elements"
phone --device "$GOOD" --dump "$PT_TMP/elements.dump"
SIDHEX=$(printf '%02X %02X %02X %02X' $((SID >> 24 & 255)) $((SID >> 16 & 255)) \
    $((SID >> 8 & 255)) $((SID & 255)))
is "$(head -n 1 "$PT_TMP/elements.dump")" \
    "S->C 55 10 $SIDHEX 00 0B 01 00 01 07 0C 00 04 00 00 01 2C" \
    "RETRY_LATER carries the configured elements in the configured order"
kill "$HELD" "$LIMIT_PID"
wait "$LIMIT_PID"

# --- stopping while a session waits: SIGTERM ends it at once -----------------------------------
limit_test stop ""
ok $? "a capfd holding a silent phone (io-timeout 20 s)"
kill -TERM "$LIMIT_PID"
# shellcheck disable=SC2317 # called through wait_for
capfd_gone() { ! kill -0 "$LIMIT_PID"; }
wait_for 10 capfd_gone
ok $? "SIGTERM stops capfd without waiting for the phone's timeout"
wait "$LIMIT_PID"
is "$?" 0 "and it exits 0"
like "$(grep 'result=failed' "$PT_TMP/stop.log")" "reason=\"capfd is stopping: " \
    "the held session ended with a logged reason"
kill "$HELD" 2>/dev/null

# --- a TLS key on a PKCS#11 token -----------------------------------------------------------
if [ -n "$PT_SOFTHSM_MODULE" ] && [ -f "$PT_SOFTHSM_MODULE" ]; then
    ensure_store
    pt_enroll TLS "CN=capfd-token,O=Example"
    ok $? "a SoftHSM2 token with an RSA key"
    TOK_CONF=$PT_TMP/token.conf
    write_conf "$TOK_CONF" "[tls]
certificate = $PT_TMP/token-tls.pem
key = pkcs11:token=TLS?pin-source=file:$PT_TMP/pin
module = $PT_SOFTHSM_MODULE"
    run "$CAPFD" --config "$TOK_CONF" --issue-tls-cert capfd-token.test
    is "$RC" 0 "--issue-tls-cert with the key on the token"
    run openssl verify -CAfile "$CA_DIR/ca.pem" "$PT_TMP/token-tls.pem"
    is "$RC" 0 "the token key's TLS certificate verifies against the CAPF certificate"
    run "$CAPFD" --config "$TOK_CONF" --check-config
    like "$OUT" "key on a token" "--check-config: the key is on the token"
    start_capfd "$TOK_CONF" "$PT_TMP/token.log"
    ok $? "capfd starts with its TLS key on the token"
    out=$(openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA_DIR/ca.pem" </dev/null 2>&1)
    like "$out" "Protocol *: TLSv1.2" "an RSA key on a token limits TLS to 1.2 (no RSA-PSS)"
    like "$out" "Verify return code: 0 \(ok\)" "and the server verifies"
    for i in 1 2 3 4 5 6; do "$CAPFCTL" add "$(printf 'SEP%012X' "$i")" --operation install >/dev/null; done
    run "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$CA_DIR/ca.pem" --key-dir "$KEYS" \
        --bench 6 --parallel 3 --device-prefix SEP
    is "$RC" 0 "three phones at once enroll over TLS signed on the token"
    like "$OUT" "enrollments: 6 .* failed: 0" "all six"
else
    ok 0 "# SKIP SoftHSM2 is not installed: no TLS key on a token"
fi

done_testing
