#!/bin/bash
# The main job of phonetrust on the embedded defaults (SoftHSM2 for the tokens
# and the HSM, SQLite for the device store), in a fresh working directory,
# showing each step as it goes. The same steps are checked by the system test
# (tests/integration/system/system.sh).
#   BUILD_DIR   build directory (default: build)
#   DEMO_DIR    working directory (default: demo-work; replaced on every run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD_DIR:-build}
work=${DEMO_DIR:-demo-work}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing what is missing and building"
tests/install-deps.sh
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" >/dev/null

rm -rf "$work"
SYS_BUILD=$(realpath "$build")
SYS_SRC=$root
SYS_WORK=$(realpath -m "$work")
SYS_SOFTHSM=$(sed -n 's/^#define PT_SOFTHSM_MODULE_PATH "\(.*\)"$/\1/p' "$SYS_BUILD/pt_config.h")
SYS_SHOW=1
# shellcheck source=tests/lib/system.sh
. tests/lib/system.sh
trap sys_stop_all EXIT

step "A private SoftHSM2 token store in $work/tokens, with random PINs in files"
sys_init

step "Two security tokens (a CTL needs at least two), the HSM token, the TFTP server's token"
sys_tokens
sys_run "$CTLCLIENT" token list --module "$SYS_SOFTHSM"

step "The key ceremony: the CAPF CA key and the ITLRecovery key, generated inside the HSM"
sys_ceremony

step "The CTL, signed with security token SAST-1, and the ITL, signed with the TFTP key"
sys_ctl_create
sys_itl_build
sys_run "$CTLCLIENT" show "$SYS_TFTP/CTLFile.tlv"
sys_run "$CTLCLIENT" verify "$SYS_TFTP/CTLFile.tlv"
sys_run "$CTLCLIENT" verify "$SYS_TFTP/ITLFile.tlv"

step "hsmd, the only process that opens the HSM (configured from hsm/hsmd.conf.example)"
sys_hsmd_config
sys_start_hsmd
sys_run "$HSMCTL" call --socket "$SYS_HSMD_SOCK" status

step "capfd on 127.0.0.1 (from ca/capfd.conf.example), its TLS certificate issued by the CAPF CA"
sys_capfd_config
sys_start_capfd
echo "capfd listens on 127.0.0.1:$SYS_PORT"

step "An administrator schedules an LSC for a phone"
sys_add_phone SEP001122334455
cat "$SYS_PHONE/SEP001122334455.add"

step "The phone (simulated) enrolls: its key is made on the phone, its LSC signed in the HSM"
sys_phone SEP001122334455 --password-file "$SYS_PHONE/SEP001122334455.auth" \
    --out-lsc "$SYS_PHONE/SEP001122334455.pem" --out-key "$SYS_PHONE/SEP001122334455.key"

step "The LSC, verified against the CAPF certificate"
sys_run openssl x509 -in "$SYS_PHONE/SEP001122334455.pem" -noout -issuer -subject -dates
sys_run openssl verify -CAfile "$SYS_CERTS/CAPF.pem" "$SYS_PHONE/SEP001122334455.pem"

step "The device and the CAPF report"
sys_run "$CAPFCTL" show SEP001122334455
sys_run "$CAPFCTL" report

step "The audit log of every HSM signature, verified"
sys_run "$HSMCTL" audit verify "$SYS_AUDIT"

step "Stopping hsmd and capfd"
sys_stop_all
echo "Everything is in $work/ (tokens, certs/, tftp/, phone/, capf.db, hsmd-audit.log)."
