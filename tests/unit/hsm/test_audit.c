/*
 * Unit tests of the hash-chained audit log: appending, verifying, detecting
 * altered, missing and reordered records, repairing a torn last line,
 * starting a new chain, concurrent appends and a writer killed mid-run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "fileio.h"

typedef struct fixture {
    char dir[256];
    char path[300];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(f->dir, sizeof f->dir, "%s/audit.XXXXXX", tmp);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/audit.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char p[600];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static const uint8_t some_digest[32] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8};

static void append_n(audit_log *log, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char note[64];
        snprintf(note, sizeof note, "%s-%d", prefix, i);
        audit_entry e = {
            .uid = 1001,
            .pid = 4242 + (pid_t)i,
            .op = i % 2 ? "issue" : "sign-tlv",
            .key = i % 2 ? "CAPF-CA" : "ITLRecovery",
            .input_sha256 = some_digest,
            .result = i % 3 == 2 ? AUDIT_RESULT_REFUSED : AUDIT_RESULT_OK,
            .refusal = i % 3 == 2 ? "refused-by-policy" : NULL,
            .serial = i % 2 && i % 3 != 2 ? "1A2B3C" : NULL,
            .note = note,
        };
        assert_int_equal(audit_log_append(log, &e), PT_OK);
    }
}

/* A log at path with a chain-start and n records. */
static void make_log(const char *path, int n)
{
    audit_log *log = NULL;
    assert_int_equal(audit_log_open(path, AUDIT_OPEN_EXISTING, &log), PT_OK);
    append_n(log, n, "rec");
    audit_log_close(log);
}

/* The whole file, NUL-terminated so that the tests can search it as text. */
static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *data = NULL;
    assert_int_equal(pt_file_read(path, 64 << 20, &data, len), PT_OK);
    uint8_t *text = OPENSSL_zalloc(*len + 1);
    assert_non_null(text);
    memcpy(text, data, *len);
    OPENSSL_free(data);
    return text;
}

static void write_all(const char *path, const void *data, size_t len)
{
    assert_int_equal(pt_file_write_atomic(path, data, len, 0600), PT_OK);
}

/* Offset and length (with newline) of 1-based line k. */
static void line_bounds(const uint8_t *data, size_t len, size_t k, size_t *off, size_t *n)
{
    size_t start = 0;
    for (size_t line = 1; start < len; line++) {
        const uint8_t *nl = memchr(data + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - data) + 1 : len;
        if (line == k) {
            *off = start;
            *n = end - start;
            return;
        }
        start = end;
    }
    fail_msg("no line %zu", k);
}

static void delete_line(const char *path, size_t k)
{
    size_t len = 0, off = 0, n = 0;
    uint8_t *data = read_all(path, &len);
    line_bounds(data, len, k, &off, &n);
    memmove(data + off, data + off + n, len - off - n);
    write_all(path, data, len - n);
    OPENSSL_free(data);
}

static void expect_problem(const char *path, audit_problem p, uint64_t line, uint64_t seq)
{
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(path, &rep), PT_ERR_VERIFY);
    assert_int_equal(rep.problem, p);
    assert_int_equal(rep.line, line);
    assert_int_equal(rep.seq, seq);
    assert_int_equal(rep.good_records, line - 1);
}

/*
 * The chain rule of AUDIT.md, computed here without the library: each
 * record's hash is the SHA-256 of its line up to " hash=", and each prev is
 * the hash of the line before.
 */
static void check_chain_independently(const uint8_t *data, size_t len, size_t *lines)
{
    char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    size_t start = 0;
    *lines = 0;
    while (start < len) {
        const uint8_t *nl = memchr(data + start, '\n', len - start);
        assert_non_null(nl);
        char line[4096];
        size_t n = (size_t)(nl - data) - start;
        assert_true(n < sizeof line);
        memcpy(line, data + start, n);
        line[n] = '\0';
        const char *h = strstr(line, " hash=");
        const char *pv = strstr(line, " prev=");
        assert_non_null(h);
        assert_non_null(pv);
        uint8_t md[32];
        unsigned mdlen = 0;
        assert_int_equal(EVP_Digest(line, (size_t)(h - line), md, &mdlen, EVP_sha256(), NULL), 1);
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        assert_string_equal(h + 6, hex);
        if (*lines > 0)
            assert_memory_equal(pv + 6, prev, 64);
        memcpy(prev, hex, 65);
        (*lines)++;
        start += n + 1;
    }
}

