# shellcheck shell=bash disable=SC2034
# (variables set here are used by the scripts that source this file)
# Helpers for capfd's end-to-end tests: the CAPF CA key made by the hsmctl
# ceremony on a SoftHSM2 token and served by hsmd, capfd on a free port of
# 127.0.0.1, phone-sim, and ways to wait for what capfd logs.
# Source after tests/lib/testlib.sh.

CAPFD=$PT_BUILD_ROOT/ca/capfd
CAPFCTL=$PT_BUILD_ROOT/ca/capfctl
PHONE_SIM=$PT_BUILD_ROOT/tests/phone-sim/phone-sim
HSMD=$PT_BUILD_ROOT/hsm/hsmd
HSMCTL=$PT_BUILD_ROOT/hsm/hsmctl
HSMD_SOCK=$PT_TMP/hsmd.sock
CA_DIR=$PT_TMP/ca
KEYS=$PT_TMP/phone-keys
DB=$PT_TMP/capf.db
export CAPFCTL_DB=sqlite:$DB
PIDS=()

capfd_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$PT_TMP"
}
trap capfd_cleanup EXIT

q() { sqlite3 "$DB" "$1"; }

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds or SECONDS pass.
wait_for() {
    local tries=$(($1 * 10))
    shift
    while ! "$@" 2>/dev/null; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || return 1
        sleep 0.1
    done
}

# make_ca DIR SUBJECT [ec]: a self-signed CA certificate and key (DIR/ca.pem, DIR/ca.key).
make_ca() {
    local dir=$1 subject=$2 alg=(-newkey rsa:2048)
    [ "${3:-}" = ec ] && alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-384)
    mkdir -p "$dir"
    openssl req -x509 "${alg[@]}" -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 \
        -subj "$subject" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

