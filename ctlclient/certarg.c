#include "certarg.h"

#include <string.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cert.h"
#include "hex.h"
#include "log.h"
#include "tlsfetch.h"
#include "tty.h"

#define TLS_PREFIX "tls://"

/* Where the options start: the first ",host=", ",ip=" or ",sha256=" (a path may hold commas). */
static const char *options_start(const char *text)
{
    static const char *const keys[] = {",host=", ",ip=", ",sha256="};
    const char *first = NULL;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *p = strstr(text, keys[i]);
        if (p != NULL && (first == NULL || p < first))
            first = p;
    }
    return first;
}

static bool host_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CTL_CERTARG_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == ',')
            return false;
    }
    return true;
}

static pt_err option_set(ctl_cert_arg *a, const char *opt, const char *whole)
{
    const char *eq = strchr(opt, '=');
    size_t klen = eq != NULL ? (size_t)(eq - opt) : strlen(opt);
    const char *v = eq != NULL ? eq + 1 : "";
    if (klen == 4 && strncmp(opt, "host", 4) == 0) {
        if (a->dns_name != NULL || !host_name_ok(v))
            return pt_fail(PT_ERR_USAGE, "'%s': host= takes one DNS name", whole);
        a->dns_name = OPENSSL_strdup(v);
        return a->dns_name != NULL ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    if (klen == 2 && strncmp(opt, "ip", 2) == 0) {
        if (a->has_ipv4 || inet_pton(AF_INET, v, a->ipv4) != 1)
            return pt_fail(PT_ERR_USAGE,
                           "'%s': ip= takes one IPv4 address (the CTL format stores 4 bytes)",
                           whole);
        a->has_ipv4 = true;
        return PT_OK;
    }
    if (klen == 6 && strncmp(opt, "sha256", 6) == 0) {
        uint8_t *d = NULL;
        size_t n = 0;
        if (a->has_sha256 || pt_hex_decode(v, &d, &n) != PT_OK || n != 32) {
            OPENSSL_free(d);
            return pt_fail(PT_ERR_USAGE,
                           "'%s': sha256= takes a SHA-256 fingerprint (64 hex digits)", whole);
        }
        memcpy(a->sha256, d, 32);
        OPENSSL_free(d);
        a->has_sha256 = true;
        return PT_OK;
    }
    return pt_fail(PT_ERR_USAGE, "'%s': unknown option '%.*s' (host=, ip= or sha256=)", whole,
                   (int)klen, opt);
}

/* "HOST:PORT" or "[V6]:PORT" */
static pt_err tls_target_parse(ctl_cert_arg *a, const char *t, size_t n, const char *whole)
{
    const char *host = t, *colon;
    size_t hlen;
    if (n > 0 && t[0] == '[') {
        const char *close = memchr(t, ']', n);
        if (close == NULL || (size_t)(close - t) + 1 >= n || close[1] != ':')
            return pt_fail(PT_ERR_USAGE, "'%s': expected tls://[ADDRESS]:PORT", whole);
        host = t + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (t[i] == ':')
                colon = t + i;
        if (colon == NULL)
            return pt_fail(PT_ERR_USAGE, "'%s': expected tls://HOST:PORT", whole);
        hlen = (size_t)(colon - t);
    }
    size_t plen = n - (size_t)(colon + 1 - t);
    long port = 0;
    char pbuf[8];
    if (hlen == 0 || hlen > CTL_CERTARG_HOST_MAX || plen == 0 || plen >= sizeof pbuf)
        return pt_fail(PT_ERR_USAGE, "'%s': expected tls://HOST:PORT", whole);
    memcpy(pbuf, colon + 1, plen);
    pbuf[plen] = '\0';
    for (size_t i = 0; i < plen; i++)
        if (pbuf[i] < '0' || pbuf[i] > '9')
            return pt_fail(PT_ERR_USAGE, "'%s': the port must be a number", whole);
    port = strtol(pbuf, NULL, 10);
    if (port < 1 || port > 65535)
        return pt_fail(PT_ERR_USAGE, "'%s': the port must be 1 to 65535", whole);
    a->tls_host = OPENSSL_strndup(host, hlen);
    a->tls_port = OPENSSL_strdup(pbuf);
    if (a->tls_host == NULL || a->tls_port == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    return PT_OK;
}

pt_err ctl_cert_arg_parse(const char *text, ctl_cert_arg *out)
{
    memset(out, 0, sizeof *out);
    const char *opts = options_start(text);
    size_t main_len = opts != NULL ? (size_t)(opts - text) : strlen(text);
    pt_err rc = PT_OK;
    if (main_len == 0) {
        rc = pt_fail(PT_ERR_USAGE, "'%s': expected a certificate file or tls://HOST:PORT", text);
    } else if (main_len > strlen(TLS_PREFIX) &&
               strncmp(text, TLS_PREFIX, strlen(TLS_PREFIX)) == 0) {
        rc = tls_target_parse(out, text + strlen(TLS_PREFIX), main_len - strlen(TLS_PREFIX), text);
    } else {
        out->path = OPENSSL_strndup(text, main_len);
        if (out->path == NULL)
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    if (rc == PT_OK && opts != NULL) {
        char *copy = OPENSSL_strdup(opts + 1);
        if (copy == NULL)
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        char *save = NULL;
        for (char *o = copy != NULL ? strtok_r(copy, ",", &save) : NULL; rc == PT_OK && o != NULL;
             o = strtok_r(NULL, ",", &save))
            rc = option_set(out, o, text);
        OPENSSL_free(copy);
    }
    if (rc != PT_OK)
        ctl_cert_arg_free(out);
    return rc;
}

void ctl_cert_arg_free(ctl_cert_arg *a)
{
    if (a == NULL)
        return;
    OPENSSL_free(a->path);
    OPENSSL_free(a->tls_host);
    OPENSSL_free(a->tls_port);
    OPENSSL_free(a->dns_name);
    memset(a, 0, sizeof *a);
}

/* sha256= against the certificate; without sha256= a server's certificate needs a "yes". */
static pt_err fingerprint_check(const ctl_cert_arg *a, X509 *x, const char *what)
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    char hex[65];
    if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != sizeof md)
        return pt_fail_openssl(PT_ERR_OPENSSL, "%s: cannot compute the fingerprint", what);
    pt_hex_lower(md, sizeof md, hex);
    if (a->has_sha256) {
        if (CRYPTO_memcmp(md, a->sha256, sizeof md) != 0) {
            char want[65];
            pt_hex_lower(a->sha256, sizeof a->sha256, want);
            return pt_fail(PT_ERR_VERIFY,
                           "%s: the certificate's SHA-256 fingerprint is %s, not %s as sha256= "
                           "says; check that this is the right server and fingerprint, nothing "
                           "was written",
                           what, hex, want);
        }
        if (a->path == NULL)
            pt_log_info("%s: SHA-256 fingerprint %s matches sha256=", what, hex);
        return PT_OK;
    }
    if (a->path != NULL)
        return PT_OK;
    pt_cert_info ci;
    if (pt_cert_info_get(x, &ci) != PT_OK)
        return pt_err_context(PT_ERR_FORMAT, "%s", what);
    pt_tty_printf("%s presents this certificate (not verified by anyone yet):\n"
                  "  subject:  %s\n  issuer:   %s\n  serial:   %s\n  valid:    %s to %s\n"
                  "  SHA-256:  %s\n",
                  what, ci.subject, ci.issuer, ci.serial, ci.not_before, ci.not_after, hex);
    pt_cert_info_free(&ci);
    if (!pt_tty_available())
        return pt_fail(PT_ERR_CANCELLED,
                       "%s: SHA-256 fingerprint %s cannot be confirmed without a terminal; "
                       "compare it with the server's own and add ,sha256=%s",
                       what, hex, hex);
    char answer[16];
    pt_err rc = pt_tty_read_line("Compare the fingerprint with the server's own. Use this "
                                 "certificate? Type 'yes' to use it: ",
                                 true, answer, sizeof answer);
    if (rc == PT_OK && strcmp(answer, "yes") != 0)
        rc = pt_fail(PT_ERR_CANCELLED, "%s: certificate not confirmed; nothing was written", what);
    return rc;
}

pt_err ctl_cert_arg_load(const ctl_cert_arg *a, int timeout_ms, X509 **out)
{
    *out = NULL;
    X509 *x = NULL;
    char what[300];
    pt_err rc;
    if (a->path != NULL) {
        snprintf(what, sizeof what, "%s", a->path);
        rc = pt_cert_load_file(a->path, &x);
    } else {
        snprintf(what, sizeof what, "tls://%s:%s", a->tls_host, a->tls_port);
        rc = ctl_tls_fetch_cert(a->tls_host, a->tls_port, timeout_ms, &x);
    }
    if (rc == PT_OK)
        rc = fingerprint_check(a, x, what);
    if (rc != PT_OK) {
        X509_free(x);
        return rc;
    }
    *out = x;
    return PT_OK;
}
