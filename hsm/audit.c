#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bytes.h"
#include "cert.h"
#include "fileio.h"
#include "hex.h"
#include "log.h"

/* The first token of every record line; a new format gets a new tag. */
#define AUDIT_FORMAT_TAG "v1"
/* What a record carries as prev when nothing comes before it. */
static const char zero_hash[AUDIT_HASH_HEX] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Bounds of single fields (see AUDIT.md). */
enum {
    OP_MAX = 16,
    REFUSAL_MAX = 32,
    SERIAL_HEX_MAX = 64,
    SHA256_LEN = 32,
    TIME_LEN = 20, /* 2026-11-23T12:00:00Z */
};

/* The fields after the format tag, in the one order they are written. */
enum {
    F_SEQ,
    F_TIME,
    F_UID,
    F_PID,
    F_OP,
    F_KEY,
    F_INPUT,
    F_RESULT,
    F_SERIAL,
    F_NOTE,
    F_PREV,
    F_HASH,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "seq", "time", "uid", "pid", "op", "key", "input", "result", "serial", "note", "prev", "hash",
};

struct audit_log {
    pthread_mutex_t lock;
    int fd;
    char *path;
    uint64_t seq;              /* of the last record */
    char head[AUDIT_HASH_HEX]; /* hash of the last record */
    off_t size;                /* end of the last record: where a failed write is cut back to */
    bool failed;               /* what reached the disk is unknown: refuse further appends */
};

const char *audit_problem_name(audit_problem p)
{
    switch (p) {
    case AUDIT_PROBLEM_NONE:
        return "intact";
    case AUDIT_PROBLEM_MALFORMED:
        return "malformed line";
    case AUDIT_PROBLEM_ALTERED:
        return "altered content";
    case AUDIT_PROBLEM_SEQ_GAP:
        return "sequence gap";
    case AUDIT_PROBLEM_BROKEN_LINK:
        return "broken link";
    case AUDIT_PROBLEM_TORN_TAIL:
        return "incomplete last line";
    }
    return "unknown problem";
}

static void sha256_hex(const void *data, size_t len, char out[AUDIT_HASH_HEX])
{
    uint8_t md[SHA256_LEN];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != SHA256_LEN) {
        /* Cannot happen with the default provider; a zero digest then fails every check. */
        memset(md, 0, sizeof md);
    }
    pt_hex_lower(md, sizeof md, out);
}

/* ---- parsing one line ---- */

static bool span_is(audit_span s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.p, text, s.len) == 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex_char(char c, bool upper)
{
    return is_digit(c) || (upper ? (c >= 'A' && c <= 'F') : (c >= 'a' && c <= 'f'));
}

/* Decimal without leading zeros, at most max. */
static bool parse_dec(audit_span s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 20 || (s.len > 1 && s.p[0] == '0'))
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.p[i]))
            return false;
        unsigned d = (unsigned)(s.p[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool is_hex(audit_span s, size_t min, size_t max, bool upper)
{
    if (s.len < min || s.len > max)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_hex_char(s.p[i], upper))
            return false;
    return true;
}

static bool is_word(audit_span s, size_t max)
{
    if (s.len < 1 || s.len > max)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!((s.p[i] >= 'a' && s.p[i] <= 'z') || is_digit(s.p[i]) || s.p[i] == '-'))
            return false;
    return true;
}

static bool is_dash(audit_span s)
{
    return span_is(s, "-");
}

/* "2026-11-23T12:00:00Z": the shape only; the hash protects the value. */
static bool is_time(audit_span s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (s.len != TIME_LEN)
        return false;
    for (size_t i = 0; i < TIME_LEN; i++)
        if (shape[i] == 'd' ? !is_digit(s.p[i]) : s.p[i] != shape[i])
            return false;
    return true;
}

