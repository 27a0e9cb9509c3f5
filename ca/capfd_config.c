#include "capfd_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "cli.h"
#include "hex.h"
#include "hsm_client.h"
#include "store.h"

#define DAY_MS (24L * 3600 * 1000)

static pt_err set_string(char **slot, const char *value)
{
    char *copy = OPENSSL_strdup(value);
    if (copy == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    OPENSSL_free(*slot);
    *slot = copy;
    return PT_OK;
}

pt_err capfd_config_defaults(capfd_config *c)
{
    memset(c, 0, sizeof *c);
    c->port = CAPF_PORT;
    c->log_level = PT_LOG_INFO;
    c->tls_min_version = TLS1_2_VERSION;
    c->hsmd_timeout_ms = HSM_CLIENT_DEFAULT_TIMEOUT_MS;
    c->max_auth_failures = CAPFD_DEFAULT_AUTH_FAILURES;
    c->max_sessions = CAPFD_DEFAULT_MAX_SESSIONS;
    c->io_timeout_ms = CAPFD_DEFAULT_IO_TIMEOUT_MS;
    c->session_timeout_ms = CAPFD_DEFAULT_SESSION_MS;
    c->at_limit = CAPFD_AT_LIMIT_RETRY_LATER;
    c->validity_years = CAPFD_DEFAULT_VALIDITY_YEARS;
    c->default_key = (capf_device_key){CAPF_DEVICE_KEY_RSA, 2048, CAPF_DEVICE_CURVE_P256};
    c->keygen_timeout_ms = CAPFD_DEFAULT_KEYGEN_MS;
    c->keygen_attempts = CAPFD_DEFAULT_KEYGEN_ATTEMPTS;
    pt_err rc = set_string(&c->listen, CAPFD_DEFAULT_LISTEN);
    if (rc == PT_OK)
        rc = set_string(&c->hsmd_socket, HSM_CLIENT_DEFAULT_SOCKET);
    if (rc == PT_OK)
        rc = set_string(&c->issuer_label, CAPFD_DEFAULT_ISSUER_LABEL);
    if (rc == PT_OK)
        rc = set_string(&c->store_url, CAPF_STORE_DEFAULT_URL);
    /*
     * TLS 1.2: forward-secret suites first, then the RSA-key-exchange AES-GCM
     * and AES-CBC suites older phones may need (§1.6, CAPF-U1).
     */
    if (rc == PT_OK)
        rc = set_string(&c->tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:ECDHE+AES:"
                                         "AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:"
                                         "AES128-SHA256:AES256-SHA:AES128-SHA");
    if (rc == PT_OK)
        rc = capfd_retry_later_parse(CAPFD_DEFAULT_RETRY_LATER, &c->retry_later);
    if (rc != PT_OK)
        capfd_config_free(c);
    return rc;
}

void capfd_config_free(capfd_config *c)
{
    if (c == NULL)
        return;
    char **strings[] = {&c->listen,       &c->port_file,   &c->tls_cert,      &c->tls_key,
                        &c->tls_module,   &c->tls_ciphers, &c->tls_suites,    &c->hsmd_socket,
                        &c->issuer_label, &c->store_url,   &c->lsc_trust_dir, &c->mic_trust_dir};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        OPENSSL_free(*strings[i]);
        *strings[i] = NULL;
    }
}

pt_err capfd_duration_parse(const char *text, long default_unit_ms, int *ms)
{
    *ms = 0;
    char *end = NULL;
    errno = 0;
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return pt_fail(PT_ERR_USAGE, "'%s' is not a duration (e.g. 10s, 30m, 500ms)",
                       text ? text : "");
    long n = strtol(text, &end, 10);
    long unit = default_unit_ms;
    if (errno != 0 || n < 0 || n > DAY_MS)
        return pt_fail(PT_ERR_USAGE, "duration '%s' is out of range", text);
    if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        unit = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        unit = 3600 * 1000;
    else if (end[0] != '\0')
        return pt_fail(PT_ERR_USAGE, "duration '%s': the unit is ms, s, m or h", text);
    if (n == 0 || n > DAY_MS / unit)
        return pt_fail(PT_ERR_USAGE, "duration '%s' must be between 1 ms and 24 h", text);
    *ms = (int)(n * unit);
    return PT_OK;
}

