/*
 * Signing from many threads at once with one private key: a fixed pool of
 * PKCS#11 sessions on a logged-in token (used by hsmd). Each call takes a
 * free session, signs with C_SignInit/C_Sign and gives the session back; a
 * caller waits (up to a deadline) when all sessions are busy.
 *
 * This path does not go through libp11: hsmd must answer with an error, not
 * hang, when the HSM goes away, and must sign in parallel.
 */
#ifndef TOKEN_SIGNER_H
#define TOKEN_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "pt_error.h"
#include "token.h"

typedef struct token_signer token_signer;

/* Open n sessions (1..64) on a logged-in token for the private key labelled label. */
pt_err token_signer_open(token *t, const char *label, unsigned sessions, token_signer **out);
void token_signer_close(token_signer *s);

/* EVP_PKEY_RSA or EVP_PKEY_EC, and the key size in bits. */
int token_signer_key_type(const token_signer *s);
int token_signer_key_bits(const token_signer *s);

/*
 * Sign data with md: RSA PKCS#1 v1.5 (the DigestInfo is built here, so any
 * digest OpenSSL knows works) or ECDSA (a DER Ecdsa-Sig-Value). *sig is
 * allocated (OPENSSL_free). PT_ERR_BUSY when no session became free within
 * wait_ms; PT_ERR_TOKEN_GONE when the token was removed or failed (the
 * signer is then unusable: close it and open a new one).
 */
pt_err token_signer_sign(token_signer *s, const EVP_MD *md, const uint8_t *data, size_t len,
                         int wait_ms, uint8_t **sig, size_t *sig_len);

#endif
