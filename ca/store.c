/*
 * The store's rules, once for every backend: URL dispatch, the
 * authentication-string counter, deadlines, what an update may change and
 * the bookkeeping of spec §13. Each public call is one backend transaction.
 */
#include "store.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cert.h"
#include "store_internal.h"

/* ---- opening ------------------------------------------------------------ */

static pt_err store_open(const char *url, bool create, capf_store **out)
{
    *out = NULL;
    static const char sqlite_scheme[] = "sqlite:";
    if (url == NULL || url[0] == '\0')
        return pt_fail(PT_ERR_USAGE, "no store URL given (e.g. %s)", CAPF_STORE_DEFAULT_URL);
    /* The URL may carry a password: it is never repeated in messages. */
    if (strncmp(url, "postgresql:", 11) == 0 || strncmp(url, "postgres:", 9) == 0)
        return pt_fail(PT_ERR_UNSUPPORTED,
                       "this build has no PostgreSQL backend; use a SQLite store (e.g. %s)",
                       CAPF_STORE_DEFAULT_URL);
    if (strncmp(url, sqlite_scheme, sizeof sqlite_scheme - 1) != 0)
        return pt_fail(PT_ERR_USAGE, "unknown store URL; use sqlite:PATH (e.g. %s)",
                       CAPF_STORE_DEFAULT_URL);
    const char *path = url + sizeof sqlite_scheme - 1;
    if (strncmp(path, "//", 2) == 0) {
        /* sqlite:///var/x is the URL form of sqlite:/var/x; there is no host part. */
        if (path[2] != '/')
            return pt_fail(PT_ERR_USAGE, "a sqlite:// URL names a local file: "
                                         "sqlite:///absolute/path or sqlite:PATH");
        path += 2;
    }
    if (path[0] == '\0')
        return pt_fail(PT_ERR_USAGE, "the store URL has no file name (e.g. %s)",
                       CAPF_STORE_DEFAULT_URL);

    capf_store *st = OPENSSL_zalloc(sizeof *st);
    if (st == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc = capf_store_sqlite_open(path, create, &st->be, &st->impl);
    if (rc != PT_OK) {
        OPENSSL_free(st);
        return rc;
    }
    *out = st;
    return PT_OK;
}

pt_err capf_store_open(const char *url, capf_store **out)
{
    return store_open(url, true, out);
}

pt_err capf_store_open_existing(const char *url, capf_store **out)
{
    return store_open(url, false, out);
}

void capf_store_close(capf_store *st)
{
    if (st == NULL)
        return;
    st->be->close(st->impl);
    OPENSSL_free(st);
}

void capf_store_set_clock(capf_store *st, time_t (*now)(void *arg), void *arg)
{
    st->clock = now;
    st->clock_arg = arg;
}

time_t capf_store_now(const capf_store *st)
{
    return st->clock != NULL ? st->clock(st->clock_arg) : time(NULL);
}

/* ---- freeing ------------------------------------------------------------ */

void capf_store_cert_free(capf_store_cert *c)
{
    if (c == NULL)
        return;
    OPENSSL_free(c->device);
    OPENSSL_free(c->serial);
    OPENSSL_free(c->subject);
    OPENSSL_free(c->issuer);
    OPENSSL_free(c->pem);
    memset(c, 0, sizeof *c);
}

void capf_store_certs_free(capf_store_cert *list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        capf_store_cert_free(&list[i]);
    OPENSSL_free(list);
}

void capf_store_device_free(capf_store_device *d)
{
    if (d == NULL)
        return;
    OPENSSL_free(d->description);
    OPENSSL_free(d->status_reason);
    capf_store_cert_free(&d->lsc);
    OPENSSL_cleanse(d, sizeof *d);
}

void capf_store_devices_free(capf_store_device *list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        capf_store_device_free(&list[i]);
    OPENSSL_free(list);
}

void capf_store_events_free(capf_store_event *list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++) {
        OPENSSL_free(list[i].event);
        OPENSSL_free(list[i].detail);
        OPENSSL_free(list[i].actor);
        OPENSSL_free(list[i].user);
        OPENSSL_free(list[i].session);
        OPENSSL_free(list[i].peer);
    }
    OPENSSL_free(list);
}

/* ---- transactions and helpers ------------------------------------------- */

