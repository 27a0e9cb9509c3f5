/*
 * capfctl report | import: every device as CSV, and devices from CSV.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "capfctl.h"
#include "cert.h"
#include "cli.h"
#include "csv.h"
#include "fileio.h"

/* The columns of a report, in order; import reads the same header names. */
enum report_col {
    COL_DEVICE,
    COL_DESCRIPTION,
    COL_AUTH,
    COL_STRING,
    COL_OPERATION,
    COL_DEADLINE,
    COL_STATUS,
    COL_SERIAL,
    COL_EXPIRY,
    COL_CHANGED,
    COL_KEY, /* import only: not in the report */
    COL_COUNT,
};

/* Import reads all but the report's own four (LSC status, serial, expiry, last change). */
static const char *const columns[COL_COUNT] = {
    [COL_DEVICE] = "device",
    [COL_DESCRIPTION] = "description",
    [COL_AUTH] = "auth mode",
    [COL_STRING] = "authentication string",
    [COL_OPERATION] = "operation",
    [COL_DEADLINE] = "deadline",
    [COL_STATUS] = "LSC status",
    [COL_SERIAL] = "LSC serial",
    [COL_EXPIRY] = "LSC expiry",
    [COL_CHANGED] = "last change",
    [COL_KEY] = "key",
};

#define REPORT_COLUMNS COL_KEY

/* ---- report ------------------------------------------------------------------ */

static void report_usage(FILE *out)
{
    fprintf(out, "Usage: capfctl report [-o FILE.csv]\n"
                 "\n"
                 "Every device as CSV (RFC 4180: UTF-8 with a byte-order mark, CRLF line ends,\n"
                 "a header line), for a spreadsheet or for 'capfctl import'. Columns: device,\n"
                 "description, auth mode, authentication string, operation, deadline, LSC status,\n"
                 "LSC serial, LSC expiry, last change. Times are ISO 8601 UTC.\n"
                 "\n"
                 "The report holds every device's authentication string: keep it private.\n"
                 "\n"
                 "  -o, --output FILE\n"
                 "              write FILE (mode 0600, replaced atomically) instead of standard\n"
                 "              output\n"
                 "  --db URL    the device store\n");
}

/*
 * Spreadsheets evaluate a cell that starts with = + - @ (or a tab or CR) as a
 * formula; a description is free text, so the report writes such a value
 * behind an apostrophe, which spreadsheets show as text, and import takes the
 * apostrophe off again.
 */
static bool formula_like(const char *s)
{
    return s != NULL && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

static const char *report_text(const char *s, char *buf, size_t len)
{
    if (!formula_like(s))
        return s;
    snprintf(buf, len, "'%s", s);
    return buf;
}

static const char *import_text(const char *s)
{
    return s != NULL && s[0] == '\'' && formula_like(s + 1) ? s + 1 : s;
}

static void report_row(pt_writer *w, const capf_store_device *d)
{
    char deadline[21], expiry[21], changed[21], status[CAPF_DEVICE_STATUS_TEXT_MAX];
    char description[CAPF_DEVICE_DESCRIPTION_MAX + 2];
    capfctl_time_text(d->deadline, d->has_deadline, deadline);
    capfctl_time_text(d->lsc.not_after, d->has_lsc, expiry);
    capfctl_time_text(d->changed, true, changed);
    capfctl_status_text(d, status);
    const char *row[REPORT_COLUMNS] = {
        [COL_DEVICE] = d->name,
        [COL_DESCRIPTION] = report_text(d->description, description, sizeof description),
        [COL_AUTH] = capf_device_auth_name(d->auth),
        [COL_STRING] = d->auth_string,
        [COL_OPERATION] = capf_device_op_name(d->operation),
        [COL_DEADLINE] = deadline,
        [COL_STATUS] = status,
        [COL_SERIAL] = d->has_lsc ? d->lsc.serial : "",
        [COL_EXPIRY] = expiry,
        [COL_CHANGED] = changed,
    };
    capf_csv_write_record(w, row, REPORT_COLUMNS);
}

static pt_err report_build(const capf_store_device *list, size_t n, uint8_t **out, size_t *len)
{
    pt_writer w;
    pt_writer_init(&w, CAPF_CSV_FILE_MAX);
    pt_writer_bytes(&w, CAPF_CSV_BOM, 3);
    const char *header[REPORT_COLUMNS];
    for (size_t i = 0; i < REPORT_COLUMNS; i++)
        header[i] = columns[i];
    capf_csv_write_record(&w, header, REPORT_COLUMNS);
    for (size_t i = 0; i < n; i++)
        report_row(&w, &list[i]);
    /* The writer wipes its buffer when freed: the report holds strings. */
    return pt_writer_finish(&w, out, len);
}

static int report_opts(capfctl_ctx *ctx, int argc, char **argv, const char **file)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, CAPFCTL_OPT_DB},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        if (c == 'h') {
            report_usage(stdout);
            return PT_EXIT_OK;
        } else if (c == 'o') {
            *file = optarg;
        } else if (c == CAPFCTL_OPT_DB) {
            ctx->db = optarg;
        } else {
            return pt_cli_usage_error("unknown option for 'report' (see 'capfctl report "
                                      "--help')");
        }
    }
    if (optind != argc)
        return pt_cli_usage_error("'report' takes no arguments (write to a file with -o FILE)");
    return -1;
}

