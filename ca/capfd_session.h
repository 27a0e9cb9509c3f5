/*
 * One CAPF session, server side (spec §10): AUTH_REQUEST, the phone's
 * AUTH_RESPONSE and its checks, then the device's scheduled operation
 * (install/upgrade, troubleshoot, delete, none), every step recorded in the
 * device store, and END_SESSION with the reason the spec gives.
 *
 * Sessions run on their own threads; what they share (the configuration,
 * the store, the issuer, the trust certificates) is read-only or thread-safe.
 */
#ifndef CAPFD_SESSION_H
#define CAPFD_SESSION_H

#include <stdint.h>

#include <openssl/x509.h>

#include "capfd_config.h"
#include "capfd_conn.h"
#include "capfd_issuer.h"
#include "store.h"

/* What every session needs, shared by all of them. */
typedef struct capfd_ctx {
    const capfd_config *cfg;
    capf_store *store;
    capfd_issuer *issuer;
    X509 *issuer_cert; /* the CA certificate that issues LSCs */
    /*
     * Certificates trusted for authentication (§9.5): trust[0 .. n_lsc_trust)
     * issue LSCs (the issuing CA first), the rest are manufacturing CAs (MICs).
     */
    STACK_OF(X509) * trust;
    int n_lsc_trust;
} capfd_ctx;

/* How a session ended, for its one log line. */
typedef struct capfd_session_result {
    char device[CAPF_DEVICE_NAME_MAX + 1]; /* "-" before a usable name was received */
    capf_device_op op;                     /* the operation attempted (none when none) */
    const char *result;                    /* success, failed, none, unknown-device, rejected */
    char reason[320];
    int end_reason; /* the END_SESSION reason sent, or -1 when none was sent */
} capfd_session_result;

/*
 * Run one session on conn (already accepted; the TLS handshake happens in
 * here) with session ID sid. peer is "address:port" for the store and logs.
 * Never fails as such: every outcome is in *res. The caller closes conn.
 */
void capfd_session_run(const capfd_ctx *ctx, capfd_conn *conn, uint32_t sid, const char *peer,
                       capfd_session_result *res);

/* The session's log line: "session=5 peer=... device=... operation=... result=... reason=..." */
void capfd_session_log(uint32_t sid, const char *peer, const capfd_session_result *res);

#endif