/* "-" or 1..max_decoded bytes written as printable ASCII with %XX escapes. */
static bool is_escaped(audit_span s, size_t max_decoded)
{
    size_t decoded = 0;
    if (is_dash(s))
        return true;
    for (size_t i = 0; i < s.len; decoded++) {
        char c = s.p[i];
        if (c < 0x21 || c > 0x7e)
            return false;
        if (c == '%') {
            if (s.len - i < 3 || !is_hex_char(s.p[i + 1], true) || !is_hex_char(s.p[i + 2], true))
                return false;
            i += 3;
        } else {
            i++;
        }
    }
    return decoded >= 1 && decoded <= max_decoded;
}

static bool is_result(audit_span s)
{
    static const char refused[] = "refused:";
    size_t n = sizeof refused - 1;
    if (span_is(s, "ok") || span_is(s, "error"))
        return true;
    if (s.len <= n || memcmp(s.p, refused, n) != 0)
        return false;
    audit_span code = {s.p + n, s.len - n};
    return is_word(code, REFUSAL_MAX);
}

/* Split off the next space-separated token. */
static bool token_next(const char *line, size_t len, size_t *pos, audit_span *tok)
{
    if (*pos >= len)
        return false;
    const char *start = line + *pos;
    const char *sp = memchr(start, ' ', len - *pos);
    tok->p = start;
    tok->len = sp != NULL ? (size_t)(sp - start) : len - *pos;
    *pos += tok->len + (sp != NULL ? 1 : 0);
    return true;
}

static pt_err field_value_check(int f, audit_span v, audit_record *rec)
{
    uint64_t n = 0;
    bool ok = false;
    switch (f) {
    case F_SEQ:
        ok = parse_dec(v, UINT64_MAX, &rec->seq) && rec->seq >= 1;
        break;
    case F_TIME:
        ok = is_time(v);
        break;
    case F_UID:
    case F_PID:
        ok = parse_dec(v, UINT32_MAX, &n);
        *(f == F_UID ? &rec->uid : &rec->pid) = (uint32_t)n;
        break;
    case F_OP:
        ok = is_word(v, OP_MAX);
        break;
    case F_KEY:
        ok = is_escaped(v, AUDIT_KEY_MAX);
        break;
    case F_INPUT:
        ok = is_dash(v) || is_hex(v, 2 * SHA256_LEN, 2 * SHA256_LEN, false);
        break;
    case F_RESULT:
        ok = is_result(v);
        break;
    case F_SERIAL:
        ok = is_dash(v) || is_hex(v, 1, SERIAL_HEX_MAX, true);
        break;
    case F_NOTE:
        ok = is_escaped(v, AUDIT_NOTE_MAX);
        break;
    case F_PREV:
    case F_HASH:
        ok = is_hex(v, 2 * SHA256_LEN, 2 * SHA256_LEN, false);
        if (ok)
            memcpy(f == F_PREV ? rec->prev : rec->hash, v.p, v.len);
        break;
    }
    if (!ok)
        return pt_fail(PT_ERR_FORMAT, "bad value for %s", field_names[f]);
    return PT_OK;
}

/* Where each field's parsed span goes (NULL for fields kept otherwise). */
static audit_span *field_span(audit_record *rec, int f)
{
    switch (f) {
    case F_TIME:
        return &rec->time;
    case F_OP:
        return &rec->op;
    case F_KEY:
        return &rec->key;
    case F_INPUT:
        return &rec->input;
    case F_RESULT:
        return &rec->result;
    case F_SERIAL:
        return &rec->serial;
    case F_NOTE:
        return &rec->note;
    default:
        return NULL;
    }
}

