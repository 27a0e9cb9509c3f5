/*
 * The SQLite backend's row primitives: devices, certificates and history
 * rows to and from the structs of store.h. Called only inside a transaction
 * (store_sqlite.c), so each function is one step of a larger change.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store_sqlite.h"

typedef capf_store_sqlite sq;

static pt_err prepare(sq *s, const char *sql, sqlite3_stmt **st)
{
    *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? PT_OK : capf_store_sqlite_fail(s, rc, "preparing a store query");
}

/* Report a failed bind (binds fail only for memory or a bug) and finalize. */
static pt_err bound(sq *s, sqlite3_stmt *st, int bind_rc)
{
    if (bind_rc == SQLITE_OK)
        return PT_OK;
    sqlite3_finalize(st);
    return capf_store_sqlite_fail(s, bind_rc, "binding a store query");
}

/* Run a statement that returns no rows, and finalize it. */
static pt_err step_done(sq *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    pt_err err = rc == SQLITE_DONE ? PT_OK : capf_store_sqlite_fail(s, rc, what);
    sqlite3_finalize(st);
    return err;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static int bind_time(sqlite3_stmt *st, int i, bool present, time_t t)
{
    return present ? sqlite3_bind_int64(st, i, (sqlite3_int64)t) : sqlite3_bind_null(st, i);
}

/* Room for need elements of size bytes in *arr (new ones zeroed). */
static pt_err grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return PT_OK;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap < need)
        ncap = need;
    if (ncap > SIZE_MAX / size)
        return pt_fail(PT_ERR_LIMIT, "too many rows");
    uint8_t *p = OPENSSL_realloc(*arr, ncap * size);
    if (p == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    memset(p + *cap * size, 0, (ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return PT_OK;
}

/* ---- reading columns ---------------------------------------------------- */

/* A copy of a text column ("" for NULL); NULL only when out of memory. */
static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return OPENSSL_strdup(t != NULL ? (const char *)t : "");
}

/* A copy of a text column, NULL for NULL; *oom set when out of memory. */
static char *col_dup_opt(sqlite3_stmt *st, int i, bool *oom)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    char *copy = col_dup(st, i);
    if (copy == NULL)
        *oom = true;
    return copy;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

static bool col_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static time_t col_time(sqlite3_stmt *st, int i)
{
    return (time_t)sqlite3_column_int64(st, i);
}

/* ---- devices ------------------------------------------------------------ */

#define DEVICE_SELECT                                                                              \
    "SELECT d.id, d.name, d.description, d.operation, d.auth_mode, d.auth_string,"                 \
    " d.auth_failures, d.locked, d.key_spec, d.deadline, d.status_op, d.status_state,"             \
    " d.status_reason, d.status_time, d.created, d.changed, d.lsc_cert_id, c.serial,"              \
    " c.subject, c.issuer, c.key_type, c.not_before, c.not_after, c.issued_at, "
#define DEVICE_FROM " FROM devices d LEFT JOIN certificates c ON c.id = d.lsc_cert_id"

enum device_col {
    DC_ID,
    DC_NAME,
    DC_DESCRIPTION,
    DC_OPERATION,
    DC_AUTH,
    DC_STRING,
    DC_FAILURES,
    DC_LOCKED,
    DC_KEY,
    DC_DEADLINE,
    DC_STATUS_OP,
    DC_STATUS_STATE,
    DC_STATUS_REASON,
    DC_STATUS_TIME,
    DC_CREATED,
    DC_CHANGED,
    DC_LSC_ID,
    DC_SERIAL,
    DC_SUBJECT,
    DC_ISSUER,
    DC_KEY_TYPE,
    DC_NOT_BEFORE,
    DC_NOT_AFTER,
    DC_ISSUED_AT,
    DC_PEM,
};

static pt_err bad_value(const char *device, const char *column, const char *value)
{
    return pt_fail(PT_ERR_FORMAT, "the store holds an invalid %s '%.40s' for device %.64s", column,
                   value, device);
}

/* The enumerated settings of a device row. */
static pt_err row_settings(sqlite3_stmt *st, capf_store_device *d)
{
    const char *v = col_text(st, DC_OPERATION);
    if (capf_device_op_parse(v, &d->operation) != PT_OK)
        return bad_value(d->name, "operation", v);
    v = col_text(st, DC_AUTH);
    if (capf_device_auth_parse(v, &d->auth) != PT_OK)
        return bad_value(d->name, "authentication mode", v);
    v = col_text(st, DC_KEY);
    if (capf_device_key_parse(v, &d->key) != PT_OK)
        return bad_value(d->name, "key specification", v);
    v = col_text(st, DC_STATUS_STATE);
    if (capf_device_state_parse(v, &d->status_state) != PT_OK)
        return bad_value(d->name, "status", v);
    v = col_text(st, DC_STATUS_OP);
    if (!col_null(st, DC_STATUS_OP) && capf_device_op_parse(v, &d->status_op) != PT_OK)
        return bad_value(d->name, "status operation", v);
    v = col_text(st, DC_STRING);
    if (strlen(v) > CAPF_DEVICE_AUTH_STRING_MAX)
        return bad_value(d->name, "authentication string length", "too long");
    memcpy(d->auth_string, v, strlen(v) + 1);
    return PT_OK;
}

static pt_err row_lsc(sqlite3_stmt *st, capf_store_device *d)
{
    capf_store_cert *c = &d->lsc;
    if (col_null(st, DC_LSC_ID))
        return PT_OK;
    d->has_lsc = true;
    c->kind = CAPF_STORE_CERT_ISSUED;
    c->current = true;
    c->device = OPENSSL_strdup(d->name);
    c->serial = col_dup(st, DC_SERIAL);
    c->subject = col_dup(st, DC_SUBJECT);
    c->issuer = col_dup(st, DC_ISSUER);
    snprintf(c->key_type, sizeof c->key_type, "%s", col_text(st, DC_KEY_TYPE));
    c->not_before = col_time(st, DC_NOT_BEFORE);
    c->not_after = col_time(st, DC_NOT_AFTER);
    c->at = col_time(st, DC_ISSUED_AT);
    bool oom = false;
    c->pem = col_dup_opt(st, DC_PEM, &oom);
    if (oom || !c->device || !c->serial || !c->subject || !c->issuer)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    return PT_OK;
}

/* Fill d from the current row of a DEVICE_SELECT; on failure d holds nothing. */
static pt_err row_device(sqlite3_stmt *st, capf_store_device *d, int64_t *id)
{
    memset(d, 0, sizeof *d);
    const char *name = col_text(st, DC_NAME);
    if (strlen(name) > CAPF_DEVICE_NAME_MAX)
        return pt_fail(PT_ERR_FORMAT, "the store holds a device name over %d characters",
                       CAPF_DEVICE_NAME_MAX);
    memcpy(d->name, name, strlen(name) + 1);
    if (id != NULL)
        *id = sqlite3_column_int64(st, DC_ID);
    pt_err rc = row_settings(st, d);
    if (rc == PT_OK) {
        d->description = col_dup(st, DC_DESCRIPTION);
        d->status_reason = col_dup(st, DC_STATUS_REASON);
        if (d->description == NULL || d->status_reason == NULL)
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    if (rc == PT_OK)
        rc = row_lsc(st, d);
    if (rc != PT_OK) {
        capf_store_device_free(d);
        return rc;
    }
    d->auth_failures = (unsigned)sqlite3_column_int64(st, DC_FAILURES);
    d->locked = sqlite3_column_int64(st, DC_LOCKED) != 0;
    d->has_deadline = !col_null(st, DC_DEADLINE);
    d->deadline = col_time(st, DC_DEADLINE);
    d->status_time = col_time(st, DC_STATUS_TIME);
    d->created = col_time(st, DC_CREATED);
    d->changed = col_time(st, DC_CHANGED);
    return PT_OK;
}

pt_err capf_store_sqlite_device_read(void *impl, const char *name, bool with_pem,
                                     capf_store_device *out, int64_t *id)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    *id = 0;
    const char *sql = with_pem ? DEVICE_SELECT "c.pem" DEVICE_FROM " WHERE d.name = ?1"
                               : DEVICE_SELECT "NULL" DEVICE_FROM " WHERE d.name = ?1";
    pt_err rc = prepare(s, sql, &st);
    if (rc == PT_OK)
        rc = bound(s, st, bind_text(st, 1, name));
    if (rc != PT_OK)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = row_device(st, out, id);
    else if (src == SQLITE_DONE)
        rc = pt_fail(PT_ERR_NOT_FOUND, "no such device");
    else
        rc = capf_store_sqlite_fail(s, src, "reading a device");
    sqlite3_finalize(st);
    return rc;
}

/* Bind ?2..?15 to d's settings and status (?1 is the name or the row id). */
static int bind_device(sqlite3_stmt *st, const capf_store_device *d)
{
    char key[CAPF_DEVICE_KEY_TEXT_MAX];
    capf_device_key_format(&d->key, key);
    bool has_status = d->status_state != CAPF_DEVICE_STATE_NONE;
    int b = bind_text(st, 2, d->description ? d->description : "");
    b |= bind_text(st, 3, capf_device_op_name(d->operation));
    b |= bind_text(st, 4, capf_device_auth_name(d->auth));
    b |= bind_text(st, 5, d->auth_string[0] ? d->auth_string : NULL);
    b |= sqlite3_bind_int64(st, 6, d->auth_failures);
    b |= sqlite3_bind_int(st, 7, d->locked ? 1 : 0);
    b |= bind_text(st, 8, key);
    b |= bind_time(st, 9, d->has_deadline, d->deadline);
    b |= bind_text(st, 10, has_status ? capf_device_op_name(d->status_op) : NULL);
    b |= bind_text(st, 11, capf_device_state_name(d->status_state));
    b |= bind_text(st, 12, d->status_reason ? d->status_reason : "");
    b |= bind_time(st, 13, has_status, d->status_time);
    b |= sqlite3_bind_int64(st, 14, (sqlite3_int64)d->created);
    b |= sqlite3_bind_int64(st, 15, (sqlite3_int64)d->changed);
    return b;
}

pt_err capf_store_sqlite_device_insert(void *impl, const capf_store_device *d, int64_t *id)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    *id = 0;
    pt_err rc = prepare(s,
                        "INSERT INTO devices (name, description, operation, auth_mode,"
                        " auth_string, auth_failures, locked, key_spec, deadline, status_op,"
                        " status_state, status_reason, status_time, created, changed)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                        " ?15)",
                        &st);
    if (rc == PT_OK)
        rc = bound(s, st, bind_text(st, 1, d->name) | bind_device(st, d));
    if (rc == PT_OK)
        rc = step_done(s, st, "adding a device");
    if (rc == PT_OK)
        *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

