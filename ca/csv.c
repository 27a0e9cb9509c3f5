#include "csv.h"

#include <string.h>

#include <openssl/crypto.h>

/* The reader's state: where it is in the input and what it has built. */
typedef struct csv_parser {
    pt_reader r;
    size_t line;     /* the physical line being read */
    pt_writer field; /* bytes of the field being read */
    capf_csv *csv;
    size_t records_cap;
    capf_csv_record rec; /* the record being read */
    size_t fields_cap;
} csv_parser;

/* Fields are wiped when freed: an imported file holds authentication strings. */
static void record_free(capf_csv_record *rec)
{
    for (size_t i = 0; i < rec->nfields; i++)
        OPENSSL_clear_free(rec->fields[i], strlen(rec->fields[i]) + 1);
    OPENSSL_free(rec->fields);
    memset(rec, 0, sizeof *rec);
}

void capf_csv_free(capf_csv *csv)
{
    if (csv == NULL)
        return;
    for (size_t i = 0; i < csv->nrecords; i++)
        record_free(&csv->records[i]);
    OPENSSL_free(csv->records);
    OPENSSL_free(csv);
}

static pt_err field_byte(csv_parser *p, uint8_t b)
{
    if (b == 0)
        return pt_fail(PT_ERR_FORMAT, "line %zu: a NUL byte (is this a text file?)", p->line);
    if (pt_writer_len(&p->field) >= CAPF_CSV_FIELD_MAX)
        return pt_fail(PT_ERR_LIMIT, "line %zu: a field over %d bytes", p->line,
                       CAPF_CSV_FIELD_MAX);
    if (!pt_writer_u8(&p->field, b))
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    return PT_OK;
}

