#include "signer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "der.h"
#include "p11.h"
#include "token_internal.h"

enum { SIGNER_MAX_SESSIONS = 64, SIGNER_MAX_SIG = 1024 };

struct token_signer {
    token *tok;
    CK_FUNCTION_LIST_PTR fl;
    CK_OBJECT_HANDLE key;
    int key_type;
    int key_bits;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    CK_SESSION_HANDLE sessions[SIGNER_MAX_SESSIONS];
    bool busy[SIGNER_MAX_SESSIONS];
    unsigned n;
    bool broken;
};

/* Key type and size, from the private key's public attributes. */
static pt_err signer_describe_key(token_signer *s, CK_SESSION_HANDLE h)
{
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
    CK_RV rv = s->fl->C_GetAttributeValue(h, s->key, &a, 1);
    if (rv != CKR_OK)
        return token_ckr_fail(rv, "C_GetAttributeValue", "reading the key type");
    if (kt == CKK_RSA) {
        uint8_t modulus[SIGNER_MAX_SIG];
        CK_ATTRIBUTE m = {CKA_MODULUS, modulus, sizeof modulus};
        rv = s->fl->C_GetAttributeValue(h, s->key, &m, 1);
        if (rv != CKR_OK || m.ulValueLen == 0 || m.ulValueLen > sizeof modulus)
            return token_ckr_fail(rv ? rv : CKR_ATTRIBUTE_VALUE_INVALID, "C_GetAttributeValue",
                                  "reading the RSA modulus");
        size_t skip = 0;
        while (skip < m.ulValueLen && modulus[skip] == 0)
            skip++;
        s->key_type = EVP_PKEY_RSA;
        s->key_bits = (int)((m.ulValueLen - skip) * 8);
        return PT_OK;
    }
    if (kt == CKK_EC) {
        uint8_t params[64];
        CK_ATTRIBUTE p = {CKA_EC_PARAMS, params, sizeof params};
        rv = s->fl->C_GetAttributeValue(h, s->key, &p, 1);
        if (rv != CKR_OK || p.ulValueLen == 0 || p.ulValueLen > sizeof params)
            return token_ckr_fail(rv ? rv : CKR_ATTRIBUTE_VALUE_INVALID, "C_GetAttributeValue",
                                  "reading the EC parameters");
        const unsigned char *q = params;
        ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &q, (long)p.ulValueLen);
        int nid = oid ? OBJ_obj2nid(oid) : NID_undef;
        ASN1_OBJECT_free(oid);
        int bits = nid == NID_X9_62_prime256v1 ? 256
                   : nid == NID_secp384r1      ? 384
                   : nid == NID_secp521r1      ? 521
                                               : 0;
        if (bits == 0)
            return pt_fail(PT_ERR_UNSUPPORTED, "the key's curve is not P-256, P-384 or P-521");
        s->key_type = EVP_PKEY_EC;
        s->key_bits = bits;
        return PT_OK;
    }
    return pt_fail(PT_ERR_UNSUPPORTED, "the key is neither RSA nor EC");
}

pt_err token_signer_open(token *t, const char *label, unsigned sessions, token_signer **out)
{
    *out = NULL;
    if (sessions == 0 || sessions > SIGNER_MAX_SESSIONS)
        return pt_fail(PT_ERR_USAGE, "a signer has 1 to %d sessions", SIGNER_MAX_SESSIONS);
    if (!t->logged_in)
        return pt_fail(PT_ERR_INTERNAL, "opening a signer before logging in");
    token_signer *s = OPENSSL_zalloc(sizeof *s);
    if (s == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    s->tok = t;
    s->fl = t->module->fl;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    pt_err rc = PT_OK;
    for (; s->n < sessions; s->n++) {
        CK_RV rv =
            s->fl->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION, NULL, NULL, &s->sessions[s->n]);
        if (rv != CKR_OK) {
            rc = token_note_failure(
                t, token_ckr_fail(rv, "C_OpenSession", "opening the signing sessions"));
            goto fail;
        }
    }
    rc = token_private_key_find(s->tok, s->sessions[0], label, &s->key);
    if (rc == PT_OK)
        rc = signer_describe_key(s, s->sessions[0]);
    if (rc != PT_OK)
        goto fail;
    *out = s;
    return PT_OK;
fail:
    token_signer_close(s);
    return rc;
}

