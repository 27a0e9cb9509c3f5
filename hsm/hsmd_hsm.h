/*
 * hsmd's hold on the HSM: the token, logged in once, a pool of PKCS#11
 * sessions per key (token_signer), the keys' certificates, and the recovery
 * thread that brings it all back after the HSM went away.
 *
 * States:
 *   ready         logged in, every key's pool open and its self-test signature
 *                 verified with the key's certificate;
 *   unavailable   the token is missing or failing: every signature request is
 *                 answered hsm-unavailable; every recovery-interval-ms the
 *                 recovery thread loads the module again, finds the token,
 *                 logs in (one PIN attempt), opens the pools and signs the
 *                 self-test; when all that works the state is ready again;
 *   pin-rejected  the token refused the PIN (or is locked, or at its final
 *                 try, or wants a new PIN): recovery stops, so a wrong PIN is
 *                 never sent twice. An operator fixes the PIN source and sends
 *                 SIGHUP (hsmd_hsm_retry: one new attempt) or restarts hsmd.
 * A ready HSM is watched too: the recovery thread reads the token's info every
 * interval, and a signature that fails because the token is gone wakes it at
 * once.
 *
 * Certificates are read once, at start-up; later logins only check that each
 * key still signs for its certificate.
 */
#ifndef HSMD_HSM_H
#define HSMD_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hsmd_config.h"
#include "pt_error.h"

/* How long a signature waits for a free session before the answer is busy. */
#define HSMD_SIGN_WAIT_MS 10000

typedef enum hsmd_hsm_state {
    HSMD_HSM_READY = 0,
    HSMD_HSM_UNAVAILABLE = 1,
    HSMD_HSM_PIN_REJECTED = 2,
} hsmd_hsm_state;

/* "ready", "unavailable", "pin-rejected" */
const char *hsmd_hsm_state_name(hsmd_hsm_state s);

/* What a key is; fixed from start-up on. */
typedef struct hsmd_key {
    const hsmd_key_config *cfg;
    X509 *cert;
    int key_type; /* EVP_PKEY_RSA or EVP_PKEY_EC */
    int key_bits;
    char algorithm[32]; /* "RSA 2048" */
} hsmd_key;

typedef struct hsmd_hsm hsmd_hsm;

/* Called (from the thread that changed it) whenever the state changes. */
typedef void (*hsmd_hsm_notify_fn)(void *ctx, hsmd_hsm_state state, const char *detail);

/*
 * Start-up: load the module, find the token, log in once, find every
 * configured key and its certificate (from the token, or the configured
 * file), open the pools and check each key with a self-test signature.
 * Any failure is returned (hsmd does not start); a rejected PIN is one of
 * PT_ERR_PIN_*. cfg must outlive the result.
 */
pt_err hsmd_hsm_open(const hsmd_config *cfg, hsmd_hsm **out);

/* Start the recovery thread; notify (may be NULL) hears of state changes. */
pt_err hsmd_hsm_start(hsmd_hsm *h, hsmd_hsm_notify_fn notify, void *ctx);

/* Stop the recovery thread, close the pools, log out, unload the module. */
void hsmd_hsm_close(hsmd_hsm *h);

size_t hsmd_hsm_key_count(const hsmd_hsm *h);
const hsmd_key *hsmd_hsm_key_at(const hsmd_hsm *h, size_t i);
/* The key clients call name; NULL when there is none. *index is set when found. */
const hsmd_key *hsmd_hsm_key_find(const hsmd_hsm *h, const char *name, size_t *index);

/*
 * Sign data with the key at index (RSA PKCS#1 v1.5 or DER ECDSA). Errors:
 * PT_ERR_TOKEN_GONE when the HSM is not ready or failed during the call (the
 * recovery thread is woken), PT_ERR_BUSY when no session came free within
 * HSMD_SIGN_WAIT_MS, others from the module.
 */
pt_err hsmd_hsm_sign(hsmd_hsm *h, size_t index, const EVP_MD *md, const uint8_t *data, size_t len,
                     uint8_t **sig, size_t *sig_len);

/* After SIGHUP: in pin-rejected, make one new login attempt now. */
void hsmd_hsm_retry(hsmd_hsm *h);

typedef struct hsmd_hsm_status {
    hsmd_hsm_state state;
    char detail[512]; /* why it is not ready; "" when ready */
    time_t since;     /* when the state was entered */
    uint64_t recoveries;
    uint64_t attempts; /* recovery attempts since the HSM became unavailable */
    char token_label[33];
    char token_serial[17];
} hsmd_hsm_status;

void hsmd_hsm_get_status(hsmd_hsm *h, hsmd_hsm_status *st);

#endif
