#!/bin/bash
# The main job of phonetrust on the embedded defaults (SoftHSM2 tokens), in a
# fresh working directory, showing each step as it goes.
#   BUILD_DIR   build directory (default: build)
#   DEMO_DIR    working directory (default: demo-work; replaced on every run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD_DIR:-build}
work=${DEMO_DIR:-demo-work}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" >&2; "$@"; }

step "Installing what is missing and building"
tests/install-deps.sh
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" >/dev/null
PATH=$root/$build/ctlclient:$root/$build/token:$PATH

rm -rf "$work"
mkdir -p "$work"
cd "$work"
softhsm=$(sed -n "s/^#define PT_SOFTHSM_MODULE_PATH \"\(.*\)\"$/\1/p" "$root/$build/pt_config.h")

step "Creating a private SoftHSM2 token store in $work/tokens"
eval "$(show phonetrust-softhsm --module "$softhsm" init tokens)"
export SOFTHSM2_CONF
# Demo PINs: random, in files only this user can read; never on a command line.
umask 077
od -An -N4 -tu4 /dev/urandom | tr -d ' ' >user.pin
od -An -N4 -tu4 /dev/urandom | tr -d ' ' >so.pin

step "Creating two security tokens (at least two are needed for a CTL)"
for n in 1 2; do
    show phonetrust-softhsm --module "$softhsm" add-token "SAST-$n" \
        --pin-file user.pin --so-pin-file so.pin
done

step "Enrolling each token: a key generated on the token and its SAST certificate"
for n in 1 2; do
    show ctlclient token enroll "pkcs11:token=SAST-$n?pin-source=file:user.pin" \
        --module "$softhsm" --subject "CN=SAST-$n,O=Example,OU=VoIP,C=NZ"
done

step "Listing the tokens"
show ctlclient token list --module "$softhsm"

step "Done: everything is in $work/"
