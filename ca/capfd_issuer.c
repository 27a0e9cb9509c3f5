#include "capfd_issuer.h"

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

/*
 * One connection per request. A connection kept open across requests would
 * fail the first request after hsmd restarts (and retrying an ISSUE whose
 * answer was lost could sign twice); connecting to a Unix socket costs far
 * less than the signature.
 */
typedef struct hsmd_issuer {
    char *socket_path;
    char *label;
    int timeout_ms;
} hsmd_issuer;

static void hsmd_free(void *impl)
{
    hsmd_issuer *h = impl;
    if (h == NULL)
        return;
    OPENSSL_free(h->socket_path);
    OPENSSL_free(h->label);
    OPENSSL_free(h);
}

static pt_err hsmd_issue(void *impl, const uint8_t *tbs, size_t tbs_len, X509 **cert)
{
    hsmd_issuer *h = impl;
    hsm_client *c = NULL;
    pt_err rc = hsm_client_connect(h->socket_path, h->timeout_ms, &c);
    if (rc == PT_OK)
        rc = hsm_client_issue(c, h->label, tbs, tbs_len, cert);
    hsm_client_close(c);
    return rc == PT_OK ? rc : pt_err_context(rc, "hsmd (key %s)", h->label);
}

static pt_err hsmd_cert(void *impl, X509 **cert)
{
    hsmd_issuer *h = impl;
    hsm_client *c = NULL;
    pt_err rc = hsm_client_connect(h->socket_path, h->timeout_ms, &c);
    if (rc == PT_OK)
        rc = hsm_client_cert(c, h->label, cert);
    hsm_client_close(c);
    return rc == PT_OK ? rc : pt_err_context(rc, "hsmd (key %s)", h->label);
}

static const capfd_issuer_ops hsmd_ops = {hsmd_issue, hsmd_cert, hsmd_free};

pt_err capfd_issuer_hsmd(const char *socket_path, const char *label, int timeout_ms,
                         capfd_issuer **out)
{
    *out = NULL;
    hsmd_issuer *h = OPENSSL_zalloc(sizeof *h);
    if (h == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    h->socket_path = OPENSSL_strdup(socket_path);
    h->label = OPENSSL_strdup(label);
    h->timeout_ms = timeout_ms;
    if (h->socket_path == NULL || h->label == NULL) {
        hsmd_free(h);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    return capfd_issuer_new(&hsmd_ops, h, out);
}
