/*
 * Unit tests of hsmd's bounded queue: order, the capacity (a full queue says
 * so at once instead of growing), closing, and many threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "hsmd_queue.h"

static void test_order_and_capacity(void **state)
{
    (void)state;
    hsmd_queue *q = NULL;
    assert_int_equal(hsmd_queue_new(0, &q), PT_ERR_USAGE);
    assert_int_equal(hsmd_queue_new(3, &q), PT_OK);
    int items[5] = {0, 1, 2, 3, 4};
    assert_int_equal(hsmd_queue_capacity(q), 3);
    for (int round = 0; round < 3; round++) { /* wrap around the ring */
        assert_true(hsmd_queue_push(q, &items[0]));
        assert_true(hsmd_queue_push(q, &items[1]));
        assert_true(hsmd_queue_push(q, &items[2]));
        assert_int_equal(hsmd_queue_length(q), 3);
        assert_false(hsmd_queue_push(q, &items[3])); /* full: refused, not buffered */
        assert_int_equal(hsmd_queue_length(q), 3);
        void *got = NULL;
        assert_true(hsmd_queue_pop(q, &got));
        assert_ptr_equal(got, &items[0]);
        assert_true(hsmd_queue_push(q, &items[4]));
        for (int want = 1; want <= 4; want++) {
            if (want == 3)
                continue;
            assert_true(hsmd_queue_pop(q, &got));
            assert_ptr_equal(got, &items[want]);
        }
        assert_int_equal(hsmd_queue_length(q), 0);
    }
    hsmd_queue_free(q);
}

static void test_close_drains(void **state)
{
    (void)state;
    hsmd_queue *q = NULL;
    assert_int_equal(hsmd_queue_new(2, &q), PT_OK);
    int a = 1;
    assert_true(hsmd_queue_push(q, &a));
    hsmd_queue_close(q);
    assert_false(hsmd_queue_push(q, &a));
    void *got = NULL;
    assert_true(hsmd_queue_pop(q, &got)); /* queued before the close: still served */
    assert_ptr_equal(got, &a);
    assert_false(hsmd_queue_pop(q, &got));
    assert_null(got);
    hsmd_queue_free(q);
}

typedef struct worker {
    hsmd_queue *q;
    long sum;
    int count;
} worker;

static void *consume(void *arg)
{
    worker *w = arg;
    void *item = NULL;
    while (hsmd_queue_pop(w->q, &item)) {
        w->sum += *(const int *)item;
        w->count++;
    }
    return NULL;
}

/* Waiting consumers are woken by pushes and by the close; nothing is lost or doubled. */
static void test_threads(void **state)
{
    (void)state;
    hsmd_queue *q = NULL;
    assert_int_equal(hsmd_queue_new(4, &q), PT_OK);
    enum { N = 4, ITEMS = 20000 };
    worker w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){q, 0, 0};
        pthread_create(&th[i], NULL, consume, &w[i]);
    }
    static int values[ITEMS];
    long want = 0;
    int refused = 0;
    for (int v = 0; v < ITEMS;) {
        values[v] = v + 1;
        if (hsmd_queue_push(q, &values[v])) {
            want += values[v];
            v++;
        } else {
            refused++;
        }
    }
    hsmd_queue_close(q);
    long sum = 0;
    int count = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        sum += w[i].sum;
        count += w[i].count;
    }
    assert_int_equal(count, ITEMS);
    assert_int_equal(sum, want);
    (void)refused; /* how often the queue was full depends on scheduling */
    hsmd_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_capacity),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
