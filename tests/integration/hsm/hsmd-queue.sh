#!/bin/bash
# hsmd under more load than it takes: with one worker and a queue of two, a
# request that finds the queue full is answered busy at once (nothing is
# buffered), status still answers, and a queued request whose client has gone
# is dropped without reaching the HSM or the audit log. The HSM is SoftHSM2
# behind a test module that holds signatures until the test releases them
# (gate_pkcs11.c), so nothing here depends on timing.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/hsm/hsmd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/hsm/hsmd_lib.sh"
command -v jq >/dev/null || skip_all "jq is not installed"
[ -f "${HSMD_GATE_MODULE:-}" ] || skip_all "the gate test module was not built"
hsm_ceremony || skip_all "cannot create the HSM token"
export HSMD_TEST_GATE=$PT_TMP/gate HSMD_TEST_GATE_BACKEND=$PT_SOFTHSM_MODULE
write_config "$HSMD_GATE_MODULE" "workers = 1" "queue = 2" "sessions = 1"
start_hsmd || {
    ok 1 "hsmd starts"
    done_testing
}
for n in a b d c; do
    "$TOOL" tbs "$OUTDIR/CAPF.pem" "$PT_TMP/$n.tbs" --subject "CN=client-$n"
done
call issue CAPF "$PT_TMP/c.tbs"
is "$RC" 0 "hsmd signs through the gate module while the gate is open"

# Close the gate: the next signature waits in the HSM.
mkfifo "$HSMD_TEST_GATE"
issue_bg() { # issue_bg NAME: an issue request in the background; its pid in BG
    "$HSMCTL" call --socket "$SOCK" --timeout 120000 issue CAPF "$PT_TMP/$1.tbs" \
        -o "$PT_TMP/$1.pem" 2>"$PT_TMP/$1.err" &
    BG=$!
}
issue_bg a
A=$BG
wait_until "request A in the worker" 30 status_is '.load.in_progress == 1 and .load.queued == 0'
ok $? "request A is being signed (held in the HSM)"
issue_bg b
B=$BG
wait_until "request B queued" 30 status_is '.load.queued == 1'
ok $? "request B waits in the queue"
issue_bg d
D=$BG
wait_until "request D queued" 30 status_is '.load.queued == 2'
ok $? "request D waits in the queue: the queue is full"

# The client of D goes away while D waits.
kill -KILL "$D"
wait "$D" 2>/dev/null

call status
is "$(printf '%s' "$OUT" | jq -c '[.load.in_progress, .load.queued, .load.queue_capacity]')" \
    "[1,2,2]" "status answers while every worker is busy and the queue is full"
call issue CAPF "$PT_TMP/c.tbs"
is "$RC" 1 "a request that finds the queue full fails at once"
like "$ERR" "hsmd refused: busy .*queue is full" "with busy"
# Many at once: every one is turned away, none is buffered.
pids=()
for i in $(seq 1 20); do
    "$HSMCTL" call --socket "$SOCK" issue CAPF "$PT_TMP/c.tbs" 2>"$PT_TMP/burst-$i.err" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
is "$(grep -l 'hsmd refused: busy' "$PT_TMP"/burst-*.err | wc -l)" 20 \
    "20 more concurrent requests are all answered busy"
call status
is "$(printf '%s' "$OUT" | jq -c '[.counters.busy, .load.queued]')" "[21,2]" \
    "status counts 21 busy answers and the queue still holds 2"

# Open the gate: A, then B, are signed; D's client is gone, so D is dropped.
exec 3>"$HSMD_TEST_GATE"
rm -f "$HSMD_TEST_GATE"
exec 3>&-
wait "$A"
is "$?" 0 "request A gets its certificate once the HSM answers"
wait "$B"
is "$?" 0 "request B is signed after it"
run openssl verify -CAfile "$OUTDIR/CAPF.pem" "$PT_TMP/a.pem" "$PT_TMP/b.pem"
is "$RC" 0 "both certificates verify"
wait_until "the queue drained" 30 status_is '.load.queued == 0 and .load.in_progress == 0'
call status
is "$(printf '%s' "$OUT" | jq -r .counters.abandoned)" 1 \
    "the request whose client left is counted abandoned"
for n in a b; do
    h=$(sha256sum "$PT_TMP/$n.tbs" | cut -d' ' -f1)
    like "$(grep "input=$h" "$AUDIT")" "op=issue key=CAPF .*result=ok" "request $n is audited"
done
h=$(sha256sum "$PT_TMP/d.tbs" | cut -d' ' -f1)
is "$(grep -c "input=$h" "$AUDIT")" 0 "the abandoned request never reached the HSM or the log"
h=$(sha256sum "$PT_TMP/c.tbs" | cut -d' ' -f1)
is "$(grep -c "input=$h" "$AUDIT")" 1 "busy answers are not audited (only c's first, signed, request is)"
stop_hsmd
is "$HSMD_STATUS" 0 "hsmd stops cleanly on SIGTERM"
run "$HSMCTL" audit verify "$AUDIT"
is "$RC" 0 "the audit log verifies"

# At max-clients hsmd stops accepting: one more client waits, and is served once a
# connection closes (rather than being turned away).
write_config "$PT_SOFTHSM_MODULE" "max-clients = 2"
start_hsmd || {
    ok 1 "hsmd starts with max-clients = 2"
    done_testing
}
hold() { # hold NAME: a connection that sends nothing until killed; its pid in HOLD_PID
    "$TOOL" hold "$SOCK" "$PT_TMP/$1.ready" &
    HOLD_PID=$!
    wait_until "connection $1" 30 test -f "$PT_TMP/$1.ready"
}
hold a
HOLD_A=$HOLD_PID
hold b
HOLD_B=$HOLD_PID
"$HSMCTL" call --socket "$SOCK" --timeout 60000 status >"$PT_TMP/third.json" 2>"$PT_TMP/third.err" &
THIRD=$!
wait_until "hsmd to stop accepting" 30 grep -q "new connections wait" "$PT_TMP/hsmd.err"
ok $? "with both slots taken, hsmd stops accepting and says so"
kill -TERM "$HOLD_A" # the first connection goes away: the third one gets its slot
wait "$HOLD_A" 2>/dev/null
wait "$THIRD"
is "$?" 0 "a third client, over max-clients, is served once a connection closes"
is "$(jq -c '[.load.max_clients, .counters.accept_pauses >= 1]' "$PT_TMP/third.json")" "[2,true]" \
    "after hsmd had stopped accepting at max-clients"
kill -TERM "$HOLD_B"
wait "$HOLD_B" 2>/dev/null
stop_hsmd
is "$HSMD_STATUS" 0 "hsmd stops cleanly"
done_testing
