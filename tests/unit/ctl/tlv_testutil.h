/*
 * Helpers for the CTL/ITL codec tests and the fuzz corpus generator: keys and
 * certificates made on the spot, files cut into elements and put back
 * together by hand (independently of the builder), and openssl(1) as an
 * independent verifier.
 */
#ifndef TLV_TESTUTIL_H
#define TLV_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tlv.h"

/* Keys cached for the whole process (keygen is slow); freed by tt_cleanup. Never NULL. */
EVP_PKEY *tt_rsa_key(int bits);
EVP_PKEY *tt_ec_key(const char *curve); /* "P-256", "P-384", "P-521" */
/* A fresh RSA key the caller frees (for tests that need two distinct keys of a size). */
EVP_PKEY *tt_rsa_key_new(int bits);
void tt_cleanup(void);

/* "/CN=SAST/O=Example": one single-valued RDN per '/'-separated TYPE=value. */
X509_NAME *tt_name(const char *spec);

/*
 * A v3 certificate in the §12 profile that makes the §11 example 432 bytes:
 * validity 2021-01-14..2041-01-14 (UTCTime), basicConstraints critical CA:TRUE
 * pathlen 0, nothing else. serial is big-endian bytes; signed by sign_key
 * (NULL: self-signed with key) using md (NULL: SHA-256). Never NULL.
 */
X509 *tt_cert_ex(EVP_PKEY *key, const char *subject, const char *issuer, const uint8_t *serial,
                 size_t serial_len, EVP_PKEY *sign_key, const EVP_MD *md);
/* Self-signed, serial as a 32-bit number. */
X509 *tt_cert(EVP_PKEY *key, const char *subject, uint32_t serial);

/* tlv_build_signed with tlv_sign_with_pkey; prints the error and returns NULL on failure. */
uint8_t *tt_build(const tlv_build_params *p, EVP_PKEY *key, size_t *len);

/* One element of a file cut up by hand: tag, length and value bytes together (a header
   group is just its 3 bytes). p points into the cut file or to test-owned bytes. */
typedef struct tt_elem {
    uint8_t tag;
    const uint8_t *p;
    size_t n;
} tt_elem;

#define TT_MAX_ELEMS 64

/* The header's elements in order, padding left out; returns the count. */
size_t tt_header_split(const uint8_t *file, size_t len, tt_elem *out);
/* The elements of the record at rec (RECORD_LENGTH left out); returns the count. */
size_t tt_record_split(const uint8_t *rec, size_t rec_len, tt_elem *out);
/* Header elements + 0x0D padding to a multiple of 4 + HEADER_LENGTH patched + body. */
uint8_t *tt_header_join(const tt_elem *e, size_t n, const uint8_t *body, size_t body_len,
                        size_t *out_len);
/* RECORD_LENGTH with the right R + the elements. */
uint8_t *tt_record_join(const tt_elem *e, size_t n, size_t *out_len);
/* Index of the first element with tag, or -1. */
int tt_elem_find(const tt_elem *e, size_t n, uint8_t tag);

/* Offsets of every u16 length field in a well-formed file (headers, groups, records and
   their elements); returns the count. */
size_t tt_length_fields(const uint8_t *file, size_t len, size_t *offs, size_t max);

/*
 * Check a signature with the openssl command: writes covered bytes, signature and
 * the public key of cert to a temporary folder and runs
 * `openssl dgst -<dgst> -verify pub.pem -signature sig.bin covered.bin`.
 * Returns true when it prints "Verified OK"; its output goes to out.
 */
bool tt_openssl_verify(const uint8_t *covered, size_t covered_len, const uint8_t *sig,
                       size_t sig_len, X509 *cert, const char *dgst, char *out, size_t outsz);

/* Write bytes to path; false on failure. */
bool tt_write_file(const char *path, const uint8_t *data, size_t len);

#endif
