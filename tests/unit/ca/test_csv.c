/*
 * Unit tests for ca/csv: RFC 4180 reading of hostile input (truncated
 * quotes, huge fields, NULs, every truncation of a valid file, deterministic
 * mutations) and writing that reads back the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "csv.h"

static capf_csv *parse_ok(const char *text)
{
    capf_csv *csv = NULL;
    pt_err rc = capf_csv_parse((const uint8_t *)text, strlen(text), &csv);
    if (rc != PT_OK)
        fail_msg("parse of \"%s\" failed: %s", text, pt_err_message());
    return csv;
}

static void parse_fails(const char *text, size_t len, pt_err want, const char *message)
{
    capf_csv *csv = NULL;
    assert_int_equal(capf_csv_parse((const uint8_t *)text, len, &csv), want);
    assert_null(csv);
    if (strstr(pt_err_message(), message) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", pt_err_message(), message);
}

static void test_csv_basic(void **state)
{
    (void)state;
    capf_csv *csv = parse_ok(CAPF_CSV_BOM "device,description\r\n"
                                          "SEP001122334455,Lobby\r\n"
                                          "\r\n"
                                          "SEP0011223344AA,\"Desk, \"\"east\"\"\nwing\"\n"
                                          "CSFX,,\n"
                                          "\"\"\n"
                                          "last,no newline");
    assert_int_equal(csv->nrecords, 6);
    assert_int_equal(csv->records[0].nfields, 2);
    assert_string_equal(csv->records[0].fields[0], "device"); /* the BOM is not in the field */
    assert_int_equal(csv->records[0].line, 1);
    assert_int_equal(csv->records[1].line, 2);
    assert_string_equal(csv->records[2].fields[1], "Desk, \"east\"\nwing");
    assert_int_equal(csv->records[2].line, 4); /* the empty line 3 is skipped */
    assert_int_equal(csv->records[3].line, 6); /* the field on line 4 went on to line 5 */
    assert_int_equal(csv->records[3].nfields, 3);
    assert_string_equal(csv->records[3].fields[1], "");
    assert_string_equal(csv->records[3].fields[2], "");
    assert_int_equal(csv->records[4].nfields, 1); /* "" is a record, not an empty line */
    assert_string_equal(csv->records[4].fields[0], "");
    assert_string_equal(csv->records[5].fields[1], "no newline");
    capf_csv_free(csv);

    csv = parse_ok("");
    assert_int_equal(csv->nrecords, 0);
    capf_csv_free(csv);
    csv = parse_ok(CAPF_CSV_BOM);
    assert_int_equal(csv->nrecords, 0);
    capf_csv_free(csv);
    csv = parse_ok("\n\r\n\n");
    assert_int_equal(csv->nrecords, 0);
    capf_csv_free(csv);
    csv = parse_ok("a\r\nb\n\"c\r\nd\"\r\n"); /* CR LF inside quotes is kept */
    assert_int_equal(csv->nrecords, 3);
    assert_string_equal(csv->records[2].fields[0], "c\r\nd");
    capf_csv_free(csv);
    /* A BOM anywhere but the start is field data. */
    csv = parse_ok("a," CAPF_CSV_BOM "b");
    assert_string_equal(csv->records[0].fields[1], CAPF_CSV_BOM "b");
    capf_csv_free(csv);
}

static void test_csv_errors(void **state)
{
    (void)state;
    static const char unterminated[] = "a,b\nc,\"open\nd,e\n";
    parse_fails(unterminated, sizeof unterminated - 1, PT_ERR_FORMAT,
                "line 2: the quoted field that starts here is never closed");
    parse_fails("\"", 1, PT_ERR_FORMAT, "line 1: the quoted field");
    parse_fails("a\n\"x\"y,z\n", 9, PT_ERR_FORMAT, "line 2: text after the closing quote");
    parse_fails("a,b\"c\n", 6, PT_ERR_FORMAT, "line 1: a quote inside an unquoted field");
    parse_fails("a\rb\n", 4, PT_ERR_FORMAT, "line 1: a carriage return that does not end");
    parse_fails("a\r", 2, PT_ERR_FORMAT, "carriage return");
    parse_fails("a,b\nc\0d\n", 8, PT_ERR_FORMAT, "line 2: a NUL byte");
    parse_fails("\"a\0\"\n", 5, PT_ERR_FORMAT, "line 1: a NUL byte");
    parse_fails("\0", 1, PT_ERR_FORMAT, "NUL");
    parse_fails("\"a\"\"", 4, PT_ERR_FORMAT, "never closed");
}