static void test_append_and_verify(void **state)
{
    fixture *f = *state;
    make_log(f->path, 30);
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    assert_int_equal(rep.problem, AUDIT_PROBLEM_NONE);
    assert_int_equal(rep.good_records, 31); /* the chain-start and 30 records */
    assert_int_equal(rep.last_seq, 31);
    assert_memory_equal(rep.anchor, "0000000000000000", 16);

    size_t len = 0, lines = 0;
    uint8_t *data = read_all(f->path, &len);
    assert_int_equal(rep.good_bytes, len);
    check_chain_independently(data, len, &lines);
    assert_int_equal(lines, 31);
    /* The first record opens the chain; the others say what they record. */
    assert_true(strncmp((char *)data, "v1 seq=1 time=", 14) == 0);
    assert_non_null(strstr((char *)data, " op=chain-start key=- input=- result=ok serial=- "));
    assert_non_null(strstr((char *)data, " op=issue key=CAPF-CA input=deadbeef0102030405060708"));
    assert_non_null(strstr((char *)data, " result=refused:refused-by-policy serial=- note=rec-2 "));
    assert_non_null(strstr((char *)data, " result=ok serial=1A2B3C note=rec-1 "));
    OPENSSL_free(data);

    /* Reopening continues the same chain. */
    audit_log *log = NULL;
    uint64_t seq = 0;
    char head[AUDIT_HASH_HEX];
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &log), PT_OK);
    audit_log_head(log, &seq, head);
    assert_int_equal(seq, 31);
    assert_string_equal(head, rep.last_hash);
    append_n(log, 5, "more");
    audit_log_close(log);
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    assert_int_equal(rep.good_records, 36);
}

static void test_altered_byte_found_at_its_record(void **state)
{
    fixture *f = *state;
    make_log(f->path, 9);
    size_t len = 0, off = 0, n = 0;
    uint8_t *orig = read_all(f->path, &len);
    static const uint8_t flips[] = {0x01, 0x20, 0x80};
    static const size_t records[] = {1, 5, 10}; /* the first, a middle and the last */
    for (size_t r = 0; r < sizeof records / sizeof records[0]; r++) {
        size_t k = records[r];
        line_bounds(orig, len, k, &off, &n);
        for (size_t i = off; i < off + n; i++) {
            for (size_t j = 0; j < sizeof flips; j++) {
                uint8_t *copy = OPENSSL_memdup(orig, len);
                copy[i] ^= flips[j];
                audit_verify_report rep;
                assert_int_equal(audit_verify_buffer(copy, len, &rep), PT_ERR_VERIFY);
                if (rep.line != k)
                    fail_msg("byte %zu of record %zu changed: reported line %" PRIu64 " (%s)",
                             i - off, k, rep.line, rep.detail);
                assert_int_equal(rep.seq, k);
                assert_int_equal(rep.good_records, k - 1);
                OPENSSL_free(copy);
            }
        }
    }
    /* Through the file too, with the record named in the message. */
    line_bounds(orig, len, 4, &off, &n);
    orig[off + 40] ^= 0x01;
    write_all(f->path, orig, len);
    expect_problem(f->path, AUDIT_PROBLEM_ALTERED, 4, 4);
    assert_non_null(strstr(pt_err_message(), "line 4 (record seq 4)"));
    OPENSSL_free(orig);
}

static void test_deleted_line_is_a_gap(void **state)
{
    fixture *f = *state;
    make_log(f->path, 9);
    delete_line(f->path, 6);
    expect_problem(f->path, AUDIT_PROBLEM_SEQ_GAP, 6, 6);
    /* Removing the first record is caught too: the file must start at seq 1. */
    delete_line(f->path, 1);
    expect_problem(f->path, AUDIT_PROBLEM_SEQ_GAP, 1, 1);
}

