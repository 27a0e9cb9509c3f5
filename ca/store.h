/*
 * The CAPF device store: devices, their scheduled operations, authentication
 * strings, the status and history of every operation, and every certificate
 * issued to or fetched from a device.
 *
 * One interface, several backends, chosen by URL:
 *   sqlite:/var/lib/phonetrust-capf/capf.db   SQLite (this build)
 *   postgresql://...                     refused: no PostgreSQL backend yet
 * Callers never see SQL. Every call is one transaction: it happens completely
 * or not at all, and is durable when it returns PT_OK (so capfd may send a
 * certificate to a phone as soon as capf_store_cert_issued returns).
 *
 * A capf_store may be used by many threads at once.
 *
 * Device names given to the calls are looked up exactly (spec §9.1): capfd
 * passes the name the phone sent, capfctl the canonical form made by
 * capf_device_name_normalize. A name that is not 1-64 printable characters
 * is simply not found.
 */
#ifndef CAPF_STORE_H
#define CAPF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "device.h"
#include "pt_error.h"

typedef struct capf_store capf_store;

#define CAPF_STORE_DEFAULT_URL "sqlite:/var/lib/phonetrust-capf/capf.db"

/* Open the store at url, creating an empty one (mode 0600) when there is none. */
pt_err capf_store_open(const char *url, capf_store **out);
/* Open an existing store only (for commands that only read). */
pt_err capf_store_open_existing(const char *url, capf_store **out);
void capf_store_close(capf_store *st);

/* The clock the store timestamps with (time(NULL) by default); for tests. */
void capf_store_set_clock(capf_store *st, time_t (*now)(void *arg), void *arg);

/* Who made a change; recorded with every history event. */
typedef struct capf_store_actor {
    const char *program; /* "capfctl" or "capfd" */
    const char *user;    /* capfctl: the administrator's login name and uid; else NULL */
    const char *session; /* capfd: the CAPF session ID in hex; else NULL */
    const char *peer;    /* capfd: the phone's address and port; else NULL */
} capf_store_actor;

/* A certificate as the store keeps it. */
typedef enum capf_store_cert_kind {
    CAPF_STORE_CERT_ISSUED = 0,  /* an LSC capfd issued */
    CAPF_STORE_CERT_FETCHED_LSC, /* an LSC a phone returned on troubleshoot */
    CAPF_STORE_CERT_FETCHED_MIC, /* a MIC a phone returned on troubleshoot */
} capf_store_cert_kind;

#define CAPF_STORE_KEY_TYPE_MAX 32

typedef struct capf_store_cert {
    capf_store_cert_kind kind;
    char *device;
    char *serial; /* upper-case hex of the serial's minimal big-endian bytes */
    char *subject;
    char *issuer;
    char key_type[CAPF_STORE_KEY_TYPE_MAX]; /* "RSA 2048", "EC P-256" */
    time_t not_before;
    time_t not_after;
    time_t at;            /* issued or fetched */
    bool current;         /* issued: it is the device's current LSC */
    time_t superseded_at; /* issued: when a newer LSC replaced it or it was deleted; 0 if not */
    char *pem;            /* NULL in device lists */
} capf_store_cert;

void capf_store_cert_free(capf_store_cert *c);
void capf_store_certs_free(capf_store_cert *list, size_t n);

/* A snapshot of one device. */
typedef struct capf_store_device {
    char name[CAPF_DEVICE_NAME_MAX + 1];
    char *description; /* "" when none */
    capf_device_op operation;
    capf_device_auth auth;
    char auth_string[CAPF_DEVICE_AUTH_STRING_MAX + 1]; /* "" when none; wiped by _free */
    unsigned auth_failures;                            /* consecutive wrong strings */
    bool locked;                                       /* too many wrong strings */
    capf_device_key key;
    bool has_deadline;
    time_t deadline; /* the operation completes by then, or not at all */
    capf_device_op status_op;
    capf_device_state status_state;
    char *status_reason; /* failed: why; "" otherwise */
    time_t status_time;  /* 0 before the first operation */
    time_t created;
    time_t changed;
    bool has_lsc; /* the current LSC (the last issued and not deleted) */
    capf_store_cert lsc;
} capf_store_device;

