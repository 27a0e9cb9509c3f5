/*
 * The SQLite backend: opening a store file, its schema and ordered
 * migrations, and transactions.
 *
 * Settings, and why:
 *  - WAL journal: capfctl and the report read while capfd writes;
 *  - synchronous=FULL: a commit is on disk when it returns, so that an
 *    issued certificate is recorded before it is sent to the phone (§13);
 *  - foreign_keys=ON: a device's current LSC must be a recorded certificate;
 *  - secure_delete=ON: removed authentication strings are overwritten in
 *    the file, not left in free pages;
 *  - a new file is created with mode 0600: it holds authentication strings.
 */
#include "store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/*
 * Ordered migrations: migrations[i] takes a store from version i to i + 1.
 * Released entries are never edited; a change to the schema is a new entry.
 */
static const char *const migrations[CAPF_STORE_SQLITE_SCHEMA_VERSION] = {
    /* 1: devices, the certificates issued to them, and their history. */
    "CREATE TABLE certificates ("
    "  id INTEGER PRIMARY KEY,"
    "  device TEXT NOT NULL," /* by name: kept when the device is deleted */
    "  serial TEXT NOT NULL," /* upper-case hex, minimal big-endian bytes */
    "  subject TEXT NOT NULL,"
    "  issuer TEXT NOT NULL,"
    "  key_type TEXT NOT NULL,"      /* 'RSA 2048', 'EC P-256' */
    "  not_before INTEGER NOT NULL," /* seconds since 1970 (UTC), as every time here */
    "  not_after INTEGER NOT NULL,"
    "  pem TEXT NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  superseded_at INTEGER,"
    "  superseded_by INTEGER REFERENCES certificates(id));"
    "CREATE TABLE devices ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  operation TEXT NOT NULL DEFAULT 'none'"
    "    CHECK (operation IN ('none', 'install', 'delete', 'troubleshoot')),"
    "  auth_mode TEXT NOT NULL DEFAULT 'null'"
    "    CHECK (auth_mode IN ('null', 'string', 'lsc', 'mic')),"
    "  auth_string TEXT CHECK (auth_string IS NULL OR length(auth_string) BETWEEN 4 AND 10),"
    "  auth_failures INTEGER NOT NULL DEFAULT 0 CHECK (auth_failures >= 0),"
    "  locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
    "  key_spec TEXT NOT NULL DEFAULT 'default',"
    "  deadline INTEGER,"
    "  status_op TEXT CHECK (status_op IS NULL OR"
    "    status_op IN ('none', 'install', 'delete', 'troubleshoot')),"
    "  status_state TEXT NOT NULL DEFAULT 'none'"
    "    CHECK (status_state IN ('none', 'pending', 'success', 'failed')),"
    "  status_reason TEXT NOT NULL DEFAULT '',"
    "  status_time INTEGER,"
    "  created INTEGER NOT NULL,"
    "  changed INTEGER NOT NULL,"
    "  lsc_cert_id INTEGER REFERENCES certificates(id));"
    "CREATE TABLE history ("
    "  id INTEGER PRIMARY KEY,"
    "  device TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT '',"
    "  actor TEXT NOT NULL," /* 'capfctl' or 'capfd' */
    "  actor_user TEXT,"     /* capfctl: login name and uid */
    "  session TEXT,"        /* capfd: CAPF session ID */
    "  peer TEXT);"          /* capfd: the phone's address */
    "PRAGMA application_id = 1347699526;",

    /* 2: certificates phones return on troubleshoot; per-device indexes. */
    "CREATE TABLE fetched_certificates ("
    "  id INTEGER PRIMARY KEY,"
    "  device TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('LSC', 'MIC')),"
    "  serial TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  issuer TEXT NOT NULL,"
    "  key_type TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  pem TEXT NOT NULL,"
    "  fetched_at INTEGER NOT NULL);"
    "CREATE INDEX history_by_device ON history (device, id);"
    "CREATE INDEX certificates_by_device ON certificates (device, id);"
    "CREATE INDEX fetched_by_device ON fetched_certificates (device, id);",
};