static void test_reordered_and_repeated(void **state)
{
    fixture *f = *state;
    make_log(f->path, 9);
    size_t len = 0, o3 = 0, n3 = 0, o4 = 0, n4 = 0;
    uint8_t *data = read_all(f->path, &len);
    line_bounds(data, len, 3, &o3, &n3);
    line_bounds(data, len, 4, &o4, &n4);
    uint8_t *swapped = OPENSSL_memdup(data, len);
    memcpy(swapped + o3, data + o4, n4);
    memcpy(swapped + o3 + n4, data + o3, n3);
    audit_verify_report rep;
    assert_int_equal(audit_verify_buffer(swapped, len, &rep), PT_ERR_VERIFY);
    assert_int_equal(rep.problem, AUDIT_PROBLEM_SEQ_GAP);
    assert_int_equal(rep.line, 3);

    /* A record written twice. */
    uint8_t *twice = OPENSSL_malloc(len + n3);
    memcpy(twice, data, o4);
    memcpy(twice + o4, data + o3, n3);
    memcpy(twice + o4 + n3, data + o4, len - o4);
    assert_int_equal(audit_verify_buffer(twice, len + n3, &rep), PT_ERR_VERIFY);
    assert_int_equal(rep.problem, AUDIT_PROBLEM_SEQ_GAP);
    assert_int_equal(rep.line, 4);
    OPENSSL_free(swapped);
    OPENSSL_free(twice);
    OPENSSL_free(data);
}

/* Rewrite line k with its prev replaced, and its own hash recomputed to match. */
static uint8_t *relink_line(const uint8_t *data, size_t len, size_t k, const char *new_prev,
                            const char *new_op, size_t *out_len)
{
    size_t off = 0, n = 0;
    line_bounds(data, len, k, &off, &n);
    char line[4096];
    memcpy(line, data + off, n - 1);
    line[n - 1] = '\0';
    char *pv = strstr(line, " prev=");
    char *h = strstr(line, " hash=");
    if (new_prev != NULL)
        memcpy(pv + 6, new_prev, 64);
    if (new_op != NULL) {
        char *op = strstr(line, " op=");
        assert_memory_equal(op + 4, "chain-start ", 12);
        memcpy(op + 4, new_op, 11); /* same length as "chain-start" */
    }
    uint8_t md[32];
    unsigned mdlen = 0;
    EVP_Digest(line, (size_t)(h - line), md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(h + 6 + 2 * i, 3, "%02x", md[i]);
    uint8_t *out = OPENSSL_memdup(data, len);
    memcpy(out + off, line, n - 1);
    *out_len = len;
    return out;
}

static void test_broken_link(void **state)
{
    fixture *f = *state;
    make_log(f->path, 5);
    size_t len = 0, out_len = 0;
    uint8_t *data = read_all(f->path, &len);
    /* Record 4 is self-consistent but points at the wrong predecessor. */
    uint8_t *bad = relink_line(data, len, 4,
                               "1111111111111111111111111111111111111111111111111111111111111111",
                               NULL, &out_len);
    audit_verify_report rep;
    assert_int_equal(audit_verify_buffer(bad, out_len, &rep), PT_ERR_VERIFY);
    assert_int_equal(rep.problem, AUDIT_PROBLEM_BROKEN_LINK);
    assert_int_equal(rep.line, 4);
    assert_non_null(strstr(rep.detail, "record 3"));
    OPENSSL_free(bad);
    /* The first record must open the chain. */
    bad = relink_line(data, len, 1, NULL, "issue-other", &out_len);
    assert_int_equal(audit_verify_buffer(bad, out_len, &rep), PT_ERR_VERIFY);
    assert_int_equal(rep.problem, AUDIT_PROBLEM_BROKEN_LINK);
    assert_int_equal(rep.line, 1);
    OPENSSL_free(bad);
    OPENSSL_free(data);
}

static void test_malformed_lines(void **state)
{
    (void)state;
    static const char short_hashes[] =
        "v1 seq=1 time=2026-11-23T12:00:00Z uid=0 pid=1 op=chain-start key=- input=- "
        "result=ok serial=- note=- prev=0 hash=0\n";
    static const char *const bad[] = {
        "\n", "v2 seq=1\n", "hello\n", "v1 seq=01 time=x\n", short_hashes,
    };
    audit_verify_report rep;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(audit_verify_buffer((const uint8_t *)bad[i], strlen(bad[i]), &rep),
                         PT_ERR_VERIFY);
        assert_int_equal(rep.problem, AUDIT_PROBLEM_MALFORMED);
        assert_int_equal(rep.line, 1);
    }
    char *longline = malloc(AUDIT_LINE_MAX + 10);
    memset(longline, 'x', AUDIT_LINE_MAX + 9);
    longline[AUDIT_LINE_MAX + 9] = '\n';
    assert_int_equal(audit_verify_buffer((uint8_t *)longline, AUDIT_LINE_MAX + 10, &rep),
                     PT_ERR_VERIFY);
    assert_int_equal(rep.problem, AUDIT_PROBLEM_MALFORMED);
    assert_non_null(strstr(rep.detail, "longer than"));
    free(longline);
    /* Nothing at all is an empty, intact log. */
    assert_int_equal(audit_verify_buffer(NULL, 0, &rep), PT_OK);
    assert_int_equal(rep.good_records, 0);
}

