#include "tlv_codes.h"

#include <strings.h>

static const struct {
    uint16_t code;
    const char *name;
} role_names[] = {
    {TLV_ROLE_SAST, "SAST"},
    {TLV_ROLE_CCM, "CCM"},
    {TLV_ROLE_CCM_TFTP, "CCM+TFTP"},
    {TLV_ROLE_TFTP, "TFTP"},
    {TLV_ROLE_CAPF, "CAPF"},
    {TLV_ROLE_SRST, "SRST"},
    {TLV_ROLE_APP_SERVER, "APP-SERVER"},
    {TLV_ROLE_TVS, "TVS"},
};

const char *tlv_role_name(uint16_t role)
{
    for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
        if (role_names[i].code == role)
            return role_names[i].name;
    return NULL;
}

int tlv_role_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
        if (strcasecmp(role_names[i].name, name) == 0)
            return role_names[i].code;
    return -1;
}

const char *tlv_digest_name(uint8_t code)
{
    switch (code) {
    case TLV_DIGEST_SHA1:
        return "SHA-1";
    case TLV_DIGEST_SHA256:
        return "SHA-256";
    case TLV_DIGEST_SHA512:
        return "SHA-512";
    default:
        return NULL;
    }
}

const EVP_MD *tlv_digest_md(uint8_t code)
{
    switch (code) {
    case TLV_DIGEST_SHA1:
        return EVP_sha1();
    case TLV_DIGEST_SHA256:
        return EVP_sha256();
    case TLV_DIGEST_SHA512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

int tlv_modulus_code(size_t k)
{
    switch (k) {
    case 64:
        return 0;
    case 128:
        return 1;
    case 256:
        return 2;
    case 512:
        return 3;
    default:
        return -1;
    }
}

size_t tlv_modulus_bytes(uint8_t code)
{
    return code <= 3 ? (size_t)64 << code : 0;
}
