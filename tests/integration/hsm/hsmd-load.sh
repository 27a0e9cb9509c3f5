#!/bin/bash
# hsmd with many clients at once: clients that hang up in the middle of a
# frame do not disturb the others, and hsmd killed with SIGKILL in the middle
# of the load leaves an audit log that verifies and holds a record of every
# certificate any client received (the clients write down each one they get;
# the test compares).
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/hsm/hsmd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/hsm/hsmd_lib.sh"
command -v jq >/dev/null || skip_all "jq is not installed"
hsm_ceremony || skip_all "cannot create the HSM token"
write_config "$PT_SOFTHSM_MODULE" "workers = 4" "sessions = 2"
start_hsmd || {
    ok 1 "hsmd starts"
    done_testing
}

# Clients hanging up mid-frame, beside clients that sign.
mkdir -p "$PT_TMP/load1" "$PT_TMP/load2"
"$TOOL" midframe "$SOCK" 300 &
M=$!
run "$TOOL" load "$SOCK" CAPF "$OUTDIR/CAPF.pem" 4 25 "$PT_TMP/load1"
is "$RC" 0 "4 clients issue 25 certificates each while others hang up mid-frame"
[ "$RC" -eq 0 ] || pt_diag "$ERR"
like "$OUT" "issued 100, clients failed 0" "all 100 requests succeed"
wait "$M"
is "$?" 0 "300 connections were cut in the middle of a frame"
wait_until "the cut connections closed" 30 status_is '.load.connections == 1'
ok $? "hsmd let go of every cut connection"
call status
is "$(printf '%s' "$OUT" | jq -c '[.counters.ok >= 100, .counters.errors, .counters.refused]')" \
    "[true,0,0]" "no request failed or was refused"
ok "$(hsmd_alive && echo 0 || echo 1)" "hsmd is running"

# SIGKILL under load.
"$TOOL" load "$SOCK" CAPF "$OUTDIR/CAPF.pem" 8 100000 "$PT_TMP/load2" >"$PT_TMP/load2.out" \
    2>"$PT_TMP/load2.err" &
L=$!
# shellcheck disable=SC2317 # called through wait_until
records_over() { [ "$(wc -l <"$AUDIT")" -gt "$1" ]; }
wait_until "signatures under load" 60 records_over 400
kill -KILL "$HSMD_PID"
wait "$HSMD_PID" 2>/dev/null
HSMD_PID=
wait "$L"
is "$?" 1 "the clients stop when hsmd is killed"
got=$(cat "$PT_TMP"/load2/client-*.txt | wc -l)
ok "$([ "$got" -gt 0 ] && echo 0 || echo 1)" "the clients received certificates before the kill ($got)"
run "$HSMCTL" audit verify "$AUDIT"
is "$RC" 0 "the audit log verifies after SIGKILL"
pt_diag "$OUT"
# Every certificate a client received has its record: same input hash, same serial, ok.
awk '/ op=issue / && / result=ok / {
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^input=/) inp = substr($i, 7)
            if ($i ~ /^serial=/) ser = substr($i, 8)
        }
        print ser " " inp
    }' "$AUDIT" | sort >"$PT_TMP/logged"
cat "$PT_TMP"/load2/client-*.txt | sort >"$PT_TMP/received"
missing=$(comm -23 "$PT_TMP/received" "$PT_TMP/logged" | wc -l)
is "$missing" 0 "every certificate returned is in the audit log"
logged2=$(comm -12 "$PT_TMP/received" "$PT_TMP/logged" | wc -l)
is "$logged2" "$got" "matched by serial and input hash"

# hsmd starts again on that log and the socket it left behind.
start_hsmd
ok $? "hsmd starts again after the kill (replacing the stale socket)"
"$TOOL" tbs "$OUTDIR/CAPF.pem" "$PT_TMP/after.tbs"
call issue CAPF "$PT_TMP/after.tbs" -o "$PT_TMP/after.pem"
is "$RC" 0 "and signs"
stop_hsmd
is "$HSMD_STATUS" 0 "hsmd stops cleanly on SIGTERM"
run "$HSMCTL" audit verify "$AUDIT"
is "$RC" 0 "the continued log verifies"
done_testing