int capfctl_cmd_report(capfctl_ctx *ctx, int argc, char **argv)
{
    const char *file = NULL;
    int code = report_opts(ctx, argc, argv, &file);
    if (code >= 0)
        return code;
    capf_store *st = NULL;
    capf_store_device *list = NULL;
    size_t n = 0, len = 0;
    uint8_t *csv = NULL;
    pt_err rc = capfctl_store_open(ctx, false, &st);
    if (rc == PT_OK)
        rc = capf_store_device_list(st, &list, &n);
    capf_store_close(st);
    if (rc == PT_OK)
        rc = report_build(list, n, &csv, &len);
    capf_store_devices_free(list, n);
    if (rc == PT_OK && file != NULL)
        rc = pt_file_write_atomic(file, csv, len, 0600);
    else if (rc == PT_OK && (fwrite(csv, 1, len, stdout) != len || fflush(stdout) != 0))
        rc = pt_fail_errno("cannot write the report");
    if (rc == PT_OK && file != NULL)
        fprintf(stderr, "%zu device%s written to %s\n", n, n == 1 ? "" : "s", file);
    OPENSSL_clear_free(csv, len);
    return pt_cli_report(rc, "no report");
}

/* ---- import -------------------------------------------------------------------- */

static void import_usage(FILE *out)
{
    fprintf(out,
            "Usage: capfctl import FILE.csv\n"
            "\n"
            "Add and change devices from a CSV file (RFC 4180; UTF-8, a byte-order mark is\n"
            "allowed; CRLF or LF line ends; '-' reads standard input). The whole file is\n"
            "checked first and every bad line is reported; it is then applied in one\n"
            "transaction. When any line is bad, nothing is imported.\n"
            "\n"
            "The first line names the columns, in any order (case does not matter):\n"
            "  device                  required; a device name as for 'capfctl add'\n"
            "  description             free text\n"
            "  auth mode               null, string, lsc or mic (empty: null)\n"
            "  authentication string   4 to 10 digits (empty: none)\n"
            "  operation               install, delete, troubleshoot or none (empty: none)\n"
            "  deadline                ISO 8601 UTC (empty: none)\n"
            "  key                     as 'capfctl add --key' (empty: default)\n"
            "  LSC status, LSC serial, LSC expiry, last change\n"
            "                          ignored (written by 'capfctl report', which this reads\n"
            "                          back unchanged)\n"
            "A device on the file is added when new, else its columns present in the file\n"
            "replace its settings (columns absent keep theirs). Changing the operation sets\n"
            "the status to '<operation> pending'; an unchanged row changes nothing.\n"
            "\n"
            "  --db URL    the device store\n");
}

/* The columns the header names: index in the file of each known column, or -1. */
typedef struct import_header {
    int pos[COL_COUNT];
    size_t nfields;
} import_header;

/* An error found while checking the file. */
typedef struct import_error {
    size_t line;
    char message[320];
} import_error;

typedef struct import_ctx {
    const char *file;
    const capf_csv *csv;
    import_header h;
    import_error *errors;
    size_t nerrors;
    size_t errors_cap;
    capf_store_change *changes; /* one per record after the header */
    char (*names)[CAPF_DEVICE_NAME_ADMIN_MAX + 1];
    size_t nrows;
    bool *row_ok;        /* the row passed the checks that need no store */
    size_t *checked_row; /* for the store's check: the row of each change tried */
} import_ctx;

