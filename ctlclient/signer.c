#include "signer.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hsm_client.h"
#include "key.h"
#include "log.h"
#include "login.h"
#include "tlv.h"
#include "token.h"
#include "uri.h"

#define CTL_MODULES_MAX 8

struct ctl_modules {
    char *override;
    char *paths[CTL_MODULES_MAX];
    token_module *mods[CTL_MODULES_MAX];
    size_t n;
};

pt_err ctl_modules_new(const char *override, ctl_modules **out)
{
    *out = NULL;
    ctl_modules *m = OPENSSL_zalloc(sizeof *m);
    if (m == NULL || (override != NULL && (m->override = OPENSSL_strdup(override)) == NULL)) {
        OPENSSL_free(m);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    *out = m;
    return PT_OK;
}

void ctl_modules_free(ctl_modules *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        token_module_close(m->mods[i]);
        OPENSSL_free(m->paths[i]);
    }
    OPENSSL_free(m->override);
    OPENSSL_free(m);
}

pt_err ctl_modules_get(ctl_modules *m, const char *path, token_module **out)
{
    *out = NULL;
    if (path == NULL)
        path = m->override;
    if (path == NULL)
        path = token_module_default_path();
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->paths[i], path) == 0) {
            *out = m->mods[i];
            return PT_OK;
        }
    }
    if (m->n == CTL_MODULES_MAX)
        return pt_fail(PT_ERR_LIMIT, "too many different PKCS#11 modules (at most %d)",
                       CTL_MODULES_MAX);
    char *copy = OPENSSL_strdup(path);
    if (copy == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc = token_module_open(path, &m->mods[m->n]);
    if (rc != PT_OK) {
        OPENSSL_free(copy);
        return rc;
    }
    m->paths[m->n] = copy;
    *out = m->mods[m->n++];
    return PT_OK;
}

struct ctl_signer {
    X509 *cert;
    /* token */
    token *tok;
    token_uri *uri;
    token_key *key; /* found, and checked against cert, at the first signature */
    /* hsmd */
    hsm_client *hsm;
    char *socket_path;
    char *label;
    char describe[256];
};

static pt_err signer_open_token(ctl_signer *s, ctl_modules *mods, const char *spec)
{
    token_module *m = NULL;
    if (mods == NULL)
        return pt_fail(PT_ERR_INTERNAL, "no PKCS#11 modules for %s", spec);
    pt_err rc = token_uri_parse(spec, &s->uri);
    if (rc == PT_OK)
        rc = ctl_modules_get(mods, token_uri_module_path(s->uri), &m);
    if (rc == PT_OK)
        rc = token_select(m, s->uri, &s->tok);
    if (rc != PT_OK)
        return rc;
    token_describe(s->tok, s->describe, sizeof s->describe);
    if (s->cert != NULL)
        return PT_OK;
    rc = token_sast_cert(s->tok, &s->cert);
    if (rc == PT_OK && s->cert == NULL)
        rc = pt_fail(PT_ERR_NOT_FOUND,
                     "%s holds no certificate: enrol it first ('ctlclient token enroll URI "
                     "--subject DN'), or give the signer's certificate",
                     s->describe);
    return rc;
}

static pt_err signer_open_hsmd(ctl_signer *s, const char *spec)
{
    pt_err rc = hsm_client_parse_signer(spec, &s->socket_path, &s->label);
    if (rc != PT_OK)
        return rc;
    snprintf(s->describe, sizeof s->describe, "hsmd key '%s' at %s", s->label, s->socket_path);
    rc = hsm_client_connect(s->socket_path, 0, &s->hsm);
    if (rc == PT_OK && s->cert == NULL)
        rc = hsm_client_cert(s->hsm, s->label, &s->cert);
    if (rc != PT_OK)
        return pt_err_context(rc, "%s", s->describe);
    return PT_OK;
}

