#include "hsmd_hsm.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <p11-kit/pkcs11.h>

#include "cert.h"
#include "key.h"
#include "log.h"
#include "login.h"
#include "signer.h"
#include "token.h"
#include "uri.h"

struct hsmd_hsm {
    const hsmd_config *cfg;
    hsmd_key keys[HSMD_CONFIG_MAX_KEYS];
    size_t n_keys;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* the recovery thread waits on it (CLOCK_MONOTONIC) */
    pthread_cond_t idle; /* users dropped to 0 */
    hsmd_hsm_state state;
    char detail[512];
    time_t since;
    uint64_t recoveries, attempts;
    bool suspect; /* a signature found the token gone */
    bool retry;   /* SIGHUP */
    bool stop;
    unsigned users; /* signatures in progress */
    /* Held while ready; owned by the recovery thread otherwise. */
    token *tok;
    token_signer *signers[HSMD_CONFIG_MAX_KEYS];
    char token_label[33], token_serial[17];

    pthread_t thread;
    bool started;
    hsmd_hsm_notify_fn notify;
    void *notify_ctx;
};

static const char SELF_TEST[] = "phonetrust hsmd self-test: does the key sign for its certificate?";

const char *hsmd_hsm_state_name(hsmd_hsm_state s)
{
    switch (s) {
    case HSMD_HSM_READY:
        return "ready";
    case HSMD_HSM_UNAVAILABLE:
        return "unavailable";
    case HSMD_HSM_PIN_REJECTED:
        return "pin-rejected";
    }
    return "unknown";
}

static bool is_pin_failure(pt_err rc)
{
    return rc == PT_ERR_PIN_INCORRECT || rc == PT_ERR_PIN_LOCKED || rc == PT_ERR_PIN_FINAL_TRY ||
           rc == PT_ERR_PIN_CHANGE;
}

/* Load the module, select the token and log in: exactly one PIN attempt, never a prompt. */
static pt_err hsm_login(const hsmd_config *cfg, token **out)
{
    *out = NULL;
    token_uri *u = NULL;
    token *t = NULL;
    token_pin_source pin;
    pt_err rc = token_uri_parse(cfg->token_uri, &u);
    if (rc == PT_OK)
        rc = token_pin_source_from_uri(token_uri_pin_source(u), &pin);
    if (rc == PT_OK)
        rc = token_open(cfg->token_uri, cfg->module, &t);
    if (rc == PT_OK)
        rc = token_refresh(t);
    /* hsmd has nobody to ask for a new PIN: say so before the PIN is used. */
    if (rc == PT_OK && (token_get_info(t)->flags & CKF_USER_PIN_TO_BE_CHANGED))
        rc = pt_fail(PT_ERR_PIN_CHANGE,
                     "the HSM token still has a PIN that must be changed; change it (hsmctl list "
                     "at a terminal does) before starting hsmd");
    if (rc == PT_OK) {
        token_login_opts lo = {&pin, NULL, false};
        rc = token_login(t, &lo);
    }
    token_uri_free(u);
    if (rc != PT_OK) {
        token_close(t);
        return rc;
    }
    *out = t;
    return PT_OK;
}

/* Sign a fixed text with the pool and verify it with the certificate's public key. */
static pt_err self_test(token_signer *s, const hsmd_key *k)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    pt_err rc = token_signer_sign(s, EVP_sha256(), (const uint8_t *)SELF_TEST, sizeof SELF_TEST - 1,
                                  HSMD_SIGN_WAIT_MS, &sig, &sig_len);
    if (rc != PT_OK)
        return pt_err_context(rc, "key %s: self-test signature", k->cfg->name);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY *pub = X509_get0_pubkey(k->cert);
    int ok =
        m != NULL && pub != NULL && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pub) == 1 &&
        EVP_DigestVerify(m, sig, sig_len, (const uint8_t *)SELF_TEST, sizeof SELF_TEST - 1) == 1;
    EVP_MD_CTX_free(m);
    OPENSSL_free(sig);
    ERR_clear_error();
    if (!ok)
        return pt_fail(PT_ERR_VERIFY,
                       "key %s: the private key labelled '%s' does not sign for its certificate "
                       "(wrong certificate, or the key was replaced)",
                       k->cfg->name, k->cfg->label);
    return PT_OK;
}

static void signers_close(token_signer **s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        token_signer_close(s[i]);
        s[i] = NULL;
    }
}