static void import_error_add(import_ctx *ic, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void import_error_add(import_ctx *ic, size_t line, const char *fmt, ...)
{
    if (ic->nerrors == ic->errors_cap) {
        size_t ncap = ic->errors_cap ? ic->errors_cap * 2 : 16;
        import_error *ne = OPENSSL_realloc(ic->errors, ncap * sizeof *ne);
        if (ne == NULL) {
            ic->nerrors++; /* still counted, so the import fails */
            return;
        }
        ic->errors = ne;
        ic->errors_cap = ncap;
    }
    import_error *e = &ic->errors[ic->nerrors++];
    e->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* A header name without surrounding spaces, compared without case. */
static int column_find(const char *text)
{
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == ' ')
        n--;
    while (n > 0 && *text == ' ') {
        text++;
        n--;
    }
    for (int i = 0; i < COL_COUNT; i++)
        if (strlen(columns[i]) == n && strncasecmp(columns[i], text, n) == 0)
            return i;
    return -1;
}

/* " ('name')" for a header cell that is short printable ASCII, else "": never raw bytes. */
static const char *header_shown(const char *cell, char *out, size_t len)
{
    size_t n = strlen(cell);
    bool printable = n > 0 && n <= 40;
    for (size_t i = 0; printable && i < n; i++)
        printable = cell[i] >= 0x20 && cell[i] < 0x7f;
    if (!printable)
        return "";
    snprintf(out, len, " ('%s')", cell);
    return out;
}

static bool header_read(import_ctx *ic)
{
    const capf_csv_record *rec = &ic->csv->records[0];
    char shown[64];
    size_t before = ic->nerrors;
    for (int i = 0; i < COL_COUNT; i++)
        ic->h.pos[i] = -1;
    ic->h.nfields = rec->nfields;
    for (size_t f = 0; f < rec->nfields; f++) {
        int col = column_find(rec->fields[f]);
        if (col < 0)
            import_error_add(ic, rec->line,
                             "column %zu%s is not one capfctl knows (see 'capfctl import --help')",
                             f + 1, header_shown(rec->fields[f], shown, sizeof shown));
        else if (ic->h.pos[col] >= 0)
            import_error_add(ic, rec->line, "column '%s' is named twice", columns[col]);
        else
            ic->h.pos[col] = (int)f;
    }
    if (ic->h.pos[COL_DEVICE] < 0)
        import_error_add(ic, rec->line, "the header has no 'device' column");
    return ic->nerrors == before;
}

/* The cell of column col in rec, or NULL when the file has no such column. */
static const char *cell(const import_ctx *ic, const capf_csv_record *rec, int col)
{
    int pos = ic->h.pos[col];
    return pos < 0 ? NULL : rec->fields[pos];
}

/* The enumerated and timed cells of one row into u. */
static void row_values(import_ctx *ic, const capf_csv_record *rec, capf_store_update *u)
{
    const char *v;
    if ((v = cell(ic, rec, COL_AUTH)) != NULL) {
        u->set_auth = true;
        if (v[0] != '\0' && capf_device_auth_parse(v, &u->auth) != PT_OK)
            import_error_add(ic, rec->line, "auth mode: %s", pt_err_message());
    }
    if ((v = cell(ic, rec, COL_OPERATION)) != NULL) {
        u->set_operation = true;
        if (v[0] != '\0' && capf_device_op_parse(v, &u->operation) != PT_OK)
            import_error_add(ic, rec->line, "operation: %s", pt_err_message());
    }
    if ((v = cell(ic, rec, COL_DEADLINE)) != NULL) {
        u->set_deadline = true;
        u->has_deadline = v[0] != '\0';
        if (u->has_deadline && pt_time_parse_iso8601(v, &u->deadline) != PT_OK)
            import_error_add(ic, rec->line,
                             "deadline: not an ISO 8601 UTC time "
                             "(2026-11-23 or 2026-11-23T12:00:00Z)");
    }
    if ((v = cell(ic, rec, COL_KEY)) != NULL) {
        u->set_key = true;
        if (v[0] != '\0' && capf_device_key_parse(v, &u->key) != PT_OK)
            import_error_add(ic, rec->line, "key: %s", pt_err_message());
    }
}

/* Check one row and make its change (pointing into the parsed file). */
static void row_read(import_ctx *ic, size_t r)
{
    const capf_csv_record *rec = &ic->csv->records[r + 1];
    capf_store_change *ch = &ic->changes[r];
    capf_store_update *u = &ch->update;
    memset(ch, 0, sizeof *ch);
    ch->kind = CAPF_STORE_CHANGE_ADD_OR_SET;
    ch->device = ic->names[r];
    if (rec->nfields != ic->h.nfields) {
        import_error_add(ic, rec->line, "%zu field%s where the header has %zu", rec->nfields,
                         rec->nfields == 1 ? "" : "s", ic->h.nfields);
        return;
    }
    if (capf_device_name_normalize(cell(ic, rec, COL_DEVICE), ic->names[r]) != PT_OK)
        import_error_add(ic, rec->line, "%s", pt_err_message());
    const char *v = import_text(cell(ic, rec, COL_DESCRIPTION));
    if (v != NULL && capf_device_description_check(v) != PT_OK)
        import_error_add(ic, rec->line, "description: %s", pt_err_message());
    u->description = v;
    v = cell(ic, rec, COL_STRING);
    if (v != NULL && v[0] != '\0' && capf_device_auth_string_check(v) != PT_OK)
        import_error_add(ic, rec->line, "authentication string: %s", pt_err_message());
    u->auth_string = v;
    row_values(ic, rec, u);
}

static int name_order(const void *a, const void *b, void *arg)
{
    const import_ctx *ic = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int c = strcmp(ic->names[ia], ic->names[ib]);
    return c != 0 ? c : (ia > ib) - (ia < ib);
}

/* A device named on two lines would be changed twice: refuse it. */
static void duplicates_find(import_ctx *ic)
{
    size_t *order = OPENSSL_malloc((ic->nrows ? ic->nrows : 1) * sizeof *order);
    if (order == NULL) {
        import_error_add(ic, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < ic->nrows; i++)
        order[i] = i;
    qsort_r(order, ic->nrows, sizeof *order, name_order, ic);
    for (size_t i = 1; i < ic->nrows; i++) {
        size_t a = order[i - 1], b = order[i];
        if (ic->names[b][0] != '\0' && strcmp(ic->names[a], ic->names[b]) == 0)
            import_error_add(ic, ic->csv->records[b + 1].line, "device %s is also on line %zu",
                             ic->names[b], ic->csv->records[a + 1].line);
    }
    OPENSSL_free(order);
}

static int error_order(const void *a, const void *b)
{
    const import_error *ea = a, *eb = b;
    return (ea->line > eb->line) - (ea->line < eb->line);
}

static void errors_print(import_ctx *ic)
{
    size_t stored = ic->nerrors < ic->errors_cap ? ic->nerrors : ic->errors_cap;
    qsort(ic->errors, stored, sizeof *ic->errors, error_order);
    for (size_t i = 0; i < stored; i++)
        fprintf(stderr, "capfctl: %s:%zu: %s\n", ic->file, ic->errors[i].line,
                ic->errors[i].message);
}

/* Check every line that can be checked without the store; false when the header is bad. */
static bool import_check(import_ctx *ic)
{
    if (ic->csv->nrecords == 0) {
        import_error_add(ic, 1, "the file is empty: a header line is required");
        return false;
    }
    if (!header_read(ic))
        return false;
    ic->nrows = ic->csv->nrecords - 1;
    size_t slots = ic->nrows ? ic->nrows : 1;
    ic->changes = OPENSSL_zalloc(slots * sizeof *ic->changes);
    ic->names = OPENSSL_zalloc(slots * sizeof *ic->names);
    ic->row_ok = OPENSSL_zalloc(slots * sizeof *ic->row_ok);
    ic->checked_row = OPENSSL_zalloc(slots * sizeof *ic->checked_row);
    if (!ic->changes || !ic->names || !ic->row_ok || !ic->checked_row) {
        import_error_add(ic, 0, "out of memory");
        return false;
    }
    for (size_t r = 0; r < ic->nrows; r++) {
        size_t before = ic->nerrors;
        row_read(ic, r);
        ic->row_ok[r] = ic->nerrors == before;
    }
    duplicates_find(ic);
    return true;
}

/* The store refuses a row (checked against the devices it holds now). */
static void store_error(size_t index, pt_err rc, void *arg)
{
    (void)rc;
    import_ctx *ic = arg;
    size_t row = ic->checked_row[index];
    import_error_add(ic, ic->csv->records[row + 1].line, "%s", pt_err_message());
}

/*
 * The rules that depend on what the store holds (string authentication needs
 * a string, ...) for every row that passed the other checks: tried in a
 * transaction that is rolled back.
 */
static pt_err import_store_check(capfctl_ctx *ctx, capf_store *st, import_ctx *ic)
{
    size_t n = 0;
    capf_store_change *tried = OPENSSL_malloc((ic->nrows ? ic->nrows : 1) * sizeof *tried);
    if (tried == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    for (size_t r = 0; r < ic->nrows; r++) {
        if (!ic->row_ok[r])
            continue;
        ic->checked_row[n] = r;
        tried[n++] = ic->changes[r];
    }
    pt_err rc = capf_store_devices_check(st, tried, n, &ctx->who, store_error, ic);
    OPENSSL_free(tried);
    /* The rows' own failures are in the error list; anything else ends the import. */
    return rc == PT_ERR_USAGE || rc == PT_ERR_EXISTS || rc == PT_ERR_NOT_FOUND ? PT_OK : rc;
}

static pt_err import_store(capfctl_ctx *ctx, import_ctx *ic)
{
    capf_store *st = NULL;
    pt_err rc = capfctl_store_open(ctx, true, &st);
    if (rc == PT_OK)
        rc = import_store_check(ctx, st, ic);
    if (rc == PT_OK && ic->nerrors == 0) {
        for (size_t r = 0; r < ic->nrows; r++)
            ic->checked_row[r] = r;
        /* Checked a moment ago; another capfctl may have changed a device since. */
        rc = capf_store_devices_apply(st, ic->changes, ic->nrows, &ctx->who, store_error, ic);
        if (ic->nerrors > 0)
            rc = PT_OK; /* reported with the lines below */
    }
    capf_store_close(st);
    return rc;
}

static void import_free(import_ctx *ic)
{
    size_t slots = ic->nrows ? ic->nrows : 1;
    OPENSSL_free(ic->errors);
    OPENSSL_free(ic->changes);
    OPENSSL_free(ic->row_ok);
    OPENSSL_free(ic->checked_row);
    OPENSSL_clear_free(ic->names, slots * sizeof *ic->names);
}

static int import_run(capfctl_ctx *ctx, const char *file)
{
    uint8_t *data = NULL;
    size_t len = 0;
    capf_csv *csv = NULL;
    import_ctx ic;
    memset(&ic, 0, sizeof ic);
    ic.file = file;
    pt_err rc = pt_file_read(file, CAPF_CSV_FILE_MAX, &data, &len);
    if (rc == PT_OK)
        rc = capf_csv_parse(data, len, &csv);
    OPENSSL_clear_free(data, len); /* it may hold authentication strings */
    if (rc != PT_OK) {
        pt_cli_report(rc, "nothing was imported");
        return PT_EXIT_FAIL;
    }
    ic.csv = csv;
    if (import_check(&ic))
        rc = import_store(ctx, &ic);
    if (rc == PT_OK && ic.nerrors > 0) {
        errors_print(&ic);
        rc = pt_fail(PT_ERR_FORMAT, "nothing was imported: %zu error%s in %s", ic.nerrors,
                     ic.nerrors == 1 ? "" : "s", file);
    } else if (rc == PT_OK) {
        printf("%zu device%s imported from %s\n", ic.nrows, ic.nrows == 1 ? "" : "s", file);
    }
    import_free(&ic);
    capf_csv_free(csv);
    if (rc == PT_OK)
        return PT_EXIT_OK;
    /* A file that cannot be imported is a failure (1), not a usage error. */
    pt_cli_report(rc, NULL);
    return PT_EXIT_FAIL;
}

int capfctl_cmd_import(capfctl_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, CAPFCTL_OPT_DB},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            import_usage(stdout);
            return PT_EXIT_OK;
        } else if (c == CAPFCTL_OPT_DB) {
            ctx->db = optarg;
        } else {
            return pt_cli_usage_error("unknown option for 'import' (see 'capfctl import "
                                      "--help')");
        }
    }
    if (argc - optind != 1)
        return pt_cli_usage_error("'import' needs one FILE.csv");
    return import_run(ctx, argv[optind]);
}