pt_err audit_line_parse(const char *line, size_t len, audit_record *rec)
{
    memset(rec, 0, sizeof *rec);
    size_t pos = 0;
    audit_span tok;
    if (len > AUDIT_LINE_MAX)
        return pt_fail(PT_ERR_FORMAT, "line of %zu bytes is longer than %d", len, AUDIT_LINE_MAX);
    if (len == 0 || line[len - 1] == ' ')
        return pt_fail(PT_ERR_FORMAT, "empty line or trailing space");
    if (!token_next(line, len, &pos, &tok) || !span_is(tok, AUDIT_FORMAT_TAG))
        return pt_fail(PT_ERR_FORMAT, "line does not start with \"%s \"", AUDIT_FORMAT_TAG);
    for (int f = 0; f < F_COUNT; f++) {
        size_t start = pos;
        size_t name_len = strlen(field_names[f]);
        if (!token_next(line, len, &pos, &tok))
            return pt_fail(PT_ERR_FORMAT, "field %s missing", field_names[f]);
        if (tok.len <= name_len || memcmp(tok.p, field_names[f], name_len) != 0 ||
            tok.p[name_len] != '=')
            return pt_fail(PT_ERR_FORMAT, "expected field %s= at column %zu", field_names[f],
                           start + 1);
        audit_span v = {tok.p + name_len + 1, tok.len - name_len - 1};
        pt_err rc = field_value_check(f, v, rec);
        if (rc != PT_OK)
            return rc;
        audit_span *dst = field_span(rec, f);
        if (dst != NULL)
            *dst = v;
        if (f == F_HASH)
            rec->hashed_len = start - 1; /* up to, not including, the space before hash= */
    }
    if (pos != len)
        return pt_fail(PT_ERR_FORMAT, "unexpected text after the hash at column %zu", pos + 1);
    return PT_OK;
}

void audit_span_decode(audit_span s, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < s.len && !is_dash(s) && o + 1 < outlen; o++) {
        if (s.p[i] == '%' && s.len - i >= 3) {
            out[o] = (char)(pt_hex_value(s.p[i + 1]) << 4 | pt_hex_value(s.p[i + 2]));
            i += 3;
        } else {
            out[o] = s.p[i++];
        }
    }
    out[o] = '\0';
}

/* ---- verifying a chain ---- */

typedef struct verifier {
    audit_verify_report *rep;
    char line[AUDIT_LINE_MAX]; /* the line being assembled */
    size_t line_len;
    uint64_t line_no; /* lines completed so far */
    bool stopped;     /* a problem was found: the rest is not looked at */
} verifier;

static void verifier_init(verifier *v, audit_verify_report *rep)
{
    memset(v, 0, sizeof *v);
    memset(rep, 0, sizeof *rep);
    memcpy(rep->last_hash, zero_hash, AUDIT_HASH_HEX);
    memcpy(rep->anchor, zero_hash, AUDIT_HASH_HEX);
    v->rep = rep;
}