/* ---- RETRY_LATER elements ------------------------------------------------ */

static int el_tag_parse(const char *name, size_t len)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    long n = 0;
    if (pt_cli_parse_long(buf, 1, 255, &n))
        return capf_el_is_known((uint8_t)n) ? (int)n : -1;
    for (int t = 1; t < 256; t++)
        if (capf_el_is_known((uint8_t)t) && strcmp(capf_el_name((uint8_t)t), buf) == 0)
            return t;
    return -1;
}

static pt_err el_value_parse(const char *item, const char *v, size_t vlen, capfd_retry_later *out,
                             size_t *len)
{
    char buf[2 * CAPFD_RETRY_LATER_BYTES_MAX + 8];
    uint8_t *dst = out->bytes + out->used;
    size_t room = sizeof out->bytes - out->used;
    *len = 0;
    if (vlen >= sizeof buf)
        return pt_fail(PT_ERR_USAGE, "retry-later-elements: '%s' is too long", item);
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    const char *colon = strchr(buf, ':');
    if (colon == NULL)
        return pt_fail(PT_ERR_USAGE, "retry-later-elements: '%s' needs TYPE:VALUE", item);
    size_t tlen = (size_t)(colon - buf);
    const char *val = colon + 1;
    if (tlen == 3 && strncmp(buf, "hex", 3) == 0) {
        size_t digits = strlen(val);
        if (digits % 2 != 0 || digits / 2 > room)
            return pt_fail(PT_ERR_USAGE, "retry-later-elements: '%s': bad hex value", item);
        for (size_t i = 0; i < digits / 2; i++) {
            int hi = pt_hex_value(val[2 * i]), lo = pt_hex_value(val[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return pt_fail(PT_ERR_USAGE, "retry-later-elements: '%s': bad hex value", item);
            dst[i] = (uint8_t)(hi << 4 | lo);
        }
        *len = digits / 2;
        return PT_OK;
    }
    size_t width = 0;
    if (tlen == 2 && strncmp(buf, "u8", 2) == 0)
        width = 1;
    else if (tlen == 3 && strncmp(buf, "u16", 3) == 0)
        width = 2;
    else if (tlen == 3 && strncmp(buf, "u32", 3) == 0)
        width = 4;
    else
        return pt_fail(PT_ERR_USAGE, "retry-later-elements: '%s': TYPE is u8, u16, u32 or hex",
                       item);
    long max = width == 1 ? 0xff : width == 2 ? 0xffff : 0x7fffffffL;
    long n = 0;
    if (!pt_cli_parse_long(val, 0, max, &n))
        return pt_fail(PT_ERR_USAGE, "retry-later-elements: '%s': value out of range for its type",
                       item);
    if (width > room)
        return pt_fail(PT_ERR_LIMIT, "retry-later-elements: too many bytes");
    for (size_t i = 0; i < width; i++)
        dst[i] = (uint8_t)((unsigned long)n >> (8 * (width - 1 - i)));
    *len = width;
    return PT_OK;
}

pt_err capfd_retry_later_parse(const char *text, capfd_retry_later *out)
{
    memset(out, 0, sizeof *out);
    if (text == NULL)
        return PT_OK;
    const char *p = text;
    const char *seps = " \t,";
    while (*p != '\0') {
        p += strspn(p, seps);
        size_t n = strcspn(p, seps);
        if (n == 0)
            break;
        char item[128];
        snprintf(item, sizeof item, "%.*s", (int)(n < 100 ? n : 100), p);
        if (n == 4 && strncmp(p, "none", 4) == 0) {
            p += n;
            continue;
        }
        const char *eq = memchr(p, '=', n);
        if (eq == NULL)
            return pt_fail(PT_ERR_USAGE, "retry-later-elements: '%s' is not TAG=TYPE:VALUE", item);
        int tag = el_tag_parse(p, (size_t)(eq - p));
        if (tag < 0)
            return pt_fail(PT_ERR_USAGE,
                           "retry-later-elements: '%s': unknown element (a name such as "
                           "RETRY_DELAY or a number 1-20)",
                           item);
        if (out->n == CAPFD_RETRY_LATER_ELS_MAX)
            return pt_fail(PT_ERR_LIMIT, "retry-later-elements: at most %d elements",
                           CAPFD_RETRY_LATER_ELS_MAX);
        for (size_t i = 0; i < out->n; i++)
            if (out->els[i].tag == tag)
                return pt_fail(PT_ERR_USAGE, "retry-later-elements: %s given twice",
                               capf_el_name((uint8_t)tag));
        size_t len = 0;
        pt_err rc = el_value_parse(item, eq + 1, n - (size_t)(eq + 1 - p), out, &len);
        if (rc != PT_OK)
            return rc;
        out->els[out->n].tag = (uint8_t)tag;
        out->els[out->n].value = out->bytes + out->used;
        out->els[out->n].len = len;
        out->n++;
        out->used += len;
        p += n;
    }
    /* Let the encoder judge sizes now, so that a bad setting fails at start-up. */
    uint8_t *buf = NULL;
    size_t blen = 0;
    pt_err rc = capf_msg_build_retry_later(1, out->els, out->n, &buf, &blen);
    if (rc != PT_OK)
        return pt_err_context(PT_ERR_USAGE, "retry-later-elements");
    capf_msg_buf_free(buf, blen);
    return PT_OK;
}

/* ---- keys ---------------------------------------------------------------- */

typedef struct cfg_key {
    const char *section;
    const char *key;
    pt_err (*set)(capfd_config *c, const char *value);
} cfg_key;

#define STRING_SETTER(name, field)                                                                 \
    static pt_err name(capfd_config *c, const char *v)                                             \
    {                                                                                              \
        if (v[0] == '\0')                                                                          \
            return pt_fail(PT_ERR_USAGE, "an empty value is not allowed");                         \
        return set_string(&c->field, v);                                                           \
    }

STRING_SETTER(set_listen, listen)
STRING_SETTER(set_port_file, port_file)
STRING_SETTER(set_tls_cert, tls_cert)
STRING_SETTER(set_tls_key, tls_key)
STRING_SETTER(set_tls_module, tls_module)
STRING_SETTER(set_tls_ciphers, tls_ciphers)
STRING_SETTER(set_tls_suites, tls_suites)
STRING_SETTER(set_hsmd_socket, hsmd_socket)
STRING_SETTER(set_store_url, store_url)
STRING_SETTER(set_lsc_trust_dir, lsc_trust_dir)
STRING_SETTER(set_mic_trust_dir, mic_trust_dir)

static pt_err set_issuer_label(capfd_config *c, const char *v)
{
    if (v[0] == '\0' || strlen(v) > 64 || strchr(v, ' ') != NULL)
        return pt_fail(PT_ERR_USAGE, "a key label is 1 to 64 characters without spaces");
    return set_string(&c->issuer_label, v);
}

static pt_err set_uint(const char *v, long min, long max, unsigned *out)
{
    long n = 0;
    if (!pt_cli_parse_long(v, min, max, &n))
        return pt_fail(PT_ERR_USAGE, "'%s' is not a number from %ld to %ld", v, min, max);
    *out = (unsigned)n;
    return PT_OK;
}

static pt_err set_port(capfd_config *c, const char *v)
{
    return set_uint(v, 0, 65535, &c->port);
}

static pt_err set_log_level(capfd_config *c, const char *v)
{
    int l = pt_log_level_parse(v);
    if (l < 0)
        return pt_fail(PT_ERR_USAGE, "'%s' is not error, warn, info or debug", v);
    c->log_level = (pt_log_level)l;
    return PT_OK;
}

static pt_err tls_version_parse(const char *v, int *out)
{
    static const struct {
        const char *name;
        int version;
    } versions[] = {{"TLSv1", TLS1_VERSION},
                    {"TLSv1.1", TLS1_1_VERSION},
                    {"TLSv1.2", TLS1_2_VERSION},
                    {"TLSv1.3", TLS1_3_VERSION}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if (strcmp(v, versions[i].name) == 0) {
            *out = versions[i].version;
            return PT_OK;
        }
    return pt_fail(PT_ERR_USAGE, "'%s' is not TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", v);
}

static pt_err set_tls_min(capfd_config *c, const char *v)
{
    return tls_version_parse(v, &c->tls_min_version);
}

static pt_err set_tls_max(capfd_config *c, const char *v)
{
    return tls_version_parse(v, &c->tls_max_version);
}

static pt_err set_hsmd_timeout(capfd_config *c, const char *v)
{
    return capfd_duration_parse(v, 1000, &c->hsmd_timeout_ms);
}

static pt_err set_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0) {
        *out = true;
        return PT_OK;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0) {
        *out = false;
        return PT_OK;
    }
    return pt_fail(PT_ERR_USAGE, "'%s' is not true or false", v);
}

static pt_err set_check_validity(capfd_config *c, const char *v)
{
    return set_bool(v, &c->check_validity);
}

static pt_err set_max_failures(capfd_config *c, const char *v)
{
    return set_uint(v, 1, 100, &c->max_auth_failures);
}

static pt_err set_max_sessions(capfd_config *c, const char *v)
{
    return set_uint(v, 1, 10000, &c->max_sessions);
}

static pt_err set_io_timeout(capfd_config *c, const char *v)
{
    return capfd_duration_parse(v, 1000, &c->io_timeout_ms);
}

static pt_err set_session_timeout(capfd_config *c, const char *v)
{
    return capfd_duration_parse(v, 1000, &c->session_timeout_ms);
}

static pt_err set_at_limit(capfd_config *c, const char *v)
{
    if (strcmp(v, "retry-later") == 0)
        c->at_limit = CAPFD_AT_LIMIT_RETRY_LATER;
    else if (strcmp(v, "close") == 0)
        c->at_limit = CAPFD_AT_LIMIT_CLOSE;
    else
        return pt_fail(PT_ERR_USAGE, "'%s' is not retry-later or close", v);
    return PT_OK;
}

static pt_err set_retry_later(capfd_config *c, const char *v)
{
    return capfd_retry_later_parse(v, &c->retry_later);
}

static pt_err set_validity(capfd_config *c, const char *v)
{
    return set_uint(v, 1, CAPFD_MAX_VALIDITY_YEARS, &c->validity_years);
}

static pt_err set_key(capfd_config *c, const char *v)
{
    capf_device_key k;
    pt_err rc = capf_device_key_parse(v, &k);
    if (rc == PT_OK && k.kind == CAPF_DEVICE_KEY_DEFAULT)
        rc = pt_fail(PT_ERR_USAGE, "the service's key cannot be 'default'; e.g. rsa:2048, "
                                   "ec:P-256 or ec-preferred:P-256/rsa:2048");
    if (rc == PT_OK)
        c->default_key = k;
    return rc;
}

static pt_err set_keygen_timeout(capfd_config *c, const char *v)
{
    return capfd_duration_parse(v, 60 * 1000, &c->keygen_timeout_ms);
}

static pt_err set_keygen_attempts(capfd_config *c, const char *v)
{
    return set_uint(v, 1, 10, &c->keygen_attempts);
}

static const cfg_key cfg_keys[] = {
    {"server", "listen", set_listen},
    {"server", "port", set_port},
    {"server", "port-file", set_port_file},
    {"server", "log-level", set_log_level},
    {"tls", "certificate", set_tls_cert},
    {"tls", "key", set_tls_key},
    {"tls", "module", set_tls_module},
    {"tls", "ciphers", set_tls_ciphers},
    {"tls", "ciphersuites", set_tls_suites},
    {"tls", "min-version", set_tls_min},
    {"tls", "max-version", set_tls_max},
    {"hsmd", "socket", set_hsmd_socket},
    {"hsmd", "key", set_issuer_label},
    {"hsmd", "timeout", set_hsmd_timeout},
    {"store", "url", set_store_url},
    {"auth", "lsc-trust-dir", set_lsc_trust_dir},
    {"auth", "mic-trust-dir", set_mic_trust_dir},
    {"auth", "check-validity", set_check_validity},
    {"auth", "max-failures", set_max_failures},
    {"limits", "max-sessions", set_max_sessions},
    {"limits", "io-timeout", set_io_timeout},
    {"limits", "session-timeout", set_session_timeout},
    {"limits", "at-limit", set_at_limit},
    {"limits", "retry-later-elements", set_retry_later},
    {"service", "validity-years", set_validity},
    {"service", "key", set_key},
    {"service", "keygen-timeout", set_keygen_timeout},
    {"service", "keygen-attempts", set_keygen_attempts},
};

pt_err capfd_config_set(capfd_config *c, const char *section, const char *key, const char *value)
{
    bool section_known = false;
    for (size_t i = 0; i < sizeof cfg_keys / sizeof cfg_keys[0]; i++) {
        if (strcmp(cfg_keys[i].section, section) != 0)
            continue;
        section_known = true;
        if (strcmp(cfg_keys[i].key, key) == 0) {
            pt_err rc = cfg_keys[i].set(c, value);
            return rc == PT_OK ? rc : pt_err_context(rc, "[%s] %s", section, key);
        }
    }
    if (!section_known)
        return pt_fail(PT_ERR_USAGE,
                       "unknown section [%s] (server, tls, hsmd, store, auth, limits, service)",
                       section);
    return pt_fail(PT_ERR_USAGE, "[%s]: unknown key '%s' (see capfd.conf.example)", section, key);
}

typedef struct load_state {
    capfd_config *c;
    pt_err rc;
    char detail[512];
} load_state;

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
    load_state *s = user;
    if (s->rc != PT_OK)
        return 0;
    s->rc = capfd_config_set(s->c, section, name, value);
    if (s->rc != PT_OK) {
        snprintf(s->detail, sizeof s->detail, "%s", pt_err_message());
        return 0;
    }
    return 1;
}

