#include "capfd_issuer.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hsm_client.h"

struct capfd_issuer {
    const capfd_issuer_ops *ops;
    void *impl;
};

pt_err capfd_issuer_new(const capfd_issuer_ops *ops, void *impl, capfd_issuer **out)
{
    *out = NULL;
    capfd_issuer *is = OPENSSL_zalloc(sizeof *is);
    if (is == NULL) {
        ops->free(impl);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    is->ops = ops;
    is->impl = impl;
    *out = is;
    return PT_OK;
}

pt_err capfd_issuer_issue(capfd_issuer *is, const uint8_t *tbs, size_t tbs_len, X509 **cert)
{
    *cert = NULL;
    return is->ops->issue(is->impl, tbs, tbs_len, cert);
}

pt_err capfd_issuer_cert(capfd_issuer *is, X509 **cert)
{
    *cert = NULL;
    return is->ops->cert(is->impl, cert);
}

void capfd_issuer_free(capfd_issuer *is)
{
    if (is == NULL)
        return;
    is->ops->free(is->impl);
    OPENSSL_free(is);
}

/* ---- hsmd ----------------------------------------------------------------- */

typedef struct hsmd_pool {
    pthread_mutex_t lock;
    char *socket_path;
    char *label;
    int timeout_ms;
    hsm_client **idle;
    unsigned n_idle;
    unsigned max_idle;
} hsmd_pool;

static void pool_free(void *impl)
{
    hsmd_pool *p = impl;
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->n_idle; i++)
        hsm_client_close(p->idle[i]);
    OPENSSL_free(p->idle);
    OPENSSL_free(p->socket_path);
    OPENSSL_free(p->label);
    pthread_mutex_destroy(&p->lock);
    OPENSSL_free(p);
}

/* An idle connection, or a new one. */
static pt_err pool_take(hsmd_pool *p, hsm_client **c)
{
    *c = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->n_idle > 0)
        *c = p->idle[--p->n_idle];
    pthread_mutex_unlock(&p->lock);
    if (*c != NULL)
        return PT_OK;
    return hsm_client_connect(p->socket_path, p->timeout_ms, c);
}

/* Keep a connection that worked for the next request, or close it. */
static void pool_give(hsmd_pool *p, hsm_client *c, pt_err rc)
{
    if (rc == PT_OK) {
        pthread_mutex_lock(&p->lock);
        if (p->n_idle < p->max_idle) {
            p->idle[p->n_idle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&p->lock);
    }
    /* After a failure the connection may be unusable (hsm_client.h): start afresh. */
    hsm_client_close(c);
}

static pt_err hsmd_issue(void *impl, const uint8_t *tbs, size_t tbs_len, X509 **cert)
{
    hsmd_pool *p = impl;
    hsm_client *c = NULL;
    pt_err rc = pool_take(p, &c);
    if (rc == PT_OK) {
        rc = hsm_client_issue(c, p->label, tbs, tbs_len, cert);
        pool_give(p, c, rc);
    }
    return rc == PT_OK ? rc : pt_err_context(rc, "hsmd (key %s)", p->label);
}

static pt_err hsmd_cert(void *impl, X509 **cert)
{
    hsmd_pool *p = impl;
    hsm_client *c = NULL;
    pt_err rc = pool_take(p, &c);
    if (rc == PT_OK) {
        rc = hsm_client_cert(c, p->label, cert);
        pool_give(p, c, rc);
    }
    return rc == PT_OK ? rc : pt_err_context(rc, "hsmd (key %s)", p->label);
}

static const capfd_issuer_ops hsmd_ops = {hsmd_issue, hsmd_cert, pool_free};

pt_err capfd_issuer_hsmd(const char *socket_path, const char *label, int timeout_ms,
                         unsigned max_idle, capfd_issuer **out)
{
    *out = NULL;
    hsmd_pool *p = OPENSSL_zalloc(sizeof *p);
    if (p == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    p->socket_path = OPENSSL_strdup(socket_path);
    p->label = OPENSSL_strdup(label);
    p->timeout_ms = timeout_ms;
    p->max_idle = max_idle > 0 ? max_idle : 1;
    p->idle = OPENSSL_zalloc(sizeof *p->idle * p->max_idle);
    if (p->socket_path == NULL || p->label == NULL || p->idle == NULL) {
        pool_free(p);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    return capfd_issuer_new(&hsmd_ops, p, out);
}
