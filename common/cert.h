/*
 * Certificates: loading from PEM or DER, and the summary every command shows
 * (subject, issuer, serial, SHA-256 fingerprint, validity, key).
 */
#ifndef PT_CERT_H
#define PT_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "pt_error.h"

/* Largest certificate file any command reads. */
#define PT_CERT_FILE_MAX (256 * 1024)

typedef struct pt_cert_info {
    char *subject;       /* RFC 2253 escaping, certificate order: "CN=x,O=y,C=z" */
    char *issuer;        /* the same form */
    char *serial;        /* upper-case hex of the unsigned serial, no separators */
    char sha256[65];     /* lower-case hex SHA-256 of the DER certificate */
    char not_before[21]; /* ISO 8601 UTC, "2026-11-23T12:00:00Z" */
    char not_after[21];
    time_t not_before_t;
    time_t not_after_t;
    char key[32]; /* "RSA 2048", "EC P-256", ... */
} pt_cert_info;

/* Fill info from x; free the strings with pt_cert_info_free. */
pt_err pt_cert_info_get(X509 *x, pt_cert_info *info);
void pt_cert_info_free(pt_cert_info *info);

/* Parse one certificate from PEM or DER bytes. */
pt_err pt_cert_parse(const uint8_t *data, size_t len, X509 **out);
/* Exactly one DER certificate, nothing after it (certificates on the wire). */
pt_err pt_cert_parse_der(const uint8_t *der, size_t len, X509 **out);
/* Load one certificate from a PEM or DER file. */
pt_err pt_cert_load_file(const char *path, X509 **out);
/* DER encoding of x in a new buffer (free with OPENSSL_free). */
pt_err pt_cert_to_der(X509 *x, uint8_t **der, size_t *len);
/* PEM encoding of x as a new NUL-terminated string (free with OPENSSL_free). */
pt_err pt_cert_to_pem(X509 *x, char **pem);
/* Write x as PEM to path atomically. */
pt_err pt_cert_write_pem_file(const char *path, X509 *x);

/*
 * Parse a distinguished name given by a user: "CN=SAST-1,O=Example,C=NZ"
 * (',' between attributes, '\\' escapes) or "/CN=SAST-1/O=Example/C=NZ".
 * Attributes are encoded in the order written (the first becomes the first
 * RDN), which is also the order `ctlclient show` prints them in.
 */
pt_err pt_name_parse(const char *text, X509_NAME **out);

/* What a self-signed certificate says about itself. */
typedef struct pt_cert_profile {
    bool ca;               /* basicConstraints CA:TRUE (critical) rather than CA:FALSE */
    int path_len;          /* with ca: pathLenConstraint, or -1 for none */
    const char *key_usage; /* e.g. "critical,digitalSignature,keyCertSign" */
    long days;             /* validity from now */
} pt_cert_profile;

/*
 * A self-signed X.509 v3 certificate for key (which may live on a token: the
 * signature is made wherever the key is) with subject = issuer = name, a
 * random positive 128-bit serial, validity from now for p->days, the
 * profile's extensions and a subjectKeyIdentifier, signed with SHA-256. The
 * signature is checked against the public key before it is returned.
 */
pt_err pt_cert_self_signed(EVP_PKEY *key, const X509_NAME *name, const pt_cert_profile *p,
                           X509 **out);

/* "RSA 2048", "EC P-384", ... for a public key. */
void pt_pkey_describe(const EVP_PKEY *pkey, char *out, size_t outlen);

/* The same UTC date and time years later (calendar years: 29 February becomes 1 March). */
time_t pt_time_add_years(time_t t, int years);
/* t as ISO 8601 UTC ("2026-11-23T12:00:00Z"); out must hold 21 bytes. */
void pt_time_iso8601(time_t t, char out[21]);
/* Parse ISO 8601 UTC: "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS][Z]". */
pt_err pt_time_parse_iso8601(const char *text, time_t *out);

#endif
