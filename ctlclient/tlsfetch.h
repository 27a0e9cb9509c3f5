/*
 * Fetching the certificate a TLS server presents (tls://HOST:PORT in CERT
 * arguments). The peer is NOT verified here, by design: the caller compares
 * the certificate's fingerprint with one the administrator knows, or has the
 * administrator confirm it.
 */
#ifndef CTL_TLSFETCH_H
#define CTL_TLSFETCH_H

#include <openssl/x509.h>

#include "pt_error.h"

/* Default bound on the connection and the handshake together. */
#define CTL_TLS_TIMEOUT_MS 10000

/*
 * Connect to host:port, complete a TLS handshake (sending host as SNI when it
 * is a name) and return the leaf certificate. PT_ERR_TIMEOUT when
 * timeout_ms passes; PT_ERR_IO when no connection can be made;
 * PT_ERR_PROTOCOL when the handshake fails.
 */
pt_err ctl_tls_fetch_cert(const char *host, const char *port, int timeout_ms, X509 **out);

#endif
