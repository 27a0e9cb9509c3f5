/*
 * Keys and certificates on a token: finding the private key (and the
 * certificate with the same CKA_ID) a URI names, and signing with it through
 * the EVP_PKEY libp11 gives, so the key never leaves the token.
 */
#ifndef TOKEN_KEY_H
#define TOKEN_KEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pt_error.h"
#include "token.h"
#include "uri.h"

/* The label enroll gives a SAST key and certificate unless told otherwise. */
#define TOKEN_SAST_LABEL "SAST"

typedef struct token_key token_key;

/*
 * Find the one private key the URI's object= / id= name (all private keys
 * when it names none) on a logged-in token. No key or several keys is an
 * error that lists the labels found.
 */
pt_err token_key_find(token *t, const token_uri *uri, token_key **out);
/* Find the private key with this label (and id when id_len > 0). */
pt_err token_key_find_by_label(token *t, const char *label, const uint8_t *id, size_t id_len,
                               token_key **out);
/*
 * The signing key of a SAST token: the one the URI's object= or id= names,
 * else the key labelled TOKEN_SAST_LABEL, else the token's only key.
 */
pt_err token_key_find_default(token *t, const token_uri *uri, token_key **out);
void token_key_free(token_key *k);

const char *token_key_label(const token_key *k);
/* The key's certificate (same CKA_ID, else same label), or NULL when the token holds none. */
X509 *token_key_cert(const token_key *k);
/* The private key as an EVP_PKEY whose operations run on the token (owned by k). */
EVP_PKEY *token_key_pkey(const token_key *k);

/*
 * Sign data with md: RSA PKCS#1 v1.5 (any md) or ECDSA (DER signature).
 * *sig is allocated (free with OPENSSL_free). A token pulled out or failing
 * mid-operation gives PT_ERR_TOKEN_GONE and no output.
 */
pt_err token_key_sign(token_key *k, const EVP_MD *md, const uint8_t *data, size_t len,
                      uint8_t **sig, size_t *sig_len);

/*
 * The labels of every private key on a logged-in token (an array of strings,
 * free with token_labels_free).
 */
pt_err token_private_key_labels(token *t, char ***labels, size_t *n);
void token_labels_free(char **labels, size_t n);

/*
 * The certificate a token presents as its SAST certificate, without logging
 * in (certificates are public): the one labelled "SAST", else the only one,
 * else the first. *out is NULL when the token holds no certificate.
 */
pt_err token_sast_cert(token *t, X509 **out);

#endif