/* Open a pool per key on a logged-in token, check each is the key it was, and self-test it. */
static pt_err signers_open(hsmd_hsm *h, token *t, token_signer **out)
{
    pt_err rc = PT_OK;
    size_t i = 0;
    for (; rc == PT_OK && i < h->n_keys; i++) {
        hsmd_key *k = &h->keys[i];
        rc = token_signer_open(t, k->cfg->label, h->cfg->sessions, &out[i]);
        if (rc != PT_OK) {
            rc = pt_err_context(rc, "key %s", k->cfg->name);
            break;
        }
        if (k->key_type == 0) { /* the first open learns the key's type and size */
            k->key_type = token_signer_key_type(out[i]);
            k->key_bits = token_signer_key_bits(out[i]);
            snprintf(k->algorithm, sizeof k->algorithm, "%s %d",
                     k->key_type == EVP_PKEY_RSA ? "RSA" : "EC", k->key_bits);
        } else if (token_signer_key_type(out[i]) != k->key_type ||
                   token_signer_key_bits(out[i]) != k->key_bits) {
            rc = pt_fail(PT_ERR_VERIFY, "key %s: the key labelled '%s' is no longer %s",
                         k->cfg->name, k->cfg->label, k->algorithm);
        }
        if (rc == PT_OK)
            rc = self_test(out[i], k);
    }
    if (rc != PT_OK)
        signers_close(out, h->n_keys);
    return rc;
}

/* The certificate of a key: the configured file, or the token's object with the key's label. */
static pt_err key_cert_load(token *t, const hsmd_key_config *kc, X509 **out)
{
    *out = NULL;
    if (kc->certificate != NULL) {
        pt_err rc = pt_cert_load_file(kc->certificate, out);
        return rc == PT_OK ? PT_OK : pt_err_context(rc, "key %s: certificate", kc->name);
    }
    token_key *k = NULL;
    pt_err rc = token_key_find_by_label(t, kc->label, NULL, 0, &k);
    if (rc != PT_OK)
        return pt_err_context(rc, "key %s", kc->name);
    X509 *x = token_key_cert(k);
    if (x != NULL && X509_up_ref(x) == 1)
        *out = x;
    token_key_free(k);
    if (*out == NULL)
        return pt_fail(PT_ERR_NOT_FOUND,
                       "key %s: the token holds no certificate for the key labelled '%s'; store "
                       "one there or give 'certificate = PATH'",
                       kc->name, kc->label);
    return PT_OK;
}

static void set_state_locked(hsmd_hsm *h, hsmd_hsm_state s, const char *detail)
{
    if (h->state != s)
        h->since = time(NULL);
    h->state = s;
    snprintf(h->detail, sizeof h->detail, "%s", detail != NULL ? detail : "");
}

static void notify(hsmd_hsm *h, hsmd_hsm_state s, const char *detail)
{
    if (h->notify != NULL)
        h->notify(h->notify_ctx, s, detail);
}

pt_err hsmd_hsm_open(const hsmd_config *cfg, hsmd_hsm **out)
{
    *out = NULL;
    hsmd_hsm *h = OPENSSL_zalloc(sizeof *h);
    if (h == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    h->cfg = cfg;
    h->n_keys = cfg->n_keys;
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&h->idle, NULL);
    h->state = HSMD_HSM_UNAVAILABLE;

    pt_err rc = hsm_login(cfg, &h->tok);
    for (size_t i = 0; rc == PT_OK && i < h->n_keys; i++) {
        h->keys[i].cfg = &cfg->keys[i];
        rc = key_cert_load(h->tok, &cfg->keys[i], &h->keys[i].cert);
    }
    if (rc == PT_OK)
        rc = signers_open(h, h->tok, h->signers);
    if (rc != PT_OK) {
        hsmd_hsm_close(h);
        return rc;
    }
    const token_info *ti = token_get_info(h->tok);
    snprintf(h->token_label, sizeof h->token_label, "%s", ti->label);
    snprintf(h->token_serial, sizeof h->token_serial, "%s", ti->serial);
    set_state_locked(h, HSMD_HSM_READY, NULL); /* sets since: the state was unavailable */
    *out = h;
    return PT_OK;
}

