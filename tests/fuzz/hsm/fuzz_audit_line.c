/*
 * Fuzz target: the audit log verifier, a parser of a file anyone with write
 * access could have edited. The input is a whole log; its first line also
 * goes through the line parser alone. The report must describe the input
 * consistently.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(audit_span s, const char *line, size_t len)
{
    if (s.p < line || s.len > len || (size_t)(s.p - line) > len - s.len)
        abort();
}

static void check_first_line(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t len = nl != NULL ? (size_t)(nl - data) : size;
    const char *line = (const char *)data;
    audit_record rec;
    if (audit_line_parse(line, len, &rec) != PT_OK)
        return;
    if (rec.hashed_len >= len || rec.seq == 0 || strlen(rec.prev) != 64 || strlen(rec.hash) != 64)
        abort();
    audit_span spans[] = {rec.time, rec.op, rec.key, rec.input, rec.result, rec.serial, rec.note};
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++)
        check_span(spans[i], line, len);
    char note[AUDIT_NOTE_MAX + 1];
    audit_span_decode(rec.note, note, sizeof note);
    audit_span_decode(rec.key, note, 8); /* a buffer shorter than the value */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    audit_verify_report rep;
    pt_err rc = audit_verify_buffer(data, size, &rep);
    if ((rc == PT_OK) != (rep.problem == AUDIT_PROBLEM_NONE))
        abort();
    if (rep.good_bytes > size || (rc == PT_OK && rep.good_bytes != size))
        abort();
    if (rc != PT_OK && (rep.line != rep.good_records + 1 || rep.seq != rep.last_seq + 1))
        abort();
    if (strlen(rep.last_hash) != 64 || strlen(rep.anchor) != 64)
        abort();
    check_first_line(data, size);
    return 0;
}