pt_err capf_store_tx_begin(capf_store *st, bool write)
{
    return st->be->begin(st->impl, write);
}

/* Commit when everything went well, else roll back and keep the first error. */
pt_err capf_store_tx_end(capf_store *st, pt_err rc)
{
    if (rc == PT_OK)
        return st->be->commit(st->impl);
    st->be->rollback(st->impl);
    return rc;
}

/* Names that cannot exist are not looked up (§9.1: 1-64 printable characters). */
pt_err capf_store_name_check(const char *name)
{
    if (name == NULL || !capf_device_name_acceptable(name, strnlen(name, CAPF_DEVICE_NAME_MAX + 1)))
        return pt_fail(PT_ERR_NOT_FOUND,
                       "no such device: a device name is 1 to %d printable characters",
                       CAPF_DEVICE_NAME_MAX);
    return PT_OK;
}

pt_err capf_store_device_load(capf_store *st, const char *name, bool with_pem, capf_store_device *d,
                              int64_t *id)
{
    pt_err rc = st->be->device_read(st->impl, name, with_pem, d, id);
    if (rc == PT_ERR_NOT_FOUND)
        return pt_fail(rc, "device %s is not known; add it with capfctl add", name);
    return rc;
}

pt_err capf_store_device_edit(capf_store *st, const char *name, capf_store_device *d, int64_t *id,
                              time_t *now)
{
    pt_err rc = capf_store_name_check(name);
    if (rc == PT_OK)
        rc = capf_store_tx_begin(st, true);
    if (rc != PT_OK)
        return rc;
    *now = capf_store_now(st);
    rc = capf_store_device_load(st, name, false, d, id);
    return rc == PT_OK ? rc : capf_store_tx_end(st, rc);
}

pt_err capf_store_event_add(capf_store *st, const char *device, time_t now,
                            const capf_store_actor *who, const char *event, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    static const capf_store_actor unknown = {"unknown", NULL, NULL, NULL};
    return st->be->event_add(st->impl, device, now, event, detail, who ? who : &unknown);
}

void capf_store_status_set(capf_store_device *d, capf_device_op op, capf_device_state state,
                           const char *reason, time_t now)
{
    d->status_op = op;
    d->status_state = state;
    d->status_time = now;
    OPENSSL_free(d->status_reason);
    d->status_reason = OPENSSL_strdup(reason ? reason : "");
}

void capf_store_string_forget(capf_store_device *d)
{
    OPENSSL_cleanse(d->auth_string, sizeof d->auth_string);
    d->auth_failures = 0;
}

/* ---- capfd: authentication ---------------------------------------------- */

enum { AUTH_CMP_LEN = 64 };

/*
 * Both sides are copied into buffers of one fixed size, each led by its
 * length, and compared with CRYPTO_memcmp: the time taken depends neither on
 * where the strings differ nor on how long the configured string is (its
 * whole NUL-padded buffer is copied, and its length counted without a
 * branch). The given string's length is the phone's own and no secret.
 */
static bool auth_string_equal(const char stored[CAPF_DEVICE_AUTH_STRING_MAX + 1],
                              const uint8_t *given, size_t given_len)
{
    uint8_t a[AUTH_CMP_LEN], b[AUTH_CMP_LEN];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    size_t stored_len = 0;
    unsigned ended = 0;
    for (size_t i = 0; i < CAPF_DEVICE_AUTH_STRING_MAX + 1; i++) {
        ended |= stored[i] == '\0';
        stored_len += !ended;
    }
    a[0] = (uint8_t)stored_len;
    memcpy(a + 1, stored, CAPF_DEVICE_AUTH_STRING_MAX + 1);
    size_t copy = given_len < AUTH_CMP_LEN - 1 ? given_len : AUTH_CMP_LEN - 1;
    b[0] = (uint8_t)copy;
    if (copy > 0)
        memcpy(b + 1, given, copy);
    bool equal = CRYPTO_memcmp(a, b, sizeof a) == 0;
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    return equal && given_len < AUTH_CMP_LEN;
}

