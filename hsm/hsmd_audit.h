/*
 * Group commit in front of hsmd's audit log. Workers hand in their records
 * at the same time; one of them writes every record that is waiting with one
 * write(2) and one fdatasync (audit_log_append_many) while the others wait,
 * and each learns the one result. A record counts as written only when the
 * fdatasync that covered it succeeded, so hsmd still returns nothing whose
 * record is not on disk; what changes is that N concurrent requests pay for
 * one fdatasync instead of N, one after the other.
 */
#ifndef HSMD_AUDIT_H
#define HSMD_AUDIT_H

#include <stdint.h>

#include "audit.h"
#include "pt_error.h"

typedef struct hsmd_audit hsmd_audit;

/* A committer for log (which must outlive it). */
pt_err hsmd_audit_new(audit_log *log, hsmd_audit **out);
void hsmd_audit_free(hsmd_audit *a);

/* Append e and return once it is durable (PT_OK) or cannot be (the log's error). Thread-safe. */
pt_err hsmd_audit_record(hsmd_audit *a, const audit_entry *e);

/* Records written and fdatasync calls made, for the status answer. */
void hsmd_audit_counts(hsmd_audit *a, uint64_t *records, uint64_t *flushes);

#endif
