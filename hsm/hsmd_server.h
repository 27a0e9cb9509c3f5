/*
 * hsmd's transport: the Unix socket, one I/O thread, and the workers.
 *
 *   clients ──> I/O thread (epoll) ──> signing queue (bounded) ──> workers ──> service
 *                     │                                          (issue, sign-tlv)
 *                     └────────────> control queue ──> control thread ──> service
 *                                                    (status, cert, bad frames)
 *
 * The I/O thread accepts connections (at max-clients it stops accepting, and
 * new clients wait in the listen queue until a connection closes), reads
 * the peer's credentials once, and reads frames without blocking: the length
 * prefix is checked before the body is allocated, a frame must arrive within
 * frame-timeout-ms and an idle connection is closed after idle-timeout-ms.
 * A complete frame goes to a queue and the connection is left alone until
 * its answer has been written, so a connection holds at most one request
 * and one frame buffer. When the signing queue is full the request is
 * answered busy at once. A worker that picks up a request whose client has
 * already hung up drops it (counted as abandoned) without touching the HSM.
 * Workers write their answer themselves and hand the connection back.
 * Status and certificates have their own thread so that they answer even
 * when every worker is busy signing.
 */
#ifndef HSMD_SERVER_H
#define HSMD_SERVER_H

#include "hsmd_config.h"
#include "hsmd_service.h"
#include "pt_error.h"

typedef struct hsmd_server hsmd_server;

/*
 * Create the socket at cfg->socket_path (refusing when another process
 * listens there; removing a stale one), with cfg's mode and group, and start
 * the workers. The service must outlive the server.
 */
pt_err hsmd_server_new(const hsmd_config *cfg, hsmd_service *svc, hsmd_server **out);

/* What to do on SIGHUP. */
typedef void (*hsmd_server_hup_fn)(void *ctx);

/*
 * Serve until SIGTERM or SIGINT arrives on signal_fd (a signalfd for SIGTERM,
 * SIGINT and SIGHUP, blocked in every thread). Then stop accepting, let the
 * workers finish what is queued, and return.
 */
pt_err hsmd_server_run(hsmd_server *srv, int signal_fd, hsmd_server_hup_fn on_hup, void *ctx);

/* Close the socket (removing its file), the connections and the threads. */
void hsmd_server_free(hsmd_server *srv);

#endif