/* Decide one attempt on d (changed in place); returns the event name to record. */
static const char *auth_decide(capf_store_device *d, const uint8_t *given, size_t given_len,
                               unsigned max_failures, capf_store_auth_result *result, bool *write)
{
    *write = false;
    if (d->locked) {
        *result = CAPF_STORE_AUTH_LOCKED;
        return "auth-refused";
    }
    if (d->auth != CAPF_DEVICE_AUTH_STRING || d->auth_string[0] == '\0') {
        *result = CAPF_STORE_AUTH_REJECTED;
        return "auth-rejected";
    }
    *write = true;
    if (auth_string_equal(d->auth_string, given, given_len)) {
        d->auth_failures = 0;
        *result = CAPF_STORE_AUTH_ACCEPTED;
        return "auth-accepted";
    }
    d->auth_failures++;
    if (d->auth_failures >= max_failures) {
        d->locked = true;
        *result = CAPF_STORE_AUTH_LOCKED;
        return "auth-locked";
    }
    *result = CAPF_STORE_AUTH_REJECTED;
    return "auth-rejected";
}

static pt_err auth_record(capf_store *st, const capf_store_device *d, time_t now,
                          const capf_store_actor *who, const char *event, unsigned max_failures)
{
    if (strcmp(event, "auth-refused") == 0)
        return capf_store_event_add(st, d->name, now, who, event,
                                    "the device is locked after wrong authentication strings; "
                                    "unlock it with capfctl unlock");
    if (strcmp(event, "auth-accepted") == 0)
        return capf_store_event_add(st, d->name, now, who, event, "authentication string accepted");
    if (strcmp(event, "auth-locked") == 0)
        return capf_store_event_add(
            st, d->name, now, who, event,
            "wrong authentication string, %u in a row: the device is locked", d->auth_failures);
    if (d->auth != CAPF_DEVICE_AUTH_STRING || d->auth_string[0] == '\0')
        return capf_store_event_add(
            st, d->name, now, who, event,
            "no authentication string is configured (authentication mode %s)",
            capf_device_auth_name(d->auth));
    return capf_store_event_add(st, d->name, now, who, event,
                                "wrong authentication string (%u of %u)", d->auth_failures,
                                max_failures);
}

pt_err capf_store_auth_attempt(capf_store *st, const char *device, const void *given,
                               size_t given_len, unsigned max_failures, const capf_store_actor *who,
                               capf_store_auth_result *result)
{
    *result = CAPF_STORE_AUTH_REJECTED;
    if (max_failures == 0 || (given == NULL && given_len > 0))
        return pt_fail(PT_ERR_USAGE, "authentication attempt: bad arguments");
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    bool write = false;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    const char *event = auth_decide(&d, given, given_len, max_failures, result, &write);
    if (write) {
        d.changed = now;
        rc = st->be->device_update(st->impl, id, &d);
    }
    if (rc == PT_OK)
        rc = auth_record(st, &d, now, who, event, max_failures);
    capf_store_device_free(&d);
    rc = capf_store_tx_end(st, rc);
    if (rc != PT_OK)
        *result = CAPF_STORE_AUTH_REJECTED;
    return rc;
}

/* ---- capfd: operations --------------------------------------------------- */

static bool deadline_passed(const capf_store_device *d, time_t now)
{
    return d->operation != CAPF_DEVICE_OP_NONE && d->has_deadline && now > d->deadline;
}

static bool marked_expired(const capf_store_device *d)
{
    return d->status_op == d->operation && d->status_state == CAPF_DEVICE_STATE_FAILED &&
           d->status_reason != NULL && strcmp(d->status_reason, "expired") == 0;
}

/* Mark d's operation "failed: expired" unless it already is. */
static pt_err expire(capf_store *st, int64_t id, capf_store_device *d, time_t now,
                     const capf_store_actor *who)
{
    if (marked_expired(d))
        return PT_OK;
    char when[21];
    pt_time_iso8601(d->deadline, when);
    capf_store_status_set(d, d->operation, CAPF_DEVICE_STATE_FAILED, "expired", now);
    d->changed = now;
    pt_err rc = st->be->device_update(st->impl, id, d);
    if (rc == PT_OK)
        rc = capf_store_event_add(st, d->name, now, who, "op-expired",
                                  "%s not done by its deadline %s",
                                  capf_device_op_name(d->operation), when);
    return rc;
}

pt_err capf_store_op_check_deadline(capf_store *st, const char *device, const capf_store_actor *who,
                                    bool *expired)
{
    *expired = false;
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    if (deadline_passed(&d, now)) {
        *expired = true;
        rc = expire(st, id, &d, now, who);
    }
    capf_store_device_free(&d);
    rc = capf_store_tx_end(st, rc);
    if (rc != PT_OK)
        *expired = false;
    return rc;
}

