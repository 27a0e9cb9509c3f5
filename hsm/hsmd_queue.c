#include "hsmd_queue.h"

#include <pthread.h>

#include <openssl/crypto.h>

struct hsmd_queue {
    pthread_mutex_t lock;
    pthread_cond_t filled;
    void **items; /* a ring of capacity slots */
    unsigned capacity, head, count;
    bool closed;
};

pt_err hsmd_queue_new(unsigned capacity, hsmd_queue **out)
{
    *out = NULL;
    if (capacity == 0)
        return pt_fail(PT_ERR_USAGE, "a queue holds at least one item");
    hsmd_queue *q = OPENSSL_zalloc(sizeof *q);
    void **items = OPENSSL_zalloc(sizeof *items * capacity);
    if (q == NULL || items == NULL) {
        OPENSSL_free(q);
        OPENSSL_free(items);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->filled, NULL);
    q->items = items;
    q->capacity = capacity;
    *out = q;
    return PT_OK;
}

void hsmd_queue_free(hsmd_queue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->filled);
    OPENSSL_free(q->items);
    OPENSSL_free(q);
}

bool hsmd_queue_push(hsmd_queue *q, void *item)
{
    pthread_mutex_lock(&q->lock);
    bool ok = !q->closed && q->count < q->capacity;
    if (ok) {
        q->items[(q->head + q->count) % q->capacity] = item;
        q->count++;
        pthread_cond_signal(&q->filled);
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

bool hsmd_queue_pop(hsmd_queue *q, void **item)
{
    *item = NULL;
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed)
        pthread_cond_wait(&q->filled, &q->lock);
    bool ok = q->count > 0;
    if (ok) {
        *item = q->items[q->head];
        q->items[q->head] = NULL;
        q->head = (q->head + 1) % q->capacity;
        q->count--;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

void hsmd_queue_close(hsmd_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->filled);
    pthread_mutex_unlock(&q->lock);
}

unsigned hsmd_queue_length(hsmd_queue *q)
{
    pthread_mutex_lock(&q->lock);
    unsigned n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

unsigned hsmd_queue_capacity(const hsmd_queue *q)
{
    return q->capacity;
}
