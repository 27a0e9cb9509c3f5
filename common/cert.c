#include "cert.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "fileio.h"
#include "hex.h"

time_t pt_time_add_years(time_t t, int years)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_year += years;
    return timegm(&tm);
}

void pt_time_iso8601(time_t t, char out[21])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 21, "invalid time");
}

/* Exactly n decimal digits at text[pos..]: their value, or -1. */
static int digits_at(const char *text, size_t len, size_t pos, size_t n)
{
    int v = 0;
    if (pos + n > len)
        return -1;
    for (size_t i = pos; i < pos + n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        v = v * 10 + (text[i] - '0');
    }
    return v;
}

pt_err pt_time_parse_iso8601(const char *text, time_t *out)
{
    *out = 0;
    size_t n = strlen(text);
    int y = digits_at(text, n, 0, 4), mo = digits_at(text, n, 5, 2), d = digits_at(text, n, 8, 2);
    int h = 0, mi = 0, s = 0;
    if (n < 10 || y < 0 || mo < 0 || d < 0 || text[4] != '-' || text[7] != '-')
        goto bad;
    if (n > 10) {
        h = digits_at(text, n, 11, 2);
        mi = digits_at(text, n, 14, 2);
        if ((text[10] != 'T' && text[10] != ' ') || h < 0 || mi < 0 || n < 16 || text[13] != ':')
            goto bad;
        size_t pos = 16;
        if (pos < n && text[pos] == ':') {
            s = digits_at(text, n, pos + 1, 2);
            if (s < 0)
                goto bad;
            pos += 3;
        }
        if (pos < n && text[pos] == 'Z')
            pos++;
        if (pos != n)
            goto bad;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970)
        goto bad;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    *out = timegm(&tm);
    /* Reject dates that do not exist (timegm normalises 2026-02-31 to March). */
    struct tm back;
    if (gmtime_r(out, &back) == NULL || back.tm_mday != d || back.tm_mon != mo - 1)
        goto bad;
    return PT_OK;
bad:
    return pt_fail(PT_ERR_USAGE,
                   "'%s' is not an ISO 8601 UTC time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)", text);
}

/* What was written to the memory BIO b, as a new NUL-terminated string (NULL: out of memory). */
static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *text = n >= 0 ? OPENSSL_malloc((size_t)n + 1) : NULL;
    if (text != NULL) {
        memcpy(text, p, (size_t)n);
        text[n] = '\0';
    }
    return text;
}

static char *name_text(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *text = NULL;
    if (b == NULL)
        return NULL;
    /* RFC 2253 escaping, but in certificate order (first RDN first), as typed to --subject. */
    unsigned long flags = (XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV) & ~ASN1_STRFLGS_ESC_MSB;
    if (X509_NAME_print_ex(b, name, 0, flags) >= 0)
        text = bio_text(b);
    BIO_free(b);
    return text;
}

static pt_err asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return pt_fail_openssl(PT_ERR_FORMAT, "certificate has an invalid validity time");
    *out = timegm(&tm);
    return PT_OK;
}

void pt_pkey_describe(const EVP_PKEY *pkey, char *out, size_t outlen)
{
    int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_RSA) {
        snprintf(out, outlen, "RSA %d", EVP_PKEY_get_bits(pkey));
    } else if (id == EVP_PKEY_EC) {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) == 1) {
            int nid = OBJ_sn2nid(group);
            const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
            snprintf(out, outlen, "EC %s", nist ? nist : group);
        } else {
            snprintf(out, outlen, "EC");
        }
    } else {
        snprintf(out, outlen, "%s", OBJ_nid2sn(id));
    }
}

void pt_cert_info_free(pt_cert_info *info)
{
    OPENSSL_free(info->subject);
    OPENSSL_free(info->issuer);
    OPENSSL_free(info->serial);
    memset(info, 0, sizeof *info);
}

