/* Unit tests for the bounds-checked byte reader and writer (common/bytes.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "bytes.h"

static void test_reader_integers_are_big_endian(void **state)
{
    (void)state;
    const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b};
    pt_reader r;
    uint8_t a;
    uint16_t b;
    uint32_t c, d;
    pt_reader_init(&r, in, sizeof in);
    assert_true(pt_reader_u8(&r, &a));
    assert_true(pt_reader_u16(&r, &b));
    assert_true(pt_reader_u32(&r, &c));
    assert_true(pt_reader_u32le(&r, &d));
    assert_int_equal(a, 0x01);
    assert_int_equal(b, 0x0203);
    assert_int_equal(c, 0x04050607u);
    assert_int_equal(d, 0x0b0a0908u);
    assert_true(pt_reader_done(&r));
}

static void test_reader_failure_is_sticky(void **state)
{
    (void)state;
    const uint8_t in[] = {0xaa, 0xbb, 0xcc};
    pt_reader r;
    uint32_t v = 7;
    uint8_t b = 7;
    pt_reader_init(&r, in, sizeof in);
    assert_false(pt_reader_u32(&r, &v));
    assert_int_equal(v, 0);
    assert_true(pt_reader_failed(&r));
    /* A later read that would fit still fails: the input is already known bad. */
    assert_false(pt_reader_u8(&r, &b));
    assert_int_equal(b, 0);
    assert_false(pt_reader_done(&r));
    assert_int_equal(pt_reader_offset(&r), 0);
}

static void test_reader_huge_length_does_not_wrap(void **state)
{
    (void)state;
    const uint8_t in[] = {1, 2, 3, 4};
    pt_reader r;
    const uint8_t *p = in;
    pt_reader_init(&r, in, sizeof in);
    assert_true(pt_reader_skip(&r, 2));
    assert_false(pt_reader_bytes(&r, SIZE_MAX, &p));
    assert_null(p);
    pt_reader_init(&r, in, sizeof in);
    assert_true(pt_reader_skip(&r, 3));
    assert_false(pt_reader_skip(&r, SIZE_MAX - 1));
}

static void test_reader_sub_reports_absolute_offsets(void **state)
{
    (void)state;
    const uint8_t in[] = {0, 0, 0, 0x10, 0x20, 0x30, 9};
    pt_reader r, sub, subsub;
    uint8_t v;
    pt_reader_init(&r, in, sizeof in);
    assert_true(pt_reader_skip(&r, 3));
    assert_true(pt_reader_sub(&r, 3, &sub));
    assert_int_equal(pt_reader_offset(&sub), 3);
    assert_true(pt_reader_u8(&sub, &v));
    assert_int_equal(v, 0x10);
    assert_true(pt_reader_sub(&sub, 2, &subsub));
    assert_int_equal(pt_reader_offset(&subsub), 4);
    assert_true(pt_reader_skip(&subsub, 2));
    assert_true(pt_reader_done(&subsub));
    assert_false(pt_reader_u8(&subsub, &v)); /* the sub-reader ends where it was cut */
    assert_int_equal(pt_reader_offset(&r), 6);
    assert_true(pt_reader_u8(&r, &v));
    assert_int_equal(v, 9);
    assert_true(pt_reader_done(&r));
    assert_false(pt_reader_sub(&r, 1, &sub));
    assert_true(pt_reader_failed(&sub));
}

static void test_reader_peek_does_not_consume(void **state)
{
    (void)state;
    const uint8_t in[] = {0x0d};
    pt_reader r;
    uint8_t v = 0;
    pt_reader_init(&r, in, sizeof in);
    assert_true(pt_reader_peek_u8(&r, &v));
    assert_int_equal(v, 0x0d);
    assert_int_equal(pt_reader_remaining(&r), 1);
    assert_true(pt_reader_skip(&r, 1));
    assert_false(pt_reader_peek_u8(&r, &v));
    assert_false(pt_reader_failed(&r)); /* peeking at the end is not a failure */
}

