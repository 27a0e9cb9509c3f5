# shellcheck shell=bash disable=SC2034
# (variables set here are used by the scripts that source this file)
#
# The whole of phonetrust on its embedded defaults (SoftHSM2 tokens and HSM,
# SQLite), in one working directory: shared by the demo (tests/demo.sh) and
# the system test (tests/integration/system/), so that what the demo shows is
# what the test checks. hsmd and capfd are configured from the example files
# shipped in hsm/ and ca/, with only paths, users and the port changed.
#
# Before sourcing, set:
#   SYS_BUILD    the build directory
#   SYS_SRC      the source directory
#   SYS_WORK     an empty working directory (made if missing)
#   SYS_SOFTHSM  the SoftHSM2 module
# Optional: SYS_SHOW=1 prints each command before running it (the demo).
#
# Every function returns non-zero when a step fails, leaving the output of
# the failed command on stderr.

: "${SYS_BUILD:?}" "${SYS_SRC:?}" "${SYS_WORK:?}" "${SYS_SOFTHSM:?}"
SYS_SHOW=${SYS_SHOW:-0}

CTLCLIENT=$SYS_BUILD/ctlclient/ctlclient
PT_SOFTHSM=$SYS_BUILD/token/phonetrust-softhsm
HSMCTL=$SYS_BUILD/hsm/hsmctl
HSMD=$SYS_BUILD/hsm/hsmd
CAPFD=$SYS_BUILD/ca/capfd
CAPFCTL=$SYS_BUILD/ca/capfctl
PHONE_SIM=$SYS_BUILD/tests/phone-sim/phone-sim

SYS_CERTS=$SYS_WORK/certs   # certificates written by the ceremony and the tokens
SYS_TFTP=$SYS_WORK/tftp     # what the TFTP server hands to phones
SYS_PHONE=$SYS_WORK/phone   # the simulated phone's keys and LSC
SYS_HSMD_SOCK=$SYS_WORK/run/hsmd.sock
SYS_HSMD_CONF=$SYS_WORK/hsmd.conf
SYS_CAPFD_CONF=$SYS_WORK/capfd.conf
SYS_AUDIT=$SYS_WORK/hsmd-audit.log
SYS_DB=$SYS_WORK/capf.db
SYS_HSMD_PID=
SYS_CAPFD_PID=
SYS_PORT=
export CAPFCTL_DB=sqlite:$SYS_DB

# The URIs of the tokens: the two security tokens (eTokens in production), the
# HSM holding the CAPF CA and ITLRecovery keys, and the TFTP server's key.
sys_uri() { printf 'pkcs11:token=%s?pin-source=file:%s/%s.pin' "$1" "$SYS_WORK" "$2"; }

# sys_run COMMAND...: run it, showing it first in the demo.
sys_run() {
    if [ "$SYS_SHOW" = 1 ]; then
        local shown=("${@/#$SYS_BUILD\//}")
        printf '$' >&2
        printf ' %q' "${shown[@]}" >&2
        printf '\n' >&2
    fi
    "$@"
}

# sys_wait SECONDS COMMAND...: poll COMMAND (every 0.1 s) until it succeeds.
sys_wait() {
    local tries=$(($1 * 10))
    shift
    until "$@" 2>/dev/null; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || return 1
        sleep 0.1
    done
}

