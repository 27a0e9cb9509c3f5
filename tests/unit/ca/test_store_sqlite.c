/*
 * Unit tests of the SQLite backend itself: store URLs, the file it creates,
 * files it must refuse, schema migrations, and many threads (and two
 * connections, as capfd and capfctl are) using a store at once.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "test_store_util.h"

static const capf_store_update no_change;

static void sql_run(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
    sqlite3_close(db);
}

static void test_urls(void **state)
{
    (void)state;
    capf_store *st = NULL;
    assert_int_equal(capf_store_open("postgresql://capf:secret@db.example/capf", &st),
                     PT_ERR_UNSUPPORTED);
    assert_null(st);
    assert_non_null(strstr(pt_err_message(), "this build has no PostgreSQL backend"));
    assert_null(strstr(pt_err_message(), "secret")); /* a URL's password is not repeated */
    assert_int_equal(capf_store_open("postgres://x/y", &st), PT_ERR_UNSUPPORTED);
    assert_int_equal(capf_store_open("mysql://x/y", &st), PT_ERR_USAGE);
    assert_int_equal(capf_store_open("/var/lib/x.db", &st), PT_ERR_USAGE);
    assert_int_equal(capf_store_open("sqlite:", &st), PT_ERR_USAGE);
    assert_int_equal(capf_store_open("sqlite://host/x.db", &st), PT_ERR_USAGE);
    assert_int_equal(capf_store_open("", &st), PT_ERR_USAGE);
    assert_int_equal(capf_store_open(NULL, &st), PT_ERR_USAGE);

    char path[256], url[300];
    test_store_path("url", path, sizeof path);
    snprintf(url, sizeof url, "sqlite://%s", path); /* sqlite:///abs/path */
    assert_int_equal(capf_store_open_existing(url, &st), PT_ERR_NOT_FOUND);
    assert_non_null(strstr(pt_err_message(), "there is no CAPF store"));
    assert_int_equal(access(path, F_OK), -1); /* and none was made */
    assert_int_equal(capf_store_open(url, &st), PT_OK);
    capf_store_close(st);
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_int_equal(capf_store_open_existing(url, &st), PT_OK);
    capf_store_close(st);

    snprintf(url, sizeof url, "sqlite:%s/no/such/dir/x.db", test_store_dir);
    assert_int_equal(capf_store_open(url, &st), PT_ERR_ERRNO);
    assert_non_null(strstr(pt_err_message(), "does its directory exist"));
}

static void test_new_file_settings(void **state)
{
    (void)state;
    char url[300];
    capf_store *st = test_store_new(url, sizeof url);
    const char *path = url + strlen("sqlite:");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600); /* it will hold authentication strings */
    assert_int_equal(test_store_sql_int(path, "PRAGMA user_version"), 2);
    assert_int_equal(test_store_sql_int(path, "PRAGMA application_id"), 0x50544346);
    /* WAL mode is a property of the file: another connection sees it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
    capf_store_close(st);
}

static void test_foreign_files_refused(void **state)
{
    (void)state;
    char path[256], url[300];
    capf_store *st = NULL;

    test_store_path("text", path, sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("device,description\nSEP001122334455,hello\n", f);
    fclose(f);
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_int_equal(capf_store_open(url, &st), PT_ERR_FORMAT);
    assert_non_null(strstr(pt_err_message(), "not a SQLite database"));

    test_store_path("other", path, sizeof path);
    sql_run(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_int_equal(capf_store_open(url, &st), PT_ERR_FORMAT);
    assert_non_null(strstr(pt_err_message(), "not a CAPF store"));
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM t"), 1);

    test_store_path("otherapp", path, sizeof path);
    sql_run(path, "PRAGMA application_id = 42;");
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_int_equal(capf_store_open(url, &st), PT_ERR_FORMAT);
    assert_null(st);
}

/*
 * Schema version 1, written here by hand (not by the code under test) as
 * phonetrust's first release created it.
 */
