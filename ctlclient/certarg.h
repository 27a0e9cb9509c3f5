/*
 * The CERT arguments of create, update and itl build:
 *
 *   PATH[,host=NAME][,ip=ADDR][,sha256=HEX]
 *   tls://HOST:PORT[,host=NAME][,ip=ADDR][,sha256=HEX]
 *
 * PATH is a PEM or DER certificate file. tls:// fetches the certificate a
 * server presents; it is used only when its SHA-256 fingerprint equals
 * sha256= or the user confirms it at the terminal. host= and ip= become the
 * record's DNS_NAME and IP_ADDRESS (IPv4: the format stores 4 bytes).
 */
#ifndef CTL_CERTARG_H
#define CTL_CERTARG_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "pt_error.h"

#define CTL_CERTARG_HOST_MAX 253

typedef struct ctl_cert_arg {
    char *path;     /* a file, or NULL for tls:// */
    char *tls_host; /* tls:// host (without brackets) */
    char *tls_port;
    char *dns_name; /* host=, or NULL */
    bool has_ipv4;
    uint8_t ipv4[4];
    bool has_sha256;
    uint8_t sha256[32];
} ctl_cert_arg;

/* Parse text (see above); PT_ERR_USAGE with what is wrong. Free with ctl_cert_arg_free. */
pt_err ctl_cert_arg_parse(const char *text, ctl_cert_arg *out);
void ctl_cert_arg_free(ctl_cert_arg *a);

/*
 * The certificate a names: the file, or the server's over TLS (within
 * timeout_ms for the connection and the handshake), checked against sha256=
 * or shown with its fingerprint and confirmed at the terminal. A mismatch is
 * PT_ERR_VERIFY; a declined confirmation, or none possible without a
 * terminal, PT_ERR_CANCELLED.
 */
pt_err ctl_cert_arg_load(const ctl_cert_arg *a, int timeout_ms, X509 **out);

#endif
