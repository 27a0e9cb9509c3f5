/*
 * capfd's listener: accepts TCP connections, gives each a session ID (a
 * process-wide counter from 1, spec §3) and a thread of its own, up to
 * max-sessions at once. A connection beyond the limit is answered with
 * RETRY_LATER or closed unanswered ([limits] at-limit) on a small, separately
 * bounded set of threads, so the listener itself never waits for a client.
 */
#ifndef CAPFD_SERVER_H
#define CAPFD_SERVER_H

#include <openssl/ssl.h>

#include "capfd_session.h"
#include "pt_error.h"

/* Threads that answer connections over the limit; beyond them, connections are closed. */
#define CAPFD_REJECT_THREADS 8

typedef struct capfd_server capfd_server;

/* Bind and listen on [server] listen and port. */
pt_err capfd_server_new(const capfd_ctx *ctx, SSL_CTX *tls, capfd_server **out);
/* The port listened on (useful with port 0). */
unsigned capfd_server_port(const capfd_server *srv);
/* Accept until capfd_server_stop; then end running sessions and wait for them. */
pt_err capfd_server_run(capfd_server *srv);
/* Ask run to return (async-signal-safe). */
void capfd_server_stop(capfd_server *srv);
void capfd_server_free(capfd_server *srv);

#endif