# make_cert CA_DIR OUT SUBJECT [rsa:N|ec]: a certificate and key (OUT.pem, OUT.key) issued by CA_DIR.
make_cert() {
    local ca=$1 out=$2 subject=$3 key=${4:-rsa:2048}
    if [ "$key" = ec ]; then
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2>/dev/null
    else
        openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${key#rsa:}" -out "$out.key" \
            2>/dev/null
    fi
    openssl req -new -key "$out.key" -subj "$subject" -out "$out.csr" 2>/dev/null
    openssl x509 -req -in "$out.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
        -days 365 -out "$out.pem" 2>/dev/null
}

# Pre-generated phone keys, so that sessions do not wait for key generation.
make_phone_keys() {
    mkdir -p "$KEYS"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/rsa-2048.pem" 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$KEYS/rsa-3072.pem" 2>/dev/null
    for c in P-256 P-384; do
        openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$c" -out "$KEYS/ec-$c.pem" 2>/dev/null
    done
}

# A private SoftHSM2 store, once per test.
ensure_store() {
    [ -n "${SOFTHSM2_CONF:-}" ] || pt_store_init
}

# capf_ca_make: the CAPF CA key by the key ceremony (hsmctl init) on a SoftHSM2 token,
# its certificate in CA_DIR/ca.pem, and hsmd's configuration for it.
capf_ca_make() {
    ensure_store
    pt_add_token HSM >/dev/null || return 1
    "$HSMCTL" init --token "pkcs11:token=HSM?pin-source=file:$PT_TMP/pin" \
        --module "$PT_SOFTHSM_MODULE" --subject "CN=CAPF-1,O=Example,OU=VoIP,C=NZ" \
        --out "$CA_DIR" >/dev/null || return 1
    cp "$CA_DIR/CAPF.pem" "$CA_DIR/ca.pem"
    cat >"$PT_TMP/hsmd.conf" <<EOF
[hsmd]
module = $PT_SOFTHSM_MODULE
token = pkcs11:token=HSM?pin-source=file:$PT_TMP/pin
socket = $HSMD_SOCK
socket-mode = 0600
audit-log = $PT_TMP/hsmd-audit.log

[key CAPF]
label = CAPF
operation = issue
allow-users = $(id -un)
max-validity-days = 1827
EOF
}

# start_hsmd: hsmd for the CAPF CA, listening on HSMD_SOCK.
start_hsmd() {
    rm -f "$HSMD_SOCK"
    "$HSMD" --config "$PT_TMP/hsmd.conf" 2>>"$PT_TMP/hsmd.log" &
    HSMD_PID=$!
    PIDS+=("$HSMD_PID")
    wait_for 15 test -S "$HSMD_SOCK"
}

stop_hsmd() {
    kill "$HSMD_PID" 2>/dev/null
    wait "$HSMD_PID" 2>/dev/null
    rm -f "$HSMD_SOCK"
}

# write_conf FILE [EXTRA-INI-LINES]: a capfd configuration on a free port.
write_conf() {
    local file=$1
    cat >"$file" <<EOF
[server]
listen = 127.0.0.1
port = 0
port-file = $file.port
log-level = info

[tls]
certificate = $PT_TMP/tls.pem
key = $PT_TMP/tls.key

[hsmd]
socket = $HSMD_SOCK
key = CAPF
timeout = 5s

[store]
url = sqlite:$DB

[auth]
mic-trust-dir = $PT_TMP/mic-trust
max-failures = 3

[limits]
max-sessions = 8
io-timeout = 2s
session-timeout = 20s

[service]
keygen-timeout = 3s
keygen-attempts = 3
${2:-}
EOF
}

# start_capfd CONF LOG: capfd in the background; sets CAPFD_PID and PORT.
start_capfd() {
    rm -f "$1.port"
    "$CAPFD" --config "$1" 2>>"$2" &
    CAPFD_PID=$!
    PIDS+=("$CAPFD_PID")
    wait_for 15 test -s "$1.port" || return 1
    PORT=$(cat "$1.port")
}

# phone ARGS...: phone-sim against capfd; RC, OUT, ERR and SID (the session ID).
phone() {
    run "$PHONE_SIM" --server "127.0.0.1:$PORT" --capf-cert "$CA_DIR/ca.pem" \
        --key-dir "$KEYS" "$@"
    SID=$(printf '%s\n' "$OUT" | sed -n 's/^session-id: //p')
}

# session_line LOG SID: wait for capfd's line about session SID; sets LINE.
log_has_session() { grep -q "session=$2 " "$1"; }
session_line() {
    wait_for 15 log_has_session "$1" "$2"
    LINE=$(grep "session=$2 " "$1" | tail -n 1)
}

# capfd_setup [EXTRA-INI-LINES]: the CAPF CA in hsmd, a manufacturing CA
# (MIC_CA) trusted for MICs, phone keys, capfd's TLS certificate issued by the
# CAPF CA (capfd --issue-tls-cert), and capfd running with CONF and LOG.
capfd_setup() {
    command -v openssl >/dev/null || skip_all "the openssl command is not installed"
    command -v sqlite3 >/dev/null || skip_all "the sqlite3 command is not installed"
    command -v jq >/dev/null || skip_all "jq is not installed"
    capf_ca_make || return 1
    MIC_CA=$PT_TMP/mic-ca
    make_ca "$MIC_CA" "/CN=Cisco Manufacturing CA SHA2/O=Cisco"
    mkdir -p "$PT_TMP/mic-trust"
    cp "$MIC_CA/ca.pem" "$PT_TMP/mic-trust/manufacturing.pem"
    make_phone_keys
    start_hsmd || return 1
    CONF=$PT_TMP/capfd.conf
    LOG=$PT_TMP/capfd.log
    write_conf "$CONF" "${1:-}"
    "$CAPFD" --config "$CONF" --issue-tls-cert capfd.test --new-key rsa:2048 \
        >"$PT_TMP/issue.out" 2>&1 || return 1
    start_capfd "$CONF" "$LOG"
}