/* Free what a snapshot holds (not the struct itself) and wipe its string. */
void capf_store_device_free(capf_store_device *d);
void capf_store_devices_free(capf_store_device *list, size_t n);

/* ---- capfd: one call per protocol event -------------------------------- */

/* The device name is exactly as received. PT_ERR_NOT_FOUND when unknown. */
pt_err capf_store_device_get(capf_store *st, const char *name, capf_store_device *out);
/* The same without the current LSC's PEM (lsc.pem NULL), which a session never needs. */
pt_err capf_store_device_get_for_session(capf_store *st, const char *name, capf_store_device *out);

typedef enum capf_store_auth_result {
    CAPF_STORE_AUTH_ACCEPTED = 0, /* the string matched; the failure count is reset */
    CAPF_STORE_AUTH_REJECTED,     /* wrong string, or none configured */
    CAPF_STORE_AUTH_LOCKED,       /* the device is locked (now or before): always fails */
} capf_store_auth_result;

/*
 * One authentication-string attempt (spec §9.2): given is the PASSWORD
 * element without its NUL (a missing element is given_len 0). Compared in
 * constant time, without revealing the configured string's length. A wrong
 * string counts one failure; the max_failures-th locks the device; a right
 * one resets the count. A locked device always fails. A device that is not in
 * string mode or has no string (it was used) fails without a count: there is
 * nothing to guess, and counting would lock it before its next operation.
 * PT_OK means a decision is in *result.
 */
pt_err capf_store_auth_attempt(capf_store *st, const char *device, const void *given,
                               size_t given_len, unsigned max_failures, const capf_store_actor *who,
                               capf_store_auth_result *result);

/*
 * The deadline check on its own: when an operation is scheduled and its
 * deadline has passed, mark it "<op> failed: expired" (once) and set
 * *expired. The operation stays scheduled for the administrator to renew.
 */
pt_err capf_store_op_check_deadline(capf_store *st, const char *device, const capf_store_actor *who,
                                    bool *expired);

/*
 * capfd begins op: status "<op> pending". PT_ERR_REFUSED when op is not the
 * scheduled operation (an administrator changed it); PT_ERR_TIMEOUT when the
 * deadline has passed (the status is then "<op> failed: expired", as by
 * capf_store_op_check_deadline).
 */
pt_err capf_store_op_started(capf_store *st, const char *device, capf_device_op op,
                             const capf_store_actor *who);

/*
 * An LSC was issued: record it (before it is sent to the phone, §13) as the
 * device's current LSC, mark the previous one superseded, and reset the
 * scheduled operation to none. PT_ERR_REFUSED (nothing recorded) when the
 * scheduled operation is no longer install: the certificate must not be sent.
 */
pt_err capf_store_cert_issued(capf_store *st, const char *device, X509 *cert,
                              const capf_store_actor *who);

/*
 * A phone returned its certificate on troubleshoot (kind is FETCHED_LSC or
 * FETCHED_MIC): record it and reset the scheduled operation to none (§13).
 */
pt_err capf_store_cert_fetched(capf_store *st, const char *device, X509 *cert,
                               capf_store_cert_kind kind, const capf_store_actor *who);

/* A phone deleted its LSC: the current LSC is cleared, the operation reset to none (§13). */
pt_err capf_store_lsc_deleted(capf_store *st, const char *device, const capf_store_actor *who);

/*
 * op finished well: status "<op> success". A device in string mode loses its
 * one-time string now (it has been used).
 */
pt_err capf_store_op_succeeded(capf_store *st, const char *device, capf_device_op op,
                               const capf_store_actor *who);

/*
 * op failed: status "<op> failed: reason". The scheduled operation is left as
 * it is (§13: it stays scheduled unless a certificate was already recorded).
 */
pt_err capf_store_op_failed(capf_store *st, const char *device, capf_device_op op,
                            const char *reason, const capf_store_actor *who);

/* ---- capfctl: administration -------------------------------------------- */

