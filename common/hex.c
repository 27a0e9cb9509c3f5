#include "hex.h"

#include <string.h>

#include <openssl/crypto.h>

char *pt_hex_encode(const uint8_t *data, size_t len, char sep)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t per = sep ? 3 : 2;
    char *s = OPENSSL_malloc(len * per + 1);
    if (s == NULL)
        return NULL;
    char *p = s;
    for (size_t i = 0; i < len; i++) {
        if (sep && i > 0)
            *p++ = sep;
        *p++ = digits[data[i] >> 4];
        *p++ = digits[data[i] & 15];
    }
    *p = '\0';
    return s;
}

void pt_hex_lower(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}

int pt_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

pt_err pt_hex_decode(const char *text, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t n = strlen(text);
    uint8_t *buf = OPENSSL_malloc(n / 2 + 1);
    if (buf == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    size_t used = 0;
    size_t i = 0;
    while (i < n) {
        if (text[i] == ':' || text[i] == ' ') {
            i++;
            continue;
        }
        int hi = pt_hex_value(text[i]);
        int lo = i + 1 < n ? pt_hex_value(text[i + 1]) : -1;
        if (hi < 0 || lo < 0) {
            OPENSSL_free(buf);
            return pt_fail(PT_ERR_FORMAT, "not a hexadecimal string at character %zu", i + 1);
        }
        buf[used++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    *out = buf;
    *len = used;
    return PT_OK;
}