pt_err capf_store_op_started(capf_store *st, const char *device, capf_device_op op,
                             const capf_store_actor *who)
{
    if (op == CAPF_DEVICE_OP_NONE)
        return pt_fail(PT_ERR_USAGE, "there is no operation 'none' to start");
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    bool expired = false;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    if (d.operation != op) {
        rc = pt_fail(PT_ERR_REFUSED, "device %s: the scheduled operation is %s, not %s", device,
                     capf_device_op_name(d.operation), capf_device_op_name(op));
    } else if (deadline_passed(&d, now)) {
        expired = true;
        rc = expire(st, id, &d, now, who);
    } else {
        capf_store_status_set(&d, op, CAPF_DEVICE_STATE_PENDING, NULL, now);
        d.changed = now;
        rc = st->be->device_update(st->impl, id, &d);
        if (rc == PT_OK)
            rc = capf_store_event_add(st, device, now, who, "op-started", "%s started",
                                      capf_device_op_name(op));
    }
    capf_store_device_free(&d);
    rc = capf_store_tx_end(st, rc);
    /* The expiry is recorded (committed) and then reported. */
    if (rc == PT_OK && expired)
        return pt_fail(PT_ERR_TIMEOUT, "device %s: the deadline of its %s operation has passed",
                       device, capf_device_op_name(op));
    return rc;
}

/* A capf_store_cert for x, with its PEM; free with capf_store_cert_free. */
static pt_err cert_from_x509(X509 *x, capf_store_cert_kind kind, const char *device, time_t now,
                             capf_store_cert *c)
{
    memset(c, 0, sizeof *c);
    if (x == NULL)
        return pt_fail(PT_ERR_USAGE, "no certificate given");
    pt_cert_info ci;
    pt_err rc = pt_cert_info_get(x, &ci);
    if (rc != PT_OK)
        return rc;
    c->kind = kind;
    c->serial = ci.serial;
    c->subject = ci.subject;
    c->issuer = ci.issuer;
    ci.serial = ci.subject = ci.issuer = NULL;
    snprintf(c->key_type, sizeof c->key_type, "%s", ci.key);
    c->not_before = ci.not_before_t;
    c->not_after = ci.not_after_t;
    c->at = now;
    pt_cert_info_free(&ci);
    c->device = OPENSSL_strdup(device);
    rc = c->device ? pt_cert_to_pem(x, &c->pem) : pt_fail(PT_ERR_NOMEM, "out of memory");
    if (rc != PT_OK)
        capf_store_cert_free(c);
    return rc;
}

pt_err capf_store_cert_issued(capf_store *st, const char *device, X509 *cert,
                              const capf_store_actor *who)
{
    capf_store_cert c;
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    rc = cert_from_x509(cert, CAPF_STORE_CERT_ISSUED, device, now, &c);
    if (rc != PT_OK) {
        capf_store_device_free(&d);
        return capf_store_tx_end(st, rc);
    }
    if (d.operation != CAPF_DEVICE_OP_INSTALL) {
        rc = pt_fail(PT_ERR_REFUSED,
                     "device %s: the scheduled operation changed to %s; the certificate was "
                     "not recorded and must not be sent",
                     device, capf_device_op_name(d.operation));
    } else {
        rc = st->be->lsc_set(st->impl, id, &c, now);
        d.operation = CAPF_DEVICE_OP_NONE; /* §13: reset even if the phone fails to store it */
        d.changed = now;
        if (rc == PT_OK)
            rc = st->be->device_update(st->impl, id, &d);
        char until[21];
        pt_time_iso8601(c.not_after, until);
        if (rc == PT_OK)
            rc =
                capf_store_event_add(st, device, now, who, "cert-issued",
                                     "LSC serial %s, %s, valid to %s", c.serial, c.key_type, until);
    }
    capf_store_device_free(&d);
    capf_store_cert_free(&c);
    return capf_store_tx_end(st, rc);
}

