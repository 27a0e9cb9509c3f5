#!/bin/bash
# Install what phonetrust needs to build, test and run on Debian 12 (bookworm).
# Used by the README's commands and by CI; safe to run again.
set -euo pipefail

packages=(
    # build
    gcc clang meson ninja-build pkg-config
    # libraries (see README "Dependencies")
    libssl-dev libp11-dev libp11-kit-dev libjson-c-dev libinih-dev libsqlite3-dev
    libsystemd-dev
    # tokens and HSM: SoftHSM2 is the embedded default, OpenSC gives pkcs11-tool
    softhsm2 opensc p11-kit
    # tests
    libcmocka-dev openssl jq procps util-linux sqlite3
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "install-deps: run as root or install sudo; missing: ${missing[*]}" >&2
        exit 1
    }
    sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