pt_err pt_cert_info_get(X509 *x, pt_cert_info *info)
{
    memset(info, 0, sizeof *info);
    pt_err rc = PT_OK;
    info->subject = name_text(X509_get_subject_name(x));
    info->issuer = name_text(X509_get_issuer_name(x));
    if (info->subject == NULL || info->issuer == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (bn == NULL) {
        rc = pt_fail_openssl(PT_ERR_FORMAT, "certificate has an invalid serial number");
        goto fail;
    }
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    if (hex == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    info->serial = hex;

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot compute certificate fingerprint");
        goto fail;
    }
    pt_hex_lower(md, mdlen, info->sha256);

    rc = asn1_time_to_time_t(X509_get0_notBefore(x), &info->not_before_t);
    if (rc == PT_OK)
        rc = asn1_time_to_time_t(X509_get0_notAfter(x), &info->not_after_t);
    if (rc != PT_OK)
        goto fail;
    pt_time_iso8601(info->not_before_t, info->not_before);
    pt_time_iso8601(info->not_after_t, info->not_after);

    EVP_PKEY *pkey = X509_get0_pubkey(x);
    if (pkey != NULL)
        pt_pkey_describe(pkey, info->key, sizeof info->key);
    else
        snprintf(info->key, sizeof info->key, "unknown");
    return PT_OK;
fail:
    pt_cert_info_free(info);
    return rc;
}

pt_err pt_cert_parse(const uint8_t *data, size_t len, X509 **out)
{
    *out = NULL;
    if (len > PT_CERT_FILE_MAX)
        return pt_fail(PT_ERR_LIMIT, "certificate of %zu bytes is too large", len);
    static const char pem_marker[] = "-----BEGIN CERTIFICATE-----";
    bool is_pem = len >= sizeof pem_marker - 1 &&
                  memmem(data, len, pem_marker, sizeof pem_marker - 1) != NULL;
    X509 *x = NULL;
    if (is_pem) {
        BIO *b = BIO_new_mem_buf(data, (int)len);
        if (b == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    } else {
        pt_err rc = pt_cert_parse_der(data, len, out);
        return rc == PT_ERR_FORMAT ? pt_err_context(rc, "not a PEM or DER X.509 certificate") : rc;
    }
    if (x == NULL)
        return pt_fail_openssl(PT_ERR_FORMAT, "not a PEM or DER X.509 certificate");
    *out = x;
    return PT_OK;
}

pt_err pt_cert_parse_der(const uint8_t *der, size_t len, X509 **out)
{
    *out = NULL;
    if (len > PT_CERT_FILE_MAX)
        return pt_fail(PT_ERR_LIMIT, "certificate of %zu bytes is too large", len);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL)
        return pt_fail_openssl(PT_ERR_FORMAT, "the certificate does not parse as DER");
    if (p != der + len) {
        X509_free(x);
        return pt_fail(PT_ERR_FORMAT, "trailing bytes after the DER certificate");
    }
    *out = x;
    return PT_OK;
}

pt_err pt_cert_load_file(const char *path, X509 **out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    *out = NULL;
    pt_err rc = pt_file_read(path, PT_CERT_FILE_MAX, &data, &len);
    if (rc != PT_OK)
        return rc;
    rc = pt_cert_parse(data, len, out);
    OPENSSL_free(data);
    if (rc != PT_OK)
        return pt_err_context(rc, "%s", path);
    return PT_OK;
}

pt_err pt_cert_to_der(X509 *x, uint8_t **der, size_t *len)
{
    *der = NULL;
    *len = 0;
    unsigned char *buf = NULL;
    int n = i2d_X509(x, &buf);
    if (n <= 0)
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode certificate");
    *der = buf;
    *len = (size_t)n;
    return PT_OK;
}

pt_err pt_cert_to_pem(X509 *x, char **pem)
{
    *pem = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc = PT_OK;
    if (PEM_write_bio_X509(b, x) != 1)
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode certificate as PEM");
    else if ((*pem = bio_text(b)) == NULL)
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
    BIO_free(b);
    return rc;
}

pt_err pt_cert_write_pem_file(const char *path, X509 *x)
{
    char *pem = NULL;
    pt_err rc = pt_cert_to_pem(x, &pem);
    if (rc != PT_OK || pem == NULL)
        return rc != PT_OK ? rc : pt_fail(PT_ERR_INTERNAL, "no PEM text");
    rc = pt_file_write_atomic(path, pem, strlen(pem), 0644);
    OPENSSL_free(pem);
    return rc;
}

/* Append one "TYPE=value" component (unescaped in place) to name. */
static pt_err name_add_component(X509_NAME *name, char *component, const char *whole)
{
    char *eq = strchr(component, '=');
    if (eq == NULL || eq == component)
        return pt_fail(PT_ERR_USAGE, "'%s': '%s' is not TYPE=value", whole, component);
    /* Blanks around '=' are allowed ("O = Example"). */
    char *type_end = eq;
    while (type_end > component && type_end[-1] == ' ')
        type_end--;
    *type_end = '\0';
    const char *type = component;
    const char *value = eq + 1;
    while (*value == ' ')
        value++;
    if (OBJ_txt2nid(type) == NID_undef)
        return pt_fail(PT_ERR_USAGE, "'%s': unknown attribute type '%s'", whole, type);
    if (value[0] == '\0')
        return pt_fail(PT_ERR_USAGE, "'%s': attribute '%s' has an empty value", whole, type);
    if (X509_NAME_add_entry_by_txt(name, type, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                   0) != 1)
        return pt_fail_openssl(PT_ERR_USAGE, "'%s': invalid value for %s", whole, type);
    return PT_OK;
}

pt_err pt_name_parse(const char *text, X509_NAME **out)
{
    *out = NULL;
    size_t n = strlen(text);
    if (n == 0 || n > 4096)
        return pt_fail(PT_ERR_USAGE, "a distinguished name must have 1 to 4096 characters");
    bool slash_form = text[0] == '/';
    char sep = slash_form ? '/' : ',';
    char *buf = OPENSSL_malloc(n + 1);
    X509_NAME *name = X509_NAME_new();
    pt_err rc = PT_OK;
    if (buf == NULL || name == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t used = 0;
    for (size_t i = slash_form ? 1 : 0; i <= n && rc == PT_OK; i++) {
        char c = text[i];
        if (c == '\\' && i + 1 < n) {
            buf[used++] = text[++i];
            continue;
        }
        if (c == sep || c == '\0') {
            buf[used] = '\0';
            /* Trim the blanks around a component (", " is common). */
            char *start = buf;
            while (*start == ' ')
                start++;
            char *end = start + strlen(start);
            while (end > start && end[-1] == ' ')
                *--end = '\0';
            if (*start == '\0')
                rc = pt_fail(PT_ERR_USAGE, "'%s': empty component", text);
            else
                rc = name_add_component(name, start, text);
            used = 0;
            continue;
        }
        buf[used++] = c;
    }
    if (rc == PT_OK) {
        *out = name;
        name = NULL;
    }
out:
    OPENSSL_clear_free(buf, n + 1);
    X509_NAME_free(name);
    return rc;
}

static pt_err random_serial(ASN1_INTEGER **out)
{
    uint8_t bytes[16];
    *out = NULL;
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return pt_fail_openssl(PT_ERR_OPENSSL, "no random bytes for a serial number");
    bytes[0] &= 0x7f; /* positive */
    bytes[0] |= 0x40; /* and a full 16 bytes long */
    BIGNUM *bn = BN_bin2bn(bytes, sizeof bytes, NULL);
    *out = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    return *out ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
}

static bool cert_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    bool ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

pt_err pt_cert_self_signed(EVP_PKEY *key, const X509_NAME *name, const pt_cert_profile *p,
                           X509 **out)
{
    *out = NULL;
    X509 *x = X509_new();
    ASN1_INTEGER *serial = NULL;
    pt_err rc = x ? random_serial(&serial) : pt_fail(PT_ERR_NOMEM, "out of memory");
    if (rc != PT_OK)
        goto out;
    char bc[64];
    if (p->ca && p->path_len >= 0)
        snprintf(bc, sizeof bc, "critical,CA:TRUE,pathlen:%d", p->path_len);
    else
        snprintf(bc, sizeof bc, "critical,CA:%s", p->ca ? "TRUE" : "FALSE");
    time_t now = time(NULL);
    if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_serialNumber(x, serial) != 1 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)p->days, 0, &now) == NULL ||
        X509_set_pubkey(x, key) != 1 || !cert_add_ext(x, NID_basic_constraints, bc) ||
        !cert_add_ext(x, NID_key_usage, p->key_usage) ||
        !cert_add_ext(x, NID_subject_key_identifier, "hash")) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot build the certificate");
        goto out;
    }
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        rc = pt_fail_openssl(PT_ERR_CKR, "the key could not sign the certificate");
        goto out;
    }
    if (X509_verify(x, X509_get0_pubkey(x)) != 1) {
        rc = pt_fail_openssl(PT_ERR_VERIFY, "the signature on the new certificate is invalid");
        goto out;
    }
    /*
     * Hand back a certificate decoded from its DER: x still refers to key,
     * which may be a token's key object that must not outlive the token.
     */
    uint8_t *der = NULL;
    size_t der_len = 0;
    rc = pt_cert_to_der(x, &der, &der_len);
    if (rc == PT_OK)
        rc = pt_cert_parse(der, der_len, out);
    OPENSSL_free(der);
out:
    X509_free(x);
    ASN1_INTEGER_free(serial);
    return rc;
}