static void test_torn_last_line_repaired(void **state)
{
    fixture *f = *state;
    make_log(f->path, 6);
    size_t len = 0;
    uint8_t *data = read_all(f->path, &len);
    /* Half of a seventh record, as a power cut after write() but before the disk had it all. */
    static const char half[] = "v1 seq=8 time=2026-11-23T12:00:00Z uid=1001 pid=9 op=iss";
    uint8_t *torn = OPENSSL_malloc(len + sizeof half - 1);
    memcpy(torn, data, len);
    memcpy(torn + len, half, sizeof half - 1);
    write_all(f->path, torn, len + sizeof half - 1);
    expect_problem(f->path, AUDIT_PROBLEM_TORN_TAIL, 8, 8);

    audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &log), PT_OK);
    append_n(log, 2, "after");
    audit_log_close(log);

    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    assert_int_equal(rep.good_records, 7 + 1 + 2);
    size_t len2 = 0;
    uint8_t *repaired = read_all(f->path, &len2);
    assert_memory_equal(repaired, data, len); /* everything acknowledged is still there */
    assert_true(strncmp((char *)repaired + len, "v1 seq=8 ", 9) == 0);
    assert_non_null(strstr((char *)repaired + len, " op=repair "));
    assert_non_null(
        strstr((char *)repaired + len, "cut%20an%20incomplete%20last%20line%20of%2056"));
    OPENSSL_free(repaired);
    OPENSSL_free(torn);
    OPENSSL_free(data);
}

static void test_torn_only_line(void **state)
{
    fixture *f = *state;
    write_all(f->path, "v1 seq=1 time=2026", 18);
    audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &log), PT_OK);
    audit_log_close(log);
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    assert_int_equal(rep.good_records, 2); /* chain-start and repair */
}

static void test_broken_chain_refused_then_new_chain(void **state)
{
    fixture *f = *state;
    make_log(f->path, 8);
    delete_line(f->path, 5);
    size_t len = 0;
    uint8_t *broken = read_all(f->path, &len);
    audit_verify_report before;
    assert_int_equal(audit_log_verify_file(f->path, &before), PT_ERR_VERIFY);

    audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &log), PT_ERR_VERIFY);
    assert_null(log);
    assert_non_null(strstr(pt_err_message(), "line 5 (record seq 5)"));
    assert_non_null(strstr(pt_err_message(), "sequence gap"));
    /* Refusing changed nothing. */
    size_t len2 = 0;
    uint8_t *after = read_all(f->path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, broken, len);
    OPENSSL_free(after);

    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_NEW_CHAIN, &log), PT_OK);
    append_n(log, 3, "new");
    audit_log_close(log);

    /* The old file is kept aside, byte for byte. */
    char aside[600] = "";
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, "audit.log.broken-") == e->d_name)
            snprintf(aside, sizeof aside, "%s/%s", f->dir, e->d_name);
    closedir(d);
    assert_true(aside[0] != '\0');
    after = read_all(aside, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, broken, len);
    OPENSSL_free(after);

    /* The new chain verifies and links to the old file's last good record. */
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    assert_int_equal(rep.good_records, 4);
    assert_string_equal(rep.anchor, before.last_hash);
    after = read_all(f->path, &len2);
    assert_non_null(strstr((char *)after, " op=chain-start "));
    assert_non_null(strstr((char *)after, strrchr(aside, '/') + 1));
    assert_non_null(strstr((char *)after, "good%20to%20seq%204"));
    OPENSSL_free(after);
    OPENSSL_free(broken);
}

static void test_second_opener_refused(void **state)
{
    fixture *f = *state;
    audit_log *a = NULL, *b = NULL;
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &a), PT_OK);
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &b), PT_ERR_BUSY);
    assert_null(b);
    audit_log_close(a);
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &b), PT_OK);
    audit_log_close(b);
}

