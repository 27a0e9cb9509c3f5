/*
 * Shared by the store's own files (store.c, store_admin.c): the store handle
 * and the helpers every call is built from.
 */
#ifndef CAPF_STORE_INTERNAL_H
#define CAPF_STORE_INTERNAL_H

#include "store_backend.h"

struct capf_store {
    const capf_store_backend *be;
    void *impl;
    time_t (*clock)(void *arg);
    void *clock_arg;
};

time_t capf_store_now(const capf_store *st);

/* One backend transaction per public call. */
pt_err capf_store_tx_begin(capf_store *st, bool write);
/* Commit when rc is PT_OK, else roll back; returns the first error. */
pt_err capf_store_tx_end(capf_store *st, pt_err rc);

/* PT_ERR_NOT_FOUND for a name no device can have (§9.1: 1-64 printable characters). */
pt_err capf_store_name_check(const char *name);

/* Read a device in the current transaction; the "is not known" message on PT_ERR_NOT_FOUND. */
pt_err capf_store_device_load(capf_store *st, const char *name, bool with_pem, capf_store_device *d,
                              int64_t *id);

/*
 * Check name, begin a write transaction, read the clock into now and load the
 * device. On success the caller frees d and ends the transaction; on failure
 * nothing is left open.
 */
pt_err capf_store_device_edit(capf_store *st, const char *name, capf_store_device *d, int64_t *id,
                              time_t *now);

/* Add a history event (detail printf-style; never an authentication string in it). */
pt_err capf_store_event_add(capf_store *st, const char *device, time_t now,
                            const capf_store_actor *who, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

void capf_store_status_set(capf_store_device *d, capf_device_op op, capf_device_state state,
                           const char *reason, time_t now);

/* Wipe the authentication string and its failure count. */
void capf_store_string_forget(capf_store_device *d);

#endif
