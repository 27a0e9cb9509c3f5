#!/bin/bash
# The bytes of a CTL built by ctlclient create, checked independently of the
# codec: the header rebuilt by hand from spec/tlv-files.md §5.2 and compared
# byte for byte, the records walked with od, and the signature checked with
# openssl dgst over the covered bytes cut out with head/tail/dd (§6).
# shellcheck source=tests/integration/ctl/ctl-lib.sh
. "$PT_SOURCE_ROOT/tests/integration/ctl/ctl-lib.sh"
ctl_setup 2
command -v pkcs11-tool >/dev/null || skip_all "pkcs11-tool (opensc) is not installed"
mkcert ccm rsa
mkcert capf ec
C=$PT_TMP
TS=1700000000
token_cert_pem SAST-1 "$C/sast1.pem"
token_cert_pem SAST-2 "$C/sast2.pem"
openssl x509 -in "$C/sast1.pem" -pubkey -noout >"$C/sast1.pub"
openssl x509 -in "$C/sast2.pem" -pubkey -noout >"$C/sast2.pub"

hexstr() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }      # text as hex
tlv() { printf '%02x%04x%s' "$1" $((${#2} / 2)) "$2"; }           # TAG VALUE-HEX
name_tlv() { tlv "$1" "$(hexstr "$2")00"; }                       # a NUL-terminated string

# check_file FILE DIGEST-CODE DGST SIGNER-PEM SIGNER-PUB
check_file() {
    local f=$1 dcode=$2 dgst=$3 pem=$4 pub=$5
    local subj serial info L S k H pre post
    subj=CN=SAST-${pem##*sast}; subj=${subj%.pem},O=Example,OU=VoIP,C=NZ
    serial=$(cert_serial "$pem" | tr 'A-F' 'a-f')
    info=$(name_tlv 4 "$subj")$(name_tlv 6 "$subj")$(tlv 5 "$serial")
    L=$((${#info} / 2))
    k=256
    pre=$(printf '1c000201000300%02x' "$L")$info$(printf '07000f080001%02x0900080a0001000b000102' "$dcode")
    post=$(name_tlv 14 CTLFile.tlv)$(printf '0f0004%08x' "$TS")
    local unpadded=$((10 + ${#pre} / 2 + 3 + k + ${#post} / 2))
    H=$(((unpadded + 3) / 4 * 4))
    for _ in $(seq $((H - unpadded))); do post+=0d; done
    pre=$(printf '0100020102020002%04x' "$H")$pre
    S=$((${#pre} / 2))

    is "$(hexat "$f" 0 5)" "0100020102" "$dgst: offset 0: VERSION 1.2"
    is "$(hexat "$f" 5 3)" "020002" "$dgst: offset 5: HEADER_LENGTH tag and length"
    is "$(u16 "$f" 8)" "$H" "$dgst: offsets 8-9: HEADER_LENGTH = $H as computed by hand"
    is "$(($(u16 "$f" 8) % 4))" 0 "$dgst: HEADER_LENGTH is a multiple of 4"
    is "$(hexat "$f" 10 5)" "1c00020100" "$dgst: offset 10: SIGNER_VERSION 1.0"
    is "$(u16 "$f" 16)" "$L" "$dgst: SIGNER_INFO length = the sum of its three elements"
    is "$(hexat "$f" $((18 + L)) 18)" "$(printf '07000f080001%02x0900080a0001000b000102' "$dcode")" \
        "$dgst: SIGNATURE_INFO 15 and SIGNATURE_ALGORITHM_INFO 8, digest $dcode, modulus 2048"
    is "$(hexat "$f" 0 "$S")" "$pre" "$dgst: every header byte before SIGNATURE as built by hand"
    is "$(hexat "$f" "$S" 3)" "0c0100" "$dgst: SIGNATURE of 256 bytes right after SIGNATURE_MODULUS"
    is "$(hexat "$f" $((S + 3 + k)) $((H - S - 3 - k)))" "$post" \
        "$dgst: FILENAME, TIMESTAMP and 0x0D padding as built by hand"

    # Records: each starts with 01 00 02 R and the last ends at end of file.
    local off=$H n=0 size bad=0
    size=$(stat -c %s "$f")
    while [ "$off" -lt "$size" ]; do
        [ "$(hexat "$f" "$off" 3)" = "010002" ] || bad=1
        off=$((off + $(u16 "$f" $((off + 3)))))
        n=$((n + 1))
    done
    is "$bad.$off.$n" "0.$size.4" "$dgst: four records, each RECORD_LENGTH first, the last ending at EOF"

    # The signature over the covered bytes, with openssl.
    head -c "$S" "$f" >"$C/covered"
    tail -c +$((S + 3 + k + 1)) "$f" >>"$C/covered"
    dd if="$f" of="$C/sig" bs=1 skip=$((S + 3)) count="$k" 2>/dev/null
    is "$(stat -c %s "$C/covered")" $((size - 3 - k)) "$dgst: covered bytes = file minus 3 + k"
    run openssl dgst "-$dgst" -verify "$pub" -signature "$C/sig" "$C/covered"
    like "$OUT" "Verified OK" "$dgst: openssl dgst -verify accepts the signature with the signer's key"
}

# --- SHA-1, signed by SAST-1 ------------------------------------------------------
run "$CTLCLIENT" create -o "$C/CTLFile.tlv" --sast "$U1" --sast "$U2" --ccm-tftp "$C/ccm.pem" \
    --capf "$C/capf.pem" --timestamp "$TS" --module "$M"
is "$RC" 0 "create (SHA-1)"
check_file "$C/CTLFile.tlv" 1 sha1 "$C/sast1.pem" "$C/sast1.pub"

# The first record is SAST-1 with the token's certificate, element by element (§7.2).
H=$(u16 "$C/CTLFile.tlv" 8)
off=$((H + 5))
end=$((H + $(u16 "$C/CTLFile.tlv" $((H + 3)))))
tags=""
while [ "$off" -lt "$end" ]; do
    tag=$(u8 "$C/CTLFile.tlv" "$off")
    len=$(u16 "$C/CTLFile.tlv" $((off + 1)))
    tags+="$tag "
    [ "$tag" = 4 ] && role=$(hexat "$C/CTLFile.tlv" $((off + 3)) "$len")
    [ "$tag" = 9 ] && dd if="$C/CTLFile.tlv" of="$C/rec1.der" bs=1 skip=$((off + 3)) count="$len" 2>/dev/null
    off=$((off + 3 + len))
done
is "$tags" "3 5 6 4 7 8 9 " "record 1: SUBJECT, ISSUER, SERIAL, ROLE, PUBLIC_KEY, SIGNATURE, CERTIFICATE"
is "$role" "0000" "record 1 has role SAST (0)"
openssl x509 -in "$C/sast1.pem" -outform DER -out "$C/sast1.der"
run cmp "$C/rec1.der" "$C/sast1.der"
is "$RC" 0 "record 1's CERTIFICATE is the token's certificate (read with pkcs11-tool)"

# A changed byte in the covered bytes (record 1's subject text) breaks the signature.
cp "$C/CTLFile.tlv" "$C/bad.tlv"
printf 'Z' | dd of="$C/bad.tlv" bs=1 seek=$((H + 8)) conv=notrunc 2>/dev/null
run "$CTLCLIENT" verify "$C/bad.tlv"
is "$RC" 1 "verify refuses a file with a changed record byte"
like "$ERR" "bad.tlv: .*signature" "with a one-line reason"
is "$(printf '%s\n' "$ERR" | wc -l)" 1 "on one line"

# --- SHA-512, signed by SAST-2 ----------------------------------------------------
run "$CTLCLIENT" create -o "$C/CTLFile.tlv" --sast "$U1" --sast "$U2" --sign-with "$U2" \
    --ccm-tftp "$C/ccm.pem" --capf "$C/capf.pem" --digest sha512 --timestamp "$TS" --module "$M"
is "$RC" 0 "create (SHA-512)"
check_file "$C/CTLFile.tlv" 3 sha512 "$C/sast2.pem" "$C/sast2.pub"

done_testing
