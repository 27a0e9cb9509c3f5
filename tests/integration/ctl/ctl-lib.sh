# shellcheck shell=bash disable=SC2034
# (variables set here are used by the scripts that source this file)
# Shared set-up of the ctlclient CTL/ITL integration tests: three enrolled
# SoftHSM2 tokens, server certificates made with openssl, byte helpers that
# read files independently of the codec, and a pseudo-terminal driver for
# tests that change the tokens while ctlclient waits at a prompt.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"

M=${PT_SOFTHSM_MODULE:-}
PIN=$PT_TMP/pin

# ctl_setup N: a token store with tokens SAST-1..SAST-N (default 2), each with a
# SAST key and certificate; U1..UN are their URIs with the PIN file.
ctl_setup() {
    local n=${1:-2} i
    pt_store_init
    for i in $(seq "$n"); do
        pt_enroll "SAST-$i" "CN=SAST-$i,O=Example,OU=VoIP,C=NZ" ||
            { echo "Bail out! cannot enroll SAST-$i"; exit 1; }
        printf -v "U$i" 'pkcs11:token=SAST-%s?pin-source=file:%s' "$i" "$PIN"
        printf -v "S$i" '%s' "$(pt_token_serial "SAST-$i")"
    done
}

# mkcert NAME rsa|rsa4096|ec [SUBJECT]: a self-signed server certificate NAME.pem
# (and NAME.der, NAME.key) in $PT_TMP. Keys are reused per type so that
# certificates are cheap to make; every certificate has its own serial.
mkcert() {
    local name=$1 type=$2 subject=${3:-/CN=$1/O=Example/OU=VoIP}
    local key=$PT_TMP/shared-$type.key
    if [ ! -f "$key" ]; then
        case $type in
        rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null ;;
        rsa4096) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$key" 2>/dev/null ;;
        ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null ;;
        esac
    fi
    cp "$key" "$PT_TMP/$name.key"
    openssl req -x509 -new -key "$key" -subj "$subject" -days 3650 \
        -out "$PT_TMP/$name.pem" 2>/dev/null &&
        openssl x509 -in "$PT_TMP/$name.pem" -outform DER -out "$PT_TMP/$name.der"
}

# The serial of a certificate file, as ctlclient show prints it (upper-case hex).
cert_serial() {
    openssl x509 -in "$1" -noout -serial | sed 's/^serial=//; s/^\(00\)*//'
}

# SHA-256 of a certificate, lower-case hex.
cert_sha256() {
    openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# u8 FILE OFFSET / u16 FILE OFFSET: big-endian integers read with od.
u8() { od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' \n'; }
u16() { echo $(($(u8 "$1" "$2") * 256 + $(u8 "$1" $(($2 + 1))))); }
hexat() { od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }

# The SAST certificate of a token, read with pkcs11-tool (independent of ctlclient).
token_cert_pem() { # LABEL OUT.pem
    pkcs11-tool --module "$M" --token-label "$1" --read-object --type cert --label SAST \
        -o "$PT_TMP/tok.der" >/dev/null 2>&1 &&
        openssl x509 -inform DER -in "$PT_TMP/tok.der" -out "$2"
}

# json FILE: ctlclient show --json
json() { "$CTLCLIENT" show "$1" --json 2>/dev/null; }

# No temporary file of pt_file_write_atomic left in a directory.
no_temp_files() { [ -z "$(find "$1" -maxdepth 1 -name '.*.tlv.*' 2>/dev/null)" ]; }

# --- a pseudo-terminal driven step by step -------------------------------------
# pty-run reads its script line by line; fed through a FIFO, each "expect"
# returns only when the text has appeared, and this shell reads the same
# output from pty-run's standard output, so the test knows where ctlclient
# is waiting and can change the tokens (etoken-sim-ctl) before it answers.

pty_start() { # COMMAND...
    rm -f "$PT_TMP/pty.in" "$PT_TMP/pty.outp"
    mkfifo "$PT_TMP/pty.in" "$PT_TMP/pty.outp"
    "$PTY_RUN" -t 30 "$PT_TMP/pty.in" -- "$@" >"$PT_TMP/pty.outp" 2>"$PT_TMP/pty.err" </dev/null &
    PTY_PID=$!
    exec 8<"$PT_TMP/pty.outp"
    exec 7>"$PT_TMP/pty.in"
    PTY_SEEN=""
    PTY_ALL=""
}

# pty_expect TEXT: wait (at most 30 s) until TEXT is shown; returns 1 on timeout.
pty_expect() {
    local c
    printf 'expect %s\n' "$1" >&7
    while [[ $PTY_SEEN != *"$1"* ]]; do
        IFS= read -r -N 1 -t 30 -u 8 c || { pt_diag "timed out waiting for: $1"; return 1; }
        PTY_SEEN+=$c
        PTY_ALL+=$c
    done
    PTY_SEEN=${PTY_SEEN#*"$1"}
}

pty_send() { printf 'send %s\n' "$1" >&7; }

# pty_finish: end the script; RC is the command's exit code, OUT everything shown.
pty_finish() {
    exec 7>&-
    PTY_ALL+=$(cat <&8)
    exec 8<&-
    RC=0
    wait "$PTY_PID" || RC=$?
    OUT=$(printf '%s' "$PTY_ALL" | tr -d '\r')
}