static void verifier_stop(verifier *v, audit_problem p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verifier_stop(verifier *v, audit_problem p, const char *fmt, ...)
{
    va_list ap;
    v->stopped = true;
    v->rep->problem = p;
    v->rep->line = v->line_no + 1;
    v->rep->seq = v->rep->last_seq + 1;
    va_start(ap, fmt);
    vsnprintf(v->rep->detail, sizeof v->rep->detail, fmt, ap);
    va_end(ap);
}

/* Check one complete line (without its newline) against the chain so far. */
static void verifier_line(verifier *v, const char *line, size_t len)
{
    audit_verify_report *rep = v->rep;
    uint64_t expected = rep->last_seq + 1;
    audit_record rec;
    char hash[AUDIT_HASH_HEX];
    if (audit_line_parse(line, len, &rec) != PT_OK) {
        verifier_stop(v, AUDIT_PROBLEM_MALFORMED, "%s", pt_err_message());
        return;
    }
    sha256_hex(line, rec.hashed_len, hash);
    if (memcmp(hash, rec.hash, AUDIT_HASH_HEX) != 0) {
        verifier_stop(v, AUDIT_PROBLEM_ALTERED, "record content does not match its hash");
        return;
    }
    if (rec.seq != expected) {
        verifier_stop(v, AUDIT_PROBLEM_SEQ_GAP,
                      "seq %" PRIu64 " where %" PRIu64
                      " was expected (a record is missing, repeated or out of order)",
                      rec.seq, expected);
        return;
    }
    if (v->line_no == 0 && !span_is(rec.op, "chain-start")) {
        verifier_stop(v, AUDIT_PROBLEM_BROKEN_LINK, "the first record is not a chain-start");
        return;
    }
    if (v->line_no > 0 && memcmp(rec.prev, rep->last_hash, AUDIT_HASH_HEX) != 0) {
        verifier_stop(v, AUDIT_PROBLEM_BROKEN_LINK,
                      "prev does not match the hash of record %" PRIu64, rep->last_seq);
        return;
    }
    if (v->line_no == 0)
        memcpy(rep->anchor, rec.prev, AUDIT_HASH_HEX);
    v->line_no++;
    rep->good_records++;
    rep->good_bytes += len + 1;
    rep->last_seq = rec.seq;
    memcpy(rep->last_hash, rec.hash, AUDIT_HASH_HEX);
}

static void verifier_feed(verifier *v, const uint8_t *data, size_t len)
{
    while (len > 0 && !v->stopped) {
        const uint8_t *nl = memchr(data, '\n', len);
        size_t chunk = nl != NULL ? (size_t)(nl - data) : len;
        if (chunk > sizeof v->line - v->line_len) {
            verifier_stop(v, AUDIT_PROBLEM_MALFORMED, "line longer than %d bytes", AUDIT_LINE_MAX);
            return;
        }
        memcpy(v->line + v->line_len, data, chunk);
        v->line_len += chunk;
        data += chunk;
        len -= chunk;
        if (nl != NULL) {
            verifier_line(v, v->line, v->line_len);
            v->line_len = 0;
            data++;
            len--;
        }
    }
}

static pt_err verifier_finish(verifier *v)
{
    audit_verify_report *rep = v->rep;
    if (!v->stopped && v->line_len > 0)
        verifier_stop(v, AUDIT_PROBLEM_TORN_TAIL,
                      "incomplete last line of %zu bytes (no newline): a write that never "
                      "completed",
                      v->line_len);
    if (rep->problem == AUDIT_PROBLEM_NONE)
        return PT_OK;
    return pt_fail(
        PT_ERR_VERIFY,
        "line %" PRIu64 " (record seq %" PRIu64 "): %s: %s; %" PRIu64 " record(s) before it verify",
        rep->line, rep->seq, audit_problem_name(rep->problem), rep->detail, rep->good_records);
}

pt_err audit_verify_buffer(const uint8_t *data, size_t len, audit_verify_report *rep)
{
    verifier v;
    verifier_init(&v, rep);
    verifier_feed(&v, data, len);
    return verifier_finish(&v);
}

/* Verify the file behind fd from its start, whatever its offset or O_APPEND. */
static pt_err verify_fd(int fd, const char *path, audit_verify_report *rep)
{
    enum { CHUNK = 64 * 1024 };
    verifier v;
    verifier_init(&v, rep);
    uint8_t *buf = OPENSSL_malloc(CHUNK);
    if (buf == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, CHUNK, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pt_err rc = pt_fail_errno("%s: read failed", path);
            OPENSSL_free(buf);
            return rc;
        }
        if (n == 0 || v.stopped)
            break;
        verifier_feed(&v, buf, (size_t)n);
        off += n;
    }
    OPENSSL_free(buf);
    pt_err rc = verifier_finish(&v);
    return rc != PT_OK ? pt_err_context(rc, "audit log %s", path) : PT_OK;
}

pt_err audit_log_verify_file(const char *path, audit_verify_report *rep)
{
    memset(rep, 0, sizeof *rep);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pt_fail_errno("audit log %s", path);
    pt_err rc = verify_fd(fd, path, rep);
    close(fd);
    return rc;
}

/* ---- writing records ---- */

static void put_str(pt_writer *w, const char *s)
{
    pt_writer_bytes(w, s, strlen(s));
}

