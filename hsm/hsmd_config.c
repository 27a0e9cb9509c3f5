#include "hsmd_config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/crypto.h>
#include <openssl/obj_mac.h>

#include "cli.h"
#include "fileio.h"
#include "log.h"
#include "uri.h"

/* ---- names ---- */

const char *hsmd_op_name(hsmd_op op)
{
    return op == HSMD_OP_ISSUE ? "issue" : op == HSMD_OP_SIGN_TLV ? "sign-tlv" : "none";
}

static const struct {
    unsigned bit;
    const char *name;
    int nid;
} digest_names[] = {
    {HSMD_DIGEST_SHA1, "sha1", NID_sha1},
    {HSMD_DIGEST_SHA256, "sha256", NID_sha256},
    {HSMD_DIGEST_SHA384, "sha384", NID_sha384},
    {HSMD_DIGEST_SHA512, "sha512", NID_sha512},
};

const char *hsmd_digest_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof digest_names / sizeof digest_names[0]; i++)
        if (digest_names[i].bit == bit)
            return digest_names[i].name;
    return "none";
}

unsigned hsmd_digest_bit_from_nid(int md_nid)
{
    for (size_t i = 0; i < sizeof digest_names / sizeof digest_names[0]; i++)
        if (digest_names[i].nid == md_nid)
            return digest_names[i].bit;
    return 0;
}

static bool id_in(const hsmd_id_list *l, uint32_t id)
{
    for (size_t i = 0; l != NULL && i < l->n; i++)
        if (l->ids[i] == id)
            return true;
    return false;
}

bool hsmd_ids_allow(const hsmd_id_list *users, const hsmd_id_list *groups, uid_t uid, gid_t gid,
                    const gid_t *sup_groups, size_t n_groups)
{
    if (id_in(users, uid) || id_in(groups, gid))
        return true;
    for (size_t i = 0; i < n_groups; i++)
        if (id_in(groups, sup_groups[i]))
            return true;
    return false;
}

const hsmd_key_config *hsmd_config_key(const hsmd_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (strcmp(cfg->keys[i].name, name) == 0)
            return &cfg->keys[i];
    return NULL;
}

/* ---- parser state ---- */

enum { SECTION_NONE = 0, SECTION_HSMD, SECTION_KEY };

/* Settings are numbered so that "given twice" can name the first line. */
enum { MAX_SETTINGS = 24 };

typedef struct cfg_section_state {
    unsigned seen_line[MAX_SETTINGS]; /* 0: not given */
} cfg_section_state;

typedef struct cfg_parser {
    const char *name; /* file name for messages */
    hsmd_config *cfg;
    /* The stream inih reads through cfg_reader. */
    const char *p;
    size_t left;
    unsigned line;        /* line just handed to inih */
    int section;          /* SECTION_* of the current section */
    hsmd_key_config *key; /* the current [key] section */
    unsigned hsmd_line;   /* line of [hsmd], 0 when absent */
    cfg_section_state hsmd_seen;
    cfg_section_state key_seen[HSMD_CONFIG_MAX_KEYS];
    /* The first error found by the reader or a handler. */
    pt_err rc;
    unsigned err_line;
    char err[512];
} cfg_parser;

static int cfg_error(cfg_parser *ps, unsigned line, pt_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int cfg_error(cfg_parser *ps, unsigned line, pt_err code, const char *fmt, ...)
{
    if (ps->rc != PT_OK)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err, sizeof ps->err, fmt, ap);
    va_end(ap);
    ps->rc = code;
    ps->err_line = line;
    return 0;
}

/* ---- values ---- */

static bool parse_uint(const char *v, long min, long max, long *out)
{
    return pt_cli_parse_long(v, min, max, out);
}

static int set_string(cfg_parser *ps, char **dst, const char *v)
{
    char *s = OPENSSL_strdup(v);
    if (s == NULL)
        return cfg_error(ps, ps->line, PT_ERR_NOMEM, "out of memory");
    OPENSSL_free(*dst);
    *dst = s;
    return 1;
}

static int set_abs_path(cfg_parser *ps, const char *what, char **dst, const char *v)
{
    if (v[0] != '/')
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "%s must be an absolute path, not '%s'", what,
                         v);
    if (strlen(v) >= PATH_MAX)
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "%s is longer than %d bytes", what,
                         PATH_MAX - 1);
    return set_string(ps, dst, v);
}

