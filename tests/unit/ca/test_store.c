/*
 * Unit tests of the store's calls on a temporary SQLite store: what capfctl
 * changes, and what capfd records at each step of a session (spec §13).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "test_store_util.h"

#define DEV  "SEP001122334455"
#define DEV2 "SEP0011223344AA"

static const capf_store_update no_change;

/* A device in string mode with string "123456" and install scheduled. */
static void add_string_device(capf_store *st, const char *name)
{
    capf_store_update u = no_change;
    u.set_auth = true;
    u.auth = CAPF_DEVICE_AUTH_STRING;
    u.auth_string = "123456";
    u.set_operation = true;
    u.operation = CAPF_DEVICE_OP_INSTALL;
    assert_int_equal(capf_store_device_add(st, name, &u, &test_store_admin), PT_OK);
}

static size_t history_count(capf_store *st, const char *name)
{
    capf_store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_history_list(st, name, 0, &ev, &n), PT_OK);
    capf_store_events_free(ev, n);
    return n;
}

/* The last history event of name, copied into event/detail. */
static void history_last(capf_store *st, const char *name, char *event, char *detail)
{
    capf_store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_history_list(st, name, 1, &ev, &n), PT_OK);
    assert_int_equal(n, 1);
    snprintf(event, 32, "%s", ev[0].event);
    snprintf(detail, 512, "%s", ev[0].detail);
    capf_store_events_free(ev, n);
}

static void test_add_get_defaults(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    capf_store_device d;
    assert_int_equal(capf_store_device_add(st, DEV, &no_change, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_string_equal(d.name, DEV);
    assert_string_equal(d.description, "");
    assert_int_equal(d.operation, CAPF_DEVICE_OP_NONE);
    assert_int_equal(d.auth, CAPF_DEVICE_AUTH_NULL);
    assert_string_equal(d.auth_string, "");
    assert_int_equal(d.key.kind, CAPF_DEVICE_KEY_DEFAULT);
    assert_false(d.has_deadline);
    assert_false(d.locked);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_NONE);
    assert_int_equal(d.created, test_store_now);
    assert_int_equal(d.changed, test_store_now);
    assert_false(d.has_lsc);
    capf_store_device_free(&d);

    assert_int_equal(capf_store_device_add(st, DEV, &no_change, &test_store_admin), PT_ERR_EXISTS);
    assert_non_null(strstr(pt_err_message(), "exists already"));
    assert_int_equal(capf_store_device_get(st, DEV2, &d), PT_ERR_NOT_FOUND);
    assert_string_equal(pt_err_message(), "device " DEV2 " is not known; add it with capfctl add");
    assert_int_equal(capf_store_device_set(st, DEV2, &no_change, &test_store_admin),
                     PT_ERR_NOT_FOUND);
    /* Lookups are exact (§9.1): capfctl normalises, capfd passes what the phone sent. */
    assert_int_equal(capf_store_device_get(st, "sep001122334455", &d), PT_ERR_NOT_FOUND);
    char longname[80];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(capf_store_device_get(st, longname, &d), PT_ERR_NOT_FOUND);
    assert_int_equal(capf_store_device_get(st, "SEP\n", &d), PT_ERR_NOT_FOUND);
    assert_int_equal(capf_store_device_get(st, "", &d), PT_ERR_NOT_FOUND);
    capf_store_close(st);
}

static void test_set_rules(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    capf_store_device d;
    capf_store_update u = no_change;
    assert_int_equal(capf_store_device_add(st, DEV, &no_change, &test_store_admin), PT_OK);

    /* String mode needs a string; a string needs string mode. */
    u.set_auth = true;
    u.auth = CAPF_DEVICE_AUTH_STRING;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "needs an authentication string"));
    u = no_change;
    u.auth_string = "4321";
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "only with string authentication"));
    u.auth_string = "12a4";
    u.set_auth = true;
    u.auth = CAPF_DEVICE_AUTH_STRING;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_ERR_USAGE);
    u.auth_string = "4321";
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);

    /* Changing the operation makes it pending; the same operation again changes nothing. */
    test_store_now += 10;
    u = no_change;
    u.set_operation = true;
    u.operation = CAPF_DEVICE_OP_INSTALL;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.status_op, CAPF_DEVICE_OP_INSTALL);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_PENDING);
    assert_int_equal(d.status_time, test_store_now);
    assert_int_equal(d.changed, test_store_now);
    capf_store_device_free(&d);
    size_t events = history_count(st, DEV);
    test_store_now += 10;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    assert_int_equal(history_count(st, DEV), events);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.changed, test_store_now - 10);
    capf_store_device_free(&d);

    /* Leaving string mode forgets the string. */
    u = no_change;
    u.set_auth = true;
    u.auth = CAPF_DEVICE_AUTH_LSC;
    u.set_key = true;
    assert_int_equal(capf_device_key_parse("ec:P-384", &u.key), PT_OK);
    u.description = "Lobby \xe2\x80\x94 east";
    u.set_deadline = u.has_deadline = true;
    u.deadline = test_store_now + 3600;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.auth, CAPF_DEVICE_AUTH_LSC);
    assert_string_equal(d.auth_string, "");
    assert_int_equal(d.key.kind, CAPF_DEVICE_KEY_EC);
    assert_int_equal(d.key.curve, CAPF_DEVICE_CURVE_P384);
    assert_string_equal(d.description, "Lobby \xe2\x80\x94 east");
    assert_true(d.has_deadline);
    assert_int_equal(d.deadline, test_store_now + 3600);
    capf_store_device_free(&d);
    char event[32], detail[512];
    history_last(st, DEV, event, detail);
    assert_string_equal(event, "changed");
    assert_non_null(strstr(detail, "authentication string removed"));
    assert_null(strstr(detail, "4321")); /* never the string itself */

    u = no_change;
    u.set_deadline = true; /* has_deadline false: clear it */
    u.description = "bad\ttext";
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_ERR_USAGE);
    u.description = NULL;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_false(d.has_deadline);
    capf_store_device_free(&d);

    u = no_change;
    u.set_key = true;
    u.key.kind = CAPF_DEVICE_KEY_RSA;
    u.key.rsa_bits = 1000; /* not a size the store accepts */
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_ERR_USAGE);
    capf_store_close(st);
}

