#include "esim_state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bytes.h"
#include "fileio.h"
#include "hex.h"

static const char *const esim_fault_names[] = {
    [ESIM_FAULT_NONE] = "none",
    [ESIM_FAULT_REMOVED] = "removed",
    [ESIM_FAULT_SIGN_DEVICE_ERROR] = "sign-device-error",
    [ESIM_FAULT_REMOVE_ON_SIGN] = "remove-on-sign",
};
#define ESIM_FAULT_COUNT (sizeof esim_fault_names / sizeof esim_fault_names[0])

const char *esim_fault_name(esim_fault fault)
{
    if ((size_t)fault < ESIM_FAULT_COUNT)
        return esim_fault_names[fault];
    return "unknown";
}

bool esim_fault_parse(const char *name, esim_fault *out)
{
    for (size_t i = 0; i < ESIM_FAULT_COUNT; i++) {
        if (strcmp(name, esim_fault_names[i]) == 0) {
            *out = (esim_fault)i;
            return true;
        }
    }
    return false;
}

bool esim_serial_trim(const void *raw, size_t raw_len, uint8_t serial[ESIM_SERIAL_MAX],
                      size_t *serial_len)
{
    const uint8_t *p = raw;
    size_t n = raw_len;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    *serial_len = 0;
    if (n > ESIM_SERIAL_MAX)
        return false;
    memcpy(serial, p, n);
    *serial_len = n;
    return true;
}

static bool esim_serial_byte_plain(uint8_t c)
{
    return c > 0x20 && c < 0x7f && c != '%' && c != '=';
}

void esim_serial_encode(const uint8_t *serial, size_t len, char out[ESIM_SERIAL_TEXT_MAX])
{
    static const char hexdigits[] = "0123456789ABCDEF";
    size_t o = 0;
    if (len > ESIM_SERIAL_MAX)
        len = ESIM_SERIAL_MAX;
    for (size_t i = 0; i < len; i++) {
        if (esim_serial_byte_plain(serial[i])) {
            out[o++] = (char)serial[i];
        } else {
            out[o++] = '%';
            out[o++] = hexdigits[serial[i] >> 4];
            out[o++] = hexdigits[serial[i] & 0x0f];
        }
    }
    out[o] = '\0';
}

/* Inverse of esim_serial_encode; false on a malformed or over-long serial. */
static bool esim_serial_decode(const char *text, uint8_t serial[ESIM_SERIAL_MAX], size_t *len)
{
    size_t n = 0;
    *len = 0;
    for (const char *p = text; *p != '\0';) {
        uint8_t c;
        if (*p == '%') {
            int hi = pt_hex_value(p[1]);
            int lo = hi < 0 ? -1 : pt_hex_value(p[2]);
            if (lo < 0)
                return false;
            c = (uint8_t)(hi << 4 | lo);
            p += 3;
        } else {
            c = (uint8_t)*p;
            if (!esim_serial_byte_plain(c))
                return false;
            p++;
        }
        if (n == ESIM_SERIAL_MAX)
            return false;
        serial[n++] = c;
    }
    if (n == 0)
        return false;
    *len = n;
    return true;
}

void esim_token_init(esim_token *t, const uint8_t *serial, size_t serial_len)
{
    memset(t, 0, sizeof *t);
    if (serial_len > ESIM_SERIAL_MAX)
        serial_len = ESIM_SERIAL_MAX;
    if (serial_len > 0)
        memcpy(t->serial, serial, serial_len);
    t->serial_len = serial_len;
    t->fault = ESIM_FAULT_NONE;
}

bool esim_token_is_fresh(const esim_token *t)
{
    return t->wrong == 0 && !t->locked && !t->default_pin && t->fault == ESIM_FAULT_NONE;
}

bool esim_token_is_locked(const esim_token *t, unsigned long max_tries)
{
    return t->locked || t->wrong > max_tries;
}

const char *esim_token_pin_state(const esim_token *t, unsigned long max_tries)
{
    if (esim_token_is_locked(t, max_tries))
        return "locked";
    if (t->wrong == max_tries)
        return "final-try";
    if (t->wrong > 0)
        return "count-low";
    return "ok";
}

void esim_state_init(esim_state *s)
{
    s->tokens = NULL;
    s->ntokens = 0;
}

void esim_state_free(esim_state *s)
{
    free(s->tokens);
    esim_state_init(s);
}

static esim_token *esim_state_find(const esim_state *s, const uint8_t *serial, size_t serial_len)
{
    for (size_t i = 0; i < s->ntokens; i++) {
        esim_token *t = &s->tokens[i];
        if (t->serial_len == serial_len && memcmp(t->serial, serial, serial_len) == 0)
            return t;
    }
    return NULL;
}