static int set_uint(cfg_parser *ps, const char *what, const char *v, long min, long max, long *out)
{
    if (!parse_uint(v, min, max, out))
        return cfg_error(ps, ps->line, PT_ERR_USAGE,
                         "%s takes a whole number from %ld to %ld, not '%s'", what, min, max, v);
    return 1;
}

/* Octal, "0660" or "660": the owner must be able to use it, others must not write to it. */
static int set_mode(cfg_parser *ps, const char *v, mode_t *out)
{
    size_t n = strlen(v);
    bool ok = n >= 3 && n <= 4 && (n == 3 || v[0] == '0');
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i] >= '0' && v[i] <= '7';
    if (!ok)
        return cfg_error(ps, ps->line, PT_ERR_USAGE,
                         "socket-mode takes an octal mode like 0660, not '%s'", v);
    mode_t m = (mode_t)strtoul(v, NULL, 8);
    if ((m & 0600) != 0600)
        return cfg_error(ps, ps->line, PT_ERR_USAGE,
                         "socket-mode %s does not let hsmd's own user read and write the socket",
                         v);
    if (m & 0002)
        return cfg_error(ps, ps->line, PT_ERR_USAGE,
                         "socket-mode %s lets every local user connect: use 0660 and "
                         "socket-group for the clients' group",
                         v);
    *out = m;
    return 1;
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static pt_err resolve_user(const char *name, uint32_t *id)
{
    if (all_digits(name)) {
        long v;
        if (!pt_cli_parse_long(name, 0, (long)UINT32_MAX - 1, &v))
            return pt_fail(PT_ERR_USAGE, "user id %s is out of range", name);
        *id = (uint32_t)v;
        return PT_OK;
    }
    struct passwd pw, *res = NULL;
    char buf[4096];
    int e = getpwnam_r(name, &pw, buf, sizeof buf, &res);
    if (res == NULL)
        return pt_fail(PT_ERR_USAGE, "no user '%s' on this system%s%s", name, e ? ": " : "",
                       e ? strerror(e) : "");
    *id = (uint32_t)pw.pw_uid;
    return PT_OK;
}

static pt_err resolve_group(const char *name, uint32_t *id)
{
    if (all_digits(name)) {
        long v;
        if (!pt_cli_parse_long(name, 0, (long)UINT32_MAX - 1, &v))
            return pt_fail(PT_ERR_USAGE, "group id %s is out of range", name);
        *id = (uint32_t)v;
        return PT_OK;
    }
    struct group gr, *res = NULL;
    char buf[16384];
    int e = getgrnam_r(name, &gr, buf, sizeof buf, &res);
    if (res == NULL)
        return pt_fail(PT_ERR_USAGE, "no group '%s' on this system%s%s", name, e ? ": " : "",
                       e ? strerror(e) : "");
    *id = (uint32_t)gr.gr_gid;
    return PT_OK;
}

/* A list of names or numbers separated by commas and/or blanks. */
static int set_ids(cfg_parser *ps, const char *what, bool groups, const char *v, hsmd_id_list *out)
{
    hsmd_id_list l;
    memset(&l, 0, sizeof l);
    const char *p = v;
    while (*p != '\0') {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        size_t n = strcspn(p, ", \t");
        char item[256];
        if (n >= sizeof item)
            return cfg_error(ps, ps->line, PT_ERR_USAGE, "%s: a name is longer than %zu bytes",
                             what, sizeof item - 1);
        memcpy(item, p, n);
        item[n] = '\0';
        p += n;
        if (l.n == HSMD_CONFIG_MAX_IDS)
            return cfg_error(ps, ps->line, PT_ERR_USAGE, "%s: more than %d entries", what,
                             HSMD_CONFIG_MAX_IDS);
        uint32_t id = 0;
        pt_err rc = groups ? resolve_group(item, &id) : resolve_user(item, &id);
        if (rc != PT_OK)
            return cfg_error(ps, ps->line, PT_ERR_USAGE, "%s: %s", what, pt_err_message());
        if (!id_in(&l, id))
            l.ids[l.n++] = id;
    }
    if (l.n == 0)
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "%s lists nobody", what);
    *out = l;
    return 1;
}

