/*
 * capfd's TLS identity and the certificates it trusts for authentication.
 *
 * The server certificate is the one phones know as the CAPF certificate
 * (spec §1.2). Its key is a PEM file or a key on a PKCS#11 token (never the
 * CAPF CA key: only hsmd opens that HSM). libp11 0.4.12 cannot make RSA-PSS
 * signatures with a token's RSA key, so with such a key TLS is limited to
 * 1.2 with PKCS#1 v1.5 signatures.
 */
#ifndef CAPFD_TLS_H
#define CAPFD_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "capfd_config.h"
#include "pt_error.h"

typedef struct capfd_tls capfd_tls;

/* The server's TLS context from [tls]: certificate chain, key, versions, ciphers. */
pt_err capfd_tls_new(const capfd_config *c, capfd_tls **out);
SSL_CTX *capfd_tls_ctx(capfd_tls *t);
/* The server certificate (owned by t). */
X509 *capfd_tls_cert(capfd_tls *t);
/* True when the key lives on a PKCS#11 token. */
bool capfd_tls_key_on_token(const capfd_tls *t);
void capfd_tls_free(capfd_tls *t);

/* A private key from a PEM file or a pkcs11: URI; *holder keeps a token open (free it with
 * capfd_tls_key_release). */
typedef struct capfd_key_holder capfd_key_holder;
pt_err capfd_tls_key_load(const char *spec, const char *module, EVP_PKEY **key,
                          capfd_key_holder **holder);
void capfd_tls_key_release(capfd_key_holder *h);

/*
 * Every certificate in the files of dir (PEM, several per file, or DER),
 * pushed onto trust. A missing directory is an error; files that hold no
 * certificate are skipped with a warning. *count says how many were added.
 */
pt_err capfd_trust_dir_load(const char *dir, STACK_OF(X509) * trust, int *count);

#endif
