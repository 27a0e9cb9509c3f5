/*
 * The phone side of the CAPF protocol (../shared/spec/capf-protocol.md §10),
 * for tests, the demo and the benchmark: one session over TLS, answering
 * AUTH_REQUEST (nothing, an authentication string, or signatures with an LSC
 * or MIC it holds), generating the key asked for, storing the LSC, answering
 * fetch and delete; and, on request, misbehaving in the ways a server must
 * survive.
 */
#ifndef PHONE_SIM_H
#define PHONE_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "pt_error.h"

typedef enum psim_misbehave {
    PSIM_BEHAVE = 0,
    PSIM_GARBAGE,       /* bytes that are not a CAPF message in place of AUTH_RESPONSE */
    PSIM_BAD_HEADER,    /* AUTH_RESPONSE with PROTOCOL_ID 0x54 */
    PSIM_OVERSIZED,     /* a header announcing 65535 bytes of elements */
    PSIM_MALFORMED,     /* an element that crosses the end of the message */
    PSIM_TRUNCATED,     /* a header announcing more than is sent, then silence */
    PSIM_WRONG_SID,     /* AUTH_RESPONSE with the wrong session ID */
    PSIM_SILENT,        /* read AUTH_REQUEST, answer nothing */
    PSIM_VANISH_AUTH,   /* close the connection right after AUTH_REQUEST */
    PSIM_VANISH_KEYGEN, /* close the connection right after KEY_GENERATE_REQUEST */
    PSIM_SLOW_KEYGEN,   /* REQUEST_IN_PROGRESS, then never the key */
    PSIM_UNEXPECTED,    /* answer KEY_GENERATE_REQUEST with FETCH_CERTIFICATE_RESPONSE */
} psim_misbehave;

/* "garbage", "bad-header", ...; PSIM_BEHAVE for "none"; -1 when unknown. */
int psim_misbehave_parse(const char *name);

/* Keys the phone "generates": pre-generated ones from a directory, else made on demand. */
typedef struct psim_keys psim_keys;
/* dir may be NULL. Files: rsa-<bits>.pem, ec-P-256.pem, ec-P-384.pem, ec-P-521.pem. */
pt_err psim_keys_new(const char *dir, psim_keys **out);
void psim_keys_free(psim_keys *k);

typedef struct psim_opts {
    const char *device;
    const char *password; /* NULL: no PASSWORD element; "": the empty string `00` */
    uint8_t version;      /* VERSION sent (3) */
    /* Certificate authentication: the certificate and key signed with. */
    X509 *auth_cert;
    EVP_PKEY *auth_key;
    X509 *sudi_cert; /* SUDI_DATA too, when set */
    EVP_PKEY *sudi_key;
    /* What the phone holds (fetch returns the LSC, else the MIC; delete deletes the LSC). */
    X509 *lsc;
    X509 *mic;
    psim_keys *keys;
    bool no_ec;           /* answer EC key requests without a key */
    unsigned keygen_fail; /* answer this many key requests without a key */
    unsigned in_progress; /* REQUEST_IN_PROGRESS messages before the key (1 like phones) */
    bool store_fail;      /* answer STORE_CERTIFICATE_REQUEST with reason 7 */
    psim_misbehave misbehave;
    int timeout_ms;
    FILE *dump;           /* every message, both ways, as hex lines */
    const char *dump_tag; /* prefix of dump lines (NULL: none) */
} psim_opts;

typedef struct psim_result {
    uint32_t sid;
    int end_reason;   /* END_SESSION's reason, -1 when none came */
    bool retry_later; /* RETRY_LATER came in place of AUTH_REQUEST */
    unsigned keygen_requests;
    X509 *new_lsc;        /* stored on STORE_CERTIFICATE_REQUEST */
    EVP_PKEY *new_key;    /* its key */
    bool fetched;         /* answered a fetch with a certificate */
    bool deleted;         /* answered a delete with reason 1 */
    unsigned max_records; /* most TLS records one server message took */
    char error[320];      /* why the session ended without END_SESSION */
} psim_result;

/* A TLS client context that trusts capf_cert (the CAPF certificate) only, no host name check. */
pt_err psim_tls_ctx(const char *capf_cert, int max_version, SSL_CTX **out);

/* Connect to host:port and run one session. PT_OK when END_SESSION or RETRY_LATER came. */
pt_err psim_session(SSL_CTX *ctx, const char *host, const char *port, const psim_opts *o,
                    psim_result *r);
void psim_result_free(psim_result *r);

/* Connect, handshake and close (the benchmark's floor). */
pt_err psim_handshake(SSL_CTX *ctx, const char *host, const char *port, int timeout_ms);

#endif