static int set_digests(cfg_parser *ps, const char *v, unsigned *out)
{
    unsigned set = 0;
    const char *p = v;
    while (*p != '\0') {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        size_t n = strcspn(p, ", \t");
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof digest_names / sizeof digest_names[0]; i++)
            if (strlen(digest_names[i].name) == n && strncmp(digest_names[i].name, p, n) == 0)
                bit = digest_names[i].bit;
        if (bit == 0)
            return cfg_error(ps, ps->line, PT_ERR_USAGE,
                             "digests: unknown digest '%.*s' (sha1, sha256, sha384, sha512)",
                             (int)(n > 32 ? 32 : n), p);
        set |= bit;
        p += n;
    }
    if (set == 0)
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "digests lists no digest");
    *out = set;
    return 1;
}

/* ---- [hsmd] ---- */

typedef int (*setting_fn)(cfg_parser *ps, const char *value);

typedef struct setting {
    const char *name;
    setting_fn set;
} setting;

static int hsmd_module(cfg_parser *ps, const char *v)
{
    return set_abs_path(ps, "module", &ps->cfg->module, v);
}

static int hsmd_token(cfg_parser *ps, const char *v)
{
    token_uri *u = NULL;
    pt_err rc = token_uri_parse(v, &u);
    if (rc != PT_OK)
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "token: %s", pt_err_message());
    bool has_pin = token_uri_pin_source(u) != NULL;
    bool has_module = token_uri_module_path(u) != NULL;
    token_uri_free(u);
    if (!has_pin)
        return cfg_error(ps, ps->line, PT_ERR_USAGE,
                         "token: the URI needs ?pin-source=file:PATH (hsmd never prompts)");
    if (has_module)
        return cfg_error(ps, ps->line, PT_ERR_USAGE,
                         "token: give the module with 'module =', not module-path= in the URI");
    return set_string(ps, &ps->cfg->token_uri, v);
}

static int hsmd_socket(cfg_parser *ps, const char *v)
{
    struct sockaddr_un sa;
    if (strlen(v) >= sizeof sa.sun_path)
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "socket path is longer than %zu bytes",
                         sizeof sa.sun_path - 1);
    return set_abs_path(ps, "socket", &ps->cfg->socket_path, v);
}

static int hsmd_socket_mode(cfg_parser *ps, const char *v)
{
    return set_mode(ps, v, &ps->cfg->socket_mode);
}

static int hsmd_socket_group(cfg_parser *ps, const char *v)
{
    uint32_t id = 0;
    if (resolve_group(v, &id) != PT_OK)
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "socket-group: %s", pt_err_message());
    ps->cfg->socket_group = (gid_t)id;
    ps->cfg->has_socket_group = true;
    return 1;
}

static int hsmd_audit_log(cfg_parser *ps, const char *v)
{
    return set_abs_path(ps, "audit-log", &ps->cfg->audit_log, v);
}