static void test_auth_counter_and_lock(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    capf_store_device d;
    capf_store_auth_result r;
    add_string_device(st, DEV);
    enum { MAX = 3 };

    /* Wrong strings, including the right one's prefix and extensions of it. */
    assert_int_equal(capf_store_auth_attempt(st, DEV, "12345", 5, MAX, &test_store_capfd, &r),
                     PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_REJECTED);
    assert_int_equal(capf_store_auth_attempt(st, DEV, "1234567", 7, MAX, &test_store_capfd, &r),
                     PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_REJECTED);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.auth_failures, 2);
    assert_false(d.locked);
    capf_store_device_free(&d);

    /* A right string resets the count. */
    assert_int_equal(capf_store_auth_attempt(st, DEV, "123456", 6, MAX, &test_store_capfd, &r),
                     PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_ACCEPTED);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.auth_failures, 0);
    capf_store_device_free(&d);

    /* MAX wrong ones in a row lock it; then even the right one fails. */
    assert_int_equal(capf_store_auth_attempt(st, DEV, "", 0, MAX, &test_store_capfd, &r), PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_REJECTED);
    assert_int_equal(capf_store_auth_attempt(st, DEV, "123456\0", 7, MAX, &test_store_capfd, &r),
                     PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_REJECTED);
    char longer[300];
    memset(longer, '1', sizeof longer);
    memcpy(longer, "123456", 6); // NOLINT(bugprone-not-null-terminated-result): a length is given
    assert_int_equal(
        capf_store_auth_attempt(st, DEV, longer, sizeof longer, MAX, &test_store_capfd, &r), PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_LOCKED);
    char event[32], detail[512];
    history_last(st, DEV, event, detail);
    assert_string_equal(event, "auth-locked");
    assert_int_equal(capf_store_auth_attempt(st, DEV, "123456", 6, MAX, &test_store_capfd, &r),
                     PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_LOCKED);
    history_last(st, DEV, event, detail);
    assert_string_equal(event, "auth-refused");
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_true(d.locked);
    assert_int_equal(d.auth_failures, MAX);
    capf_store_device_free(&d);

    /* unlock clears lock and count. */
    assert_int_equal(capf_store_device_unlock(st, DEV, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_false(d.locked);
    assert_int_equal(d.auth_failures, 0);
    capf_store_device_free(&d);
    assert_int_equal(capf_store_auth_attempt(st, DEV, "123456", 6, MAX, &test_store_capfd, &r),
                     PT_OK);
    assert_int_equal(r, CAPF_STORE_AUTH_ACCEPTED);

    /* No string configured (or not string mode): fails, without a count. */
    assert_int_equal(capf_store_device_add(st, DEV2, &no_change, &test_store_admin), PT_OK);
    for (int i = 0; i < MAX + 2; i++) {
        assert_int_equal(capf_store_auth_attempt(st, DEV2, "", 0, MAX, &test_store_capfd, &r),
                         PT_OK);
        assert_int_equal(r, CAPF_STORE_AUTH_REJECTED);
    }
    assert_int_equal(capf_store_device_get(st, DEV2, &d), PT_OK);
    assert_int_equal(d.auth_failures, 0);
    assert_false(d.locked);
    capf_store_device_free(&d);

    /* Unknown devices and bad arguments. */
    assert_int_equal(
        capf_store_auth_attempt(st, "SEPFFFFFFFFFFFF", "1", 1, MAX, &test_store_capfd, &r),
        PT_ERR_NOT_FOUND);
    assert_int_equal(r, CAPF_STORE_AUTH_REJECTED);
    assert_int_equal(capf_store_auth_attempt(st, DEV, "1", 1, 0, &test_store_capfd, &r),
                     PT_ERR_USAGE);
    capf_store_close(st);
}

static void test_auth_history_rows(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    capf_store_auth_result r;
    add_string_device(st, DEV);
    assert_int_equal(capf_store_auth_attempt(st, DEV, "999999", 6, 5, &test_store_capfd, &r),
                     PT_OK);
    capf_store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_history_list(st, DEV, 0, &ev, &n), PT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ev[0].event, "added");
    assert_string_equal(ev[0].actor, "capfctl");
    assert_string_equal(ev[0].user, "tester (uid 1000)");
    assert_null(ev[0].session);
    assert_string_equal(ev[1].event, "auth-rejected");
    assert_string_equal(ev[1].actor, "capfd");
    assert_null(ev[1].user);
    assert_string_equal(ev[1].session, "1A2B3C4D");
    assert_string_equal(ev[1].peer, "192.0.2.7:50123");
    assert_string_equal(ev[1].detail, "wrong authentication string (1 of 5)");
    assert_int_equal(ev[1].at, test_store_now);
    assert_null(strstr(ev[1].detail, "999999"));
    capf_store_events_free(ev, n);
    /* limit gives the latest events, oldest first. */
    assert_int_equal(capf_store_history_list(st, DEV, 1, &ev, &n), PT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].event, "auth-rejected");
    capf_store_events_free(ev, n);
    capf_store_close(st);
}

