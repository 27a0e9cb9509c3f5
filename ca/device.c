#include "device.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

bool capf_device_name_acceptable(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > CAPF_DEVICE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
            return false;
    return true;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static bool is_softphone_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-';
}

/* The part after a MAC-address prefix: exactly 12 hex digits. */
static bool mac_suffix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n != 12)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_hex(s[i]))
            return false;
    return true;
}

/* The part after a softphone prefix: 1 to 12 of A-Z 0-9 . _ - */
static bool softphone_suffix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 12)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_softphone_char(s[i]))
            return false;
    return true;
}

static pt_err name_error(const char *text, const char *why)
{
    char shown[CAPF_DEVICE_NAME_MAX + 4];
    /* Never echo an unbounded or non-printable argument back. */
    size_t n = strlen(text);
    if (n > CAPF_DEVICE_NAME_MAX || !capf_device_name_acceptable(text, n))
        snprintf(shown, sizeof shown, "the name given");
    else
        snprintf(shown, sizeof shown, "'%s'", text);
    return pt_fail(PT_ERR_USAGE, "%s is not a device name: %s", shown, why);
}

pt_err capf_device_name_normalize(const char *text, char out[CAPF_DEVICE_NAME_ADMIN_MAX + 1])
{
    static const char *const mac_prefixes[] = {"SEP", "ATA"};
    static const char *const soft_prefixes[] = {"CSF", "BOT", "TCT", "TAB"};
    out[0] = '\0';
    size_t n = strlen(text);
    if (n == 0)
        return name_error(text, "it is empty");
    if (n > CAPF_DEVICE_NAME_ADMIN_MAX)
        return name_error(text, "device names have at most 15 characters");
    char up[CAPF_DEVICE_NAME_ADMIN_MAX + 1];
    for (size_t i = 0; i <= n; i++)
        up[i] = (text[i] >= 'a' && text[i] <= 'z') ? (char)(text[i] - 'a' + 'A') : text[i];
    for (size_t i = 0; i < 2; i++) {
        if (n < 3 || strncmp(up, mac_prefixes[i], 3) != 0)
            continue;
        if (!mac_suffix_ok(up + 3))
            return name_error(text, i == 0 ? "SEP is followed by the 12 hex digits of the "
                                             "phone's MAC address (e.g. SEP58971ECC97C1)"
                                           : "ATA is followed by 12 hex digits (e.g. "
                                             "ATA0023EBA1C501)");
        memcpy(out, up, n + 1);
        return PT_OK;
    }
    for (size_t i = 0; i < 4; i++) {
        if (n < 3 || strncmp(up, soft_prefixes[i], 3) != 0)
            continue;
        if (!softphone_suffix_ok(up + 3))
            return name_error(text, "a softphone name is its prefix followed by 1 to 12 "
                                    "letters, digits, '.', '_' or '-' (e.g. CSFJSMITH)");
        memcpy(out, up, n + 1);
        return PT_OK;
    }
    return name_error(text, "names start with SEP or ATA (phones, adapters) or CSF, BOT, TCT "
                            "or TAB (softphones)");
}

pt_err capf_device_auth_string_check(const char *text)
{
    size_t n = strlen(text);
    bool digits = true;
    for (size_t i = 0; i < n; i++)
        digits = digits && text[i] >= '0' && text[i] <= '9';
    if (!digits || n < CAPF_DEVICE_AUTH_STRING_MIN || n > CAPF_DEVICE_AUTH_STRING_MAX)
        return pt_fail(PT_ERR_USAGE, "an authentication string is %d to %d digits (0-9)",
                       CAPF_DEVICE_AUTH_STRING_MIN, CAPF_DEVICE_AUTH_STRING_MAX);
    return PT_OK;
}

