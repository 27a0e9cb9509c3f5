/*
 * Who signs capfd's certificates. In production: hsmd, the only process
 * that may use the CAPF CA key (capfd_issuer_hsmd). The interface exists so
 * that the protocol's unit tests can run with a local key instead.
 *
 * An issuer is used by every session thread at once.
 */
#ifndef CAPFD_ISSUER_H
#define CAPFD_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "pt_error.h"

typedef struct capfd_issuer_ops {
    /* Sign a DER TBSCertificate; *cert is the signed certificate. */
    pt_err (*issue)(void *impl, const uint8_t *tbs, size_t tbs_len, X509 **cert);
    /* The issuing certificate (a new reference). */
    pt_err (*cert)(void *impl, X509 **cert);
    void (*free)(void *impl);
} capfd_issuer_ops;

typedef struct capfd_issuer capfd_issuer;

/* An issuer over ops and impl (impl is freed with ops->free, also on failure). */
pt_err capfd_issuer_new(const capfd_issuer_ops *ops, void *impl, capfd_issuer **out);
pt_err capfd_issuer_issue(capfd_issuer *is, const uint8_t *tbs, size_t tbs_len, X509 **cert);
pt_err capfd_issuer_cert(capfd_issuer *is, X509 **cert);
void capfd_issuer_free(capfd_issuer *is);

/*
 * hsmd at socket_path, key label. Each request has a connection of its own,
 * so capfd carries on when hsmd restarts; timeout_ms bounds each request.
 */
pt_err capfd_issuer_hsmd(const char *socket_path, const char *label, int timeout_ms,
                         capfd_issuer **out);

#endif
