/*
 * Unit tests of group commit in front of the audit log: audit_log_append_many
 * (several records, one write, one fdatasync, all or nothing) and hsmd's
 * committer, with many threads at once and with a write that fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "hsmd_audit.h"
#include "rmtree.h"

typedef struct fixture {
    char dir[256];
    char path[300];
    audit_log *log;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/hsmd-audit.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/audit.log", f->dir);
    if (audit_log_open(f->path, AUDIT_OPEN_EXISTING, &f->log) != PT_OK) {
        pt_test_rmtree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    audit_log_close(f->log);
    pt_test_rmtree(f->dir);
    free(f);
    return 0;
}

static audit_entry entry(const char *note)
{
    audit_entry e = {.uid = 1000,
                     .pid = 42,
                     .op = "issue",
                     .key = "CAPF",
                     .result = AUDIT_RESULT_OK,
                     .note = note};
    return e;
}

static uint64_t records(const fixture *f)
{
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    return rep.good_records;
}

static void test_append_many(void **state)
{
    fixture *f = *state;
    uint64_t before = records(f); /* chain-start */
    audit_entry a = entry("a"), b = entry("b"), c = entry("c");
    const audit_entry *three[] = {&a, &b, &c};
    assert_int_equal(audit_log_append_many(f->log, three, 3), PT_OK);
    assert_int_equal(records(f), before + 3);
    uint64_t seq = 0;
    char head[AUDIT_HASH_HEX];
    audit_log_head(f->log, &seq, head);
    assert_int_equal(seq, before + 3);

    /* Nothing, too many, or one bad entry: nothing is written. */
    assert_int_equal(audit_log_append_many(f->log, three, 0), PT_ERR_USAGE);
    audit_entry bad = entry("bad");
    bad.op = "Not An Op";
    const audit_entry *mixed[] = {&a, &bad, &c};
    assert_int_equal(audit_log_append_many(f->log, mixed, 3), PT_ERR_USAGE);
    assert_int_equal(records(f), before + 3);
    /* The chain goes on after the refused batch. */
    assert_int_equal(audit_log_append(f->log, &a), PT_OK);
    assert_int_equal(records(f), before + 4);
}

typedef struct writer {
    hsmd_audit *committer;
    int n;
    int failed;
} writer;

static void *write_many(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        char note[32];
        snprintf(note, sizeof note, "record %d", i);
        audit_entry e = entry(note);
        if (hsmd_audit_record(w->committer, &e) != PT_OK)
            w->failed++;
    }
    return NULL;
}

/* Many threads at once: every record lands once, in a chain that verifies. */
static void test_group_commit(void **state)
{
    fixture *f = *state;
    hsmd_audit *committer = NULL;
    assert_int_equal(hsmd_audit_new(f->log, &committer), PT_OK);
    uint64_t before = records(f);
    enum { THREADS = 16, EACH = 40 };
    writer w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (writer){committer, EACH, 0};
        pthread_create(&th[i], NULL, write_many, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    assert_int_equal(records(f), before + THREADS * EACH);
    uint64_t written = 0, flushes = 0;
    hsmd_audit_counts(committer, &written, &flushes);
    assert_int_equal(written, THREADS * EACH);
    assert_true(flushes >= 1 && flushes <= written);
    print_message("%" PRIu64 " records in %" PRIu64 " fdatasync calls\n", written, flushes);
    hsmd_audit_free(committer);
}

/* A write that fails fails its record, and the log stays whole. */
static void test_failure_reaches_the_caller(void **state)
{
    fixture *f = *state;
    hsmd_audit *committer = NULL;
    assert_int_equal(hsmd_audit_new(f->log, &committer), PT_OK);
    uint64_t before = records(f);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = (rlim_t)st.st_size + 10;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    audit_entry e = entry("too big");
    pt_err rc = hsmd_audit_record(committer, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_not_equal(rc, PT_OK);
    assert_non_null(strstr(pt_err_message(), "audit log"));
    assert_int_equal(records(f), before);
    assert_int_equal(hsmd_audit_record(committer, &e), PT_OK);
    assert_int_equal(records(f), before + 1);
    hsmd_audit_free(committer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_reaches_the_caller, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
