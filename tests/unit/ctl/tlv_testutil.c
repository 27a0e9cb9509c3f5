#include "tlv_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static struct {
    int bits;
    EVP_PKEY *key;
} rsa_cache[8];
static struct {
    const char *curve;
    EVP_PKEY *key;
} ec_cache[4];

static void die(const char *what)
{
    fprintf(stderr, "test helper: %s failed: %s\n", what, pt_err_message());
    abort();
}

EVP_PKEY *tt_rsa_key_new(int bits)
{
    EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);
    if (k == NULL)
        die("RSA key generation");
    return k;
}

EVP_PKEY *tt_rsa_key(int bits)
{
    size_t i;
    for (i = 0; i < sizeof rsa_cache / sizeof rsa_cache[0] && rsa_cache[i].key != NULL; i++)
        if (rsa_cache[i].bits == bits)
            return rsa_cache[i].key;
    if (i == sizeof rsa_cache / sizeof rsa_cache[0])
        die("RSA key cache");
    rsa_cache[i].bits = bits;
    rsa_cache[i].key = tt_rsa_key_new(bits);
    return rsa_cache[i].key;
}

EVP_PKEY *tt_ec_key(const char *curve)
{
    size_t i;
    for (i = 0; i < sizeof ec_cache / sizeof ec_cache[0] && ec_cache[i].key != NULL; i++)
        if (strcmp(ec_cache[i].curve, curve) == 0)
            return ec_cache[i].key;
    if (i == sizeof ec_cache / sizeof ec_cache[0])
        die("EC key cache");
    ec_cache[i].curve = curve;
    ec_cache[i].key = EVP_EC_gen(curve);
    if (ec_cache[i].key == NULL)
        die("EC key generation");
    return ec_cache[i].key;
}

void tt_cleanup(void)
{
    for (size_t i = 0; i < sizeof rsa_cache / sizeof rsa_cache[0]; i++) {
        EVP_PKEY_free(rsa_cache[i].key);
        rsa_cache[i].key = NULL;
    }
    for (size_t i = 0; i < sizeof ec_cache / sizeof ec_cache[0]; i++) {
        EVP_PKEY_free(ec_cache[i].key);
        ec_cache[i].key = NULL;
    }
}

X509_NAME *tt_name(const char *spec)
{
    X509_NAME *name = X509_NAME_new();
    char *copy = strdup(spec);
    char *save = NULL;
    if (name == NULL || copy == NULL)
        die("name");
    for (char *part = strtok_r(copy, "/", &save); part != NULL; part = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(part, '=');
        if (eq == NULL)
            die("name syntax");
        *eq = '\0';
        if (X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8, (const unsigned char *)eq + 1, -1,
                                       -1, 0) != 1)
            die("name entry");
    }
    free(copy);
    return name;
}

static void cert_validity_set(X509 *x)
{
    ASN1_TIME *t = ASN1_TIME_new();
    if (t == NULL || ASN1_TIME_set_string(t, "210114000000Z") != 1 ||
        X509_set1_notBefore(x, t) != 1 || ASN1_TIME_set_string(t, "410114000000Z") != 1 ||
        X509_set1_notAfter(x, t) != 1)
        die("validity");
    ASN1_TIME_free(t);
}

static void cert_ca_set(X509 *x)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (bc == NULL)
        die("basicConstraints");
    bc->ca = 1;
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == NULL || ASN1_INTEGER_set(bc->pathlen, 0) != 1 ||
        X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) != 1)
        die("basicConstraints");
    BASIC_CONSTRAINTS_free(bc);
}

X509 *tt_cert_ex(EVP_PKEY *key, const char *subject, const char *issuer, const uint8_t *serial,
                 size_t serial_len, EVP_PKEY *sign_key, const EVP_MD *md)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_bin2bn(serial, (int)serial_len, NULL);
    ASN1_INTEGER *ai = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    X509_NAME *sn = tt_name(subject);
    X509_NAME *in = tt_name(issuer != NULL ? issuer : subject);
    if (x == NULL || ai == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(x, ai) != 1 || X509_set_subject_name(x, sn) != 1 ||
        X509_set_issuer_name(x, in) != 1 || X509_set_pubkey(x, key) != 1)
        die("certificate");
    cert_validity_set(x);
    cert_ca_set(x);
    if (X509_sign(x, sign_key != NULL ? sign_key : key, md != NULL ? md : EVP_sha256()) <= 0)
        die("certificate signing");
    BN_free(bn);
    ASN1_INTEGER_free(ai);
    X509_NAME_free(sn);
    X509_NAME_free(in);
    return x;
}

X509 *tt_cert(EVP_PKEY *key, const char *subject, uint32_t serial)
{
    uint8_t s[4] = {(uint8_t)(serial >> 24), (uint8_t)(serial >> 16), (uint8_t)(serial >> 8),
                    (uint8_t)serial};
    return tt_cert_ex(key, subject, NULL, s, sizeof s, NULL, NULL);
}

uint8_t *tt_build(const tlv_build_params *p, EVP_PKEY *key, size_t *len)
{
    uint8_t *out = NULL;
    pt_err rc = tlv_build_signed(p, tlv_sign_with_pkey, key, &out, len);
    if (rc != PT_OK) {
        fprintf(stderr, "tlv_build_signed: %s: %s\n", pt_err_name(rc), pt_err_message());
        return NULL;
    }
    return out;
}

