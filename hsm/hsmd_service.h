/*
 * What hsmd does with one request, transport aside: parse it, check who asks
 * (the peer's credentials), check the input against the key's policy, sign
 * through the HSM's session pool, check the result, write the audit record
 * (durably) and only then produce the answer.
 *
 * Thread-safe: the server's workers call hsmd_service_handle concurrently.
 */
#ifndef HSMD_SERVICE_H
#define HSMD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "hsmd_config.h"
#include "hsmd_hsm.h"
#include "pt_error.h"

/* Supplementary groups kept per peer; a peer in more is judged by uid and primary group. */
#define HSMD_PEER_GROUPS_MAX 256

/* Who is asking, from SO_PEERCRED / SO_PEERGROUPS. */
typedef struct hsmd_peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    size_t n_groups;
    gid_t groups[HSMD_PEER_GROUPS_MAX]; /* supplementary groups */
} hsmd_peer;

/* The load the server reports for the status answer. */
typedef struct hsmd_load {
    unsigned connections, max_clients;
    unsigned queued, queue_capacity; /* signing requests waiting for a worker */
    unsigned in_progress, workers;   /* signing requests being worked on */
} hsmd_load;

typedef void (*hsmd_load_fn)(void *ctx, hsmd_load *out);

/* An answer ready to send: a response body (free with OPENSSL_free). */
typedef struct hsmd_reply {
    uint8_t *body;
    size_t len;
    bool close; /* end the connection after sending (bad frames, other versions) */
} hsmd_reply;

typedef struct hsmd_service hsmd_service;

/*
 * Check that every key suits its operation (an issue key's certificate is a
 * CA certificate; a sign-tlv key is RSA 512/1024/2048/4096) and prepare the
 * policies. cfg, hsm and audit must outlive the service.
 */
pt_err hsmd_service_new(const hsmd_config *cfg, hsmd_hsm *hsm, audit_log *audit,
                        hsmd_service **out);
void hsmd_service_free(hsmd_service *s);

/* Where the status answer gets the server's load from. */
void hsmd_service_set_load_fn(hsmd_service *s, hsmd_load_fn fn, void *ctx);

/* Answer one frame body. Every answer is audited before it is returned. */
void hsmd_service_handle(hsmd_service *s, const hsmd_peer *peer, const uint8_t *body, size_t len,
                         hsmd_reply *reply);

/*
 * A frame whose length prefix is out of range (detail says how): audited,
 * answered bad-request (request id 0, there is no body to take one from),
 * and the connection is closed.
 */
void hsmd_service_frame_error(hsmd_service *s, const hsmd_peer *peer, const char *detail,
                              hsmd_reply *reply);

/*
 * The busy answer to a request that found the queue full (not audited:
 * nothing was done). Built from the body's fixed header only.
 */
void hsmd_service_busy(hsmd_service *s, const uint8_t *body, size_t len, hsmd_reply *reply);

/* Counted for status: a request dropped because its client left before it was worked on. */
void hsmd_service_count_abandoned(hsmd_service *s);
/* Counted for status: accepting paused at max-clients; a frame that did not arrive in time. */
void hsmd_service_count_accept_pause(hsmd_service *s);
void hsmd_service_count_timeout(hsmd_service *s);

/* The status answer's JSON text (free with OPENSSL_free); used by tests and logs. */
pt_err hsmd_service_status_json(hsmd_service *s, char **json);

#endif