pt_err capf_device_auth_string_generate(size_t len, char *out, size_t outlen)
{
    if (len < CAPF_DEVICE_AUTH_STRING_MIN || len > CAPF_DEVICE_AUTH_STRING_MAX || outlen <= len)
        return pt_fail(PT_ERR_USAGE, "an authentication string is %d to %d digits",
                       CAPF_DEVICE_AUTH_STRING_MIN, CAPF_DEVICE_AUTH_STRING_MAX);
    uint8_t pool[32];
    size_t used = sizeof pool, have = 0;
    pt_err rc = PT_OK;
    while (have < len) {
        if (used == sizeof pool) {
            if (RAND_bytes(pool, sizeof pool) != 1) {
                rc = pt_fail_openssl(PT_ERR_OPENSSL, "no random bytes for the string");
                break;
            }
            used = 0;
        }
        uint8_t b = pool[used++];
        /* 250 is the largest multiple of 10 below 256: rejecting 250-255 keeps digits uniform. */
        if (b < 250)
            out[have++] = (char)('0' + b % 10);
    }
    OPENSSL_cleanse(pool, sizeof pool);
    if (rc != PT_OK) {
        OPENSSL_cleanse(out, outlen);
        out[0] = '\0';
        return rc;
    }
    out[len] = '\0';
    return PT_OK;
}

/* Length of the UTF-8 sequence starting at s (at most n bytes), or 0 when invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8. */
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    /* C1 control characters (U+0080-U+009F) are as unwelcome as C0 ones. */
    if (cp < 0xa0)
        return 0;
    return len;
}

pt_err capf_device_description_check(const char *text)
{
    size_t n = strlen(text);
    if (n > CAPF_DEVICE_DESCRIPTION_MAX)
        return pt_fail(PT_ERR_USAGE, "a description has at most %d bytes (this one has %zu)",
                       CAPF_DEVICE_DESCRIPTION_MAX, n);
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return pt_fail(PT_ERR_USAGE,
                           "a description cannot hold control characters "
                           "(byte %zu)",
                           i + 1);
        size_t step = utf8_sequence(s + i, n - i);
        if (step == 0)
            return pt_fail(PT_ERR_USAGE, "a description must be UTF-8 text (byte %zu is not)",
                           i + 1);
        i += step;
    }
    return PT_OK;
}

static const char *const op_names[] = {"none", "install", "delete", "troubleshoot"};
static const char *const auth_names[] = {"null", "string", "lsc", "mic"};
static const char *const state_names[] = {"none", "pending", "success", "failed"};
static const char *const curve_names[] = {"P-256", "P-384", "P-521"};
static const unsigned rsa_sizes[] = {1024, 2048, 3072, 4096};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Index of text in names, or -1. */
static int name_index(const char *const *names, size_t count, const char *text)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], text) == 0)
            return (int)i;
    return -1;
}

const char *capf_device_op_name(capf_device_op op)
{
    return (size_t)op < COUNT(op_names) ? op_names[op] : "unknown";
}

pt_err capf_device_op_parse(const char *text, capf_device_op *out)
{
    int i = name_index(op_names, COUNT(op_names), text);
    *out = CAPF_DEVICE_OP_NONE;
    if (i < 0)
        return pt_fail(PT_ERR_USAGE, "unknown operation (use install, delete, troubleshoot or "
                                     "none)");
    *out = (capf_device_op)i;
    return PT_OK;
}

const char *capf_device_auth_name(capf_device_auth mode)
{
    return (size_t)mode < COUNT(auth_names) ? auth_names[mode] : "unknown";
}

pt_err capf_device_auth_parse(const char *text, capf_device_auth *out)
{
    int i = name_index(auth_names, COUNT(auth_names), text);
    *out = CAPF_DEVICE_AUTH_NULL;
    if (i < 0)
        return pt_fail(PT_ERR_USAGE, "unknown authentication mode (use null, string, lsc or mic)");
    *out = (capf_device_auth)i;
    return PT_OK;
}

const char *capf_device_state_name(capf_device_state state)
{
    return (size_t)state < COUNT(state_names) ? state_names[state] : "unknown";
}

pt_err capf_device_state_parse(const char *text, capf_device_state *out)
{
    int i = name_index(state_names, COUNT(state_names), text);
    *out = CAPF_DEVICE_STATE_NONE;
    if (i < 0)
        return pt_fail(PT_ERR_USAGE, "unknown status (use pending, success, failed or none)");
    *out = (capf_device_state)i;
    return PT_OK;
}