# sys_init: the working directory, a private SoftHSM2 token store, random PINs
# in files only this user can read.
sys_init() {
    mkdir -p "$SYS_WORK" "$SYS_CERTS" "$SYS_TFTP" "$SYS_PHONE" "$SYS_WORK/run" || return 1
    local line
    line=$(sys_run "$PT_SOFTHSM" --module "$SYS_SOFTHSM" init "$SYS_WORK/tokens") || return 1
    export SOFTHSM2_CONF=${line#export SOFTHSM2_CONF=}
    (
        umask 077
        for f in sast so hsm tftp; do
            od -An -N4 -tu4 /dev/urandom | tr -d ' ' >"$SYS_WORK/$f.pin"
        done
    )
}

# sys_add_token LABEL PINFILE-STEM
sys_add_token() {
    sys_run "$PT_SOFTHSM" --module "$SYS_SOFTHSM" add-token "$1" \
        --pin-file "$SYS_WORK/$2.pin" --so-pin-file "$SYS_WORK/so.pin" >/dev/null
}

# sys_tokens: two security tokens with SAST keys and certificates, the HSM
# token, and the TFTP server's token with its key and certificate.
sys_tokens() {
    local n
    for n in 1 2; do
        sys_add_token "SAST-$n" sast || return 1
        sys_run "$CTLCLIENT" token enroll "$(sys_uri "SAST-$n" sast)" --module "$SYS_SOFTHSM" \
            --subject "CN=SAST-$n,O=Example,OU=VoIP,C=NZ" >/dev/null || return 1
    done
    sys_add_token HSM hsm || return 1
    sys_add_token TFTP tftp || return 1
    sys_run "$CTLCLIENT" token enroll "$(sys_uri TFTP tftp)" --module "$SYS_SOFTHSM" \
        --label TFTP --subject "CN=cucm.demo.example,O=Example,OU=VoIP,C=NZ" >"$SYS_WORK/tftp.out" ||
        return 1
    sys_token_cert TFTP TFTP "$SYS_CERTS/tftp.pem"
}

# sys_token_cert TOKEN LABEL FILE: the certificate object on a token, as PEM
# (certificates are public: no PIN).
sys_token_cert() {
    pkcs11-tool --module "$SYS_SOFTHSM" --token-label "$1" --read-object --type cert \
        --label "$2" -o "$3.der" >/dev/null 2>&1 &&
        openssl x509 -inform DER -in "$3.der" -out "$3" && rm -f "$3.der"
}

# sys_ceremony: the CAPF CA key and the ITLRecovery key generated in the HSM,
# their certificates in certs/CAPF.pem and certs/ITLRecovery.pem.
sys_ceremony() {
    sys_run "$HSMCTL" init --token "$(sys_uri HSM hsm)" --module "$SYS_SOFTHSM" \
        --subject "CN=CAPF-demo,O=Example,OU=VoIP,C=NZ" --out "$SYS_CERTS"
}

# sys_hsmd_config: hsm/hsmd.conf.example with this directory's paths and user.
sys_hsmd_config() {
    local me
    me=$(id -un)
    sed -e "s|^module = .*|module = $SYS_SOFTHSM|" \
        -e "s|^token = .*|token = $(sys_uri HSM hsm)|" \
        -e "s|^socket = .*|socket = $SYS_HSMD_SOCK|" \
        -e "s|^socket-mode = .*|socket-mode = 0600|" \
        -e "/^socket-group = /d" \
        -e "s|^audit-log = .*|audit-log = $SYS_AUDIT|" \
        -e "s|^status-users = .*|status-users = $me|" \
        -e "s|^allow-users = .*|allow-users = $me|" \
        -e "s|^allow-groups = .*|allow-users = $me|" \
        "$SYS_SRC/hsm/hsmd.conf.example" >"$SYS_HSMD_CONF"
}

sys_start_hsmd() {
    rm -f "$SYS_HSMD_SOCK"
    [ "$SYS_SHOW" = 1 ] && printf '$ hsm/hsmd --config %s &\n' "$SYS_HSMD_CONF" >&2
    "$HSMD" --config "$SYS_HSMD_CONF" 2>>"$SYS_WORK/hsmd.log" &
    SYS_HSMD_PID=$!
    sys_wait 20 test -S "$SYS_HSMD_SOCK"
}

sys_stop_hsmd() {
    [ -n "$SYS_HSMD_PID" ] || return 0
    kill "$SYS_HSMD_PID" 2>/dev/null
    wait "$SYS_HSMD_PID" 2>/dev/null
    SYS_HSMD_PID=
}

# sys_capfd_config: ca/capfd.conf.example on 127.0.0.1 (a free port), with
# this directory's TLS files, store and hsmd socket; then capfd's TLS
# certificate issued by the CAPF CA through hsmd.
sys_capfd_config() {
    sed -e "s|^listen = .*|listen = 127.0.0.1|" \
        -e "s|^port = .*|port = 0\nport-file = $SYS_WORK/run/capfd.port|" \
        -e "s|^certificate = .*|certificate = $SYS_CERTS/capfd-tls.pem|" \
        -e "s|^key = /etc/phonetrust/capfd-tls.key|key = $SYS_WORK/capfd-tls.key|" \
        -e "s|^socket = .*|socket = $SYS_HSMD_SOCK|" \
        -e "s|^url = .*|url = sqlite:$SYS_DB|" \
        "$SYS_SRC/ca/capfd.conf.example" >"$SYS_CAPFD_CONF" || return 1
    sys_run "$CAPFD" --config "$SYS_CAPFD_CONF" --issue-tls-cert capf.demo.example \
        --new-key rsa:2048
}

sys_start_capfd() {
    rm -f "$SYS_WORK/run/capfd.port"
    [ "$SYS_SHOW" = 1 ] && printf '$ ca/capfd --config %s &\n' "$SYS_CAPFD_CONF" >&2
    "$CAPFD" --config "$SYS_CAPFD_CONF" 2>>"$SYS_WORK/capfd.log" &
    SYS_CAPFD_PID=$!
    sys_wait 20 test -s "$SYS_WORK/run/capfd.port" || return 1
    SYS_PORT=$(cat "$SYS_WORK/run/capfd.port")
}

sys_stop_capfd() {
    [ -n "$SYS_CAPFD_PID" ] || return 0
    kill "$SYS_CAPFD_PID" 2>/dev/null
    wait "$SYS_CAPFD_PID" 2>/dev/null
    SYS_CAPFD_PID=
}

sys_stop_all() {
    sys_stop_capfd
    sys_stop_hsmd
}

# sys_ctl_create: the CTL signed with SAST-1 and listing both tokens, the
# CallManager/TFTP server and CAPF.
sys_ctl_create() {
    sys_run "$CTLCLIENT" create -o "$SYS_TFTP/CTLFile.tlv" --module "$SYS_SOFTHSM" \
        --sast "$(sys_uri SAST-1 sast)" --sast "$(sys_uri SAST-2 sast)" \
        --ccm-tftp "$SYS_CERTS/tftp.pem,host=cucm.demo.example" \
        --capf "$SYS_CERTS/CAPF.pem"
}

# sys_itl_build: the ITL signed by the TFTP server's key, listing it (SAST and
# CCM+TFTP), CAPF and ITLRecovery.
sys_itl_build() {
    sys_run "$CTLCLIENT" itl build -o "$SYS_TFTP/ITLFile.tlv" --module "$SYS_SOFTHSM" \
        --signer "$(sys_uri TFTP tftp)" --signer-role ccm-tftp \
        --capf "$SYS_CERTS/CAPF.pem" --itlrecovery "$SYS_CERTS/ITLRecovery.pem"
}

# sys_add_phone DEVICE [capfctl options]: schedule an install with a one-time
# authentication string, kept in phone/DEVICE.auth for the phone.
sys_add_phone() {
    local dev=$1
    shift
    sys_run "$CAPFCTL" add "$dev" --description "demo phone" --operation install \
        --auth string --generate-string "$@" >"$SYS_PHONE/$dev.add" || return 1
    sed -n "s/^authentication string for $dev: \([0-9]*\)$/\1/p" "$SYS_PHONE/$dev.add" \
        >"$SYS_PHONE/$dev.auth"
    [ -s "$SYS_PHONE/$dev.auth" ]
}

# sys_phone DEVICE [phone-sim options]: one CAPF session of the simulated phone.
sys_phone() {
    local dev=$1
    shift
    sys_run "$PHONE_SIM" --server "127.0.0.1:$SYS_PORT" --capf-cert "$SYS_CERTS/CAPF.pem" \
        --device "$dev" "$@"
}