pt_err capf_store_cert_fetched(capf_store *st, const char *device, X509 *cert,
                               capf_store_cert_kind kind, const capf_store_actor *who)
{
    if (kind != CAPF_STORE_CERT_FETCHED_LSC && kind != CAPF_STORE_CERT_FETCHED_MIC)
        return pt_fail(PT_ERR_USAGE, "a fetched certificate is an LSC or a MIC");
    capf_store_cert c;
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    rc = cert_from_x509(cert, kind, device, now, &c);
    if (rc != PT_OK) {
        capf_store_device_free(&d);
        return capf_store_tx_end(st, rc);
    }
    rc = st->be->fetched_add(st->impl, &c);
    if (d.operation == CAPF_DEVICE_OP_TROUBLESHOOT)
        d.operation = CAPF_DEVICE_OP_NONE;
    d.changed = now;
    if (rc == PT_OK)
        rc = st->be->device_update(st->impl, id, &d);
    if (rc == PT_OK)
        rc = capf_store_event_add(
            st, device, now, who, "cert-fetched", "%s serial %s, %s, issuer %s",
            kind == CAPF_STORE_CERT_FETCHED_LSC ? "LSC" : "MIC", c.serial, c.key_type, c.issuer);
    capf_store_device_free(&d);
    capf_store_cert_free(&c);
    return capf_store_tx_end(st, rc);
}

pt_err capf_store_lsc_deleted(capf_store *st, const char *device, const capf_store_actor *who)
{
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    char serial[128];
    snprintf(serial, sizeof serial, "%s", d.has_lsc && d.lsc.serial ? d.lsc.serial : "none");
    if (d.has_lsc)
        rc = st->be->lsc_set(st->impl, id, NULL, now);
    if (d.operation == CAPF_DEVICE_OP_DELETE)
        d.operation = CAPF_DEVICE_OP_NONE;
    d.changed = now;
    if (rc == PT_OK)
        rc = st->be->device_update(st->impl, id, &d);
    if (rc == PT_OK)
        rc = capf_store_event_add(st, device, now, who, "lsc-deleted",
                                  "the phone deleted its LSC (serial %s)", serial);
    capf_store_device_free(&d);
    return capf_store_tx_end(st, rc);
}

pt_err capf_store_op_succeeded(capf_store *st, const char *device, capf_device_op op,
                               const capf_store_actor *who)
{
    if (op == CAPF_DEVICE_OP_NONE)
        return pt_fail(PT_ERR_USAGE, "there is no operation 'none' to succeed");
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    capf_store_status_set(&d, op, CAPF_DEVICE_STATE_SUCCESS, NULL, now);
    bool used = d.auth == CAPF_DEVICE_AUTH_STRING && d.auth_string[0] != '\0';
    if (used)
        capf_store_string_forget(&d); /* one-time: it has served its operation */
    d.changed = now;
    rc = st->be->device_update(st->impl, id, &d);
    if (rc == PT_OK)
        rc = capf_store_event_add(
            st, device, now, who, "op-succeeded", "%s succeeded%s", capf_device_op_name(op),
            used ? "; the authentication string was used and is forgotten" : "");
    capf_store_device_free(&d);
    return capf_store_tx_end(st, rc);
}

/* reason as one printable line of bounded length (it comes from capfd's own text). */
static void reason_clean(const char *reason, char out[CAPF_DEVICE_REASON_MAX + 1])
{
    size_t i = 0;
    for (; reason != NULL && reason[i] != '\0' && i < CAPF_DEVICE_REASON_MAX; i++) {
        unsigned char ch = (unsigned char)reason[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[i] = '\0';
}

pt_err capf_store_op_failed(capf_store *st, const char *device, capf_device_op op,
                            const char *reason, const capf_store_actor *who)
{
    if (op == CAPF_DEVICE_OP_NONE)
        return pt_fail(PT_ERR_USAGE, "there is no operation 'none' to fail");
    char why[CAPF_DEVICE_REASON_MAX + 1];
    reason_clean(reason, why);
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    capf_store_status_set(&d, op, CAPF_DEVICE_STATE_FAILED, why, now);
    d.changed = now;
    rc = st->be->device_update(st->impl, id, &d);
    if (rc == PT_OK)
        rc = capf_store_event_add(st, device, now, who, "op-failed", "%s failed: %s",
                                  capf_device_op_name(op), why[0] ? why : "no reason given");
    capf_store_device_free(&d);
    return capf_store_tx_end(st, rc);
}