static void test_deadline_expiry(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    capf_store_device d;
    capf_store_update u = no_change;
    u.set_operation = true;
    u.operation = CAPF_DEVICE_OP_INSTALL;
    u.set_deadline = u.has_deadline = true;
    u.deadline = test_store_now + 100;
    assert_int_equal(capf_store_device_add(st, DEV, &u, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_device_add(st, DEV2, &u, &test_store_admin), PT_OK);
    bool expired = true;

    /* At the deadline itself the operation may still run. */
    test_store_now += 100;
    assert_int_equal(capf_store_op_check_deadline(st, DEV, &test_store_capfd, &expired), PT_OK);
    assert_false(expired);
    assert_int_equal(capf_store_op_started(st, DEV, CAPF_DEVICE_OP_INSTALL, &test_store_capfd),
                     PT_OK);

    test_store_now += 1;
    assert_int_equal(capf_store_op_check_deadline(st, DEV2, &test_store_capfd, &expired), PT_OK);
    assert_true(expired);
    assert_int_equal(capf_store_device_get(st, DEV2, &d), PT_OK);
    assert_int_equal(d.status_op, CAPF_DEVICE_OP_INSTALL);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_FAILED);
    assert_string_equal(d.status_reason, "expired");
    assert_int_equal(d.operation, CAPF_DEVICE_OP_INSTALL); /* stays for the admin to renew */
    capf_store_device_free(&d);
    size_t events = history_count(st, DEV2);
    /* Marked once: later checks and a start attempt add nothing. */
    assert_int_equal(capf_store_op_check_deadline(st, DEV2, &test_store_capfd, &expired), PT_OK);
    assert_true(expired);
    assert_int_equal(capf_store_op_started(st, DEV2, CAPF_DEVICE_OP_INSTALL, &test_store_capfd),
                     PT_ERR_TIMEOUT);
    assert_int_equal(history_count(st, DEV2), events);

    /* op_started checks the deadline itself, atomically. */
    assert_int_equal(capf_store_op_started(st, DEV, CAPF_DEVICE_OP_INSTALL, &test_store_capfd),
                     PT_ERR_TIMEOUT);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_FAILED);
    assert_string_equal(d.status_reason, "expired");
    capf_store_device_free(&d);

    /* A new deadline re-arms it. */
    u = no_change;
    u.set_deadline = u.has_deadline = true;
    u.deadline = test_store_now + 100;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_op_started(st, DEV, CAPF_DEVICE_OP_INSTALL, &test_store_capfd),
                     PT_OK);
    /* No operation, no expiry. */
    u = no_change;
    u.set_operation = true;
    u.operation = CAPF_DEVICE_OP_NONE;
    assert_int_equal(capf_store_device_set(st, DEV2, &u, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_op_check_deadline(st, DEV2, &test_store_capfd, &expired), PT_OK);
    assert_false(expired);
    capf_store_close(st);
}

