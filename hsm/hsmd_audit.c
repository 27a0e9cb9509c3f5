#include "hsmd_audit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

/* One record waiting to be written; it lives on the waiting thread's stack. */
typedef struct waiter {
    const audit_entry *entry;
    struct waiter *next;
    bool done;
    pt_err rc;
    char detail[256];
} waiter;

struct hsmd_audit {
    audit_log *log;
    pthread_mutex_t lock;
    pthread_cond_t written;
    waiter *head, *tail; /* waiting, in arrival order */
    bool flushing;       /* a thread is writing a batch */
    uint64_t records, flushes;
};

pt_err hsmd_audit_new(audit_log *log, hsmd_audit **out)
{
    *out = NULL;
    hsmd_audit *a = OPENSSL_zalloc(sizeof *a);
    if (a == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    a->log = log;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->written, NULL);
    *out = a;
    return PT_OK;
}

void hsmd_audit_free(hsmd_audit *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->written);
    OPENSSL_free(a);
}

/* Take up to AUDIT_BATCH_MAX waiting records off the list (called locked). */
static size_t take_batch(hsmd_audit *a, waiter **batch)
{
    size_t n = 0;
    while (a->head != NULL && n < AUDIT_BATCH_MAX) {
        batch[n++] = a->head;
        a->head = a->head->next;
    }
    if (a->head == NULL)
        a->tail = NULL;
    return n;
}

/* Write one batch (called locked, returns locked) and tell its owners. */
static void flush_batch(hsmd_audit *a)
{
    waiter *batch[AUDIT_BATCH_MAX];
    const audit_entry *entries[AUDIT_BATCH_MAX];
    size_t n = take_batch(a, batch);
    for (size_t i = 0; i < n; i++)
        entries[i] = batch[i]->entry;
    a->flushing = true;
    pthread_mutex_unlock(&a->lock);
    pt_err rc = audit_log_append_many(a->log, entries, n);
    char detail[256];
    snprintf(detail, sizeof detail, "%s", rc == PT_OK ? "" : pt_err_message());
    pthread_mutex_lock(&a->lock);
    a->flushing = false;
    if (rc == PT_OK) {
        a->records += n;
        a->flushes++;
    }
    for (size_t i = 0; i < n; i++) {
        batch[i]->rc = rc;
        memcpy(batch[i]->detail, detail, sizeof detail);
        batch[i]->done = true;
    }
    pthread_cond_broadcast(&a->written);
}

pt_err hsmd_audit_record(hsmd_audit *a, const audit_entry *e)
{
    waiter w;
    memset(&w, 0, sizeof w);
    w.entry = e;
    pthread_mutex_lock(&a->lock);
    /*
     * w is on this stack, and stays on the list only until a flush takes it
     * off and marks it done, which this function waits for before returning.
     */
    if (a->tail != NULL)
        a->tail->next = &w;
    else
        a->head = &w; // cppcheck-suppress autoVariables
    a->tail = &w;     // cppcheck-suppress autoVariables
    /* Whoever finds nobody writing writes all that waits, its own record among them. */
    while (!w.done) {
        if (!a->flushing)
            flush_batch(a);
        else
            pthread_cond_wait(&a->written, &a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    if (w.rc != PT_OK)
        return pt_fail(w.rc, "%s", w.detail);
    return PT_OK;
}

void hsmd_audit_counts(hsmd_audit *a, uint64_t *records, uint64_t *flushes)
{
    pthread_mutex_lock(&a->lock);
    *records = a->records;
    *flushes = a->flushes;
    pthread_mutex_unlock(&a->lock);
}
