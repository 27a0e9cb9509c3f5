/*
 * What a store backend provides (internal to the store; callers use
 * store.h). A backend stores rows and runs transactions; every rule about
 * devices (authentication counting, deadlines, what an update may change,
 * §13's bookkeeping) lives once, in store.c, above these primitives, so that
 * the SQLite backend and a future PostgreSQL backend cannot disagree.
 */
#ifndef CAPF_STORE_BACKEND_H
#define CAPF_STORE_BACKEND_H

#include <stdint.h>

#include "store.h"

typedef struct capf_store_backend {
    const char *name;
    void (*close)(void *impl);

    /*
     * A transaction belongs to the calling thread from begin until commit or
     * rollback; other threads wait in begin. write says whether it may
     * change anything. commit makes the changes durable before it returns;
     * when it fails the transaction has been rolled back.
     */
    pt_err (*begin)(void *impl, bool write);
    pt_err (*commit)(void *impl);
    void (*rollback)(void *impl);

    /* Inside a transaction. ids are the backend's own device row ids. */
    pt_err (*device_read)(void *impl, const char *name, bool with_pem, capf_store_device *out,
                          int64_t *id);
    pt_err (*device_insert)(void *impl, const capf_store_device *d, int64_t *id);
    /* Write every setting and status field of d (not its LSC: see lsc_set). */
    pt_err (*device_update)(void *impl, int64_t id, const capf_store_device *d);
    pt_err (*device_remove)(void *impl, int64_t id);
    pt_err (*device_find)(void *impl, const capf_store_filter *f, capf_store_device **out,
                          size_t *n);
    /*
     * Record cert (kind ISSUED) as the device's current LSC and mark the
     * previous one superseded at cert->at; cert NULL clears the current LSC
     * (marking it superseded at now).
     */
    pt_err (*lsc_set)(void *impl, int64_t id, const capf_store_cert *cert, time_t now);
    pt_err (*fetched_add)(void *impl, const capf_store_cert *cert);
    pt_err (*certs_list)(void *impl, const char *device, capf_store_cert **out, size_t *n);
    pt_err (*event_add)(void *impl, const char *device, time_t at, const char *event,
                        const char *detail, const capf_store_actor *who);
    pt_err (*events_list)(void *impl, const char *device, size_t limit, capf_store_event **out,
                          size_t *n);
} capf_store_backend;

/* The SQLite backend: path is a file name; create says whether to make a new store. */
pt_err capf_store_sqlite_open(const char *path, bool create, const capf_store_backend **be,
                              void **impl);

#endif
