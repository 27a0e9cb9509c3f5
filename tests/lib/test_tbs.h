/*
 * TBSCertificates made for tests with OpenSSL: each field settable, so that a
 * test can build exactly the request a policy rule must refuse.
 */
#ifndef PT_TEST_TBS_H
#define PT_TEST_TBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct pt_test_tbs {
    const X509_NAME *issuer; /* required */
    const char *subject;     /* default "CN=SEP001122334455,O=Example" */
    long not_before_offset;  /* seconds from now (default 0) */
    long validity_seconds;   /* default 365 days */
    bool v1;                 /* an X.509 v1 TBS (no extensions) instead of v3 */
    bool ca;                 /* basicConstraints CA:TRUE instead of CA:FALSE */
    bool no_basic_constraints;
    bool key_cert_sign, crl_sign; /* added to keyUsage digitalSignature, keyEncipherment */
    EVP_PKEY *sig_key;            /* required: its type picks the signature algorithm */
    const EVP_MD *md;             /* default SHA-256 */
    EVP_PKEY *subject_key;        /* default sig_key */
    long serial;                  /* default: a random positive 64-bit serial; < 0 for negative */
    bool serial_set;
} pt_test_tbs;

/* A DER TBSCertificate (free with OPENSSL_free); NULL on failure (with a message on stderr). */
uint8_t *pt_test_tbs_build(const pt_test_tbs *t, size_t *len);

/*
 * A copy of x that owns nothing of a token: a certificate made with a token's
 * key (hsm_key_create) holds that EVP_PKEY, which must not outlive the token.
 * x is freed. NULL on failure.
 */
X509 *pt_test_cert_detach(X509 *x);

/* Small keys for the signature algorithm field: "rsa" (1024 bits) or "ec" (P-256). */
EVP_PKEY *pt_test_key(const char *type);

#endif