static void test_op_started_refuses_other_op(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    add_string_device(st, DEV);
    assert_int_equal(capf_store_op_started(st, DEV, CAPF_DEVICE_OP_DELETE, &test_store_capfd),
                     PT_ERR_REFUSED);
    assert_int_equal(capf_store_op_started(st, DEV, CAPF_DEVICE_OP_NONE, &test_store_capfd),
                     PT_ERR_USAGE);
    capf_store_close(st);
}

static void test_install_records_before_reset(void **state)
{
    (void)state;
    char url[300];
    capf_store *st = test_store_new(url, sizeof url);
    const char *path = url + strlen("sqlite:");
    capf_store_device d;
    add_string_device(st, DEV);
    assert_int_equal(capf_store_op_started(st, DEV, CAPF_DEVICE_OP_INSTALL, &test_store_capfd),
                     PT_OK);

    /* Serial 00 FF: the stored serial is the minimal bytes, "FF". */
    static const uint8_t serial1[] = {0x00, 0xff};
    X509 *c1 =
        test_store_cert(serial1, sizeof serial1, test_store_now, test_store_now + 86400, DEV);
    assert_int_equal(capf_store_cert_issued(st, DEV, c1, &test_store_capfd), PT_OK);
    /* Checked on the file with SQLite directly: recorded, current, operation reset. */
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM certificates WHERE serial = "
                                              "'FF' AND device = '" DEV "'"),
                     1);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices d JOIN certificates "
                                              "c ON c.id = d.lsc_cert_id WHERE d.operation = "
                                              "'none' AND c.serial = 'FF'"),
                     1);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_true(d.has_lsc);
    assert_string_equal(d.lsc.serial, "FF");
    assert_string_equal(d.lsc.key_type, "EC P-256");
    assert_int_equal(d.lsc.not_before, test_store_now);
    assert_int_equal(d.lsc.not_after, test_store_now + 86400);
    assert_non_null(strstr(d.lsc.pem, "-----BEGIN CERTIFICATE-----"));
    assert_int_equal(d.operation, CAPF_DEVICE_OP_NONE);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_PENDING); /* until the phone answers */
    assert_string_equal(d.auth_string, "123456");
    capf_store_device_free(&d);
    /* A session's read: the same device and LSC serial, without the PEM. */
    assert_int_equal(capf_store_device_get_for_session(st, DEV, &d), PT_OK);
    assert_true(d.has_lsc);
    assert_string_equal(d.lsc.serial, "FF");
    assert_null(d.lsc.pem);
    assert_string_equal(d.auth_string, "123456");
    capf_store_device_free(&d);

    /* Finished: success, and the one-time string is gone. */
    assert_int_equal(capf_store_op_succeeded(st, DEV, CAPF_DEVICE_OP_INSTALL, &test_store_capfd),
                     PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_SUCCESS);
    assert_string_equal(d.auth_string, "");
    assert_int_equal(d.auth, CAPF_DEVICE_AUTH_STRING);
    capf_store_device_free(&d);

    /* Recording again needs install scheduled again (and so a new string). */
    X509 *c2 = test_store_cert((const uint8_t[]){0x01, 0x02}, 2, test_store_now,
                               test_store_now + 2 * 86400, DEV);
    assert_int_equal(capf_store_cert_issued(st, DEV, c2, &test_store_capfd), PT_ERR_REFUSED);
    assert_non_null(strstr(pt_err_message(), "must not be sent"));
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM certificates"), 1);
    capf_store_update u = no_change;
    u.set_operation = true;
    u.operation = CAPF_DEVICE_OP_INSTALL;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_ERR_USAGE);
    u.auth_string = "7777";
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    test_store_now += 60;
    assert_int_equal(capf_store_cert_issued(st, DEV, c2, &test_store_capfd), PT_OK);

    /* The first LSC is kept, superseded. */
    capf_store_cert *certs = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_certs_list(st, DEV, &certs, &n), PT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(certs[0].serial, "FF");
    assert_false(certs[0].current);
    assert_int_equal(certs[0].superseded_at, test_store_now);
    assert_string_equal(certs[1].serial, "0102");
    assert_true(certs[1].current);
    assert_int_equal(certs[1].superseded_at, 0);
    assert_int_equal(certs[1].kind, CAPF_STORE_CERT_ISSUED);
    assert_string_equal(certs[1].subject, "CN=" DEV);
    capf_store_certs_free(certs, n);
    X509_free(c1);
    X509_free(c2);
    capf_store_close(st);
}