static void test_entry_values(void **state)
{
    fixture *f = *state;
    audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &log), PT_OK);
    audit_entry e = {.op = "Issue", .result = AUDIT_RESULT_OK};
    assert_int_equal(audit_log_append(log, &e), PT_ERR_USAGE);
    e.op = NULL;
    assert_int_equal(audit_log_append(log, &e), PT_ERR_USAGE);
    e = (audit_entry){.op = "issue", .result = AUDIT_RESULT_REFUSED};
    assert_int_equal(audit_log_append(log, &e), PT_ERR_USAGE);
    e = (audit_entry){.op = "issue", .result = AUDIT_RESULT_OK, .serial = "1a2b"};
    assert_int_equal(audit_log_append(log, &e), PT_ERR_USAGE);

    /* Free text survives spaces, newlines, '%' and non-ASCII; "-" stays distinct from none. */
    char text[] = "CN=a b\nc 100% \xc3\xa9";
    char longnote[1000];
    memset(longnote, 'n', sizeof longnote - 1);
    longnote[sizeof longnote - 1] = '\0';
    e = (audit_entry){.op = "issue", .key = "-", .result = AUDIT_RESULT_ERROR, .note = text};
    assert_int_equal(audit_log_append(log, &e), PT_OK);
    e = (audit_entry){.op = "status", .result = AUDIT_RESULT_OK, .note = longnote};
    assert_int_equal(audit_log_append(log, &e), PT_OK);
    audit_log_close(log);

    size_t len = 0;
    uint8_t *data = read_all(f->path, &len);
    char *second = strchr((char *)data, '\n') + 1;
    char *third = strchr(second, '\n') + 1;
    audit_record rec;
    assert_int_equal(audit_line_parse(second, (size_t)(strchr(second, '\n') - second), &rec),
                     PT_OK);
    char out[AUDIT_NOTE_MAX + 1];
    audit_span_decode(rec.note, out, sizeof out);
    assert_string_equal(out, text);
    audit_span_decode(rec.key, out, sizeof out);
    assert_string_equal(out, "-");
    assert_true(rec.key.len == 3 && memcmp(rec.key.p, "%2D", 3) == 0);
    assert_true(rec.result.len == 5 && memcmp(rec.result.p, "error", 5) == 0);
    assert_int_equal(audit_line_parse(third, (size_t)(strchr(third, '\n') - third), &rec), PT_OK);
    audit_span_decode(rec.note, out, sizeof out);
    assert_int_equal(strlen(out), AUDIT_NOTE_MAX);
    assert_string_equal(out + AUDIT_NOTE_MAX - 3, "...");
    audit_span_decode(rec.key, out, sizeof out);
    assert_string_equal(out, "");
    OPENSSL_free(data);
}

static void test_verify_missing_file(void **state)
{
    fixture *f = *state;
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_ERR_ERRNO);
    assert_non_null(strstr(pt_err_message(), f->path));
}

enum { THREADS = 4, PER_THREAD = 100 };

typedef struct worker {
    audit_log *log;
    int id;
    pt_err rc;
} worker;

static void *append_worker(void *p)
{
    worker *w = p;
    for (int i = 0; i < PER_THREAD && w->rc == PT_OK; i++) {
        char note[32];
        snprintf(note, sizeof note, "t%d-%d", w->id, i);
        audit_entry e = {.uid = 1000,
                         .pid = 1,
                         .op = "issue",
                         .key = "CAPF-CA",
                         .result = AUDIT_RESULT_OK,
                         .note = note};
        w->rc = audit_log_append(w->log, &e);
    }
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    fixture *f = *state;
    audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &log), PT_OK);
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){log, i, PT_OK};
        assert_int_equal(pthread_create(&t[i], NULL, append_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].rc, PT_OK);
    }
    audit_log_close(log);

    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    assert_int_equal(rep.good_records, 1 + THREADS * PER_THREAD);
    /* Every record is there exactly once. */
    size_t len = 0;
    uint8_t *data = read_all(f->path, &len);
    static bool seen[THREADS][PER_THREAD];
    memset(seen, 0, sizeof seen);
    for (char *line = strchr((char *)data, '\n') + 1; line < (char *)data + len;) {
        char *nl = strchr(line, '\n');
        audit_record rec;
        char note[64];
        int ti = -1, ri = -1;
        assert_int_equal(audit_line_parse(line, (size_t)(nl - line), &rec), PT_OK);
        audit_span_decode(rec.note, note, sizeof note);
        assert_int_equal(sscanf(note, "t%d-%d", &ti, &ri), 2); // NOLINT(cert-err34-c)
        assert_false(seen[ti][ri]);
        seen[ti][ri] = true;
        line = nl + 1;
    }
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER_THREAD; j++)
            assert_true(seen[i][j]);
    OPENSSL_free(data);
}