static void test_reader_null_input_is_empty(void **state)
{
    (void)state;
    pt_reader r;
    uint8_t v;
    pt_reader_init(&r, NULL, 10);
    assert_int_equal(pt_reader_remaining(&r), 0);
    assert_true(pt_reader_done(&r));
    assert_false(pt_reader_u8(&r, &v));
}

static void test_writer_writes_and_patches(void **state)
{
    (void)state;
    pt_writer w;
    size_t at;
    uint8_t *out = NULL;
    size_t len = 0;
    pt_writer_init(&w, 64);
    assert_true(pt_writer_u8(&w, 0xab));
    assert_true(pt_writer_reserve(&w, 2, &at));
    assert_true(pt_writer_u32(&w, 0x01020304));
    assert_true(pt_writer_u32le(&w, 0x01020304));
    assert_true(pt_writer_bytes(&w, "xy", 2));
    assert_true(pt_writer_patch_u16(&w, at, 0xbeef));
    assert_false(pt_writer_patch_u16(&w, pt_writer_len(&w) - 1, 1)); /* would cross the end */
    pt_writer_free(&w);

    pt_writer_init(&w, 64);
    assert_true(pt_writer_u8(&w, 0xab));
    assert_true(pt_writer_reserve(&w, 2, &at));
    assert_true(pt_writer_u16(&w, 0x0102));
    assert_true(pt_writer_patch_u16(&w, at, 0xbeef));
    assert_int_equal(pt_writer_finish(&w, &out, &len), PT_OK);
    const uint8_t want[] = {0xab, 0xbe, 0xef, 0x01, 0x02};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    OPENSSL_free(out);
}

static void test_writer_limit_is_enforced(void **state)
{
    (void)state;
    pt_writer w;
    uint8_t *out = (uint8_t *)1;
    size_t len = 9;
    uint8_t big[300];
    memset(big, 0x5a, sizeof big);
    pt_writer_init(&w, 299);
    assert_false(pt_writer_bytes(&w, big, sizeof big));
    assert_true(pt_writer_failed(&w));
    assert_false(pt_writer_u8(&w, 1)); /* sticky */
    assert_int_equal(pt_writer_finish(&w, &out, &len), PT_ERR_LIMIT);
    assert_null(out);
    assert_int_equal(len, 0);

    pt_writer_init(&w, 299);
    assert_true(pt_writer_bytes(&w, big, 299));
    assert_false(pt_writer_u8(&w, 1));
    pt_writer_free(&w);
}

static void test_writer_grows_past_first_allocation(void **state)
{
    (void)state;
    pt_writer w;
    uint8_t *out = NULL;
    size_t len = 0;
    pt_writer_init(&w, 1 << 20);
    for (unsigned i = 0; i < 5000; i++)
        assert_true(pt_writer_u16(&w, (uint16_t)i));
    assert_int_equal(pt_writer_finish(&w, &out, &len), PT_OK);
    assert_int_equal(len, 10000);
    assert_int_equal(out[9998], (4999 >> 8) & 0xff);
    assert_int_equal(out[9999], 4999 & 0xff);
    OPENSSL_free(out);
}

static void test_writer_empty_finish(void **state)
{
    (void)state;
    pt_writer w;
    uint8_t *out = NULL;
    size_t len = 5;
    pt_writer_init(&w, 10);
    assert_int_equal(pt_writer_finish(&w, &out, &len), PT_OK);
    assert_non_null(out);
    assert_int_equal(len, 0);
    OPENSSL_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_integers_are_big_endian),
        cmocka_unit_test(test_reader_failure_is_sticky),
        cmocka_unit_test(test_reader_huge_length_does_not_wrap),
        cmocka_unit_test(test_reader_sub_reports_absolute_offsets),
        cmocka_unit_test(test_reader_peek_does_not_consume),
        cmocka_unit_test(test_reader_null_input_is_empty),
        cmocka_unit_test(test_writer_writes_and_patches),
        cmocka_unit_test(test_writer_limit_is_enforced),
        cmocka_unit_test(test_writer_grows_past_first_allocation),
        cmocka_unit_test(test_writer_empty_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