/* Leave ready: wait for the signatures in progress to fail or finish, then let go of it all. */
static void go_unavailable(hsmd_hsm *h, const char *reason)
{
    char why[sizeof h->detail];
    snprintf(why, sizeof why, "%s", reason);
    token_signer *old[HSMD_CONFIG_MAX_KEYS];
    pthread_mutex_lock(&h->lock);
    set_state_locked(h, HSMD_HSM_UNAVAILABLE, why);
    h->attempts = 0;
    while (h->users > 0)
        pthread_cond_wait(&h->idle, &h->lock);
    memcpy(old, h->signers, sizeof old);
    memset(h->signers, 0, sizeof h->signers);
    token *t = h->tok;
    h->tok = NULL;
    pthread_mutex_unlock(&h->lock);
    pt_log_error("HSM unavailable: %s; signature requests are answered hsm-unavailable until it "
                 "is back",
                 why);
    notify(h, HSMD_HSM_UNAVAILABLE, why);
    signers_close(old, h->n_keys);
    token_close(t);
}

/* One attempt to come back: module, token, one login, pools, self-tests. */
static void try_recover(hsmd_hsm *h)
{
    token *t = NULL;
    token_signer *s[HSMD_CONFIG_MAX_KEYS] = {0};
    pthread_mutex_lock(&h->lock);
    uint64_t attempt = ++h->attempts;
    hsmd_hsm_state before = h->state;
    char last[sizeof h->detail];
    memcpy(last, h->detail, sizeof last);
    pthread_mutex_unlock(&h->lock);

    pt_err rc = hsm_login(h->cfg, &t);
    if (rc == PT_OK)
        rc = signers_open(h, t, s);
    if (rc == PT_OK) {
        pthread_mutex_lock(&h->lock);
        h->tok = t;
        memcpy(h->signers, s, sizeof s);
        h->recoveries++;
        set_state_locked(h, HSMD_HSM_READY, NULL);
        pthread_mutex_unlock(&h->lock);
        pt_log_info("HSM ready again (recovery attempt %" PRIu64 ")", attempt);
        notify(h, HSMD_HSM_READY, "");
        return;
    }
    token_close(t);
    char detail[sizeof h->detail];
    hsmd_hsm_state next = HSMD_HSM_UNAVAILABLE;
    if (is_pin_failure(rc)) {
        next = HSMD_HSM_PIN_REJECTED;
        snprintf(detail, sizeof detail,
                 "%s. hsmd will not try this PIN again: fix the PIN source, then send SIGHUP "
                 "(systemctl reload hsmd) for one new attempt, or restart hsmd",
                 pt_err_message());
    } else {
        snprintf(detail, sizeof detail, "%s", pt_err_message());
    }
    pthread_mutex_lock(&h->lock);
    set_state_locked(h, next, detail);
    pthread_mutex_unlock(&h->lock);
    /* Every refused PIN is worth a line; a token that stays away is said once. */
    if (next != before || next == HSMD_HSM_PIN_REJECTED || strcmp(detail, last) != 0) {
        if (next == HSMD_HSM_PIN_REJECTED)
            pt_log_error("HSM login refused: %s", detail);
        else
            pt_log_warn("HSM still unavailable (attempt %" PRIu64 "): %s", attempt, detail);
        notify(h, next, detail);
    }
}

/*
 * While ready: is the token still there? (A login the HSM dropped shows as
 * CKR_USER_NOT_LOGGED_IN at the next signature, which makes hsmd unavailable.)
 */
static pt_err watch(hsmd_hsm *h)
{
    return token_refresh(h->tok);
}