static size_t u16_at(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

static bool is_group(uint8_t tag)
{
    return tag == 3 || tag == 7 || tag == 9;
}

size_t tt_header_split(const uint8_t *file, size_t len, tt_elem *out)
{
    size_t hl = u16_at(file + 8), n = 0;
    if (hl > len)
        die("header split: HEADER_LENGTH");
    for (size_t off = 0; off < hl && n < TT_MAX_ELEMS;) {
        if (file[off] == 0x0D) {
            off++;
            continue;
        }
        size_t sz = is_group(file[off]) ? 3 : 3 + u16_at(file + off + 1);
        out[n++] = (tt_elem){file[off], file + off, sz};
        off += sz;
    }
    return n;
}

size_t tt_record_split(const uint8_t *rec, size_t rec_len, tt_elem *out)
{
    size_t n = 0;
    for (size_t off = 5; off + 3 <= rec_len && n < TT_MAX_ELEMS;) {
        size_t sz = 3 + u16_at(rec + off + 1);
        out[n++] = (tt_elem){rec[off], rec + off, sz};
        off += sz;
    }
    return n;
}

static uint8_t *elems_cat(const tt_elem *e, size_t n, size_t prefix, size_t pad_to,
                          const uint8_t *body, size_t body_len, size_t *out_len, size_t *mid)
{
    size_t total = prefix;
    for (size_t i = 0; i < n; i++)
        total += e[i].n;
    size_t padded = pad_to > 1 ? (total + pad_to - 1) / pad_to * pad_to : total;
    uint8_t *buf = malloc(padded + body_len + 1);
    if (buf == NULL)
        die("malloc");
    size_t off = prefix;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + off, e[i].p, e[i].n);
        off += e[i].n;
    }
    memset(buf + off, 0x0D, padded - off);
    if (body_len > 0)
        memcpy(buf + padded, body, body_len);
    *mid = padded;
    *out_len = padded + body_len;
    return buf;
}

uint8_t *tt_header_join(const tt_elem *e, size_t n, const uint8_t *body, size_t body_len,
                        size_t *out_len)
{
    size_t hl = 0;
    uint8_t *buf = elems_cat(e, n, 0, 4, body, body_len, out_len, &hl);
    buf[8] = (uint8_t)(hl >> 8);
    buf[9] = (uint8_t)hl;
    return buf;
}

uint8_t *tt_record_join(const tt_elem *e, size_t n, size_t *out_len)
{
    size_t r = 0;
    uint8_t *buf = elems_cat(e, n, 5, 1, NULL, 0, out_len, &r);
    const uint8_t head[5] = {0x01, 0x00, 0x02, (uint8_t)(r >> 8), (uint8_t)r};
    memcpy(buf, head, sizeof head);
    return buf;
}

int tt_elem_find(const tt_elem *e, size_t n, uint8_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].tag == tag)
            return (int)i;
    return -1;
}

size_t tt_length_fields(const uint8_t *file, size_t len, size_t *offs, size_t max)
{
    size_t n = 0, hl = u16_at(file + 8);
    tt_elem e[TT_MAX_ELEMS];
    size_t ne = tt_header_split(file, len, e);
    for (size_t i = 0; i < ne && n < max; i++)
        offs[n++] = (size_t)(e[i].p - file) + 1;
    for (size_t off = hl; off + 5 <= len && n + 2 <= max;) {
        size_t r = u16_at(file + off + 3);
        offs[n++] = off + 1;
        offs[n++] = off + 3; /* R itself */
        ne = tt_record_split(file + off, r, e);
        for (size_t i = 0; i < ne && n < max; i++)
            offs[n++] = (size_t)(e[i].p - file) + 1;
        off += r;
    }
    return n;
}

bool tt_write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static bool pubkey_write(const char *path, X509 *cert)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = PEM_write_PUBKEY(f, X509_get0_pubkey(cert)) == 1;
    return fclose(f) == 0 && ok;
}

bool tt_openssl_verify(const uint8_t *covered, size_t covered_len, const uint8_t *sig,
                       size_t sig_len, X509 *cert, const char *dgst, char *out, size_t outsz)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512], pub[600], sigp[600], cov[600];
    snprintf(dir, sizeof dir, "%s/tlvtest.XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    out[0] = '\0';
    if (mkdtemp(dir) == NULL)
        return false;
    snprintf(pub, sizeof pub, "%s/pub.pem", dir);
    snprintf(sigp, sizeof sigp, "%s/sig.bin", dir);
    snprintf(cov, sizeof cov, "%s/covered.bin", dir);
    bool ok = pubkey_write(pub, cert) && tt_write_file(sigp, sig, sig_len) &&
              tt_write_file(cov, covered, covered_len);
    if (ok) {
        char cmd[2200];
        snprintf(cmd, sizeof cmd, "openssl dgst -%s -verify '%s' -signature '%s' '%s' 2>&1", dgst,
                 pub, sigp, cov);
        /* The openssl command line is the independent check this test wants. */
        FILE *p = popen(cmd, "r"); // NOLINT(cert-env33-c)
        size_t got = p != NULL ? fread(out, 1, outsz - 1, p) : 0;
        out[got] = '\0';
        ok = p != NULL && pclose(p) == 0 && strstr(out, "Verified OK") != NULL;
    }
    unlink(pub);
    unlink(sigp);
    unlink(cov);
    rmdir(dir);
    return ok;
}