pt_err capf_store_sqlite_device_update(void *impl, int64_t id, const capf_store_device *d)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    pt_err rc = prepare(s,
                        "UPDATE devices SET description = ?2, operation = ?3, auth_mode = ?4,"
                        " auth_string = ?5, auth_failures = ?6, locked = ?7, key_spec = ?8,"
                        " deadline = ?9, status_op = ?10, status_state = ?11,"
                        " status_reason = ?12, status_time = ?13, created = ?14, changed = ?15"
                        " WHERE id = ?1",
                        &st);
    if (rc == PT_OK)
        rc = bound(s, st, sqlite3_bind_int64(st, 1, id) | bind_device(st, d));
    if (rc == PT_OK)
        rc = step_done(s, st, "changing a device");
    if (rc == PT_OK && sqlite3_changes(s->db) != 1)
        rc = pt_fail(PT_ERR_INTERNAL, "device %s vanished during its change", d->name);
    return rc;
}

pt_err capf_store_sqlite_device_remove(void *impl, int64_t id)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    pt_err rc = prepare(s, "DELETE FROM devices WHERE id = ?1", &st);
    if (rc == PT_OK)
        rc = bound(s, st, sqlite3_bind_int64(st, 1, id));
    if (rc == PT_OK)
        rc = step_done(s, st, "deleting a device");
    return rc;
}