/*
 * A change to a device's settings. Fields left alone (NULL, set_* false) keep
 * their value (on add: the defaults none/null/default/no deadline/"").
 * Rules applied by the store:
 *  - string authentication needs a string; a string needs string
 *    authentication; leaving string mode forgets the string;
 *  - a new string resets the failure count (not the lock: see unlock);
 *  - changing the operation to install, delete or troubleshoot sets the
 *    status "<op> pending"; setting the operation it already has changes
 *    nothing.
 */
typedef struct capf_store_update {
    const char *description; /* NULL: unchanged */
    bool set_operation;
    capf_device_op operation;
    bool set_auth;
    capf_device_auth auth;
    const char *auth_string; /* NULL: unchanged; "" forgets it */
    bool set_key;
    capf_device_key key;
    bool set_deadline;
    bool has_deadline; /* with set_deadline: false clears the deadline */
    time_t deadline;
} capf_store_update;

typedef enum capf_store_change_kind {
    CAPF_STORE_CHANGE_ADD = 0,    /* PT_ERR_EXISTS when the device exists */
    CAPF_STORE_CHANGE_SET,        /* PT_ERR_NOT_FOUND when it does not */
    CAPF_STORE_CHANGE_ADD_OR_SET, /* either */
} capf_store_change_kind;

typedef struct capf_store_change {
    const char *device;
    capf_store_change_kind kind;
    capf_store_update update;
} capf_store_change;

/* Told about each change that fails (its message is in pt_err_message()). */
typedef void (*capf_store_change_error_fn)(size_t index, pt_err rc, void *arg);

/*
 * Apply n changes in one transaction: all of them or none. Without on_error
 * the first failing change ends it; with on_error every change is tried (so
 * that an import can report every bad line), on_error is called for each
 * one that fails, and then nothing is kept. Returns the first failure's code.
 */
pt_err capf_store_devices_apply(capf_store *st, const capf_store_change *changes, size_t n,
                                const capf_store_actor *who, capf_store_change_error_fn on_error,
                                void *arg);

/*
 * Try the changes as capf_store_devices_apply does, calling on_error for
 * every one that fails, and keep none of them: whether they would apply to
 * the store as it is now. PT_OK when all would.
 */
pt_err capf_store_devices_check(capf_store *st, const capf_store_change *changes, size_t n,
                                const capf_store_actor *who, capf_store_change_error_fn on_error,
                                void *arg);

pt_err capf_store_device_add(capf_store *st, const char *device, const capf_store_update *u,
                             const capf_store_actor *who);
pt_err capf_store_device_set(capf_store *st, const char *device, const capf_store_update *u,
                             const capf_store_actor *who);
/* The device goes; its certificates and history stay. */
pt_err capf_store_device_delete(capf_store *st, const char *device, const capf_store_actor *who);
/* Clear the lock and the failure count. */
pt_err capf_store_device_unlock(capf_store *st, const char *device, const capf_store_actor *who);

/* Which devices find returns; all match when nothing is set. */
typedef struct capf_store_filter {
    bool by_operation; /* the scheduled operation */
    capf_device_op operation;
    bool by_state; /* the status: pending, success, failed or none */
    capf_device_state state;
    bool by_status_op; /* the operation the status is about */
    capf_device_op status_op;
    const char *auth_string; /* devices with exactly this string; NULL: any */
} capf_store_filter;

/* Devices in name order, with their LSC but without its PEM. */
pt_err capf_store_device_find(capf_store *st, const capf_store_filter *f, capf_store_device **out,
                              size_t *n);
pt_err capf_store_device_list(capf_store *st, capf_store_device **out, size_t *n);

/* Every certificate recorded for device (also after it was deleted): issued ones first. */
pt_err capf_store_certs_list(capf_store *st, const char *device, capf_store_cert **out, size_t *n);

/* One history event. */
typedef struct capf_store_event {
    time_t at;
    char *event;  /* "added", "auth-rejected", "cert-issued", ... */
    char *detail; /* human-readable; never an authentication string */
    char *actor;
    char *user;    /* NULL when none */
    char *session; /* NULL when none */
    char *peer;    /* NULL when none */
} capf_store_event;

/* The last limit events of device (all when limit is 0), oldest first. */
pt_err capf_store_history_list(capf_store *st, const char *device, size_t limit,
                               capf_store_event **out, size_t *n);
void capf_store_events_free(capf_store_event *list, size_t n);

#endif