static void test_csv_limits(void **state)
{
    (void)state;
    /* A field of exactly the limit, then one byte more, quoted and not. */
    size_t n = CAPF_CSV_FIELD_MAX + 8;
    char *buf = malloc(n);
    assert_non_null(buf);
    buf[0] = '"';
    memset(buf + 1, 'x', CAPF_CSV_FIELD_MAX);
    buf[CAPF_CSV_FIELD_MAX + 1] = '"';
    capf_csv *csv = NULL;
    assert_int_equal(capf_csv_parse((uint8_t *)buf, CAPF_CSV_FIELD_MAX + 2, &csv), PT_OK);
    assert_int_equal(strlen(csv->records[0].fields[0]), CAPF_CSV_FIELD_MAX);
    capf_csv_free(csv);
    memset(buf, 'x', n);
    assert_int_equal(capf_csv_parse((uint8_t *)buf, CAPF_CSV_FIELD_MAX, &csv), PT_OK);
    capf_csv_free(csv);
    parse_fails(buf, CAPF_CSV_FIELD_MAX + 1, PT_ERR_LIMIT, "line 1: a field over 4096 bytes");
    buf[0] = '"';
    parse_fails(buf, n, PT_ERR_LIMIT, "a field over");
    free(buf);

    /* Fields per record. */
    char fields[2 * CAPF_CSV_FIELDS_MAX + 4];
    memset(fields, ',', sizeof fields);
    fields[CAPF_CSV_FIELDS_MAX - 1] = '\n';
    assert_int_equal(capf_csv_parse((uint8_t *)fields, CAPF_CSV_FIELDS_MAX, &csv), PT_OK);
    assert_int_equal(csv->records[0].nfields, CAPF_CSV_FIELDS_MAX);
    capf_csv_free(csv);
    parse_fails(fields + CAPF_CSV_FIELDS_MAX, CAPF_CSV_FIELDS_MAX + 1, PT_ERR_LIMIT,
                "more than 64 fields");

    /* Records per file. */
    size_t rlen = 2 * (CAPF_CSV_RECORDS_MAX + 1);
    char *records = malloc(rlen);
    assert_non_null(records);
    for (size_t i = 0; i < rlen; i += 2) {
        records[i] = 'r';
        records[i + 1] = '\n';
    }
    assert_int_equal(capf_csv_parse((uint8_t *)records, rlen - 2, &csv), PT_OK);
    assert_int_equal(csv->nrecords, CAPF_CSV_RECORDS_MAX);
    capf_csv_free(csv);
    parse_fails(records, rlen, PT_ERR_LIMIT, "more than 100000 records");
    free(records);

    /* A file over the limit is refused before anything is read. */
    uint8_t *big = calloc(1, (size_t)CAPF_CSV_FILE_MAX + 1);
    assert_non_null(big);
    assert_int_equal(capf_csv_parse(big, (size_t)CAPF_CSV_FILE_MAX + 1, &csv), PT_ERR_LIMIT);
    free(big);
}

static bool records_equal(const capf_csv *a, const capf_csv *b)
{
    if (a->nrecords != b->nrecords)
        return false;
    for (size_t i = 0; i < a->nrecords; i++) {
        if (a->records[i].nfields != b->records[i].nfields)
            return false;
        for (size_t f = 0; f < a->records[i].nfields; f++)
            if (strcmp(a->records[i].fields[f], b->records[i].fields[f]) != 0)
                return false;
    }
    return true;
}

/* Write what was read and read it again: the same records. */
static void check_round_trip(const capf_csv *csv)
{
    pt_writer w;
    pt_writer_init(&w, 4 * CAPF_CSV_FILE_MAX);
    for (size_t i = 0; i < csv->nrecords; i++)
        capf_csv_write_record(&w, (const char *const *)csv->records[i].fields,
                              csv->records[i].nfields);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(pt_writer_finish(&w, &out, &len), PT_OK);
    capf_csv *back = NULL;
    assert_int_equal(capf_csv_parse(out, len, &back), PT_OK);
    assert_true(records_equal(csv, back));
    capf_csv_free(back);
    OPENSSL_free(out);
}