static void test_failed_keeps_operation(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    capf_store_device d;
    add_string_device(st, DEV);
    assert_int_equal(capf_store_op_started(st, DEV, CAPF_DEVICE_OP_INSTALL, &test_store_capfd),
                     PT_OK);
    assert_int_equal(capf_store_op_failed(st, DEV, CAPF_DEVICE_OP_INSTALL,
                                          "phone sent no public key\n(reason 7)",
                                          &test_store_capfd),
                     PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_FAILED);
    assert_string_equal(d.status_reason, "phone sent no public key (reason 7)");
    assert_int_equal(d.operation, CAPF_DEVICE_OP_INSTALL);
    assert_string_equal(d.auth_string, "123456"); /* not used up */
    capf_store_device_free(&d);
    capf_store_close(st);
}

static void test_fetch_and_delete(void **state)
{
    (void)state;
    char url[300];
    capf_store *st = test_store_new(url, sizeof url);
    capf_store_device d;
    capf_store_update u = no_change;
    u.set_operation = true;
    u.operation = CAPF_DEVICE_OP_INSTALL;
    assert_int_equal(capf_store_device_add(st, DEV, &u, &test_store_admin), PT_OK);
    X509 *lsc =
        test_store_cert((const uint8_t[]){0x7f}, 1, test_store_now, test_store_now + 10, DEV);
    X509 *mic = test_store_cert((const uint8_t[]){0x00, 0x80, 0x01}, 3, test_store_now,
                                test_store_now + 10, "CP-8845-SEP001122334455");
    assert_int_equal(capf_store_cert_issued(st, DEV, lsc, &test_store_capfd), PT_OK);

    /* Troubleshoot: what the phone returns is recorded, the operation reset. */
    u.operation = CAPF_DEVICE_OP_TROUBLESHOOT;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    assert_int_equal(
        capf_store_cert_fetched(st, DEV, mic, CAPF_STORE_CERT_FETCHED_MIC, &test_store_capfd),
        PT_OK);
    assert_int_equal(
        capf_store_cert_fetched(st, DEV, mic, CAPF_STORE_CERT_ISSUED, &test_store_capfd),
        PT_ERR_USAGE);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_int_equal(d.operation, CAPF_DEVICE_OP_NONE);
    assert_string_equal(d.lsc.serial, "7F"); /* the current LSC is unchanged */
    capf_store_device_free(&d);

    /* Delete: the current LSC is cleared and marked, the operation reset. */
    u.operation = CAPF_DEVICE_OP_DELETE;
    assert_int_equal(capf_store_device_set(st, DEV, &u, &test_store_admin), PT_OK);
    test_store_now += 5;
    assert_int_equal(capf_store_lsc_deleted(st, DEV, &test_store_capfd), PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_OK);
    assert_false(d.has_lsc);
    assert_int_equal(d.operation, CAPF_DEVICE_OP_NONE);
    capf_store_device_free(&d);

    capf_store_cert *certs = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_certs_list(st, DEV, &certs, &n), PT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(certs[0].kind, CAPF_STORE_CERT_ISSUED);
    assert_false(certs[0].current);
    assert_int_equal(certs[0].superseded_at, test_store_now);
    assert_int_equal(certs[1].kind, CAPF_STORE_CERT_FETCHED_MIC);
    assert_string_equal(certs[1].serial, "8001");
    assert_string_equal(certs[1].subject, "CN=CP-8845-SEP001122334455");
    capf_store_certs_free(certs, n);

    /* Deleting the device keeps its certificates and history. */
    size_t events = history_count(st, DEV);
    assert_int_equal(capf_store_device_delete(st, DEV, &test_store_admin), PT_OK);
    assert_int_equal(capf_store_device_get(st, DEV, &d), PT_ERR_NOT_FOUND);
    assert_int_equal(capf_store_certs_list(st, DEV, &certs, &n), PT_OK);
    assert_int_equal(n, 2);
    capf_store_certs_free(certs, n);
    assert_int_equal(history_count(st, DEV), events + 1);
    assert_int_equal(capf_store_device_delete(st, DEV, &test_store_admin), PT_ERR_NOT_FOUND);
    assert_int_equal(capf_store_certs_list(st, DEV2, &certs, &n), PT_ERR_NOT_FOUND);
    /* And the name can be added again. */
    assert_int_equal(capf_store_device_add(st, DEV, &no_change, &test_store_admin), PT_OK);
    X509_free(lsc);
    X509_free(mic);
    capf_store_close(st);
}

