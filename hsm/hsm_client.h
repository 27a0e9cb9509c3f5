/*
 * The client side of hsmd: what capfd, ctlclient and hsmctl call to have
 * hsmd sign with a key they never see.
 *
 * One connection per hsm_client; use one client per thread (or lock around
 * it). Every call has the client's timeout as its deadline. After a transport
 * or protocol failure (timeout, closed socket, garbled answer) the connection
 * is in an unknown state, so every later call fails at once: close the client
 * and connect again. A refusal by hsmd leaves the connection usable.
 *
 * Errors from hsmd map to: unknown-key -> PT_ERR_NOT_FOUND, not-allowed and
 * refused-by-policy -> PT_ERR_REFUSED, hsm-unavailable -> PT_ERR_TOKEN_GONE,
 * busy -> PT_ERR_BUSY, bad-request -> PT_ERR_FORMAT, internal ->
 * PT_ERR_INTERNAL, unsupported-version -> PT_ERR_UNSUPPORTED; hsmd's reason is
 * in pt_err_message().
 */
#ifndef HSM_CLIENT_H
#define HSM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "hsmd_proto.h"
#include "pt_error.h"

/* Where hsmd listens unless configured otherwise. */
#define HSM_CLIENT_DEFAULT_SOCKET "/run/phonetrust/hsmd.sock"
/* Used when a caller passes a timeout of 0 or less. */
#define HSM_CLIENT_DEFAULT_TIMEOUT_MS 10000
/* The prefix of a signer specification: "hsmd:SOCKET#LABEL". */
#define HSM_CLIENT_SIGNER_PREFIX "hsmd:"

typedef struct hsm_client hsm_client;

/*
 * Connect to hsmd's Unix socket. timeout_ms bounds the connect and, later,
 * each request (<= 0: HSM_CLIENT_DEFAULT_TIMEOUT_MS). A missing socket, a
 * refused connection or a permission problem is reported naming the path and
 * what to check.
 */
pt_err hsm_client_connect(const char *socket_path, int timeout_ms, hsm_client **out);

/*
 * Wrap a connected stream socket (a socketpair in tests, a socket passed by a
 * supervisor); the client owns fd afterwards, also on failure. name is used in
 * messages in place of a socket path.
 */
pt_err hsm_client_from_fd(int fd, const char *name, int timeout_ms, hsm_client **out);

/* hsmd's status report: JSON text, NUL-terminated (free with OPENSSL_free). */
pt_err hsm_client_status(hsm_client *c, char **json);

/* The certificate of the key called label. */
pt_err hsm_client_cert(hsm_client *c, const char *label, X509 **out);

/*
 * Have hsmd sign a DER TBSCertificate with the key called label and return
 * the certificate. The answer is checked to be a DER certificate whose
 * tbsCertificate is byte for byte the one sent (PT_ERR_PROTOCOL otherwise).
 */
pt_err hsm_client_issue(hsm_client *c, const char *label, const uint8_t *tbs, size_t tbs_len,
                        X509 **cert);

/*
 * Have hsmd sign a CTL/ITL file whose signature is zero-filled and return the
 * signed file (free with OPENSSL_free). Signing fills in the signature in
 * place, so an answer of another length is refused (PT_ERR_PROTOCOL).
 */
pt_err hsm_client_sign_tlv(hsm_client *c, const char *label, const uint8_t *file, size_t len,
                           uint8_t **signed_file, size_t *signed_len);

/*
 * Send req (its id is set here) and read hsmd's answer, OK or ERROR, into
 * resp; resp's payload points into *body (free with OPENSSL_free). For a tool
 * that shows hsmd's refusal itself: the calls above turn ERROR into a failure.
 */
pt_err hsm_client_exchange(hsm_client *c, hsmd_request *req, hsmd_response *resp, uint8_t **body);

/* Close the connection and free the client; NULL is ignored. */
void hsm_client_close(hsm_client *c);

/* True when spec names an hsmd signer (starts with "hsmd:"). */
bool hsm_client_is_signer(const char *spec);

/*
 * Split "hsmd:SOCKET#LABEL" (split at the last '#') into a socket path and a
 * key label, both new strings (free with OPENSSL_free). "hsmd:#LABEL" means
 * HSM_CLIENT_DEFAULT_SOCKET. PT_ERR_USAGE, with the expected form, on
 * anything else.
 */
pt_err hsm_client_parse_signer(const char *spec, char **socket_path, char **label);

#endif