#define UINT_SETTING(fn, field, lo, hi)                                                            \
    static int fn(cfg_parser *ps, const char *v)                                                   \
    {                                                                                              \
        long n = 0;                                                                                \
        if (!set_uint(ps, #field, v, lo, hi, &n))                                                  \
            return 0;                                                                              \
        ps->cfg->field = (unsigned)n;                                                              \
        return 1;                                                                                  \
    }

#define MS_SETTING(fn, name, field, lo, hi)                                                        \
    static int fn(cfg_parser *ps, const char *v)                                                   \
    {                                                                                              \
        long n = 0;                                                                                \
        if (!set_uint(ps, name, v, lo, hi, &n))                                                    \
            return 0;                                                                              \
        ps->cfg->field = (int)n;                                                                   \
        return 1;                                                                                  \
    }

UINT_SETTING(hsmd_sessions, sessions, 1, 64)
UINT_SETTING(hsmd_workers, workers, 1, 256)
UINT_SETTING(hsmd_queue, queue, 1, 4096)
MS_SETTING(hsmd_frame_timeout, "frame-timeout-ms", frame_timeout_ms, 100, 600000)
MS_SETTING(hsmd_idle_timeout, "idle-timeout-ms", idle_timeout_ms, 1000, 86400000)
MS_SETTING(hsmd_recovery, "recovery-interval-ms", recovery_interval_ms, 100, 3600000)

static int hsmd_max_clients(cfg_parser *ps, const char *v)
{
    long n = 0;
    if (!set_uint(ps, "max-clients", v, 1, 4096, &n))
        return 0;
    ps->cfg->max_clients = (unsigned)n;
    return 1;
}

static int hsmd_log_level(cfg_parser *ps, const char *v)
{
    int l = pt_log_level_parse(v);
    if (l < 0)
        return cfg_error(ps, ps->line, PT_ERR_USAGE,
                         "log-level is error, warn, info or debug, not '%s'", v);
    ps->cfg->log_level = l;
    return 1;
}

static int hsmd_status_users(cfg_parser *ps, const char *v)
{
    return set_ids(ps, "status-users", false, v, &ps->cfg->status_users);
}

static int hsmd_status_groups(cfg_parser *ps, const char *v)
{
    return set_ids(ps, "status-groups", true, v, &ps->cfg->status_groups);
}

static const setting hsmd_settings[] = {
    {"module", hsmd_module},
    {"token", hsmd_token},
    {"socket", hsmd_socket},
    {"socket-mode", hsmd_socket_mode},
    {"socket-group", hsmd_socket_group},
    {"audit-log", hsmd_audit_log},
    {"sessions", hsmd_sessions},
    {"workers", hsmd_workers},
    {"queue", hsmd_queue},
    {"max-clients", hsmd_max_clients},
    {"frame-timeout-ms", hsmd_frame_timeout},
    {"idle-timeout-ms", hsmd_idle_timeout},
    {"recovery-interval-ms", hsmd_recovery},
    {"log-level", hsmd_log_level},
    {"status-users", hsmd_status_users},
    {"status-groups", hsmd_status_groups},
};

/* ---- [key NAME] ---- */

static int key_label(cfg_parser *ps, const char *v)
{
    if (strlen(v) > 255)
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "label is longer than 255 bytes");
    return set_string(ps, &ps->key->label, v);
}

static int key_operation(cfg_parser *ps, const char *v)
{
    if (strcmp(v, "issue") == 0)
        ps->key->op = HSMD_OP_ISSUE;
    else if (strcmp(v, "sign-tlv") == 0)
        ps->key->op = HSMD_OP_SIGN_TLV;
    else
        return cfg_error(ps, ps->line, PT_ERR_USAGE, "operation is issue or sign-tlv, not '%s'", v);
    return 1;
}

static int key_certificate(cfg_parser *ps, const char *v)
{
    return set_abs_path(ps, "certificate", &ps->key->certificate, v);
}

static int key_allow_users(cfg_parser *ps, const char *v)
{
    return set_ids(ps, "allow-users", false, v, &ps->key->users);
}

static int key_allow_groups(cfg_parser *ps, const char *v)
{
    return set_ids(ps, "allow-groups", true, v, &ps->key->groups);
}

static int key_max_validity(cfg_parser *ps, const char *v)
{
    return set_uint(ps, "max-validity-days", v, 1, 36525, &ps->key->max_validity_days);
}

static int key_digests(cfg_parser *ps, const char *v)
{
    return set_digests(ps, v, &ps->key->digests);
}

enum { KEY_MAX_VALIDITY = 5, KEY_DIGESTS = 6 };

static const setting key_settings[] = {
    {"label", key_label},
    {"operation", key_operation},
    {"certificate", key_certificate},
    {"allow-users", key_allow_users},
    {"allow-groups", key_allow_groups},
    {"max-validity-days", key_max_validity}, /* KEY_MAX_VALIDITY */
    {"digests", key_digests},                /* KEY_DIGESTS */
};

static void settings_list(const setting *s, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", s[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int apply_setting(cfg_parser *ps, const setting *table, size_t n, cfg_section_state *seen,
                         const char *section, const char *name, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(table[i].name, name) != 0)
            continue;
        if (seen->seen_line[i] != 0)
            return cfg_error(ps, ps->line, PT_ERR_USAGE,
                             "'%s' is given twice in [%s] (first on line %u)", name, section,
                             seen->seen_line[i]);
        seen->seen_line[i] = ps->line;
        if (value[0] == '\0')
            return cfg_error(ps, ps->line, PT_ERR_USAGE, "'%s' has an empty value", name);
        return table[i].set(ps, value);
    }
    char known[512];
    settings_list(table, n, known, sizeof known);
    return cfg_error(ps, ps->line, PT_ERR_USAGE, "unknown setting '%.64s' in [%s] (known: %s)",
                     name, section, known);
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* the reader tracks sections itself (inih cuts long names) */
    cfg_parser *ps = user;
    if (ps->rc != PT_OK)
        return 1;
    if (ps->section == SECTION_HSMD)
        return apply_setting(ps, hsmd_settings, sizeof hsmd_settings / sizeof hsmd_settings[0],
                             &ps->hsmd_seen, "hsmd", name, value);
    if (ps->section == SECTION_KEY) {
        char sec[HSMD_LABEL_MAX + 8];
        snprintf(sec, sizeof sec, "key %s", ps->key->name);
        return apply_setting(ps, key_settings, sizeof key_settings / sizeof key_settings[0],
                             &ps->key_seen[ps->key - ps->cfg->keys], sec, name, value);
    }
    return cfg_error(ps, ps->line, PT_ERR_USAGE,
                     "'%.64s' is outside any section: put it under [hsmd] or [key NAME]", name);
}