static void test_find(void **state)
{
    (void)state;
    capf_store *st = test_store_new(NULL, 0);
    add_string_device(st, "SEP000000000003");
    add_string_device(st, "SEP000000000001");
    assert_int_equal(capf_store_device_add(st, "CSFJSMITH", &no_change, &test_store_admin), PT_OK);
    assert_int_equal(
        capf_store_op_failed(st, "SEP000000000001", CAPF_DEVICE_OP_INSTALL, "x", &test_store_capfd),
        PT_OK);
    capf_store_device *list = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_device_list(st, &list, &n), PT_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].name, "CSFJSMITH"); /* name order */
    assert_string_equal(list[1].name, "SEP000000000001");
    assert_null(list[1].lsc.pem);
    capf_store_devices_free(list, n);

    capf_store_filter f = {0};
    f.by_state = true;
    f.state = CAPF_DEVICE_STATE_FAILED;
    assert_int_equal(capf_store_device_find(st, &f, &list, &n), PT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "SEP000000000001");
    capf_store_devices_free(list, n);
    f.by_status_op = true;
    f.status_op = CAPF_DEVICE_OP_DELETE;
    assert_int_equal(capf_store_device_find(st, &f, &list, &n), PT_OK);
    assert_int_equal(n, 0);
    capf_store_devices_free(list, n);

    memset(&f, 0, sizeof f);
    f.by_operation = true;
    f.operation = CAPF_DEVICE_OP_INSTALL;
    f.auth_string = "123456";
    assert_int_equal(capf_store_device_find(st, &f, &list, &n), PT_OK);
    assert_int_equal(n, 2);
    capf_store_devices_free(list, n);
    f.auth_string = "1234567";
    assert_int_equal(capf_store_device_find(st, &f, &list, &n), PT_OK);
    assert_int_equal(n, 0);
    capf_store_devices_free(list, n);
    capf_store_close(st);
}

