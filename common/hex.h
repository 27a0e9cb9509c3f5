/*
 * Hexadecimal text for fingerprints, serials and digests.
 */
#ifndef PT_HEX_H
#define PT_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "pt_error.h"

/*
 * Upper-case hex of data, with sep between bytes when sep is not 0
 * ("AB:CD"). Returns a new string (free with OPENSSL_free) or NULL when out
 * of memory.
 */
char *pt_hex_encode(const uint8_t *data, size_t len, char sep);

/* Lower-case hex without separators into out (2*len+1 bytes). */
void pt_hex_lower(const uint8_t *data, size_t len, char *out);

/* The value of one hex digit (upper or lower case), or -1. */
int pt_hex_value(char c);

/*
 * Decode hex (upper or lower case; ':' and ' ' between byte pairs ignored)
 * into a new buffer. PT_ERR_FORMAT on anything else.
 */
pt_err pt_hex_decode(const char *text, uint8_t **out, size_t *len);

#endif