/* ---- sections and lines ---- */

static void section_start(cfg_parser *ps, const char *text, size_t len)
{
    hsmd_config *cfg = ps->cfg;
    if (len == 4 && memcmp(text, "hsmd", 4) == 0) {
        if (ps->hsmd_line != 0) {
            cfg_error(ps, ps->line, PT_ERR_USAGE, "[hsmd] appears twice (first on line %u)",
                      ps->hsmd_line);
            return;
        }
        ps->hsmd_line = ps->line;
        ps->section = SECTION_HSMD;
        ps->key = NULL;
        return;
    }
    if (len > 4 && memcmp(text, "key ", 4) == 0) {
        char name[HSMD_LABEL_MAX + 1];
        size_t n = len - 4;
        if (n > HSMD_LABEL_MAX) {
            cfg_error(ps, ps->line, PT_ERR_USAGE, "[key NAME]: NAME is longer than %d bytes",
                      HSMD_LABEL_MAX);
            return;
        }
        memcpy(name, text + 4, n);
        name[n] = '\0';
        if (!hsmd_label_valid(name)) {
            cfg_error(ps, ps->line, PT_ERR_USAGE,
                      "[key %s]: a key name is printable ASCII without spaces", name);
            return;
        }
        for (size_t i = 0; i < cfg->n_keys; i++) {
            if (strcmp(cfg->keys[i].name, name) == 0) {
                cfg_error(ps, ps->line, PT_ERR_USAGE, "[key %s] appears twice (first on line %u)",
                          name, cfg->keys[i].line);
                return;
            }
        }
        if (cfg->n_keys == HSMD_CONFIG_MAX_KEYS) {
            cfg_error(ps, ps->line, PT_ERR_USAGE, "more than %d [key] sections",
                      HSMD_CONFIG_MAX_KEYS);
            return;
        }
        hsmd_key_config *k = &cfg->keys[cfg->n_keys++];
        memcpy(k->name, name, n + 1);
        k->line = ps->line;
        k->max_validity_days = HSMD_DEFAULT_MAX_VALIDITY_DAYS;
        ps->section = SECTION_KEY;
        ps->key = k;
        return;
    }
    cfg_error(ps, ps->line, PT_ERR_USAGE, "unknown section [%.*s] (sections: [hsmd], [key NAME])",
              (int)(len > 80 ? 80 : len), text);
}

/*
 * A line that opens a section: "[...]" then only blanks or a comment. inih
 * parses it too; this copy sees every header (also of empty sections) and
 * names longer than inih keeps.
 */