/* " name=" */
static void put_name(pt_writer *w, int f)
{
    put_str(w, " ");
    put_str(w, field_names[f]);
    put_str(w, "=");
}

static void put_field(pt_writer *w, int f, const char *value)
{
    put_name(w, f);
    put_str(w, value);
}

/*
 * Free text as printable ASCII: bytes outside 0x21..0x7E, and '%', become
 * %XX, so no value can hold a space or a newline; "" is "-", and a value that
 * is exactly "-" is "%2D". Text over max bytes is cut and ends in "...".
 */
static void put_escaped(pt_writer *w, const char *s, size_t max)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0) {
        put_str(w, "-");
        return;
    }
    if (n == 1 && s[0] == '-') {
        put_str(w, "%2D");
        return;
    }
    bool cut = n > max;
    size_t keep = cut ? max - 3 : n;
    for (size_t i = 0; i < keep; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x21 || c > 0x7e || c == '%') {
            char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
            pt_writer_bytes(w, esc, sizeof esc);
        } else {
            pt_writer_u8(w, c);
        }
    }
    if (cut)
        put_str(w, "...");
}

static pt_err entry_check(const audit_entry *e)
{
    audit_span op = {e->op, e->op != NULL ? strlen(e->op) : 0};
    if (!is_word(op, OP_MAX))
        return pt_fail(PT_ERR_USAGE, "audit: operation must be 1..%d of [a-z0-9-]", OP_MAX);
    if (e->result != AUDIT_RESULT_OK && e->result != AUDIT_RESULT_REFUSED &&
        e->result != AUDIT_RESULT_ERROR)
        return pt_fail(PT_ERR_USAGE, "audit: unknown result %d", (int)e->result);
    audit_span refusal = {e->refusal, e->refusal != NULL ? strlen(e->refusal) : 0};
    if (e->result == AUDIT_RESULT_REFUSED && !is_word(refusal, REFUSAL_MAX))
        return pt_fail(PT_ERR_USAGE, "audit: a refusal needs a code of [a-z0-9-]");
    audit_span serial = {e->serial, e->serial != NULL ? strlen(e->serial) : 0};
    if (e->serial != NULL && !is_hex(serial, 1, SERIAL_HEX_MAX, true))
        return pt_fail(PT_ERR_USAGE, "audit: serial must be 1..%d upper-case hex digits",
                       SERIAL_HEX_MAX);
    return PT_OK;
}

/*
 * Build the whole line, newline included, for record seq following prev, and
 * parse it back into rec: a record the verifier would refuse is never written.
 */
static pt_err record_build(uint64_t seq, const char *prev, time_t now, const audit_entry *e,
                           uint8_t **line, size_t *len, audit_record *rec)
{
    char num[24], ts[21], hex[AUDIT_HASH_HEX] = "";
    pt_writer w;
    pt_writer_init(&w, AUDIT_LINE_MAX + 1);
    put_str(&w, AUDIT_FORMAT_TAG);
    snprintf(num, sizeof num, "%" PRIu64, seq);
    put_field(&w, F_SEQ, num);
    pt_time_iso8601(now, ts);
    put_field(&w, F_TIME, ts);
    snprintf(num, sizeof num, "%" PRIu32, (uint32_t)e->uid);
    put_field(&w, F_UID, num);
    snprintf(num, sizeof num, "%" PRIu32, (uint32_t)e->pid);
    put_field(&w, F_PID, num);
    put_field(&w, F_OP, e->op);
    put_name(&w, F_KEY);
    put_escaped(&w, e->key, AUDIT_KEY_MAX);
    if (e->input_sha256 != NULL)
        pt_hex_lower(e->input_sha256, SHA256_LEN, hex);
    put_field(&w, F_INPUT, e->input_sha256 != NULL ? hex : "-");
    put_name(&w, F_RESULT);
    put_str(&w, e->result == AUDIT_RESULT_OK      ? "ok"
                : e->result == AUDIT_RESULT_ERROR ? "error"
                                                  : "refused:");
    if (e->result == AUDIT_RESULT_REFUSED)
        put_str(&w, e->refusal);
    put_field(&w, F_SERIAL, e->serial != NULL ? e->serial : "-");
    put_name(&w, F_NOTE);
    put_escaped(&w, e->note, AUDIT_NOTE_MAX);
    put_field(&w, F_PREV, prev);
    if (!pt_writer_failed(&w))
        sha256_hex(pt_writer_data(&w), pt_writer_len(&w), hex);
    put_field(&w, F_HASH, hex);
    put_str(&w, "\n");
    pt_err rc = pt_writer_finish(&w, line, len);
    if (rc != PT_OK)
        return pt_err_context(rc, "audit record");
    if (audit_line_parse((const char *)*line, *len - 1, rec) != PT_OK) {
        rc = pt_err_context(PT_ERR_INTERNAL, "audit: built a record that does not parse");
        OPENSSL_free(*line);
        *line = NULL;
        *len = 0;
    }
    return rc;
}

