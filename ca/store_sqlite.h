/*
 * The SQLite backend's pieces shared between its two files: store_sqlite.c
 * (connection, schema migrations, transactions) and store_sqlite_rows.c
 * (the row primitives of store_backend.h).
 *
 * Threads: one connection per store, guarded by a mutex that a transaction
 * holds from begin to commit or rollback. SQLite lets one writer in at a
 * time anyway and nearly every capfd call writes, so separate connections
 * per thread would only trade this mutex for SQLITE_BUSY retries between our
 * own threads; each call is a short transaction, while a session's time goes
 * to the network and the phone's key generation. busy_timeout then only
 * arbitrates between processes (capfd and capfctl).
 */
#ifndef CAPF_STORE_SQLITE_H
#define CAPF_STORE_SQLITE_H

#include <pthread.h>
#include <stdbool.h>

#include <sqlite3.h>

#include "store_backend.h"

/* Schema versions this build knows; migrations are in store_sqlite.c. */
#define CAPF_STORE_SQLITE_SCHEMA_VERSION 2
/* PRAGMA application_id of a CAPF store: "PTCF". */
#define CAPF_STORE_SQLITE_APP_ID 0x50544346
/* How long a call waits for another process's transaction, in milliseconds. */
#define CAPF_STORE_SQLITE_BUSY_MS 5000

typedef struct capf_store_sqlite {
    sqlite3 *db;
    char *path;
    pthread_mutex_t lock;
    bool in_tx;
} capf_store_sqlite;

/* Turn a SQLite result code into the project's error, with what was being done. */
pt_err capf_store_sqlite_fail(capf_store_sqlite *s, int rc, const char *what);

/* The row primitives (store_sqlite_rows.c). */
pt_err capf_store_sqlite_device_read(void *impl, const char *name, bool with_pem,
                                     capf_store_device *out, int64_t *id);
pt_err capf_store_sqlite_device_insert(void *impl, const capf_store_device *d, int64_t *id);
pt_err capf_store_sqlite_device_update(void *impl, int64_t id, const capf_store_device *d);
pt_err capf_store_sqlite_device_remove(void *impl, int64_t id);
pt_err capf_store_sqlite_device_find(void *impl, const capf_store_filter *f,
                                     capf_store_device **out, size_t *n);
pt_err capf_store_sqlite_lsc_set(void *impl, int64_t id, const capf_store_cert *cert, time_t now);
pt_err capf_store_sqlite_fetched_add(void *impl, const capf_store_cert *cert);
pt_err capf_store_sqlite_certs_list(void *impl, const char *device, capf_store_cert **out,
                                    size_t *n);
pt_err capf_store_sqlite_event_add(void *impl, const char *device, time_t at, const char *event,
                                   const char *detail, const capf_store_actor *who);
pt_err capf_store_sqlite_events_list(void *impl, const char *device, size_t limit,
                                     capf_store_event **out, size_t *n);

#endif