pt_err ctl_signer_open(ctl_modules *mods, const char *spec, X509 *cert, ctl_signer **out)
{
    *out = NULL;
    ctl_signer *s = OPENSSL_zalloc(sizeof *s);
    if (s == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (cert != NULL) {
        X509_up_ref(cert);
        s->cert = cert;
    }
    pt_err rc =
        hsm_client_is_signer(spec) ? signer_open_hsmd(s, spec) : signer_open_token(s, mods, spec);
    if (rc != PT_OK) {
        ctl_signer_close(s);
        return rc;
    }
    *out = s;
    return PT_OK;
}

void ctl_signer_close(ctl_signer *s)
{
    if (s == NULL)
        return;
    X509_free(s->cert);
    token_key_free(s->key);
    token_close(s->tok);
    token_uri_free(s->uri);
    hsm_client_close(s->hsm);
    OPENSSL_free(s->socket_path);
    OPENSSL_free(s->label);
    OPENSSL_free(s);
}

X509 *ctl_signer_cert(const ctl_signer *s)
{
    return s->cert;
}

bool ctl_signer_is_hsmd(const ctl_signer *s)
{
    return s->hsm != NULL;
}

const char *ctl_signer_token_serial(const ctl_signer *s)
{
    return s->tok != NULL ? token_get_info(s->tok)->serial : NULL;
}

unsigned long ctl_signer_token_flags(const ctl_signer *s)
{
    return s->tok != NULL ? token_get_info(s->tok)->flags : 0;
}

const char *ctl_signer_describe(const ctl_signer *s)
{
    return s->describe;
}

/* tlv_sign_fn over a key on a token. */
static pt_err sign_with_token_key(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len,
                                  uint8_t *sig, size_t *sig_len)
{
    uint8_t *out = NULL;
    size_t n = 0;
    pt_err rc = token_key_sign(ctx, md, data, len, &out, &n);
    if (rc != PT_OK)
        return rc;
    if (n > *sig_len) {
        OPENSSL_free(out);
        return pt_fail(PT_ERR_UNSUPPORTED, "the token's signature is %zu bytes, not %zu", n,
                       *sig_len);
    }
    memcpy(sig, out, n);
    *sig_len = n;
    OPENSSL_free(out);
    return PT_OK;
}

static pt_err sign_on_token(ctl_signer *s, const ctl_common_opts *o, uint8_t *buf, size_t len)
{
    token_pin_source storage;
    token_login_opts lo;
    pt_err rc = ctl_login_opts(o, token_uri_pin_source(s->uri), &storage, &lo);
    if (rc == PT_OK && !token_is_logged_in(s->tok))
        rc = token_login(s->tok, &lo);
    if (rc == PT_OK && s->key == NULL) {
        token_key *k = NULL;
        rc = token_key_find_default(s->tok, s->uri, &k);
        /* A key that is not the certificate's would make a file no phone accepts. */
        /* 1: the same key; -2: cannot be compared here (the signature is checked after signing). */
        int same = rc == PT_OK ? EVP_PKEY_eq(X509_get0_pubkey(s->cert), token_key_pkey(k)) : 1;
        if (same != 1 && same != -2)
            rc = pt_fail(PT_ERR_REFUSED,
                         "the key '%s' on %s is not the key of the signer's certificate; name "
                         "the right key with object= in the URI",
                         token_key_label(k), s->describe);
        if (rc == PT_OK)
            s->key = k;
        else
            token_key_free(k);
    }
    if (rc == PT_OK)
        rc = tlv_file_sign_in_place(buf, len, sign_with_token_key, s->key);
    return rc;
}

/* hsmd's answer must be our file with only the signature filled in, and valid. */
static pt_err check_hsmd_answer(const uint8_t *sent, const uint8_t *got, size_t len)
{
    tlv_file *f = NULL;
    tlv_verify_result res;
    pt_err rc = tlv_file_parse(got, len, &f);
    if (rc == PT_OK) {
        size_t from = f->signature_offset + 3, to = from + f->signature_len;
        if (memcmp(sent, got, from) != 0 || memcmp(sent + to, got + to, len - to) != 0)
            rc = pt_fail(PT_ERR_PROTOCOL, "hsmd changed more than the signature");
    }
    if (rc == PT_OK)
        rc = tlv_file_verify(f, NULL, &res);
    tlv_file_free(f);
    return rc;
}

static pt_err sign_with_hsmd(ctl_signer *s, uint8_t *buf, size_t len)
{
    uint8_t *signed_file = NULL;
    size_t signed_len = 0;
    pt_err rc = hsm_client_sign_tlv(s->hsm, s->label, buf, len, &signed_file, &signed_len);
    if (rc == PT_OK && signed_len != len)
        rc = pt_fail(PT_ERR_PROTOCOL, "hsmd answered with a file of another length");
    if (rc == PT_OK)
        rc = check_hsmd_answer(buf, signed_file, len);
    if (rc == PT_OK)
        memcpy(buf, signed_file, len);
    OPENSSL_free(signed_file);
    return rc;
}

pt_err ctl_signer_sign(ctl_signer *s, const ctl_common_opts *o, uint8_t *buf, size_t len)
{
    pt_err rc = s->hsm != NULL ? sign_with_hsmd(s, buf, len) : sign_on_token(s, o, buf, len);
    if (rc != PT_OK)
        return pt_err_context(rc, "signing with %s", s->describe);
    return PT_OK;
}