/* Write whole lines with one write(2); cut a partial write back off. */
static pt_err log_write_line(audit_log *log, const uint8_t *line, size_t len)
{
    ssize_t n;
    do {
        n = write(log->fd, line, len);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)len)
        return PT_OK;
    pt_err rc = n < 0 ? pt_fail_errno("audit log %s: write failed", log->path)
                      : pt_fail(PT_ERR_IO, "audit log %s: short write (%zd of %zu bytes)",
                                log->path, n, len);
    if (n > 0 && ftruncate(log->fd, log->size) != 0)
        log->failed = true; /* a partial line stays: only a restart (open) can repair it */
    return rc;
}

/*
 * Build the records of entries[0..n) chained after the current head, write
 * them with one write(2) and make them durable with one fdatasync. All or
 * nothing: a partial write is cut back off, and nothing is acknowledged
 * unless the fdatasync succeeded.
 */
static pt_err log_append_many_locked(audit_log *log, const audit_entry *const *entries, size_t n)
{
    if (log->failed)
        return pt_fail(PT_ERR_IO,
                       "audit log %s failed earlier and takes no more records: restart hsmd so "
                       "that the log is verified and repaired",
                       log->path);
    if (n == 0 || n > AUDIT_BATCH_MAX)
        return pt_fail(PT_ERR_USAGE, "audit: 1 to %d records at a time", AUDIT_BATCH_MAX);
    pt_err rc = PT_OK;
    for (size_t i = 0; rc == PT_OK && i < n; i++)
        rc = entry_check(entries[i]);
    if (rc != PT_OK)
        return rc;
    pt_writer all;
    pt_writer_init(&all, (AUDIT_LINE_MAX + 1) * n);
    uint64_t seq = log->seq;
    char head[AUDIT_HASH_HEX];
    memcpy(head, log->head, AUDIT_HASH_HEX);
    time_t now = time(NULL);
    for (size_t i = 0; rc == PT_OK && i < n; i++) {
        uint8_t *line = NULL;
        size_t len = 0;
        audit_record rec = {0};
        rc = record_build(seq + 1, head, now, entries[i], &line, &len, &rec);
        if (rc == PT_OK) {
            pt_writer_bytes(&all, line, len);
            seq = rec.seq;
            memcpy(head, rec.hash, AUDIT_HASH_HEX);
        }
        OPENSSL_free(line);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rc == PT_OK)
        rc = pt_writer_finish(&all, &buf, &len);
    pt_writer_free(&all);
    if (rc == PT_OK)
        rc = log_write_line(log, buf, len);
    if (rc == PT_OK && fdatasync(log->fd) != 0) {
        /*
         * The error is reported to one fsync caller only, so a retry could
         * "succeed" without the data: never trust this file descriptor again.
         */
        log->failed = true;
        rc = pt_fail_errno("audit log %s: fdatasync failed", log->path);
    }
    if (rc == PT_OK) {
        log->seq = seq;
        memcpy(log->head, head, AUDIT_HASH_HEX);
        log->size += (off_t)len;
    }
    OPENSSL_free(buf);
    return rc;
}