static const char schema_v1[] =
    "CREATE TABLE certificates (id INTEGER PRIMARY KEY, device TEXT NOT NULL,"
    " serial TEXT NOT NULL, subject TEXT NOT NULL, issuer TEXT NOT NULL,"
    " key_type TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
    " pem TEXT NOT NULL, issued_at INTEGER NOT NULL, superseded_at INTEGER,"
    " superseded_by INTEGER REFERENCES certificates(id));"
    "CREATE TABLE devices (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '', operation TEXT NOT NULL DEFAULT 'none'"
    " CHECK (operation IN ('none', 'install', 'delete', 'troubleshoot')),"
    " auth_mode TEXT NOT NULL DEFAULT 'null' CHECK (auth_mode IN ('null', 'string', 'lsc', "
    "'mic')),"
    " auth_string TEXT CHECK (auth_string IS NULL OR length(auth_string) BETWEEN 4 AND 10),"
    " auth_failures INTEGER NOT NULL DEFAULT 0 CHECK (auth_failures >= 0),"
    " locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
    " key_spec TEXT NOT NULL DEFAULT 'default', deadline INTEGER,"
    " status_op TEXT CHECK (status_op IS NULL OR status_op IN ('none', 'install', 'delete', "
    "'troubleshoot')),"
    " status_state TEXT NOT NULL DEFAULT 'none' CHECK (status_state IN ('none', 'pending', "
    "'success', 'failed')),"
    " status_reason TEXT NOT NULL DEFAULT '', status_time INTEGER,"
    " created INTEGER NOT NULL, changed INTEGER NOT NULL,"
    " lsc_cert_id INTEGER REFERENCES certificates(id));"
    "CREATE TABLE history (id INTEGER PRIMARY KEY, device TEXT NOT NULL, at INTEGER NOT NULL,"
    " event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL,"
    " actor_user TEXT, session TEXT, peer TEXT);"
    "PRAGMA application_id = 1347699526;"
    "INSERT INTO certificates VALUES (1, 'SEP001122334455', '0A1B', 'CN=SEP001122334455',"
    " 'CN=CAPF-1', 'RSA 2048', 1700000000, 1800000000, 'PEM', 1700000000, NULL, NULL);"
    "INSERT INTO devices (name, description, operation, auth_mode, auth_string, key_spec,"
    " status_op, status_state, status_time, created, changed, lsc_cert_id) VALUES"
    " ('SEP001122334455', 'from v1', 'install', 'string', '2468', 'rsa:2048', 'install',"
    " 'pending', 1700000000, 1700000000, 1700000000, 1);"
    "INSERT INTO history (device, at, event, detail, actor) VALUES"
    " ('SEP001122334455', 1700000000, 'added', 'operation install', 'capfctl');"
    "PRAGMA user_version = 1;";

static void test_migration_from_v1(void **state)
{
    (void)state;
    char path[256], url[300];
    test_store_path("v1", path, sizeof path);
    sql_run(path, schema_v1);
    snprintf(url, sizeof url, "sqlite:%s", path);
    capf_store *st = NULL;
    assert_int_equal(capf_store_open_existing(url, &st), PT_OK);
    assert_int_equal(test_store_sql_int(path, "PRAGMA user_version"), 2);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = "
                                              "'fetched_certificates'"),
                     1);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = "
                                              "'index' AND name = 'history_by_device'"),
                     1);

    /* What v1 held is all there, and v2's table works. */
    capf_store_device d;
    assert_int_equal(capf_store_device_get(st, "SEP001122334455", &d), PT_OK);
    assert_string_equal(d.description, "from v1");
    assert_string_equal(d.auth_string, "2468");
    assert_int_equal(d.key.rsa_bits, 2048);
    assert_true(d.has_lsc);
    assert_string_equal(d.lsc.serial, "0A1B");
    capf_store_device_free(&d);
    capf_store_update u = no_change;
    u.set_operation = true;
    u.operation = CAPF_DEVICE_OP_TROUBLESHOOT;
    assert_int_equal(capf_store_device_set(st, "SEP001122334455", &u, &test_store_admin), PT_OK);
    X509 *mic = test_store_cert((const uint8_t[]){0x05}, 1, 1700000000, 1900000000, "MIC");
    assert_int_equal(capf_store_cert_fetched(st, "SEP001122334455", mic,
                                             CAPF_STORE_CERT_FETCHED_MIC, &test_store_capfd),
                     PT_OK);
    X509_free(mic);
    capf_store_close(st);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM fetched_certificates"), 1);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM history"), 3);

    /* Opening an up-to-date store changes nothing. */
    assert_int_equal(capf_store_open(url, &st), PT_OK);
    capf_store_close(st);
    assert_int_equal(test_store_sql_int(path, "PRAGMA user_version"), 2);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char url[300];
    capf_store *st = test_store_new(url, sizeof url);
    const char *path = url + strlen("sqlite:");
    assert_int_equal(capf_store_device_add(st, "SEP001122334455", &no_change, &test_store_admin),
                     PT_OK);
    capf_store_close(st);
    sql_run(path, "PRAGMA user_version = 3;");
    st = NULL;
    assert_int_equal(capf_store_open(url, &st), PT_ERR_UNSUPPORTED);
    assert_null(st);
    assert_non_null(strstr(pt_err_message(), "schema version 3, newer than this phonetrust knows"));
    assert_int_equal(test_store_sql_int(path, "PRAGMA user_version"), 3);
    assert_int_equal(test_store_sql_int(path, "SELECT count(*) FROM devices"), 1);
}