typedef struct error_seen {
    size_t count;
    size_t index[8];
} error_seen;

static void on_error(size_t index, pt_err rc, void *arg)
{
    error_seen *seen = arg;
    (void)rc;
    if (seen->count < 8)
        seen->index[seen->count] = index;
    seen->count++;
}

static void test_apply_all_or_nothing(void **state)
{
    (void)state;
    char url[300];
    capf_store *st = test_store_new(url, sizeof url);
    const char *path = url + strlen("sqlite:");
    assert_int_equal(capf_store_device_add(st, DEV2, &no_change, &test_store_admin), PT_OK);
    capf_store_change ch[4];
    memset(ch, 0, sizeof ch);
    ch[0].device = "SEP000000000001";
    ch[0].kind = CAPF_STORE_CHANGE_ADD_OR_SET;
    ch[0].update.description = "first";
    ch[1].device = DEV2;
    ch[1].kind = CAPF_STORE_CHANGE_ADD_OR_SET;
    ch[1].update.set_operation = true;
    ch[1].update.operation = CAPF_DEVICE_OP_DELETE;
    ch[2].device = "SEP000000000002";
    ch[2].kind = CAPF_STORE_CHANGE_ADD_OR_SET;
    ch[2].update.set_auth = true;
    ch[2].update.auth = CAPF_DEVICE_AUTH_STRING; /* no string: refused by the store */
    ch[3].device = DEV2;
    ch[3].kind = CAPF_STORE_CHANGE_ADD; /* exists */

    /* The failure is in the middle of the transaction: the changes before it are undone. */
    assert_int_equal(capf_store_devices_apply(st, ch, 4, &test_store_admin, NULL, NULL),
                     PT_ERR_USAGE);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices"), 1);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM history"), 1);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices WHERE operation = "
                                              "'none'"),
                     1);

    /* With a callback, every bad change is reported, and still nothing is kept. */
    error_seen seen = {0};
    assert_int_equal(capf_store_devices_apply(st, ch, 4, &test_store_admin, on_error, &seen),
                     PT_ERR_USAGE);
    assert_int_equal(seen.count, 2);
    assert_int_equal(seen.index[0], 2);
    assert_int_equal(seen.index[1], 3);
    assert_non_null(strstr(pt_err_message(), "2 of 4 changes failed"));
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices"), 1);

    /* A check tries the good ones and keeps nothing either. */
    memset(&seen, 0, sizeof seen);
    assert_int_equal(capf_store_devices_check(st, ch, 2, &test_store_admin, on_error, &seen),
                     PT_OK);
    assert_int_equal(seen.count, 0);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices"), 1);
    assert_int_equal(capf_store_devices_check(st, ch, 4, &test_store_admin, on_error, &seen),
                     PT_ERR_USAGE);
    assert_int_equal(seen.count, 2);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM history"), 1);

    /* Without the bad ones it all goes in, in one go. */
    assert_int_equal(capf_store_devices_apply(st, ch, 2, &test_store_admin, on_error, &seen),
                     PT_OK);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices"), 2);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices WHERE status_state = "
                                              "'pending' AND status_op = 'delete'"),
                     1);
    capf_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_get_defaults),
        cmocka_unit_test(test_set_rules),
        cmocka_unit_test(test_auth_counter_and_lock),
        cmocka_unit_test(test_auth_history_rows),
        cmocka_unit_test(test_deadline_expiry),
        cmocka_unit_test(test_op_started_refuses_other_op),
        cmocka_unit_test(test_install_records_before_reset),
        cmocka_unit_test(test_failed_keeps_operation),
        cmocka_unit_test(test_fetch_and_delete),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_apply_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, test_store_dir_make, test_store_dir_remove);
}