pt_err capf_store_sqlite_fail(capf_store_sqlite *s, int rc, const char *what)
{
    const char *msg = s != NULL && s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return pt_fail(PT_ERR_BUSY,
                       "%s: the CAPF store is busy (another capfd or capfctl is using it); "
                       "try again",
                       what);
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return pt_fail(PT_ERR_EXISTS, "%s: %s", what, msg);
        return pt_fail(PT_ERR_INTERNAL, "%s: %s", what, msg);
    case SQLITE_NOMEM:
        return pt_fail(PT_ERR_NOMEM, "%s: out of memory", what);
    case SQLITE_FULL:
        return pt_fail(PT_ERR_IO, "%s: the disk is full", what);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return pt_fail(PT_ERR_IO, "%s: %s", what, msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return pt_fail(PT_ERR_FORMAT, "%s: the store file is damaged or not a SQLite database (%s)",
                       what, msg);
    default:
        return pt_fail(PT_ERR_INTERNAL, "%s: %s", what, msg);
    }
}

static pt_err sq_exec(capf_store_sqlite *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? PT_OK : capf_store_sqlite_fail(s, rc, what);
}

/* The integer a one-row pragma or query returns. */
static pt_err sq_int(capf_store_sqlite *s, const char *sql, long long *out)
{
    sqlite3_stmt *st = NULL;
    *out = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? PT_OK : capf_store_sqlite_fail(s, rc, s->path);
}

/* Create the file with mode 0600 so that SQLite never creates it world-readable. */
static pt_err file_prepare(const char *path, bool create)
{
    if (!create) {
        struct stat sb;
        if (stat(path, &sb) != 0 && errno == ENOENT)
            return pt_fail(PT_ERR_NOT_FOUND,
                           "there is no CAPF store at %s (check --db or $CAPFCTL_DB; adding a "
                           "device creates the store)",
                           path);
        return PT_OK;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        close(fd);
        return PT_OK;
    }
    if (errno == EEXIST)
        return PT_OK;
    return pt_fail_errno("cannot create the CAPF store %s (does its directory exist and may "
                         "this user write to it?)",
                         path);
}

static pt_err sq_settings(capf_store_sqlite *s)
{
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, CAPF_STORE_SQLITE_BUSY_MS);
    pt_err rc = sq_exec(s,
                        "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;"
                        "PRAGMA trusted_schema = OFF;",
                        s->path);
    if (rc != PT_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    const unsigned char *mode = src == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    bool wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
    sqlite3_finalize(st);
    if (src != SQLITE_ROW)
        return capf_store_sqlite_fail(s, src, s->path);
    if (!wal)
        return pt_fail(PT_ERR_IO,
                       "%s: the store cannot use a write-ahead log here (is it on a "
                       "network file system?)",
                       s->path);
    return sq_exec(s, "PRAGMA synchronous = FULL;", s->path);
}

/* Check that the file is a CAPF store we may use; *version is its schema version. */
static pt_err schema_check(capf_store_sqlite *s, long long *version)
{
    long long app_id = 0, objects = 0;
    pt_err rc = sq_int(s, "PRAGMA user_version", version);
    if (rc == PT_OK)
        rc = sq_int(s, "PRAGMA application_id", &app_id);
    if (rc == PT_OK)
        rc = sq_int(s, "SELECT count(*) FROM sqlite_schema", &objects);
    if (rc != PT_OK)
        return rc;
    if (app_id != 0 && app_id != CAPF_STORE_SQLITE_APP_ID)
        return pt_fail(PT_ERR_FORMAT,
                       "%s is a SQLite database of another application, not a "
                       "CAPF store",
                       s->path);
    if (*version == 0 && objects > 0)
        return pt_fail(PT_ERR_FORMAT, "%s is a SQLite database but not a CAPF store", s->path);
    if (*version > CAPF_STORE_SQLITE_SCHEMA_VERSION)
        return pt_fail(PT_ERR_UNSUPPORTED,
                       "%s has store schema version %lld, newer than this phonetrust knows "
                       "(%d); use the phonetrust version that wrote it, or a newer one",
                       s->path, *version, CAPF_STORE_SQLITE_SCHEMA_VERSION);
    return PT_OK;
}