/* The WHERE clause for f, with its parameters numbered from ?1 in the order bound below. */
static void filter_sql(const capf_store_filter *f, char *sql, size_t len)
{
    int n = 0;
    snprintf(sql, len, "%s", DEVICE_SELECT "NULL" DEVICE_FROM " WHERE 1");
    if (f->by_operation)
        snprintf(sql + strlen(sql), len - strlen(sql), " AND d.operation = ?%d", ++n);
    if (f->by_state)
        snprintf(sql + strlen(sql), len - strlen(sql), " AND d.status_state = ?%d", ++n);
    if (f->by_status_op)
        snprintf(sql + strlen(sql), len - strlen(sql), " AND d.status_op = ?%d", ++n);
    if (f->auth_string != NULL)
        snprintf(sql + strlen(sql), len - strlen(sql), " AND d.auth_string = ?%d", ++n);
    snprintf(sql + strlen(sql), len - strlen(sql), " ORDER BY d.name");
}

static int filter_bind(sqlite3_stmt *st, const capf_store_filter *f)
{
    int n = 0, b = SQLITE_OK;
    if (f->by_operation)
        b |= bind_text(st, ++n, capf_device_op_name(f->operation));
    if (f->by_state)
        b |= bind_text(st, ++n, capf_device_state_name(f->state));
    if (f->by_status_op)
        b |= bind_text(st, ++n, capf_device_op_name(f->status_op));
    if (f->auth_string != NULL)
        b |= bind_text(st, ++n, f->auth_string);
    return b;
}