void esim_state_get(const esim_state *s, const uint8_t *serial, size_t serial_len, esim_token *out)
{
    const esim_token *t = esim_state_find(s, serial, serial_len);
    if (t != NULL)
        *out = *t;
    else
        esim_token_init(out, serial, serial_len);
}

static pt_err esim_state_append(esim_state *s, const esim_token *t)
{
    if (s->ntokens >= ESIM_STATE_TOKENS_MAX)
        return pt_fail(PT_ERR_LIMIT, "more than %d tokens in the state file; reset some",
                       ESIM_STATE_TOKENS_MAX);
    esim_token *grown = realloc(s->tokens, (s->ntokens + 1) * sizeof *grown);
    if (grown == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    s->tokens = grown;
    s->tokens[s->ntokens++] = *t;
    return PT_OK;
}

pt_err esim_state_put(esim_state *s, const esim_token *t)
{
    if (t->serial_len == 0 || t->serial_len > ESIM_SERIAL_MAX)
        return pt_fail(PT_ERR_INTERNAL, "token record without a valid serial number");
    esim_token *old = esim_state_find(s, t->serial, t->serial_len);
    if (esim_token_is_fresh(t)) {
        if (old != NULL) {
            size_t i = (size_t)(old - s->tokens);
            memmove(&s->tokens[i], &s->tokens[i + 1], (s->ntokens - i - 1) * sizeof *old);
            s->ntokens--;
        }
        return PT_OK;
    }
    if (old != NULL) {
        *old = *t;
        return PT_OK;
    }
    return esim_state_append(s, t);
}

/* A decimal number without sign or leading junk, at most max. */
static bool esim_parse_ulong(const char *text, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    if (*text == '\0')
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned long d = (unsigned long)(*p - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool esim_parse_yes_no(const char *text, bool *out)
{
    if (strcmp(text, "yes") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(text, "no") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/*
 * Read one line (without its '\n') into line, which holds ESIM_STATE_LINE_MAX
 * characters and a NUL. Only printable ASCII is allowed.
 */
static pt_err esim_state_read_line(pt_reader *r, size_t lineno, char *line)
{
    size_t n = 0;
    line[0] = '\0';
    while (pt_reader_remaining(r) > 0) {
        uint8_t c;
        if (!pt_reader_u8(r, &c))
            return pt_fail(PT_ERR_INTERNAL, "line %zu: read past the end", lineno);
        if (c == '\n')
            break;
        if (c < 0x20 || c > 0x7e)
            return pt_fail(PT_ERR_FORMAT, "line %zu: byte 0x%02x is not printable ASCII", lineno,
                           c);
        if (n == ESIM_STATE_LINE_MAX)
            return pt_fail(PT_ERR_FORMAT, "line %zu: longer than %d characters", lineno,
                           ESIM_STATE_LINE_MAX);
        line[n++] = (char)c;
    }
    line[n] = '\0';
    return PT_OK;
}

enum {
    ESIM_FIELD_SERIAL = 1 << 0,
    ESIM_FIELD_WRONG = 1 << 1,
    ESIM_FIELD_LOCKED = 1 << 2,
    ESIM_FIELD_DEFAULT_PIN = 1 << 3,
    ESIM_FIELD_FAULT = 1 << 4,
    ESIM_FIELD_ALL = (1 << 5) - 1,
};

/* The fields of a token record, in the order they are written. */
static const struct {
    const char *name;
    unsigned bit;
} esim_token_fields[] = {
    {"serial", ESIM_FIELD_SERIAL}, {"wrong", ESIM_FIELD_WRONG},
    {"locked", ESIM_FIELD_LOCKED}, {"default-pin", ESIM_FIELD_DEFAULT_PIN},
    {"fault", ESIM_FIELD_FAULT},
};
#define ESIM_TOKEN_FIELD_COUNT (sizeof esim_token_fields / sizeof esim_token_fields[0])

/* Parse the words after "token" (modifies words). */
static pt_err esim_token_parse(char *words, size_t lineno, esim_token *t)
{
    unsigned seen = 0;
    char *save = NULL;
    esim_token_init(t, NULL, 0);
    for (char *w = strtok_r(words, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        if (eq == NULL)
            return pt_fail(PT_ERR_FORMAT, "line %zu: '%s' is not a name=value field", lineno, w);
        *eq = '\0';
        const char *value = eq + 1;
        unsigned bit = 0;
        for (size_t i = 0; i < ESIM_TOKEN_FIELD_COUNT; i++)
            if (strcmp(w, esim_token_fields[i].name) == 0)
                bit = esim_token_fields[i].bit;
        if (bit == 0)
            return pt_fail(PT_ERR_FORMAT, "line %zu: unknown field '%s'", lineno, w);
        if (seen & bit)
            return pt_fail(PT_ERR_FORMAT, "line %zu: field '%s' given twice", lineno, w);
        seen |= bit;
        bool ok = false;
        switch (bit) {
        case ESIM_FIELD_SERIAL:
            ok = esim_serial_decode(value, t->serial, &t->serial_len);
            break;
        case ESIM_FIELD_WRONG:
            ok = esim_parse_ulong(value, ESIM_WRONG_LIMIT, &t->wrong);
            break;
        case ESIM_FIELD_LOCKED:
            ok = esim_parse_yes_no(value, &t->locked);
            break;
        case ESIM_FIELD_DEFAULT_PIN:
            ok = esim_parse_yes_no(value, &t->default_pin);
            break;
        case ESIM_FIELD_FAULT:
            ok = esim_fault_parse(value, &t->fault);
            break;
        default:
            break;
        }
        if (!ok)
            return pt_fail(PT_ERR_FORMAT, "line %zu: bad value '%s' for field '%s'", lineno, value,
                           w);
    }
    for (size_t i = 0; i < ESIM_TOKEN_FIELD_COUNT; i++)
        if (!(seen & esim_token_fields[i].bit))
            return pt_fail(PT_ERR_FORMAT, "line %zu: token record without field '%s'", lineno,
                           esim_token_fields[i].name);
    return PT_OK;
}

pt_err esim_state_parse(const uint8_t *data, size_t len, esim_state *s)
{
    esim_state parsed;
    pt_reader r;
    char line[ESIM_STATE_LINE_MAX + 1];
    bool seen_magic = false;
    size_t lineno = 0;
    pt_err rc = PT_OK;

    esim_state_init(&parsed);
    if (len > ESIM_STATE_FILE_MAX)
        return pt_fail(PT_ERR_LIMIT, "%zu bytes is over the limit of %d bytes", len,
                       ESIM_STATE_FILE_MAX);
    pt_reader_init(&r, data, len);
    while (pt_reader_remaining(&r) > 0) {
        lineno++;
        rc = esim_state_read_line(&r, lineno, line);
        if (rc != PT_OK)
            goto out;
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (!seen_magic) {
            if (strcmp(line, ESIM_STATE_MAGIC) != 0) {
                rc = pt_fail(PT_ERR_FORMAT,
                             "line %zu: expected '%s' (not an etoken-sim state file, or a newer "
                             "version)",
                             lineno, ESIM_STATE_MAGIC);
                goto out;
            }
            seen_magic = true;
            continue;
        }
        if (strncmp(line, "token ", 6) != 0) {
            rc = pt_fail(PT_ERR_FORMAT, "line %zu: expected a 'token' record", lineno);
            goto out;
        }
        esim_token t;
        rc = esim_token_parse(line + 6, lineno, &t);
        if (rc != PT_OK)
            goto out;
        if (esim_state_find(&parsed, t.serial, t.serial_len) != NULL) {
            char text[ESIM_SERIAL_TEXT_MAX];
            esim_serial_encode(t.serial, t.serial_len, text);
            rc = pt_fail(PT_ERR_FORMAT, "line %zu: second record for token %s", lineno, text);
            goto out;
        }
        rc = esim_state_append(&parsed, &t);
        if (rc != PT_OK)
            goto out;
    }
    if (!pt_reader_done(&r)) {
        rc = pt_fail(PT_ERR_INTERNAL, "state file not consumed exactly");
        goto out;
    }
    if (!seen_magic && len > 0) {
        rc = pt_fail(PT_ERR_FORMAT, "no '%s' line", ESIM_STATE_MAGIC);
        goto out;
    }
    esim_state_free(s);
    *s = parsed;
    esim_state_init(&parsed);
out:
    esim_state_free(&parsed);
    return rc;
}

pt_err esim_state_format(const esim_state *s, uint8_t **out, size_t *len)
{
    static const char header[] =
        "# eToken simulator state: see tests/etoken-sim/README.md.\n"
        "# Change it with etoken-sim-ctl, not by hand.\n" ESIM_STATE_MAGIC "\n";
    pt_writer w;
    *out = NULL;
    *len = 0;
    pt_writer_init(&w, ESIM_STATE_FILE_MAX);
    pt_writer_bytes(&w, header, sizeof header - 1);
    for (size_t i = 0; i < s->ntokens; i++) {
        const esim_token *t = &s->tokens[i];
        char serial[ESIM_SERIAL_TEXT_MAX];
        char line[ESIM_STATE_LINE_MAX + 2];
        esim_serial_encode(t->serial, t->serial_len, serial);
        int n = snprintf(line, sizeof line,
                         "token serial=%s wrong=%lu locked=%s default-pin=%s fault=%s\n", serial,
                         t->wrong, t->locked ? "yes" : "no", t->default_pin ? "yes" : "no",
                         esim_fault_name(t->fault));
        if (n < 0 || (size_t)n >= sizeof line) {
            pt_writer_free(&w);
            return pt_fail(PT_ERR_INTERNAL, "state record does not fit a line");
        }
        pt_writer_bytes(&w, line, (size_t)n);
    }
    pt_err rc = pt_writer_finish(&w, out, len);
    if (rc != PT_OK)
        return pt_err_context(rc, "formatting the state file");
    return PT_OK;
}

pt_err esim_state_load(const char *path, esim_state *s)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;

    esim_state_free(s);
    if (stat(path, &st) != 0 && errno == ENOENT)
        return PT_OK;
    pt_err rc = pt_file_read(path, ESIM_STATE_FILE_MAX, &data, &len);
    if (rc != PT_OK)
        return pt_err_context(rc, "state file");
    rc = esim_state_parse(data, len, s);
    OPENSSL_free(data);
    if (rc != PT_OK)
        return pt_err_context(rc, "state file %s", path);
    return PT_OK;
}

pt_err esim_state_save(const char *path, const esim_state *s)
{
    uint8_t *data = NULL;
    size_t len = 0;
    pt_err rc = esim_state_format(s, &data, &len);
    if (rc != PT_OK)
        return rc;
    rc = pt_file_write_atomic(path, data, len, 0600);
    OPENSSL_free(data);
    if (rc != PT_OK)
        return pt_err_context(rc, "saving the state file");
    return PT_OK;
}

pt_err esim_state_lock(const char *path, int *fd)
{
    char *lock_path = NULL;
    *fd = -1;
    if (asprintf(&lock_path, "%s.lock", path) < 0)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    int lfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0) {
        pt_err rc = pt_fail_errno("%s: cannot open the state lock file", lock_path);
        free(lock_path);
        return rc;
    }
    while (flock(lfd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        pt_err rc = pt_fail_errno("%s: cannot lock", lock_path);
        close(lfd);
        free(lock_path);
        return rc;
    }
    free(lock_path);
    *fd = lfd;
    return PT_OK;
}

void esim_state_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

static const char *esim_getenv(const char *name)
{
    const char *v = secure_getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

pt_err esim_config_state_path(char **out)
{
    *out = NULL;
    const char *state = esim_getenv("ETOKEN_SIM_STATE");
    if (state != NULL) {
        *out = strdup(state);
        return *out != NULL ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    const char *conf = esim_getenv("SOFTHSM2_CONF");
    if (conf == NULL)
        return pt_fail(PT_ERR_USAGE, "no state file: set ETOKEN_SIM_STATE to the state file "
                                     "path (or SOFTHSM2_CONF, to keep it next to that file)");
    char *copy = strdup(conf);
    if (copy == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    int n = asprintf(out, "%s/%s", dirname(copy), ESIM_STATE_DEFAULT_NAME);
    free(copy);
    if (n < 0) {
        *out = NULL;
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    return PT_OK;
}

pt_err esim_config_max_tries(unsigned long *out)
{
    *out = ESIM_MAX_TRIES_DEFAULT;
    const char *text = esim_getenv("ETOKEN_SIM_MAX_TRIES");
    if (text == NULL)
        return PT_OK;
    unsigned long v;
    if (!esim_parse_ulong(text, ESIM_MAX_TRIES_LIMIT, &v) || v == 0)
        return pt_fail(PT_ERR_USAGE,
                       "ETOKEN_SIM_MAX_TRIES='%.32s': expected a whole number from 1 to %d", text,
                       ESIM_MAX_TRIES_LIMIT);
    *out = v;
    return PT_OK;
}

pt_err esim_config_backend_path(char **out)
{
    static const char *const defaults[] = {
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    };
    *out = NULL;
    const char *path = esim_getenv("ETOKEN_SIM_BACKEND");
    for (size_t i = 0; path == NULL && i < sizeof defaults / sizeof defaults[0]; i++)
        if (access(defaults[i], F_OK) == 0)
            path = defaults[i];
    if (path == NULL)
        return pt_fail(PT_ERR_NOT_FOUND, "no backend module: set ETOKEN_SIM_BACKEND to the "
                                         "path of libsofthsm2.so (package softhsm2)");
    *out = strdup(path);
    return *out != NULL ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
}