static void section_line(cfg_parser *ps, const char *line, size_t len)
{
    const char *close = memchr(line, ']', len);
    if (close == NULL)
        return; /* inih reports it */
    const char *rest = close + 1;
    size_t rest_len = len - (size_t)(rest - line);
    size_t i = 0;
    while (i < rest_len && (rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\r'))
        i++;
    if (i < rest_len && rest[i] != ';' && rest[i] != '#') {
        cfg_error(ps, ps->line, PT_ERR_USAGE, "text after a section header");
        return;
    }
    section_start(ps, line + 1, (size_t)(close - line - 1));
}

/*
 * inih's line source: hands over one line at a time, counting them, and stops
 * at what inih would take in a surprising way.
 */
static char *cfg_reader(char *str, int num, void *stream)
{
    cfg_parser *ps = stream;
    if (ps->left == 0 || ps->rc != PT_OK)
        return NULL;
    const char *nl = memchr(ps->p, '\n', ps->left);
    size_t len = nl != NULL ? (size_t)(nl - ps->p) : ps->left;
    size_t take = nl != NULL ? len + 1 : len;
    ps->line++;
    if (len > HSMD_CONFIG_LINE_MAX || num < 0 || len + 2 > (size_t)num) {
        cfg_error(ps, ps->line, PT_ERR_USAGE, "line is longer than %d characters",
                  HSMD_CONFIG_LINE_MAX);
        return NULL;
    }
    if (memchr(ps->p, '\0', len) != NULL) {
        cfg_error(ps, ps->line, PT_ERR_USAGE, "line holds a NUL byte");
        return NULL;
    }
    const char *line = ps->p;
    size_t blank = 0;
    while (blank < len && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r'))
        blank++;
    if (blank > 0 && blank < len) {
        /* inih would take it as the continuation of the value above. */
        cfg_error(ps, ps->line, PT_ERR_USAGE,
                  "line starts with a blank: write 'name = value' and [section] at the start "
                  "of the line");
        return NULL;
    }
    if (len > 0 && line[0] == '[') {
        section_line(ps, line, len);
        if (ps->rc != PT_OK)
            return NULL;
    }
    memcpy(str, line, take);
    str[take] = '\0';
    ps->p += take;
    ps->left -= take;
    return str;
}

/* ---- after parsing ---- */

static pt_err fail_at(const char *name, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pt_err fail_at(const char *name, unsigned line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        return pt_fail(PT_ERR_USAGE, "%s:%u: %s", name, line, msg);
    return pt_fail(PT_ERR_USAGE, "%s: %s", name, msg);
}

static pt_err key_finish(const char *name, hsmd_config *cfg, hsmd_key_config *k,
                         const cfg_section_state *seen)
{
    if (k->op == 0)
        return fail_at(name, k->line,
                       "[key %s] needs 'operation = issue' or 'operation = sign-tlv'", k->name);
    if (k->label == NULL && (k->label = OPENSSL_strdup(k->name)) == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (k->users.n == 0 && k->groups.n == 0)
        return fail_at(name, k->line,
                       "[key %s] lets nobody use it: set allow-users and/or allow-groups", k->name);
    if (k->op == HSMD_OP_SIGN_TLV && seen->seen_line[KEY_MAX_VALIDITY] != 0)
        return fail_at(name, seen->seen_line[KEY_MAX_VALIDITY],
                       "max-validity-days applies to issue keys only");
    unsigned allowed = k->op == HSMD_OP_ISSUE
                           ? HSMD_DIGEST_SHA256 | HSMD_DIGEST_SHA384 | HSMD_DIGEST_SHA512
                           : HSMD_DIGEST_SHA1 | HSMD_DIGEST_SHA512;
    if (k->digests == 0)
        k->digests = allowed;
    if (k->digests & ~allowed)
        return fail_at(name, seen->seen_line[KEY_DIGESTS], "digests: %s keys take %s, not %s",
                       hsmd_op_name(k->op),
                       k->op == HSMD_OP_ISSUE ? "sha256, sha384 and sha512" : "sha1 and sha512",
                       hsmd_digest_name(k->digests & ~allowed & (0u - (k->digests & ~allowed))));
    /* The keys before this one are finished: their labels are final. */
    for (const hsmd_key_config *o = cfg->keys; o < k; o++) {
        if (strcmp(o->label, k->label) == 0)
            return fail_at(name, k->line,
                           "[key %s] uses the token key '%s' that [key %s] (line %u) uses too: "
                           "a key serves one operation",
                           k->name, k->label, o->name, o->line);
    }
    return PT_OK;
}

static pt_err config_finish(const char *name, cfg_parser *ps)
{
    hsmd_config *cfg = ps->cfg;
    if (ps->hsmd_line == 0)
        return fail_at(name, 0, "no [hsmd] section");
    if (cfg->module == NULL)
        return fail_at(name, ps->hsmd_line, "[hsmd] needs 'module = PATH' (the PKCS#11 module)");
    if (cfg->token_uri == NULL)
        return fail_at(name, ps->hsmd_line,
                       "[hsmd] needs 'token = pkcs11:token=...?pin-source=file:PATH'");
    if (cfg->n_keys == 0)
        return fail_at(name, 0, "no [key NAME] section: hsmd would have nothing to serve");
    if ((cfg->socket_path == NULL &&
         (cfg->socket_path = OPENSSL_strdup(HSMD_DEFAULT_SOCKET)) == NULL) ||
        (cfg->audit_log == NULL &&
         (cfg->audit_log = OPENSSL_strdup(HSMD_DEFAULT_AUDIT_LOG)) == NULL))
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_keys; i++) {
        pt_err rc = key_finish(name, cfg, &cfg->keys[i], &ps->key_seen[i]);
        if (rc != PT_OK)
            return rc;
    }
    return PT_OK;
}

static void config_defaults(hsmd_config *cfg)
{
    cfg->socket_mode = HSMD_DEFAULT_SOCKET_MODE;
    cfg->sessions = HSMD_DEFAULT_SESSIONS;
    cfg->workers = HSMD_DEFAULT_WORKERS;
    cfg->queue = HSMD_DEFAULT_QUEUE;
    cfg->max_clients = HSMD_DEFAULT_MAX_CLIENTS;
    cfg->frame_timeout_ms = HSMD_DEFAULT_FRAME_TIMEOUT_MS;
    cfg->idle_timeout_ms = HSMD_DEFAULT_IDLE_TIMEOUT_MS;
    cfg->recovery_interval_ms = HSMD_DEFAULT_RECOVERY_MS;
    cfg->log_level = -1;
}

pt_err hsmd_config_parse(const char *text, size_t len, const char *name, hsmd_config **out)
{
    *out = NULL;
    if (name == NULL)
        name = "(config)";
    if (len > HSMD_CONFIG_MAX_BYTES)
        return pt_fail(PT_ERR_LIMIT, "%s: larger than %d bytes", name, HSMD_CONFIG_MAX_BYTES);
    cfg_parser *ps = OPENSSL_zalloc(sizeof *ps);
    hsmd_config *cfg = OPENSSL_zalloc(sizeof *cfg);
    if (ps == NULL || cfg == NULL) {
        OPENSSL_free(ps);
        OPENSSL_free(cfg);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    config_defaults(cfg);
    ps->name = name;
    ps->cfg = cfg;
    /* A UTF-8 byte order mark is allowed (inih skips it too). */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    ps->p = text;
    ps->left = len;
    int r = ini_parse_stream(cfg_reader, ps, cfg_handler, ps);
    pt_err rc = PT_OK;
    if (r > 0 && (ps->rc == PT_OK || (unsigned)r < ps->err_line))
        rc = fail_at(name, (unsigned)r,
                     "expected 'name = value', a [section] or a comment (; or #)");
    else if (ps->rc == PT_ERR_USAGE)
        rc = fail_at(name, ps->err_line, "%s", ps->err);
    else if (ps->rc != PT_OK)
        rc = pt_fail(ps->rc, "%s:%u: %s", name, ps->err_line, ps->err);
    else if (r < 0)
        rc = pt_fail(PT_ERR_NOMEM, "%s: the INI parser ran out of memory", name);
    if (rc == PT_OK)
        rc = config_finish(name, ps);
    OPENSSL_clear_free(ps, sizeof *ps);
    if (rc != PT_OK) {
        hsmd_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return PT_OK;
}

pt_err hsmd_config_load(const char *path, hsmd_config **out)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    pt_err rc = pt_file_read(path, HSMD_CONFIG_MAX_BYTES, &data, &len);
    if (rc != PT_OK)
        return pt_err_context(rc, "cannot read the configuration %s", path);
    rc = hsmd_config_parse((const char *)data, len, path, out);
    OPENSSL_free(data);
    return rc;
}

void hsmd_config_free(hsmd_config *cfg)
{
    if (cfg == NULL)
        return;
    OPENSSL_free(cfg->module);
    OPENSSL_free(cfg->token_uri);
    OPENSSL_free(cfg->socket_path);
    OPENSSL_free(cfg->audit_log);
    for (size_t i = 0; i < cfg->n_keys; i++) {
        OPENSSL_free(cfg->keys[i].label);
        OPENSSL_free(cfg->keys[i].certificate);
    }
    OPENSSL_free(cfg);
}