enum { THREADS = 6, ATTEMPTS = 40 };

typedef struct worker {
    capf_store *st;
    char name[16];
    pt_err rc;
} worker;

/* Wrong strings on the worker's own device, and on a shared one. */
static void *auth_worker(void *arg)
{
    worker *w = arg;
    w->rc = PT_OK;
    for (int i = 0; i < ATTEMPTS && w->rc == PT_OK; i++) {
        capf_store_auth_result r;
        const char *dev = i % 2 ? w->name : "SEP00000000FFFF";
        w->rc = capf_store_auth_attempt(w->st, dev, "0000", 4, 1000000, &test_store_capfd, &r);
        if (w->rc == PT_OK && r != CAPF_STORE_AUTH_REJECTED)
            w->rc = PT_ERR_INTERNAL;
    }
    return NULL;
}

static void add_device_with_string(capf_store *st, const char *name)
{
    capf_store_update u = no_change;
    u.set_auth = true;
    u.auth = CAPF_DEVICE_AUTH_STRING;
    u.auth_string = "9999";
    assert_int_equal(capf_store_device_add(st, name, &u, &test_store_admin), PT_OK);
}

static void test_threads_and_two_connections(void **state)
{
    (void)state;
    char url[300];
    capf_store *st = test_store_new(url, sizeof url);
    /* A second handle on the same file: another process, as far as SQLite is concerned. */
    capf_store *other = NULL;
    assert_int_equal(capf_store_open(url, &other), PT_OK);
    worker w[THREADS];
    pthread_t t[THREADS];
    add_device_with_string(st, "SEP00000000FFFF");
    for (int i = 0; i < THREADS; i++) {
        w[i].st = i % 2 ? other : st;
        snprintf(w[i].name, sizeof w[i].name, "SEP0000000000%02d", i);
        add_device_with_string(st, w[i].name);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, auth_worker, &w[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].rc, PT_OK);
    }
    /* No attempt lost: every count is exact. */
    capf_store_device d;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(capf_store_device_get(other, w[i].name, &d), PT_OK);
        assert_int_equal(d.auth_failures, ATTEMPTS / 2);
        capf_store_device_free(&d);
    }
    assert_int_equal(capf_store_device_get(st, "SEP00000000FFFF", &d), PT_OK);
    assert_int_equal(d.auth_failures, THREADS * ATTEMPTS / 2);
    capf_store_device_free(&d);
    capf_store_close(other);
    capf_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_new_file_settings),
        cmocka_unit_test(test_foreign_files_refused),
        cmocka_unit_test(test_migration_from_v1),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_threads_and_two_connections),
    };
    return cmocka_run_group_tests(tests, test_store_dir_make, test_store_dir_remove);
}