pt_err capf_store_sqlite_device_find(void *impl, const capf_store_filter *f,
                                     capf_store_device **out, size_t *n)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    char sql[1024];
    capf_store_device *list = NULL;
    size_t count = 0, cap = 0;
    *out = NULL;
    *n = 0;
    filter_sql(f, sql, sizeof sql);
    pt_err rc = prepare(s, sql, &st);
    if (rc == PT_OK)
        rc = bound(s, st, filter_bind(st, f));
    if (rc != PT_OK)
        return rc;
    int src = SQLITE_DONE;
    while (rc == PT_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = grow((void **)&list, &cap, count + 1, sizeof *list);
        if (rc == PT_OK)
            rc = row_device(st, &list[count], NULL);
        if (rc == PT_OK)
            count++;
    }
    if (rc == PT_OK && src != SQLITE_DONE)
        rc = capf_store_sqlite_fail(s, src, "listing devices");
    sqlite3_finalize(st);
    if (rc != PT_OK) {
        capf_store_devices_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return PT_OK;
}

/* ---- certificates ------------------------------------------------------- */

static pt_err current_lsc_id(sq *s, int64_t id, int64_t *cert_id)
{
    sqlite3_stmt *st = NULL;
    *cert_id = 0;
    pt_err rc = prepare(s, "SELECT lsc_cert_id FROM devices WHERE id = ?1", &st);
    if (rc == PT_OK)
        rc = bound(s, st, sqlite3_bind_int64(st, 1, id));
    if (rc != PT_OK)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *cert_id = sqlite3_column_int64(st, 0);
    else
        rc = src == SQLITE_DONE
                 ? pt_fail(PT_ERR_INTERNAL, "device row %lld vanished", (long long)id)
                 : capf_store_sqlite_fail(s, src, "reading a device's LSC");
    sqlite3_finalize(st);
    return rc;
}

/* Bind ?1..?8: device, serial, subject, issuer, key type, validity, PEM. */
static int bind_cert(sqlite3_stmt *st, const capf_store_cert *c)
{
    int b = bind_text(st, 1, c->device);
    b |= bind_text(st, 2, c->serial);
    b |= bind_text(st, 3, c->subject);
    b |= bind_text(st, 4, c->issuer);
    b |= bind_text(st, 5, c->key_type);
    b |= sqlite3_bind_int64(st, 6, (sqlite3_int64)c->not_before);
    b |= sqlite3_bind_int64(st, 7, (sqlite3_int64)c->not_after);
    b |= bind_text(st, 8, c->pem);
    return b;
}

