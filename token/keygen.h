/*
 * Creating and removing objects on a token: key pairs generated inside the
 * token with our own template (sensitive, never extractable, on the token),
 * certificate objects, and the attributes that prove a key cannot leave.
 */
#ifndef TOKEN_KEYGEN_H
#define TOKEN_KEYGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "pt_error.h"
#include "token.h"

typedef struct token_keygen_spec {
    int type;      /* EVP_PKEY_RSA or EVP_PKEY_EC */
    int bits;      /* RSA modulus size */
    int curve_nid; /* EC: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1 */
} token_keygen_spec;

/* "rsa:2048" (2048 to 4096) or "ec:P-256" / "ec:P-384" / "ec:P-521". */
pt_err token_keygen_spec_parse(const char *text, token_keygen_spec *out);
/* "rsa:2048", "ec:P-256" */
const char *token_keygen_spec_name(const token_keygen_spec *s, char *buf, size_t len);

/*
 * Generate a key pair on a logged-in token: the private key with
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE = TRUE, CKA_EXTRACTABLE = FALSE,
 * CKA_SIGN = TRUE; both halves carry label and id. The attributes are read
 * back and the pair destroyed again if the token did not honour them.
 */
pt_err token_keypair_generate(token *t, const token_keygen_spec *spec, const char *label,
                              const uint8_t *id, size_t id_len);

/* Store x as a certificate object (CKO_CERTIFICATE, X.509, public) with label and id. */
pt_err token_cert_store(token *t, X509 *x, const char *label, const uint8_t *id, size_t id_len);

/* Destroy every object (keys, certificates) labelled label; *count says how many. */
pt_err token_objects_destroy(token *t, const char *label, unsigned *count);

typedef enum token_object_kind {
    TOKEN_OBJECT_PRIVATE_KEY,
    TOKEN_OBJECT_PUBLIC_KEY,
    TOKEN_OBJECT_CERTIFICATE,
} token_object_kind;

/* How many objects of this kind carry label (private keys are seen only when logged in). */
pt_err token_objects_count(token *t, const char *label, token_object_kind kind, unsigned *count);

typedef struct token_key_attrs {
    bool sensitive;
    bool extractable;
    bool always_sensitive;
    bool never_extractable;
    bool on_token;
    bool is_private;
    bool can_sign;
    bool secret_readable;   /* the token handed out the private value when asked */
    unsigned long key_type; /* CKK_* */
} token_key_attrs;

/* Read the protection attributes of the private key labelled label (logged in). */
pt_err token_key_attrs_read(token *t, const char *label, token_key_attrs *out);

/* A random CKA_ID of len bytes (from OpenSSL's RNG). */
pt_err token_random_id(uint8_t *id, size_t len);

#endif