void token_signer_close(token_signer *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; i < s->n; i++)
        (void)s->fl->C_CloseSession(s->sessions[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    OPENSSL_free(s);
}

int token_signer_key_type(const token_signer *s)
{
    return s->key_type;
}

int token_signer_key_bits(const token_signer *s)
{
    return s->key_bits;
}

static pt_err signer_acquire(token_signer *s, int wait_ms, unsigned *slot)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->broken) {
            pthread_mutex_unlock(&s->lock);
            return pt_fail(PT_ERR_TOKEN_GONE, "the token was removed or failed");
        }
        for (unsigned i = 0; i < s->n; i++) {
            if (!s->busy[i]) {
                s->busy[i] = true;
                *slot = i;
                pthread_mutex_unlock(&s->lock);
                return PT_OK;
            }
        }
        if (pthread_cond_timedwait(&s->freed, &s->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->lock);
            return pt_fail(PT_ERR_BUSY, "every signing session stayed busy for %d ms", wait_ms);
        }
    }
}

static void signer_release(token_signer *s, unsigned slot, bool broken)
{
    pthread_mutex_lock(&s->lock);
    s->busy[slot] = false;
    if (broken)
        s->broken = true;
    pthread_cond_broadcast(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING digest } for PKCS#1 v1.5. */
static pt_err digest_info(const EVP_MD *md, const uint8_t *h, unsigned hlen, uint8_t **out,
                          size_t *out_len)
{
    X509_SIG *sig = X509_SIG_new();
    X509_ALGOR *alg = NULL;
    ASN1_OCTET_STRING *digest = NULL;
    *out = NULL;
    if (sig == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    X509_SIG_getm(sig, &alg, &digest);
    unsigned char *der = NULL;
    int len = -1;
    if (X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL, NULL) == 1 &&
        ASN1_OCTET_STRING_set(digest, h, (int)hlen) == 1)
        len = i2d_X509_SIG(sig, &der);
    X509_SIG_free(sig);
    if (len <= 0)
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode the DigestInfo");
    *out = der;
    *out_len = (size_t)len;
    return PT_OK;
}

pt_err token_signer_sign(token_signer *s, const EVP_MD *md, const uint8_t *data, size_t len,
                         int wait_ms, uint8_t **sig, size_t *sig_len)
{
    *sig = NULL;
    *sig_len = 0;
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hlen = 0;
    if (EVP_Digest(data, len, h, &hlen, md, NULL) != 1)
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot hash the data to sign");
    uint8_t *input = NULL;
    size_t input_len = 0;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    pt_err rc = PT_OK;
    if (s->key_type == EVP_PKEY_RSA) {
        mech.mechanism = CKM_RSA_PKCS;
        rc = digest_info(md, h, hlen, &input, &input_len);
        if (rc != PT_OK)
            return rc;
    }
    unsigned slot = 0;
    rc = signer_acquire(s, wait_ms, &slot);
    if (rc != PT_OK) {
        OPENSSL_free(input);
        return rc;
    }
    CK_SESSION_HANDLE h11 = s->sessions[slot];
    uint8_t raw[SIGNER_MAX_SIG];
    CK_ULONG raw_len = sizeof raw;
    CK_RV rv = s->fl->C_SignInit(h11, &mech, s->key);
    if (rv == CKR_OK)
        rv = s->fl->C_Sign(h11, input ? input : h, input ? (CK_ULONG)input_len : hlen, raw,
                           &raw_len);
    OPENSSL_free(input);
    signer_release(s, slot, token_ckr_is_gone(rv));
    if (rv != CKR_OK)
        return token_ckr_fail(rv, "C_Sign", "signing in the HSM");

    if (s->key_type == EVP_PKEY_EC)
        return pt_der_ecdsa_sig_from_raw(raw, raw_len, sig, sig_len); /* PKCS#11 gives r || s */
    *sig = OPENSSL_memdup(raw, raw_len);
    if (*sig == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    *sig_len = raw_len;
    return PT_OK;
}