/*
 * Bring the schema up to date in one write transaction, so that two
 * processes opening a new store at once cannot both migrate it.
 */
static pt_err schema_migrate(capf_store_sqlite *s)
{
    long long version = 0;
    pt_err rc = sq_exec(s, "BEGIN IMMEDIATE", s->path);
    if (rc != PT_OK)
        return rc;
    rc = schema_check(s, &version);
    for (long long v = version; rc == PT_OK && v < CAPF_STORE_SQLITE_SCHEMA_VERSION; v++) {
        char what[64], pragma[64];
        snprintf(what, sizeof what, "store schema migration to version %lld", v + 1);
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %lld", v + 1);
        rc = sq_exec(s, migrations[v], what);
        if (rc == PT_OK)
            rc = sq_exec(s, pragma, what);
    }
    if (rc == PT_OK)
        return sq_exec(s, "COMMIT", s->path);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return pt_err_context(rc, "opening the CAPF store");
}

/* ---- transactions ------------------------------------------------------- */

static pt_err sq_begin(void *impl, bool write)
{
    capf_store_sqlite *s = impl;
    pthread_mutex_lock(&s->lock);
    /* IMMEDIATE takes the write lock now: waiting happens here, under busy_timeout,
     * and never as a failed lock upgrade in the middle of the transaction. */
    pt_err rc = sq_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", "starting a transaction");
    if (rc != PT_OK) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    s->in_tx = true;
    return PT_OK;
}

static void sq_rollback(void *impl)
{
    capf_store_sqlite *s = impl;
    if (!s->in_tx)
        return;
    /* Keep the caller's error detail: do not report through pt_fail here. */
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_tx = false;
    pthread_mutex_unlock(&s->lock);
}

static pt_err sq_commit(void *impl)
{
    capf_store_sqlite *s = impl;
    if (!s->in_tx)
        return pt_fail(PT_ERR_INTERNAL, "commit without a transaction");
    int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        pt_err err = capf_store_sqlite_fail(s, rc, "saving the change");
        sq_rollback(impl);
        return err;
    }
    s->in_tx = false;
    pthread_mutex_unlock(&s->lock);
    return PT_OK;
}

static void sq_close(void *impl)
{
    capf_store_sqlite *s = impl;
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    OPENSSL_free(s->path);
    OPENSSL_free(s);
}

static const capf_store_backend sqlite_backend = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .device_read = capf_store_sqlite_device_read,
    .device_insert = capf_store_sqlite_device_insert,
    .device_update = capf_store_sqlite_device_update,
    .device_remove = capf_store_sqlite_device_remove,
    .device_find = capf_store_sqlite_device_find,
    .lsc_set = capf_store_sqlite_lsc_set,
    .fetched_add = capf_store_sqlite_fetched_add,
    .certs_list = capf_store_sqlite_certs_list,
    .event_add = capf_store_sqlite_event_add,
    .events_list = capf_store_sqlite_events_list,
};

pt_err capf_store_sqlite_open(const char *path, bool create, const capf_store_backend **be,
                              void **impl)
{
    *be = NULL;
    *impl = NULL;
    pt_err rc = file_prepare(path, create);
    if (rc != PT_OK)
        return rc;
    capf_store_sqlite *s = OPENSSL_zalloc(sizeof *s);
    if (s == NULL || (s->path = OPENSSL_strdup(path)) == NULL) {
        OPENSSL_free(s);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    /* NOMUTEX: the mutex above already serialises every use of the connection. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    int src = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = capf_store_sqlite_fail(s, src, path);
        rc = pt_err_context(rc, "cannot open the CAPF store");
    }
    if (rc == PT_OK)
        rc = sq_settings(s);
    if (rc == PT_OK)
        rc = schema_migrate(s);
    if (rc != PT_OK) {
        sq_close(s);
        return rc;
    }
    *be = &sqlite_backend;
    *impl = s;
    return PT_OK;
}