static pt_err log_append_locked(audit_log *log, const audit_entry *e)
{
    return log_append_many_locked(log, &e, 1);
}

pt_err audit_log_append(audit_log *log, const audit_entry *e)
{
    pthread_mutex_lock(&log->lock);
    pt_err rc = log_append_locked(log, e);
    pthread_mutex_unlock(&log->lock);
    return rc;
}

pt_err audit_log_append_many(audit_log *log, const audit_entry *const *entries, size_t n)
{
    pthread_mutex_lock(&log->lock);
    pt_err rc = log_append_many_locked(log, entries, n);
    pthread_mutex_unlock(&log->lock);
    return rc;
}

void audit_log_head(audit_log *log, uint64_t *seq, char hash[AUDIT_HASH_HEX])
{
    pthread_mutex_lock(&log->lock);
    *seq = log->seq;
    memcpy(hash, log->head, AUDIT_HASH_HEX);
    pthread_mutex_unlock(&log->lock);
}

/* A record hsmd writes about its own log (chain-start, repair). */
static pt_err log_note(audit_log *log, const char *op, const char *note)
{
    audit_entry e = {
        .uid = getuid(),
        .pid = getpid(),
        .op = op,
        .result = AUDIT_RESULT_OK,
        .note = note,
    };
    return log_append_locked(log, &e);
}

/* ---- opening ---- */

static pt_err log_open_fd(audit_log *log, int extra_flags)
{
    log->fd =
        open(log->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | extra_flags, 0600);
    if (log->fd < 0)
        return pt_fail_errno("audit log %s: cannot open", log->path);
    if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return pt_fail(PT_ERR_BUSY, "audit log %s is in use by another process (another hsmd?)",
                           log->path);
        return pt_fail_errno("audit log %s: cannot lock", log->path);
    }
    return PT_OK;
}

static void log_adopt(audit_log *log, const audit_verify_report *rep)
{
    log->seq = rep->last_seq;
    memcpy(log->head, rep->last_hash, AUDIT_HASH_HEX);
    log->size = (off_t)rep->good_bytes;
}

/* An empty file gets its first record, and its directory entry is made durable. */
static pt_err log_start_if_empty(audit_log *log, const char *note)
{
    if (log->seq != 0)
        return PT_OK;
    pt_err rc = log_note(log, "chain-start", note);
    return rc == PT_OK ? pt_fsync_parent_dir(log->path) : rc;
}

/* Cut an incomplete last line (never acknowledged) and record that it was cut. */
static pt_err log_repair_tail(audit_log *log, const audit_verify_report *rep)
{
    struct stat st;
    if (fstat(log->fd, &st) != 0)
        return pt_fail_errno("audit log %s", log->path);
    uint64_t cut = (uint64_t)st.st_size - rep->good_bytes;
    if (ftruncate(log->fd, (off_t)rep->good_bytes) != 0 || fdatasync(log->fd) != 0)
        return pt_fail_errno("audit log %s: cannot cut the incomplete last line", log->path);
    log_adopt(log, rep);
    pt_err rc = log_start_if_empty(log, "new log");
    if (rc != PT_OK)
        return rc;
    char note[AUDIT_NOTE_MAX];
    snprintf(note, sizeof note,
             "cut an incomplete last line of %" PRIu64 " bytes after seq %" PRIu64
             " (a write never acknowledged)",
             cut, rep->last_seq);
    pt_log_warn("audit log %s: %s", log->path, note);
    return log_note(log, "repair", note);
}

