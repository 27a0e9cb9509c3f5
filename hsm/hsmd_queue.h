/*
 * A bounded first-in first-out queue of pointers between hsmd's I/O thread
 * and its workers. A push never waits: a full queue says so at once, and the
 * request is answered busy instead of being buffered. A pop waits until an
 * item arrives or the queue is closed and empty.
 */
#ifndef HSMD_QUEUE_H
#define HSMD_QUEUE_H

#include <stdbool.h>

#include "pt_error.h"

typedef struct hsmd_queue hsmd_queue;

/* A queue holding at most capacity (>= 1) items. */
pt_err hsmd_queue_new(unsigned capacity, hsmd_queue **out);
/* Free the queue (not the items); it must not be in use. NULL is ignored. */
void hsmd_queue_free(hsmd_queue *q);

/* Add item at the back; false when the queue is full or closed. */
bool hsmd_queue_push(hsmd_queue *q, void *item);

/* Take the front item, waiting for one; false once the queue is closed and empty. */
bool hsmd_queue_pop(hsmd_queue *q, void **item);

/* Refuse further pushes and wake every waiting pop; items already queued are still popped. */
void hsmd_queue_close(hsmd_queue *q);

/* Items waiting now, and the capacity. */
unsigned hsmd_queue_length(hsmd_queue *q);
unsigned hsmd_queue_capacity(const hsmd_queue *q);

#endif