static bool parse_rsa(const char *text, unsigned *bits)
{
    for (size_t i = 0; i < COUNT(rsa_sizes); i++) {
        char want[16];
        snprintf(want, sizeof want, "rsa:%u", rsa_sizes[i]);
        if (strcmp(text, want) == 0) {
            *bits = rsa_sizes[i];
            return true;
        }
    }
    return false;
}

static bool parse_curve(const char *text, size_t len, capf_device_curve *curve)
{
    for (size_t i = 0; i < COUNT(curve_names); i++) {
        if (strlen(curve_names[i]) == len && memcmp(text, curve_names[i], len) == 0) {
            *curve = (capf_device_curve)i;
            return true;
        }
    }
    return false;
}

pt_err capf_device_key_parse(const char *text, capf_device_key *out)
{
    memset(out, 0, sizeof *out);
    static const char ec[] = "ec:", pref[] = "ec-preferred:";
    bool ok = false;
    if (strcmp(text, "default") == 0) {
        ok = true;
    } else if (strncmp(text, "rsa:", 4) == 0) {
        out->kind = CAPF_DEVICE_KEY_RSA;
        ok = parse_rsa(text, &out->rsa_bits);
    } else if (strncmp(text, ec, sizeof ec - 1) == 0) {
        const char *c = text + sizeof ec - 1;
        out->kind = CAPF_DEVICE_KEY_EC;
        ok = parse_curve(c, strlen(c), &out->curve);
    } else if (strncmp(text, pref, sizeof pref - 1) == 0) {
        const char *c = text + sizeof pref - 1;
        const char *slash = strchr(c, '/');
        out->kind = CAPF_DEVICE_KEY_EC_PREFERRED;
        ok = slash != NULL && parse_curve(c, (size_t)(slash - c), &out->curve) &&
             parse_rsa(slash + 1, &out->rsa_bits);
    }
    if (!ok) {
        memset(out, 0, sizeof *out);
        return pt_fail(PT_ERR_USAGE, "unknown key specification (use default, rsa:1024, "
                                     "rsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384, "
                                     "ec:P-521 or ec-preferred:P-256/rsa:2048)");
    }
    return PT_OK;
}

void capf_device_key_format(const capf_device_key *key, char out[CAPF_DEVICE_KEY_TEXT_MAX])
{
    const char *curve = (size_t)key->curve < COUNT(curve_names) ? curve_names[key->curve] : "?";
    switch (key->kind) {
    case CAPF_DEVICE_KEY_RSA:
        snprintf(out, CAPF_DEVICE_KEY_TEXT_MAX, "rsa:%u", key->rsa_bits);
        return;
    case CAPF_DEVICE_KEY_EC:
        snprintf(out, CAPF_DEVICE_KEY_TEXT_MAX, "ec:%s", curve);
        return;
    case CAPF_DEVICE_KEY_EC_PREFERRED:
        snprintf(out, CAPF_DEVICE_KEY_TEXT_MAX, "ec-preferred:%s/rsa:%u", curve, key->rsa_bits);
        return;
    case CAPF_DEVICE_KEY_DEFAULT:
        break;
    }
    snprintf(out, CAPF_DEVICE_KEY_TEXT_MAX, "default");
}

void capf_device_status_format(capf_device_op op, capf_device_state state, const char *reason,
                               char out[CAPF_DEVICE_STATUS_TEXT_MAX])
{
    if (state == CAPF_DEVICE_STATE_NONE) {
        snprintf(out, CAPF_DEVICE_STATUS_TEXT_MAX, "none");
        return;
    }
    bool with_reason = state == CAPF_DEVICE_STATE_FAILED && reason != NULL && reason[0] != '\0';
    snprintf(out, CAPF_DEVICE_STATUS_TEXT_MAX, "%s %s%s%.*s", capf_device_op_name(op),
             capf_device_state_name(state), with_reason ? ": " : "", CAPF_DEVICE_REASON_MAX,
             with_reason ? reason : "");
}
