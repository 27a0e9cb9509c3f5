/*
 * CSV as RFC 4180 describes it, for capfctl's report and import.
 *
 * Reading (of untrusted files): an optional UTF-8 byte-order mark; records
 * end with CRLF or LF (a lone CR is refused); fields are separated by
 * commas; a field in double quotes may hold commas, line ends and quotes
 * written as two quotes (""). Empty lines are skipped. A quote inside an
 * unquoted field, text after a closing quote, an unterminated quoted field
 * and NUL bytes are errors, reported with the line they are on. Fields are
 * returned as bytes (NUL-terminated, never holding a NUL): checking that they
 * are UTF-8 is for whoever interprets them. Hard limits below bound what a
 * file can make the reader allocate.
 *
 * Writing: UTF-8, CRLF after every record, a field quoted when it holds a
 * comma, a quote, CR or LF, starts or ends with a space, or starts with the
 * bytes of a byte-order mark.
 */
#ifndef CAPF_CSV_H
#define CAPF_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "pt_error.h"

#define CAPF_CSV_FILE_MAX    (16u * 1024 * 1024) /* bytes in a file */
#define CAPF_CSV_FIELD_MAX   4096                /* bytes in one field */
#define CAPF_CSV_FIELDS_MAX  64                  /* fields in one record */
#define CAPF_CSV_RECORDS_MAX 100000              /* records in a file */

/* The UTF-8 byte-order mark, which tells spreadsheets the file is UTF-8. */
#define CAPF_CSV_BOM "\xef\xbb\xbf"

typedef struct capf_csv_record {
    size_t line; /* the line the record starts on, from 1 */
    size_t nfields;
    char **fields;
} capf_csv_record;

typedef struct capf_csv {
    capf_csv_record *records;
    size_t nrecords;
} capf_csv;

/*
 * Parse data. PT_ERR_FORMAT ("line 7: ...") for malformed CSV, PT_ERR_LIMIT
 * for a file over the limits. The first error ends the parse: after a
 * broken quote nothing later can be trusted to be where it seems.
 */
pt_err capf_csv_parse(const uint8_t *data, size_t len, capf_csv **out);
void capf_csv_free(capf_csv *csv);

/* Append one record (n fields) to w. */
void capf_csv_write_record(pt_writer *w, const char *const *fields, size_t n);

#endif