pt_err capfd_config_check(const capfd_config *c)
{
    if (c->tls_cert == NULL || c->tls_key == NULL)
        return pt_fail(PT_ERR_USAGE, "[tls] certificate and key are required: the CAPF "
                                     "certificate phones see and its key (see "
                                     "capfd.conf.example)");
    if (c->tls_max_version != 0 && c->tls_max_version < c->tls_min_version)
        return pt_fail(PT_ERR_USAGE, "[tls] max-version is below min-version");
    return PT_OK;
}

pt_err capfd_config_load(const char *path, capfd_config *c)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return pt_fail_errno("cannot read the configuration %s", path);
    load_state s = {c, PT_OK, ""};
    int line = ini_parse_file(f, config_ini_line, &s);
    fclose(f);
    if (s.rc != PT_OK)
        return pt_fail(s.rc, "%s line %d: %s", path, line, s.detail);
    if (line != 0)
        return pt_fail(PT_ERR_USAGE, "%s line %d: not 'key = value' or '[section]'", path, line);
    pt_err rc = capfd_config_check(c);
    return rc == PT_OK ? rc : pt_err_context(rc, "%s", path);
}

const char *capfd_key_text(const capf_device_key *k, char out[CAPF_DEVICE_KEY_TEXT_MAX])
{
    capf_device_key_format(k, out);
    return out;
}