/* The child: append forever, acknowledging each durable record on the pipe. */
_Noreturn static void killed_writer(const char *path, int ack_fd)
{
    audit_log *log = NULL;
    if (audit_log_open(path, AUDIT_OPEN_EXISTING, &log) != PT_OK)
        _exit(2);
    for (uint32_t n = 0;; n++) {
        char note[32];
        snprintf(note, sizeof note, "ack-%" PRIu32, n);
        audit_entry e = {.uid = 1000,
                         .pid = getpid(),
                         .op = "sign-tlv",
                         .key = "ITLRecovery",
                         .input_sha256 = some_digest,
                         .result = AUDIT_RESULT_OK,
                         .note = note};
        if (audit_log_append(log, &e) != PT_OK)
            _exit(3);
        /* Only now may a signature go out: tell the parent this record was acknowledged. */
        if (write(ack_fd, &n, sizeof n) != (ssize_t)sizeof n)
            _exit(4);
    }
}

static void test_sigkill_keeps_acknowledged(void **state)
{
    fixture *f = *state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        killed_writer(f->path, p[1]);
    }
    close(p[1]);
    uint32_t n = 0, acked = 0;
    /* Let the child get well into its loop, then kill it without warning. */
    while (acked < 40 && read(p[0], &n, sizeof n) == (ssize_t)sizeof n)
        acked = n + 1;
    assert_int_equal(acked, 40);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Acknowledgements written before the kill are still in the pipe. */
    while (read(p[0], &n, sizeof n) == (ssize_t)sizeof n)
        acked = n + 1;
    close(p[0]);

    /*
     * A kill can only cut the record being written, never acknowledged; that
     * shows as an incomplete last line, which opening the log repairs.
     */
    audit_verify_report rep;
    pt_err rc = audit_log_verify_file(f->path, &rep);
    assert_true(rc == PT_OK || rep.problem == AUDIT_PROBLEM_TORN_TAIL);
    assert_true(rep.good_records >= 1 + acked);
    audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->path, AUDIT_OPEN_EXISTING, &log), PT_OK);
    audit_log_close(log);
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);

    size_t len = 0;
    uint8_t *data = read_all(f->path, &len);
    for (uint32_t i = 0; i < acked; i++) {
        char needle[48];
        snprintf(needle, sizeof needle, " seq=%" PRIu32 " ", i + 2);
        char *line = strstr((char *)data, needle);
        assert_non_null(line);
        snprintf(needle, sizeof needle, " note=ack-%" PRIu32 " ", i);
        char *nl = strchr(line, '\n');
        char *note = strstr(line, needle);
        assert_true(note != NULL && note < nl);
    }
    OPENSSL_free(data);
}

/* In a child: a file size limit cuts a record short; the rest is cut back off. */
static int short_write_child(const char *path)
{
    audit_log *log = NULL;
    struct stat st;
    struct rlimit old, lim;
    audit_entry e = {.op = "issue", .key = "CAPF-CA", .result = AUDIT_RESULT_OK, .note = "x"};
    if (audit_log_open(path, AUDIT_OPEN_EXISTING, &log) != PT_OK || stat(path, &st) != 0 ||
        getrlimit(RLIMIT_FSIZE, &old) != 0)
        return 2;
    signal(SIGXFSZ, SIG_IGN); /* write then stops short with EFBIG instead of killing us */
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 100;
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
        return 3;
    if (audit_log_append(log, &e) != PT_ERR_IO || strstr(pt_err_message(), "short write") == NULL)
        return 4;
    if (stat(path, &st) != 0 || st.st_size != (off_t)lim.rlim_cur - 100)
        return 5; /* the partial line was not cut back off */
    if (setrlimit(RLIMIT_FSIZE, &old) != 0)
        return 6;
    if (audit_log_append(log, &e) != PT_OK) /* and the log is still usable */
        return 7;
    audit_log_close(log);
    return 0;
}

static void test_short_write_cut_back(void **state)
{
    fixture *f = *state;
    make_log(f->path, 3);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(short_write_child(f->path));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->path, &rep), PT_OK);
    assert_int_equal(rep.good_records, 1 + 3 + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_altered_byte_found_at_its_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_line_is_a_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reordered_and_repeated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_link, setup, teardown),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test_setup_teardown(test_torn_last_line_repaired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_only_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_chain_refused_then_new_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_opener_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_write_cut_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_keeps_acknowledged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
