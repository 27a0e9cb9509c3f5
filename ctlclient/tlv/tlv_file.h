/*
 * A parsed CTLFile.tlv / ITLFile.tlv (spec/tlv-files.md §3-§9).
 *
 * The parser is strict about structure (every length checked, records ending
 * exactly at their length, HEADER_LENGTH a multiple of 4, no trailing bytes,
 * no unknown header tags, no element twice) and tolerant about what the spec
 * marks unverified (SIGNER_INFO order, record element order, DNS_NAME forms,
 * unknown roles, unknown record tags, serials with a leading 0x00).
 * Everything it tolerated is listed in tlv_file.warnings, one line each.
 */
#ifndef TLV_FILE_H
#define TLV_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_error.h"
#include "tlv_codes.h"

/* Larger inputs are refused before parsing (PT_ERR_LIMIT). */
#define TLV_FILE_MAX_BYTES (1024 * 1024)
/* More records than this are refused (PT_ERR_LIMIT): 40 times what a CTL may hold, and it
   bounds the memory a hostile file can make the parser allocate. */
#define TLV_PARSE_MAX_RECORDS 4096
/* At most this many warnings are kept; the last one then says that more were dropped. */
#define TLV_FILE_MAX_WARNINGS 32

typedef struct tlv_record {
    size_t offset, length; /* where it is in the file */
    bool has_role;
    uint16_t role;
    char *subject, *issuer, *dns_name; /* text without the NUL; NULL when absent */
    uint8_t *serial;
    size_t serial_len; /* as stored */
    uint8_t *public_key;
    size_t public_key_len;
    uint8_t *cert_signature;
    size_t cert_signature_len;
    uint8_t *certificate;
    size_t certificate_len; /* DER; NULL when absent */
    uint8_t *ip_address;
    size_t ip_address_len;
    uint8_t *cert_hash;
    size_t cert_hash_len;
    bool has_hash_algorithm; /* set only when HASH_ALGORITHM is one byte long */
    uint8_t hash_algorithm;
    /* Unknown tags met in this record, in file order (the first 16; each also a warning). */
    size_t n_unknown;
    uint8_t unknown_tags[16];
} tlv_record;

typedef struct tlv_file {
    uint8_t version_major, version_minor;
    uint16_t header_length;
    bool has_signer_version;
    uint8_t signer_version_major, signer_version_minor;
    char *signer_name, *signer_issuer; /* NULL when absent */
    uint8_t *signer_serial;
    size_t signer_serial_len;
    uint8_t digest; /* TLV_DIGEST_SHA1 or TLV_DIGEST_SHA512 (others are refused) */
    uint8_t signature_algorithm, modulus_code;
    size_t signature_offset; /* offset of the SIGNATURE tag byte */
    size_t signature_len;    /* k */
    char *filename;          /* NULL when absent */
    bool has_timestamp;
    uint32_t timestamp;
    tlv_record *records;
    size_t n_records; /* at least 1 */
    /*
     * Lenient-read notes, one line each, for the caller to show: unknown record tags,
     * strings without their NUL, a VERSION other than 1.2, a SIGNATURE_MODULUS code that
     * disagrees with the signature length, group lengths other than 15/8, and size
     * warnings: an ITL (FILENAME starting "ITL") over TLV_ITL_WARN_BYTES, which breaks
     * phone registration, or a CTL over TLV_CTL_MAX_BYTES or TLV_CTL_MAX_RECORDS.
     */
    char **warnings;
    size_t n_warnings;
    uint8_t *raw;
    size_t raw_len; /* owned copy of the input */
} tlv_file;

/*
 * Parse a whole file. *out is NULL on failure; then PT_ERR_FORMAT (the
 * message names the offset and the problem), PT_ERR_LIMIT (over
 * TLV_FILE_MAX_BYTES or TLV_PARSE_MAX_RECORDS) or PT_ERR_NOMEM.
 * Refused besides structural errors (§5.3, §9): digest codes other than 1 and
 * 3, a record CERTIFICATE that is not one DER certificate with an RSA or EC key,
 * a file without records.
 */
pt_err tlv_file_parse(const uint8_t *data, size_t len, tlv_file **out);
/* Read the file at path (at most TLV_FILE_MAX_BYTES) and parse it; errors name path. */
pt_err tlv_file_load(const char *path, tlv_file **out);
void tlv_file_free(tlv_file *f);

/* The bytes the signature covers (§6.1): the file minus the 3 + k SIGNATURE bytes.
   Free with OPENSSL_free. */
pt_err tlv_file_covered_bytes(const tlv_file *f, uint8_t **out, size_t *len);

/* The record that signed f (§8): role SAST and serial equal to SIGNER_SERIAL (compared
   as tlv_serial_equal does); the last one if several; NULL if none. */
const tlv_record *tlv_file_signer_record(const tlv_file *f);

/* The first record whose serial equals serial (as tlv_serial_equal) and whose role is
   role (-1 = any role); NULL if none. */
const tlv_record *tlv_file_find_serial(const tlv_file *f, const uint8_t *serial, size_t len,
                                       int role);

/* Serial numbers compared as integers: leading 0x00 bytes of either are ignored (§7.4.2,
   TLV-U4). Two empty serials are not equal to anything. */
bool tlv_serial_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
