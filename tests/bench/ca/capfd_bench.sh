#!/bin/bash
# capfd benchmark: enrollments per second with 1, 8 and 32 simulated phones at
# once (pre-generated phone keys: the phone's key generation is not counted),
# beside the cost floor measured in the same run on the same machine (one TLS
# handshake with capfd plus one CA signature through PKCS#11 on SoftHSM2), as
# a ratio; and capfd's peak memory per session (VmHWM). The CAPF CA key is
# made by the hsmctl ceremony on SoftHSM2 and used by hsmd.
#   BENCH_ENROLL   enrollments per level (default 40, 80, 160 for 1, 8, 32 phones)
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
# shellcheck source=tests/integration/ca/capfd_lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ca/capfd_lib.sh"
BENCH_SIGN=$PT_BUILD_ROOT/tests/bench/ca/bench-sign

ensure_store
command -v sqlite3 >/dev/null || skip_all "sqlite3 is not installed"
KEY_URI="pkcs11:token=HSM;object=CAPF?pin-source=file:$PT_TMP/pin"
capf_ca_make || exit 1
start_hsmd || exit 1
make_phone_keys
mkdir -p "$PT_TMP/mic-trust"
CONF=$PT_TMP/capfd.conf
LOG=$PT_TMP/capfd.log
write_conf "$CONF" "[limits]
max-sessions = 64
io-timeout = 10s
[server]
log-level = warn"
"$CAPFD" --config "$CONF" --issue-tls-cert capfd.bench --new-key rsa:2048 >/dev/null || exit 1
start_capfd "$CONF" "$LOG" || exit 1

levels=(1 8 32)
read -r -a counts <<<"${BENCH_ENROLL:-40 80 160}"
max=0
for c in "${counts[@]}"; do [ "$c" -gt "$max" ] && max=$c; done
{
    echo "device,description,auth mode,authentication string,operation,deadline"
    for i in $(seq 1 "$max"); do printf 'SEP%012X,,null,,install,\n' "$i"; done
} >"$PT_TMP/devices.csv"
"$CAPFCTL" import "$PT_TMP/devices.csv" >/dev/null || exit 1
reschedule() { q "UPDATE devices SET operation = 'install'"; }
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$CAPFD_PID/status"; }
rate() { printf '%s\n' "$1" | sed -n 's/.*per-second: \([0-9.]*\).*/\1/p'; }

# Warm-up: one enrollment, so that the memory baseline includes what every session loads.
run "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$CA_DIR/ca.pem" --key-dir "$KEYS" \
    --bench 1 --device-prefix SEP
reschedule
HWM0=$(hwm)

# The floor: TLS handshakes with capfd, and PKCS#11 signatures with the CA key, one at a time.
run "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$CA_DIR/ca.pem" --handshakes 100
HS=$(rate "$OUT")
run "$BENCH_SIGN" "$KEY_URI" 200
SIG=$(rate "$OUT")
if [ -z "$HS" ] || [ -z "$SIG" ]; then
    echo "floor measurement failed: $OUT $ERR"
    exit 1
fi
FLOOR=$(echo "$HS $SIG" | awk '{ printf "%.2f", 1 / (1 / $1 + 1 / $2) }')

echo "capfd benchmark: CAPF key RSA 2048 on SoftHSM2 through hsmd, TLS key"
echo "RSA 2048, phones with pre-generated RSA 2048 keys, null authentication, $(nproc) CPU(s)"
echo
printf 'floor: %s TLS handshakes/s, %s PKCS#11 signatures/s => %s enrollments/s for one\n' \
    "$HS" "$SIG" "$FLOOR"
echo
printf '%-8s %-12s %-14s %s\n' phones enrollments per-second ratio-to-floor
status=0
HWM32=$HWM0
for i in "${!levels[@]}"; do
    p=${levels[$i]} n=${counts[$i]}
    reschedule
    run "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$CA_DIR/ca.pem" --key-dir "$KEYS" \
        --bench "$n" --parallel "$p" --device-prefix SEP --timeout 60
    [ "$RC" -eq 0 ] || { status=1; printf '%s\n' "$OUT" "$ERR" | tail -n 5; }
    r=$(rate "$OUT")
    printf '%-8s %-12s %-14s %s\n' "$p" "$n" "$r" "$(echo "$r $FLOOR" | awk '{ printf "%.2f", $1 / $2 }')"
    [ "$p" -eq 32 ] && HWM32=$(hwm)
done
echo
printf 'capfd peak memory (VmHWM): %s kB after one session, %s kB after 32 at once => %s kB per session\n' \
    "$HWM0" "$HWM32" "$(((HWM32 - HWM0) / 32))"
exit $status
