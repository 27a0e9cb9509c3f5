/*
 * Keys and certificates for the ca/ unit tests, made with OpenSSL's own API so
 * that the code under test is checked against something it did not build.
 */
#ifndef CA_TESTUTIL_H
#define CA_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

EVP_PKEY *tu_key_rsa(int bits);
EVP_PKEY *tu_key_ec(const char *group); /* "P-256", "P-384", ... */

/* A name from "CN=x,O=y,C=z" (MBSTRING_ASC: C becomes PrintableString). */
X509_NAME *tu_name(const char *text);

typedef struct tu_cert_opts {
    const char *subject;    /* as for tu_name */
    const char *issuer;     /* NULL: same as subject (self-signed) */
    EVP_PKEY *key;          /* subject's public key */
    EVP_PKEY *signer;       /* issuer's private key */
    const EVP_MD *md;       /* NULL: SHA-256 */
    bool ca;                /* basicConstraints CA:TRUE + keyCertSign */
    long not_before_offset; /* seconds from now; default 0 */
    long days;              /* 0: 365 */
} tu_cert_opts;
X509 *tu_cert_make(const tu_cert_opts *o);

/* DER encodings (free with OPENSSL_free). */
uint8_t *tu_cert_der(X509 *x, size_t *len);
uint8_t *tu_spki_der(EVP_PKEY *k, size_t *len);

/* Decode hex ("55 01 0a", spaces ignored) into a malloc'd buffer. */
uint8_t *tu_hex(const char *hex, size_t *len);

/* Deterministic pseudo-random numbers for mutation tests. */
uint32_t tu_rand(uint32_t *state);

#endif