/* Move the field read so far into the record. */
static pt_err field_end(csv_parser *p)
{
    if (p->rec.nfields == CAPF_CSV_FIELDS_MAX)
        return pt_fail(PT_ERR_LIMIT, "line %zu: more than %d fields in a record", p->line,
                       CAPF_CSV_FIELDS_MAX);
    if (p->rec.nfields == p->fields_cap) {
        size_t ncap = p->fields_cap ? p->fields_cap * 2 : 16;
        char **nf = OPENSSL_realloc(p->rec.fields, ncap * sizeof *nf);
        if (nf == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
        p->rec.fields = nf;
        p->fields_cap = ncap;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    pt_writer_u8(&p->field, 0);
    pt_err rc = pt_writer_finish(&p->field, &bytes, &len);
    pt_writer_init(&p->field, CAPF_CSV_FIELD_MAX + 1);
    if (rc != PT_OK)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    p->rec.fields[p->rec.nfields++] = (char *)bytes;
    return PT_OK;
}

/* Keep the record read so far, unless it is an empty line. */
static pt_err record_end(csv_parser *p, bool quoted)
{
    capf_csv *csv = p->csv;
    bool blank = p->rec.nfields == 1 && p->rec.fields[0][0] == '\0' && !quoted;
    if (blank) {
        record_free(&p->rec);
        p->fields_cap = 0;
        return PT_OK;
    }
    if (csv->nrecords == CAPF_CSV_RECORDS_MAX)
        return pt_fail(PT_ERR_LIMIT, "line %zu: more than %d records", p->line,
                       CAPF_CSV_RECORDS_MAX);
    if (csv->nrecords == p->records_cap) {
        size_t ncap = p->records_cap ? p->records_cap * 2 : 64;
        capf_csv_record *nr = OPENSSL_realloc(csv->records, ncap * sizeof *nr);
        if (nr == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
        csv->records = nr;
        p->records_cap = ncap;
    }
    csv->records[csv->nrecords++] = p->rec;
    memset(&p->rec, 0, sizeof p->rec);
    p->fields_cap = 0;
    return PT_OK;
}

/* A field in quotes, from its opening quote through its closing one. */
static pt_err quoted_field(csv_parser *p)
{
    size_t start = p->line;
    uint8_t b;
    pt_reader_u8(&p->r, &b); /* the opening quote */
    for (;;) {
        if (!pt_reader_u8(&p->r, &b))
            return pt_fail(PT_ERR_FORMAT,
                           "line %zu: the quoted field that starts here is "
                           "never closed",
                           start);
        if (b == '"') {
            uint8_t next;
            if (!pt_reader_peek_u8(&p->r, &next) || next != '"')
                return PT_OK;
            pt_reader_u8(&p->r, &next); /* "" is one quote */
        } else if (b == '\n') {
            p->line++;
        }
        pt_err rc = field_byte(p, b);
        if (rc != PT_OK)
            return rc;
    }
}

static pt_err unquoted_field(csv_parser *p)
{
    uint8_t b;
    while (pt_reader_peek_u8(&p->r, &b) && b != ',' && b != '\r' && b != '\n') {
        if (b == '"')
            return pt_fail(PT_ERR_FORMAT,
                           "line %zu: a quote inside an unquoted field (quote "
                           "the whole field and write the quote twice)",
                           p->line);
        pt_reader_u8(&p->r, &b);
        pt_err rc = field_byte(p, b);
        if (rc != PT_OK)
            return rc;
    }
    return PT_OK;
}

/*
 * After a field: a comma (*more), a line end or the end of the input.
 * quoted says whether the field was quoted (for the message).
 */
static pt_err delimiter(csv_parser *p, bool quoted, bool *more)
{
    uint8_t b;
    *more = false;
    if (!pt_reader_u8(&p->r, &b))
        return PT_OK;
    if (b == ',') {
        *more = true;
        return PT_OK;
    }
    if (b == '\r') {
        uint8_t lf;
        if (!pt_reader_u8(&p->r, &lf) || lf != '\n')
            return pt_fail(PT_ERR_FORMAT,
                           "line %zu: a carriage return that does not end the "
                           "line (lines end with CRLF or LF)",
                           p->line);
        b = '\n';
    }
    if (b == '\n') {
        p->line++;
        return PT_OK;
    }
    if (quoted)
        return pt_fail(PT_ERR_FORMAT,
                       "line %zu: text after the closing quote of a field (a "
                       "quote inside a field is written as two quotes)",
                       p->line);
    return pt_fail(PT_ERR_INTERNAL, "line %zu: CSV reader lost its place", p->line);
}

static pt_err parse_record(csv_parser *p)
{
    bool more = true, quoted = false;
    p->rec.line = p->line;
    while (more) {
        uint8_t b = 0;
        quoted = pt_reader_peek_u8(&p->r, &b) && b == '"';
        pt_err rc = quoted ? quoted_field(p) : unquoted_field(p);
        if (rc == PT_OK)
            rc = field_end(p);
        if (rc == PT_OK)
            rc = delimiter(p, quoted, &more);
        if (rc != PT_OK)
            return rc;
    }
    return record_end(p, quoted || p->rec.nfields > 1);
}

pt_err capf_csv_parse(const uint8_t *data, size_t len, capf_csv **out)
{
    *out = NULL;
    if (len > CAPF_CSV_FILE_MAX)
        return pt_fail(PT_ERR_LIMIT, "a CSV file of %zu bytes is over the limit of %u bytes", len,
                       CAPF_CSV_FILE_MAX);
    csv_parser p;
    memset(&p, 0, sizeof p);
    p.line = 1;
    pt_reader_init(&p.r, data, len);
    pt_writer_init(&p.field, CAPF_CSV_FIELD_MAX + 1);
    p.csv = OPENSSL_zalloc(sizeof *p.csv);
    if (p.csv == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (len >= 3 && memcmp(data, CAPF_CSV_BOM, 3) == 0)
        pt_reader_skip(&p.r, 3);
    pt_err rc = PT_OK;
    while (rc == PT_OK && pt_reader_remaining(&p.r) > 0)
        rc = parse_record(&p);
    pt_writer_free(&p.field);
    record_free(&p.rec);
    if (rc != PT_OK) {
        capf_csv_free(p.csv);
        return rc;
    }
    *out = p.csv;
    return PT_OK;
}

/* ---- writing ------------------------------------------------------------ */

static bool needs_quotes(const char *s)
{
    size_t n = strlen(s);
    if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
        return true;
    /* Unquoted at the start of a file, it would be taken for the byte-order mark. */
    if (strncmp(s, CAPF_CSV_BOM, 3) == 0)
        return true;
    return strpbrk(s, ",\"\r\n") != NULL;
}

static void write_field(pt_writer *w, const char *s, bool force_quotes)
{
    if (!force_quotes && !needs_quotes(s)) {
        pt_writer_bytes(w, s, strlen(s));
        return;
    }
    pt_writer_u8(w, '"');
    for (const char *q = s; *q != '\0'; q++) {
        if (*q == '"')
            pt_writer_u8(w, '"');
        pt_writer_u8(w, (uint8_t)*q);
    }
    pt_writer_u8(w, '"');
}

void capf_csv_write_record(pt_writer *w, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            pt_writer_u8(w, ',');
        /* A record of one empty field would read back as an empty line, which is skipped. */
        write_field(w, fields[i] ? fields[i] : "", n == 1 && (!fields[i] || !fields[i][0]));
    }
    pt_writer_bytes(w, "\r\n", 2);
}