/* Rename path to path.broken-<UTC time>[-N] without replacing anything; aside gets the name. */
static pt_err rename_aside(const char *path, char *aside, size_t asidelen)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int i = 1; i < 100; i++) {
        int n = i == 1 ? snprintf(aside, asidelen, "%s.broken-%s", path, stamp)
                       : snprintf(aside, asidelen, "%s.broken-%s-%d", path, stamp, i);
        if (n < 0 || (size_t)n >= asidelen)
            return pt_fail(PT_ERR_LIMIT, "audit log %s: path too long", path);
        if (renameat2(AT_FDCWD, path, AT_FDCWD, aside, RENAME_NOREPLACE) == 0)
            return pt_fsync_parent_dir(path);
        if (errno != EEXIST)
            return pt_fail_errno("audit log %s: cannot rename it to %s", path, aside);
    }
    return pt_fail(PT_ERR_EXISTS, "audit log %s: too many broken logs set aside", path);
}

/*
 * Keep the broken file as evidence under another name and begin a new file
 * whose first record links to the old file's last good record.
 */
static pt_err log_start_new_chain(audit_log *log, const audit_verify_report *rep)
{
    char aside[4096], note[AUDIT_NOTE_MAX];
    pt_err rc = rename_aside(log->path, aside, sizeof aside);
    if (rc != PT_OK)
        return rc;
    close(log->fd); /* the old file keeps its name aside; its lock goes with it */
    log->fd = -1;
    rc = log_open_fd(log, O_EXCL);
    if (rc != PT_OK)
        return rc;
    log->seq = 0;
    log->size = 0;
    memcpy(log->head, rep->last_hash, AUDIT_HASH_HEX);
    snprintf(note, sizeof note,
             "new chain: previous log %s good to seq %" PRIu64 ", then line %" PRIu64 ": %s",
             basename(aside), rep->last_seq, rep->line, audit_problem_name(rep->problem));
    pt_log_warn("audit log %s: the chain was broken; set it aside as %s and started a new chain",
                log->path, aside);
    return log_start_if_empty(log, note);
}

static pt_err log_verify_and_prepare(audit_log *log, audit_open_mode mode)
{
    audit_verify_report rep;
    pt_err rc = verify_fd(log->fd, log->path, &rep);
    if (rc == PT_OK) {
        log_adopt(log, &rep);
        return log_start_if_empty(log, "new log");
    }
    if (rc != PT_ERR_VERIFY)
        return rc;
    if (rep.problem == AUDIT_PROBLEM_TORN_TAIL)
        return log_repair_tail(log, &rep);
    if (mode == AUDIT_OPEN_NEW_CHAIN)
        return log_start_new_chain(log, &rep);
    return pt_fail(PT_ERR_VERIFY,
                   "audit log %s is broken at line %" PRIu64 " (record seq %" PRIu64
                   "): %s: %s. Nothing will be appended to a broken chain: keep the file as "
                   "evidence (hsmctl audit verify %s) and start a new chain explicitly, which "
                   "sets this file aside",
                   log->path, rep.line, rep.seq, audit_problem_name(rep.problem), rep.detail,
                   log->path);
}

pt_err audit_log_open(const char *path, audit_open_mode mode, audit_log **out)
{
    *out = NULL;
    audit_log *log = OPENSSL_zalloc(sizeof *log);
    if (log == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    log->fd = -1;
    log->path = OPENSSL_strdup(path);
    if (log->path == NULL || pthread_mutex_init(&log->lock, NULL) != 0) {
        OPENSSL_free(log->path);
        OPENSSL_free(log);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    pt_err rc = log_open_fd(log, 0);
    if (rc == PT_OK)
        rc = log_verify_and_prepare(log, mode);
    if (rc != PT_OK) {
        audit_log_close(log);
        return rc;
    }
    *out = log;
    return PT_OK;
}

void audit_log_close(audit_log *log)
{
    if (log == NULL)
        return;
    if (log->fd >= 0)
        close(log->fd);
    pthread_mutex_destroy(&log->lock);
    OPENSSL_free(log->path);
    OPENSSL_free(log);
}