static void *recovery_main(void *arg)
{
    hsmd_hsm *h = arg;
    pthread_mutex_lock(&h->lock);
    bool now = false;
    while (!h->stop) {
        if (!now && !h->suspect && !h->retry) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            long ms = h->cfg->recovery_interval_ms;
            ts.tv_sec += ms / 1000;
            ts.tv_nsec += (ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            int e = 0;
            while (!h->stop && !h->suspect && !h->retry && e != ETIMEDOUT)
                e = pthread_cond_timedwait(&h->wake, &h->lock, &ts);
        }
        if (h->stop)
            break;
        now = false;
        hsmd_hsm_state st = h->state;
        bool suspect = h->suspect, retry = h->retry;
        h->suspect = false;
        h->retry = false;
        pthread_mutex_unlock(&h->lock);
        if (st == HSMD_HSM_READY) {
            pt_err rc =
                suspect ? pt_fail(PT_ERR_TOKEN_GONE, "a signature found the HSM gone") : watch(h);
            if (rc == PT_ERR_TOKEN_GONE || rc == PT_ERR_CKR) {
                go_unavailable(h, pt_err_message());
                now = true; /* a short failure comes back at once */
            }
        } else if (st == HSMD_HSM_UNAVAILABLE || retry) {
            if (retry && st == HSMD_HSM_PIN_REJECTED)
                pt_log_info("SIGHUP: one new login attempt");
            try_recover(h);
        }
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

pt_err hsmd_hsm_start(hsmd_hsm *h, hsmd_hsm_notify_fn fn, void *ctx)
{
    h->notify = fn;
    h->notify_ctx = ctx;
    int e = pthread_create(&h->thread, NULL, recovery_main, h);
    if (e != 0) {
        errno = e;
        return pt_fail_errno("cannot start the HSM recovery thread");
    }
    h->started = true;
    return PT_OK;
}

void hsmd_hsm_close(hsmd_hsm *h)
{
    if (h == NULL)
        return;
    if (h->started) {
        pthread_mutex_lock(&h->lock);
        h->stop = true;
        pthread_cond_broadcast(&h->wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
    }
    signers_close(h->signers, h->n_keys);
    token_close(h->tok);
    for (size_t i = 0; i < h->n_keys; i++)
        X509_free(h->keys[i].cert);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->wake);
    pthread_cond_destroy(&h->idle);
    OPENSSL_free(h);
}

size_t hsmd_hsm_key_count(const hsmd_hsm *h)
{
    return h->n_keys;
}

const hsmd_key *hsmd_hsm_key_at(const hsmd_hsm *h, size_t i)
{
    return i < h->n_keys ? &h->keys[i] : NULL;
}

const hsmd_key *hsmd_hsm_key_find(const hsmd_hsm *h, const char *name, size_t *index)
{
    for (size_t i = 0; i < h->n_keys; i++) {
        if (strcmp(h->keys[i].cfg->name, name) == 0) {
            if (index != NULL)
                *index = i;
            return &h->keys[i];
        }
    }
    return NULL;
}

pt_err hsmd_hsm_sign(hsmd_hsm *h, size_t index, const EVP_MD *md, const uint8_t *data, size_t len,
                     uint8_t **sig, size_t *sig_len)
{
    *sig = NULL;
    *sig_len = 0;
    if (index >= h->n_keys)
        return pt_fail(PT_ERR_INTERNAL, "no key %zu", index);
    pthread_mutex_lock(&h->lock);
    if (h->state != HSMD_HSM_READY) {
        char detail[sizeof h->detail];
        hsmd_hsm_state st = h->state;
        memcpy(detail, h->detail, sizeof detail);
        pthread_mutex_unlock(&h->lock);
        return pt_fail(PT_ERR_TOKEN_GONE, "the HSM is %s: %s", hsmd_hsm_state_name(st), detail);
    }
    token_signer *s = h->signers[index];
    h->users++;
    pthread_mutex_unlock(&h->lock);

    pt_err rc = token_signer_sign(s, md, data, len, HSMD_SIGN_WAIT_MS, sig, sig_len);
    bool gone =
        rc == PT_ERR_TOKEN_GONE || (rc == PT_ERR_CKR && pt_err_ckr() == CKR_USER_NOT_LOGGED_IN);
    if (rc == PT_ERR_CKR && gone)
        rc = pt_fail(PT_ERR_TOKEN_GONE, "the HSM logged hsmd out");

    pthread_mutex_lock(&h->lock);
    h->users--;
    if (gone) {
        h->suspect = true;
        pthread_cond_broadcast(&h->wake);
    }
    if (h->users == 0)
        pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void hsmd_hsm_retry(hsmd_hsm *h)
{
    pthread_mutex_lock(&h->lock);
    h->retry = true;
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->lock);
}

void hsmd_hsm_get_status(hsmd_hsm *h, hsmd_hsm_status *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&h->lock);
    st->state = h->state;
    memcpy(st->detail, h->detail, sizeof st->detail);
    st->since = h->since;
    st->recoveries = h->recoveries;
    st->attempts = h->attempts;
    memcpy(st->token_label, h->token_label, sizeof st->token_label);
    memcpy(st->token_serial, h->token_serial, sizeof st->token_serial);
    pthread_mutex_unlock(&h->lock);
}