static pt_err cert_insert(sq *s, const capf_store_cert *c, int64_t *cert_id)
{
    sqlite3_stmt *st = NULL;
    pt_err rc = prepare(s,
                        "INSERT INTO certificates (device, serial, subject, issuer, key_type,"
                        " not_before, not_after, pem, issued_at)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        &st);
    if (rc == PT_OK)
        rc = bound(s, st, bind_cert(st, c) | sqlite3_bind_int64(st, 9, (sqlite3_int64)c->at));
    if (rc == PT_OK)
        rc = step_done(s, st, "recording a certificate");
    *cert_id = rc == PT_OK ? sqlite3_last_insert_rowid(s->db) : 0;
    return rc;
}

static pt_err cert_supersede(sq *s, int64_t old_id, int64_t new_id, time_t now)
{
    sqlite3_stmt *st = NULL;
    pt_err rc = prepare(s,
                        "UPDATE certificates SET superseded_at = ?2, superseded_by = ?3"
                        " WHERE id = ?1",
                        &st);
    if (rc == PT_OK)
        rc = bound(s, st,
                   sqlite3_bind_int64(st, 1, old_id) |
                       sqlite3_bind_int64(st, 2, (sqlite3_int64)now) |
                       (new_id ? sqlite3_bind_int64(st, 3, new_id) : sqlite3_bind_null(st, 3)));
    if (rc == PT_OK)
        rc = step_done(s, st, "marking the previous LSC superseded");
    return rc;
}

pt_err capf_store_sqlite_lsc_set(void *impl, int64_t id, const capf_store_cert *cert, time_t now)
{
    sq *s = impl;
    int64_t old_id = 0, new_id = 0;
    sqlite3_stmt *st = NULL;
    pt_err rc = current_lsc_id(s, id, &old_id);
    if (rc == PT_OK && cert != NULL)
        rc = cert_insert(s, cert, &new_id);
    if (rc == PT_OK && old_id != 0)
        rc = cert_supersede(s, old_id, new_id, now);
    if (rc == PT_OK)
        rc = prepare(s, "UPDATE devices SET lsc_cert_id = ?2 WHERE id = ?1", &st);
    if (rc == PT_OK)
        rc = bound(s, st,
                   sqlite3_bind_int64(st, 1, id) |
                       (new_id ? sqlite3_bind_int64(st, 2, new_id) : sqlite3_bind_null(st, 2)));
    if (rc == PT_OK)
        rc = step_done(s, st, "setting the device's LSC");
    return rc;
}

pt_err capf_store_sqlite_fetched_add(void *impl, const capf_store_cert *cert)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    pt_err rc = prepare(s,
                        "INSERT INTO fetched_certificates (device, serial, subject, issuer,"
                        " key_type, not_before, not_after, pem, fetched_at, kind)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        &st);
    const char *kind = cert->kind == CAPF_STORE_CERT_FETCHED_MIC ? "MIC" : "LSC";
    if (rc == PT_OK)
        rc = bound(s, st,
                   bind_cert(st, cert) | sqlite3_bind_int64(st, 9, (sqlite3_int64)cert->at) |
                       bind_text(st, 10, kind));
    if (rc == PT_OK)
        rc = step_done(s, st, "recording a fetched certificate");
    return rc;
}

enum cert_col {
    CC_KIND,
    CC_SERIAL,
    CC_SUBJECT,
    CC_ISSUER,
    CC_KEY_TYPE,
    CC_NOT_BEFORE,
    CC_NOT_AFTER,
    CC_AT,
    CC_CURRENT,
    CC_SUPERSEDED,
    CC_PEM,
    CC_ID,
};

static pt_err row_cert(sqlite3_stmt *st, const char *device, capf_store_cert *c)
{
    memset(c, 0, sizeof *c);
    int kind = sqlite3_column_int(st, CC_KIND);
    c->kind = kind == 2   ? CAPF_STORE_CERT_FETCHED_MIC
              : kind == 1 ? CAPF_STORE_CERT_FETCHED_LSC
                          : CAPF_STORE_CERT_ISSUED;
    c->device = OPENSSL_strdup(device);
    c->serial = col_dup(st, CC_SERIAL);
    c->subject = col_dup(st, CC_SUBJECT);
    c->issuer = col_dup(st, CC_ISSUER);
    c->pem = col_dup(st, CC_PEM);
    snprintf(c->key_type, sizeof c->key_type, "%s", col_text(st, CC_KEY_TYPE));
    c->not_before = col_time(st, CC_NOT_BEFORE);
    c->not_after = col_time(st, CC_NOT_AFTER);
    c->at = col_time(st, CC_AT);
    c->current = sqlite3_column_int(st, CC_CURRENT) != 0;
    c->superseded_at = col_time(st, CC_SUPERSEDED);
    if (!c->device || !c->serial || !c->subject || !c->issuer || !c->pem) {
        capf_store_cert_free(c);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    return PT_OK;
}

pt_err capf_store_sqlite_certs_list(void *impl, const char *device, capf_store_cert **out,
                                    size_t *n)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    capf_store_cert *list = NULL;
    size_t count = 0, cap = 0;
    *out = NULL;
    *n = 0;
    pt_err rc =
        prepare(s,
                "SELECT 0, c.serial, c.subject, c.issuer, c.key_type, c.not_before, c.not_after,"
                " c.issued_at, EXISTS (SELECT 1 FROM devices d WHERE d.lsc_cert_id = c.id),"
                " c.superseded_at, c.pem, c.id FROM certificates c WHERE c.device = ?1"
                " UNION ALL"
                " SELECT CASE f.kind WHEN 'MIC' THEN 2 ELSE 1 END, f.serial, f.subject, f.issuer,"
                " f.key_type, f.not_before, f.not_after, f.fetched_at, 0, NULL, f.pem, f.id"
                " FROM fetched_certificates f WHERE f.device = ?1"
                " ORDER BY 1, 8, 12",
                &st);
    if (rc == PT_OK)
        rc = bound(s, st, bind_text(st, 1, device));
    if (rc != PT_OK)
        return rc;
    int src = SQLITE_DONE;
    while (rc == PT_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = grow((void **)&list, &cap, count + 1, sizeof *list);
        if (rc == PT_OK)
            rc = row_cert(st, device, &list[count]);
        if (rc == PT_OK)
            count++;
    }
    if (rc == PT_OK && src != SQLITE_DONE)
        rc = capf_store_sqlite_fail(s, src, "listing certificates");
    sqlite3_finalize(st);
    if (rc != PT_OK) {
        capf_store_certs_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return PT_OK;
}

/* ---- history ------------------------------------------------------------ */

pt_err capf_store_sqlite_event_add(void *impl, const char *device, time_t at, const char *event,
                                   const char *detail, const capf_store_actor *who)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    pt_err rc = prepare(s,
                        "INSERT INTO history (device, at, event, detail, actor, actor_user,"
                        " session, peer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        &st);
    if (rc == PT_OK)
        rc = bound(s, st,
                   bind_text(st, 1, device) | sqlite3_bind_int64(st, 2, (sqlite3_int64)at) |
                       bind_text(st, 3, event) | bind_text(st, 4, detail) |
                       bind_text(st, 5, who->program ? who->program : "unknown") |
                       bind_text(st, 6, who->user) | bind_text(st, 7, who->session) |
                       bind_text(st, 8, who->peer));
    if (rc == PT_OK)
        rc = step_done(s, st, "recording a history event");
    return rc;
}

static pt_err row_event(sqlite3_stmt *st, capf_store_event *e)
{
    bool oom = false;
    memset(e, 0, sizeof *e);
    e->at = col_time(st, 0);
    e->event = col_dup(st, 1);
    e->detail = col_dup(st, 2);
    e->actor = col_dup(st, 3);
    e->user = col_dup_opt(st, 4, &oom);
    e->session = col_dup_opt(st, 5, &oom);
    e->peer = col_dup_opt(st, 6, &oom);
    if (oom || !e->event || !e->detail || !e->actor)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    return PT_OK;
}

pt_err capf_store_sqlite_events_list(void *impl, const char *device, size_t limit,
                                     capf_store_event **out, size_t *n)
{
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    capf_store_event *list = NULL;
    size_t count = 0, cap = 0;
    *out = NULL;
    *n = 0;
    pt_err rc = prepare(s,
                        "SELECT at, event, detail, actor, actor_user, session, peer FROM"
                        " (SELECT * FROM history WHERE device = ?1 ORDER BY id DESC LIMIT ?2)"
                        " ORDER BY id",
                        &st);
    sqlite3_int64 lim = limit == 0 || limit > INT64_MAX ? -1 : (sqlite3_int64)limit;
    if (rc == PT_OK)
        rc = bound(s, st, bind_text(st, 1, device) | sqlite3_bind_int64(st, 2, lim));
    if (rc != PT_OK)
        return rc;
    int src = SQLITE_DONE;
    while (rc == PT_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = grow((void **)&list, &cap, count + 1, sizeof *list);
        if (rc == PT_OK && list != NULL) {
            /* Counted even when incomplete, so that the free below sees it. */
            rc = row_event(st, &list[count]);
            count++;
        }
    }
    if (rc == PT_OK && src != SQLITE_DONE)
        rc = capf_store_sqlite_fail(s, src, "listing history");
    sqlite3_finalize(st);
    if (rc != PT_OK) {
        capf_store_events_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return PT_OK;
}
