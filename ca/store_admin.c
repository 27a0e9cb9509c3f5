/*
 * Reading a device (capfd and capfctl), and the calls capfctl makes: adding
 * and changing devices (also in bulk, in one transaction), deleting,
 * unlocking, finding and listing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cert.h"
#include "store.h"
#include "store_internal.h"

static pt_err device_get(capf_store *st, const char *name, bool with_pem, capf_store_device *out)
{
    memset(out, 0, sizeof *out);
    pt_err rc = capf_store_name_check(name);
    if (rc != PT_OK)
        return rc;
    int64_t id = 0;
    rc = capf_store_tx_begin(st, false);
    if (rc != PT_OK)
        return rc;
    rc = capf_store_device_load(st, name, with_pem, out, &id);
    rc = capf_store_tx_end(st, rc);
    if (rc != PT_OK)
        capf_store_device_free(out);
    return rc;
}

pt_err capf_store_device_get(capf_store *st, const char *name, capf_store_device *out)
{
    return device_get(st, name, true, out);
}

pt_err capf_store_device_get_for_session(capf_store *st, const char *name, capf_store_device *out)
{
    return device_get(st, name, false, out);
}

/* ---- updates ------------------------------------------------------------ */

typedef struct summary {
    char text[512];
} summary;

/* Append one item ("operation install") to what a change did. */
static void summary_add(summary *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void summary_add(summary *s, const char *fmt, ...)
{
    size_t used = strlen(s->text);
    if (used + 3 >= sizeof s->text)
        return;
    if (used > 0) {
        memcpy(s->text + used, ", ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->text + used, sizeof s->text - used, fmt, ap);
    va_end(ap);
}

/* The canonical form of key (format, then parse back), or PT_ERR_USAGE when it is not valid. */
static pt_err key_canonical(const capf_device_key *key, capf_device_key *out)
{
    char text[CAPF_DEVICE_KEY_TEXT_MAX];
    if ((unsigned)key->kind > CAPF_DEVICE_KEY_EC_PREFERRED)
        return pt_fail(PT_ERR_USAGE, "invalid key specification");
    capf_device_key_format(key, text);
    return capf_device_key_parse(text, out);
}

static pt_err update_validate(const capf_store_update *u)
{
    pt_err rc = PT_OK;
    if (u->description != NULL)
        rc = capf_device_description_check(u->description);
    if (rc == PT_OK && u->auth_string != NULL && u->auth_string[0] != '\0')
        rc = capf_device_auth_string_check(u->auth_string);
    if (rc == PT_OK && u->set_operation && (unsigned)u->operation > CAPF_DEVICE_OP_TROUBLESHOOT)
        rc = pt_fail(PT_ERR_USAGE, "invalid operation");
    if (rc == PT_OK && u->set_auth && (unsigned)u->auth > CAPF_DEVICE_AUTH_MIC)
        rc = pt_fail(PT_ERR_USAGE, "invalid authentication mode");
    if (rc == PT_OK && u->set_key) {
        capf_device_key canonical;
        rc = key_canonical(&u->key, &canonical);
    }
    return rc;
}

/* The authentication rules of store.h, checked against the state u leads to. */
static pt_err update_auth_check(const capf_store_device *d, const capf_store_update *u)
{
    capf_device_auth auth = u->set_auth ? u->auth : d->auth;
    bool string_given = u->auth_string != NULL;
    if (auth != CAPF_DEVICE_AUTH_STRING && string_given && u->auth_string[0] != '\0')
        return pt_fail(PT_ERR_USAGE, "an authentication string is used only with string "
                                     "authentication (auth mode string)");
    if (auth != CAPF_DEVICE_AUTH_STRING)
        return PT_OK;
    bool will_have = string_given ? u->auth_string[0] != '\0' : d->auth_string[0] != '\0';
    bool auth_changed = auth != d->auth;
    bool string_changed = string_given && strcmp(u->auth_string, d->auth_string) != 0;
    bool scheduling =
        u->set_operation && u->operation != d->operation && u->operation != CAPF_DEVICE_OP_NONE;
    /* A used string may stay gone until the next operation is scheduled. */
    if (!will_have && (auth_changed || string_changed || scheduling))
        return pt_fail(PT_ERR_USAGE, "string authentication needs an authentication string: "
                                     "give one, or choose another authentication mode");
    return PT_OK;
}

static void update_apply_auth(capf_store_device *d, const capf_store_update *u, summary *s)
{
    if (u->set_auth && u->auth != d->auth) {
        d->auth = u->auth;
        summary_add(s, "authentication mode %s", capf_device_auth_name(d->auth));
        if (d->auth != CAPF_DEVICE_AUTH_STRING && d->auth_string[0] != '\0') {
            capf_store_string_forget(d);
            summary_add(s, "authentication string removed");
        }
    }
    if (u->auth_string != NULL && strcmp(u->auth_string, d->auth_string) != 0) {
        capf_store_string_forget(d);
        snprintf(d->auth_string, sizeof d->auth_string, "%s", u->auth_string);
        summary_add(s, d->auth_string[0] ? "new authentication string"
                                         : "authentication string removed");
    }
}

static void update_apply_deadline(capf_store_device *d, const capf_store_update *u, summary *s)
{
    if (!u->set_deadline)
        return;
    if (!u->has_deadline && d->has_deadline) {
        d->has_deadline = false;
        d->deadline = 0;
        summary_add(s, "no deadline");
    } else if (u->has_deadline && (!d->has_deadline || d->deadline != u->deadline)) {
        char when[21];
        d->has_deadline = true;
        d->deadline = u->deadline;
        pt_time_iso8601(d->deadline, when);
        summary_add(s, "deadline %s", when);
    }
}

/* Apply u to d under the rules of store.h; s says what changed (empty: nothing). */
static pt_err update_apply(capf_store_device *d, const capf_store_update *u, time_t now, summary *s)
{
    pt_err rc = update_validate(u);
    if (rc == PT_OK)
        rc = update_auth_check(d, u);
    if (rc != PT_OK)
        return rc;
    if (u->description != NULL &&
        (d->description == NULL || strcmp(u->description, d->description) != 0)) {
        char *copy = OPENSSL_strdup(u->description);
        if (copy == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
        OPENSSL_free(d->description);
        d->description = copy;
        summary_add(s, "description");
    }
    update_apply_auth(d, u, s);
    capf_device_key key;
    if (u->set_key && key_canonical(&u->key, &key) == PT_OK &&
        memcmp(&key, &d->key, sizeof key) != 0) {
        char text[CAPF_DEVICE_KEY_TEXT_MAX];
        d->key = key;
        capf_device_key_format(&d->key, text);
        summary_add(s, "key %s", text);
    }
    update_apply_deadline(d, u, s);
    if (u->set_operation && u->operation != d->operation) {
        d->operation = u->operation;
        summary_add(s, "operation %s", capf_device_op_name(d->operation));
        if (d->operation != CAPF_DEVICE_OP_NONE)
            capf_store_status_set(d, d->operation, CAPF_DEVICE_STATE_PENDING, NULL, now);
    }
    if (s->text[0] != '\0')
        d->changed = now;
    return PT_OK;
}

static pt_err device_defaults(capf_store_device *d, const char *name, time_t now)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->description = OPENSSL_strdup("");
    d->status_reason = OPENSSL_strdup("");
    d->created = d->changed = now;
    if (d->description == NULL || d->status_reason == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    return PT_OK;
}

/* Read the device a change is about, or make a new one when the change may add it. */
static pt_err change_target(capf_store *st, const capf_store_change *ch, time_t now,
                            capf_store_device *d, int64_t *id, bool *exists)
{
    *exists = false;
    pt_err rc = st->be->device_read(st->impl, ch->device, false, d, id);
    if (rc == PT_OK) {
        *exists = true;
        if (ch->kind == CAPF_STORE_CHANGE_ADD)
            return pt_fail(PT_ERR_EXISTS, "device %s exists already; change it with capfctl set",
                           ch->device);
        return PT_OK;
    }
    memset(d, 0, sizeof *d);
    if (rc != PT_ERR_NOT_FOUND)
        return rc;
    if (ch->kind == CAPF_STORE_CHANGE_SET)
        return pt_fail(rc, "device %s is not known; add it with capfctl add", ch->device);
    return device_defaults(d, ch->device, now);
}

static pt_err change_apply(capf_store *st, const capf_store_change *ch, time_t now,
                           const capf_store_actor *who)
{
    if (ch->device == NULL ||
        !capf_device_name_acceptable(ch->device, strnlen(ch->device, CAPF_DEVICE_NAME_MAX + 1)))
        return pt_fail(PT_ERR_USAGE, "a device name is 1 to %d printable characters",
                       CAPF_DEVICE_NAME_MAX);
    capf_store_device d;
    int64_t id = 0;
    bool exists = false;
    summary s = {""};
    pt_err rc = change_target(st, ch, now, &d, &id, &exists);
    if (rc == PT_OK) {
        rc = update_apply(&d, &ch->update, now, &s);
        if (rc != PT_OK)
            rc = pt_err_context(rc, "device %s", ch->device);
    }
    if (rc == PT_OK && exists && s.text[0] != '\0') {
        rc = st->be->device_update(st->impl, id, &d);
        if (rc == PT_OK)
            rc = capf_store_event_add(st, ch->device, now, who, "changed", "%s", s.text);
    } else if (rc == PT_OK && !exists) {
        rc = st->be->device_insert(st->impl, &d, &id);
        if (rc == PT_OK)
            rc = capf_store_event_add(st, ch->device, now, who, "added", "%s",
                                      s.text[0] ? s.text : "default settings");
    }
    capf_store_device_free(&d);
    return rc;
}

/* Errors about a change itself, after which the other changes may still be tried. */
static bool change_error(pt_err rc)
{
    return rc == PT_ERR_USAGE || rc == PT_ERR_EXISTS || rc == PT_ERR_NOT_FOUND;
}

/* Apply changes; keep them only when keep is set and every one applied. */
static pt_err devices_apply(capf_store *st, const capf_store_change *changes, size_t n,
                            const capf_store_actor *who, capf_store_change_error_fn on_error,
                            void *arg, bool keep)
{
    pt_err first = PT_OK;
    pt_err rc = capf_store_tx_begin(st, true);
    if (rc != PT_OK)
        return rc;
    time_t now = capf_store_now(st);
    char message[1024] = "";
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        rc = change_apply(st, &changes[i], now, who);
        if (rc == PT_OK)
            continue;
        if (failed++ == 0) {
            first = rc;
            snprintf(message, sizeof message, "%s", pt_err_message());
        }
        if (on_error != NULL)
            on_error(i, rc, arg);
        if (on_error == NULL || !change_error(rc))
            break;
    }
    if (first == PT_OK && keep)
        return capf_store_tx_end(st, PT_OK);
    /* Rolled back: on a failure, or because this was only a check. */
    capf_store_tx_end(st, first != PT_OK ? first : PT_ERR_CANCELLED);
    if (first == PT_OK)
        return PT_OK;
    /* One change: its own message; several: how many, nothing kept. */
    if (failed > 1 || on_error != NULL)
        return pt_fail(first, "%zu of %zu changes failed (the first: %s); nothing was changed",
                       failed, n, message);
    return pt_fail(first, "%s", message);
}

pt_err capf_store_devices_apply(capf_store *st, const capf_store_change *changes, size_t n,
                                const capf_store_actor *who, capf_store_change_error_fn on_error,
                                void *arg)
{
    return devices_apply(st, changes, n, who, on_error, arg, true);
}

pt_err capf_store_devices_check(capf_store *st, const capf_store_change *changes, size_t n,
                                const capf_store_actor *who, capf_store_change_error_fn on_error,
                                void *arg)
{
    return devices_apply(st, changes, n, who, on_error, arg, false);
}

pt_err capf_store_device_add(capf_store *st, const char *device, const capf_store_update *u,
                             const capf_store_actor *who)
{
    capf_store_change ch = {device, CAPF_STORE_CHANGE_ADD, *u};
    return capf_store_devices_apply(st, &ch, 1, who, NULL, NULL);
}

pt_err capf_store_device_set(capf_store *st, const char *device, const capf_store_update *u,
                             const capf_store_actor *who)
{
    capf_store_change ch = {device, CAPF_STORE_CHANGE_SET, *u};
    return capf_store_devices_apply(st, &ch, 1, who, NULL, NULL);
}

pt_err capf_store_device_delete(capf_store *st, const char *device, const capf_store_actor *who)
{
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    rc = st->be->device_remove(st->impl, id);
    if (rc == PT_OK)
        rc = capf_store_event_add(st, device, now, who, "deleted",
                                  "device deleted; its certificates and history are kept");
    capf_store_device_free(&d);
    return capf_store_tx_end(st, rc);
}

pt_err capf_store_device_unlock(capf_store *st, const char *device, const capf_store_actor *who)
{
    capf_store_device d;
    int64_t id = 0;
    time_t now = 0;
    pt_err rc = capf_store_device_edit(st, device, &d, &id, &now);
    if (rc != PT_OK)
        return rc;
    bool was_locked = d.locked;
    unsigned failures = d.auth_failures;
    d.locked = false;
    d.auth_failures = 0;
    d.changed = now;
    rc = st->be->device_update(st->impl, id, &d);
    if (rc == PT_OK)
        rc = capf_store_event_add(
            st, device, now, who, "unlocked", "%s; %u wrong authentication string%s forgotten",
            was_locked ? "lock cleared" : "was not locked", failures, failures == 1 ? "" : "s");
    capf_store_device_free(&d);
    return capf_store_tx_end(st, rc);
}

/* ---- reading ------------------------------------------------------------ */

pt_err capf_store_device_find(capf_store *st, const capf_store_filter *f, capf_store_device **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    static const capf_store_filter all = {0};
    pt_err rc = capf_store_tx_begin(st, false);
    if (rc != PT_OK)
        return rc;
    rc = st->be->device_find(st->impl, f != NULL ? f : &all, out, n);
    return capf_store_tx_end(st, rc);
}

pt_err capf_store_device_list(capf_store *st, capf_store_device **out, size_t *n)
{
    return capf_store_device_find(st, NULL, out, n);
}

/* Inside a transaction: PT_OK when device is known, else the "not known" failure. */
static pt_err device_exists(capf_store *st, const char *device)
{
    capf_store_device d;
    int64_t id = 0;
    pt_err rc = capf_store_device_load(st, device, false, &d, &id);
    if (rc == PT_OK)
        capf_store_device_free(&d);
    return rc;
}

pt_err capf_store_certs_list(capf_store *st, const char *device, capf_store_cert **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pt_err rc = capf_store_name_check(device);
    if (rc == PT_OK)
        rc = capf_store_tx_begin(st, false);
    if (rc != PT_OK)
        return rc;
    rc = st->be->certs_list(st->impl, device, out, n);
    /* A deleted device's certificates are still listed; only an unknown name with none fails. */
    if (rc == PT_OK && *n == 0)
        rc = device_exists(st, device);
    rc = capf_store_tx_end(st, rc);
    if (rc != PT_OK) {
        capf_store_certs_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

pt_err capf_store_history_list(capf_store *st, const char *device, size_t limit,
                               capf_store_event **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pt_err rc = capf_store_name_check(device);
    if (rc == PT_OK)
        rc = capf_store_tx_begin(st, false);
    if (rc != PT_OK)
        return rc;
    rc = st->be->events_list(st->impl, device, limit, out, n);
    if (rc == PT_OK && *n == 0)
        rc = device_exists(st, device);
    rc = capf_store_tx_end(st, rc);
    if (rc != PT_OK) {
        capf_store_events_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