static void test_csv_writer(void **state)
{
    (void)state;
    const char *fields[] = {"plain",      "with,comma", "with \"quote\"",
                            "two\nlines", "cr\rlf",     " lead",
                            "trail ",     "",           "R\303\251ception"};
    pt_writer w;
    pt_writer_init(&w, 4096);
    capf_csv_write_record(&w, fields, sizeof fields / sizeof fields[0]);
    const char *one[] = {""};
    capf_csv_write_record(&w, one, 1);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(pt_writer_finish(&w, &out, &len), PT_OK);
    static const char want[] = "plain,\"with,comma\",\"with \"\"quote\"\"\",\"two\nlines\","
                               "\"cr\rlf\",\" lead\",\"trail \",,R\303\251ception\r\n"
                               "\"\"\r\n";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(out, want, len);
    capf_csv *csv = NULL;
    assert_int_equal(capf_csv_parse(out, len, &csv), PT_OK);
    assert_int_equal(csv->nrecords, 2);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        assert_string_equal(csv->records[0].fields[i], fields[i]);
    check_round_trip(csv);
    capf_csv_free(csv);
    OPENSSL_free(out);
}

static const char valid_file[] =
    CAPF_CSV_BOM "device,description,auth mode,authentication string,operation,deadline\r\n"
                 "SEP001122334455,\"Lobby, \"\"east\"\"\",string,12345678,install,\r\n"
                 "SEP0011223344AA,\"two\r\nlines\",null,,none,2026-11-23T12:00:00Z\r\n"
                 "\r\n"
                 "CSFJSMITH,,lsc,,delete,\n";

static void test_csv_every_truncation(void **state)
{
    (void)state;
    size_t len = sizeof valid_file - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        /* An exact-size copy, so that a read past the end is caught under ASan. */
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, valid_file, cut);
        capf_csv *csv = NULL;
        pt_err rc = capf_csv_parse(copy, cut, &csv);
        if (rc == PT_OK) {
            assert_true(csv->nrecords <= 4);
            check_round_trip(csv);
        } else {
            /* Only a cut inside quotes (or between CR and LF) can be an error. */
            assert_int_equal(rc, PT_ERR_FORMAT);
            assert_null(csv);
        }
        capf_csv_free(csv);
        free(copy);
    }
}

/* A small deterministic generator, so that a failure reproduces. */
static uint32_t lcg_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_csv_mutations(void **state)
{
    (void)state;
    static const uint8_t interesting[] = {'"', ',', '\r', '\n', 0, 0xef, 0xbb, 0xbf, 'x', ' '};
    uint32_t seed = 20261123;
    size_t base = sizeof valid_file - 1;
    unsigned ok = 0, bad = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t buf[sizeof valid_file + 16];
        size_t len = base;
        memcpy(buf, valid_file, base);
        int edits = 1 + (int)(lcg_next(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = lcg_next(&seed) % (len ? len : 1);
            uint8_t b = (lcg_next(&seed) & 1) ? interesting[lcg_next(&seed) % sizeof interesting]
                                              : (uint8_t)lcg_next(&seed);
            switch (lcg_next(&seed) % 3) {
            case 0: /* replace */
                if (len > 0)
                    buf[pos] = b;
                break;
            case 1: /* insert */
                if (len < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = b;
                    len++;
                }
                break;
            default: /* delete */
                if (len > 0) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
            }
        }
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, buf, len);
        capf_csv *csv = NULL;
        pt_err rc = capf_csv_parse(copy, len, &csv);
        if (rc == PT_OK) {
            check_round_trip(csv);
            ok++;
        } else {
            assert_int_equal(rc, PT_ERR_FORMAT);
            assert_non_null(strstr(pt_err_message(), "line "));
            bad++;
        }
        capf_csv_free(csv);
        free(copy);
    }
    /* Both outcomes were exercised. */
    assert_true(ok > 1000);
    assert_true(bad > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_basic),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_limits),
        cmocka_unit_test(test_csv_writer),
        cmocka_unit_test(test_csv_every_truncation),
        cmocka_unit_test(test_csv_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
