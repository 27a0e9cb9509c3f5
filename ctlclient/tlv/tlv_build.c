#include "tlv_build.h"

#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "bytes.h"
#include "cert.h"
#include "tlv_encode.h"
#include "tlv_file.h"
#include "tlv_verify.h"

/* The values a record (or the header's SIGNER_INFO) takes from a certificate. */
typedef struct tlv_cert_fields {
    uint8_t *der;
    size_t der_len;
    char *subject, *issuer;
    uint8_t *serial;
    size_t serial_len;
    uint8_t *public_key;
    size_t public_key_len;
    uint8_t *signature;
    size_t signature_len;
} tlv_cert_fields;

static void cert_fields_free(tlv_cert_fields *c)
{
    OPENSSL_free(c->der);
    OPENSSL_free(c->subject);
    OPENSSL_free(c->issuer);
    OPENSSL_free(c->serial);
    OPENSSL_free(c->public_key);
    OPENSSL_free(c->signature);
    memset(c, 0, sizeof *c);
}

/* full: also PUBLIC_KEY and the certificate's own signature (§7.4.3, §7.4.4). */
static pt_err cert_fields_get(X509 *cert, bool full, tlv_cert_fields *c)
{
    memset(c, 0, sizeof *c);
    pt_err rc = pt_cert_to_der(cert, &c->der, &c->der_len);
    if (rc != PT_OK)
        return rc;
    /*
     * The fields come from the X509 object itself: its names hold their RDNs
     * in encoded order and i2d gives back the encoding it was read from, so
     * they match the DER that goes in the file without decoding it again
     * (d2i_X509 costs ~100 us in OpenSSL 3.0).
     */
    X509 *x = cert;
    rc = tlv_name_render(X509_get_subject_name(x), &c->subject);
    if (rc == PT_OK)
        rc = tlv_name_render(X509_get_issuer_name(x), &c->issuer);
    if (rc == PT_OK)
        rc = tlv_serial_encode(X509_get0_serialNumber(x), &c->serial, &c->serial_len);
    if (rc == PT_OK && full)
        rc = tlv_cert_public_key_encode(x, &c->public_key, &c->public_key_len);
    if (rc == PT_OK && full)
        rc = tlv_cert_signature(x, &c->signature, &c->signature_len);
    if (rc != PT_OK)
        cert_fields_free(c);
    return rc;
}

static void put_head(pt_writer *w, uint8_t tag, uint16_t len)
{
    pt_writer_u8(w, tag);
    pt_writer_u16(w, len);
}

static pt_err put_tlv(pt_writer *w, uint8_t tag, const void *v, size_t n, const char *what)
{
    if (n > TLV_MAX_ELEMENT)
        return pt_fail(PT_ERR_LIMIT, "%s of %zu bytes is over the %u bytes an element can hold",
                       what, n, TLV_MAX_ELEMENT);
    put_head(w, tag, (uint16_t)n);
    pt_writer_bytes(w, v, n);
    return PT_OK;
}

/* A string element stores the text and one NUL (§2). */
static pt_err put_string(pt_writer *w, uint8_t tag, const char *s, const char *what)
{
    if (s == NULL)
        return pt_fail(PT_ERR_INTERNAL, "no text for %s", what);
    return put_tlv(w, tag, s, strlen(s) + 1, what);
}

static void put_u8(pt_writer *w, uint8_t tag, uint8_t v)
{
    put_head(w, tag, 1);
    pt_writer_u8(w, v);
}

/* "CTL" or "ITL" for messages, from the file name. */
static const char *file_kind(const tlv_build_params *p)
{
    return strncasecmp(p->filename, "ITL", 3) == 0 ? "ITL" : "CTL";
}

/* §5.4: the signer key decides k and the SIGNATURE_MODULUS code. */
static pt_err signer_check(const tlv_build_params *p, size_t *k, uint8_t *code)
{
    if (p->signer_cert == NULL)
        return pt_fail(PT_ERR_USAGE, "no signer certificate");
    EVP_PKEY *key = X509_get0_pubkey(p->signer_cert);
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return pt_fail(PT_ERR_UNSUPPORTED,
                       "the signer key is not RSA; CTL/ITL files are signed with RSA");
    int bits = EVP_PKEY_get_bits(key);
    int c = bits % 8 == 0 ? tlv_modulus_code((size_t)bits / 8) : -1;
    if (c < 0)
        return pt_fail(PT_ERR_UNSUPPORTED,
                       "a %d-bit RSA signer key has no SIGNATURE_MODULUS code; use 512, 1024, "
                       "2048 or 4096 bits",
                       bits);
    if (p->digest != TLV_DIGEST_SHA1 && p->digest != TLV_DIGEST_SHA512)
        return pt_fail(PT_ERR_UNSUPPORTED,
                       "digest code %u cannot be written; use 1 (SHA-1) or 3 (SHA-512)", p->digest);
    /* PKCS#1 v1.5 needs 19 + 64 + 11 bytes for SHA-512: more than a 64-byte modulus. */
    if (bits == 512 && p->digest == TLV_DIGEST_SHA512)
        return pt_fail(
            PT_ERR_UNSUPPORTED,
            "a 512-bit RSA key cannot make a SHA-512 signature; use SHA-1 or a larger key");
    *k = (size_t)bits / 8;
    *code = (uint8_t)c;
    return PT_OK;
}

static pt_err record_check(const tlv_build_record *r, size_t i)
{
    if (r->cert == NULL)
        return pt_fail(PT_ERR_USAGE, "record %zu has no certificate", i + 1);
    EVP_PKEY *key = X509_get0_pubkey(r->cert);
    int id = key != NULL ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE;
    if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC)
        return pt_fail(PT_ERR_UNSUPPORTED, "record %zu: the certificate key is %s, not RSA or EC",
                       i + 1, id != EVP_PKEY_NONE ? OBJ_nid2sn(id) : "unreadable");
    return PT_OK;
}

static pt_err records_check(const tlv_build_params *p)
{
    if (p->records == NULL || p->n_records == 0)
        return pt_fail(PT_ERR_USAGE, "no records: a file lists at least its signer");
    if (p->max_records != 0 && p->n_records > p->max_records)
        return pt_fail(PT_ERR_LIMIT, "Total number of %s Records has exceeded the Maximum (%zu)",
                       file_kind(p), p->max_records);
    bool signer_listed = false;
    for (size_t i = 0; i < p->n_records; i++) {
        pt_err rc = record_check(&p->records[i], i);
        if (rc != PT_OK)
            return rc;
        if (p->records[i].role == TLV_ROLE_SAST &&
            X509_cmp(p->records[i].cert, p->signer_cert) == 0)
            signer_listed = true;
    }
    if (!signer_listed)
        return pt_fail(PT_ERR_USAGE, "the signer certificate must also be listed as a SAST record");
    return PT_OK;
}

static pt_err params_check(const tlv_build_params *p, size_t *k, uint8_t *code)
{
    if (p->filename == NULL || p->filename[0] == '\0')
        return pt_fail(PT_ERR_USAGE, "no file name (CTLFile.tlv or ITLFile.tlv)");
    if (p->signer_version_minor > 1)
        return pt_fail(PT_ERR_USAGE, "signer version 1.%u cannot be written; use 1.0 or 1.1",
                       p->signer_version_minor);
    pt_err rc = signer_check(p, k, code);
    return rc == PT_OK ? records_check(p) : rc;
}

/* §5.2 items 4-7: the group and its three items, name, issuer, serial (current order). */
static pt_err signer_info_write(pt_writer *w, const tlv_cert_fields *s)
{
    size_t group = pt_writer_len(w);
    put_head(w, TLV_HDR_SIGNER_INFO, 0); /* patched below */
    pt_err rc = put_string(w, TLV_HDR_SIGNER_NAME, s->subject, "SIGNER_NAME");
    if (rc == PT_OK)
        rc = put_string(w, TLV_HDR_SIGNER_ISSUER, s->issuer, "SIGNER_ISSUER");
    if (rc == PT_OK)
        rc = put_tlv(w, TLV_HDR_SIGNER_SERIAL, s->serial, s->serial_len, "SIGNER_SERIAL");
    size_t info = pt_writer_len(w) - group - 3;
    if (rc == PT_OK && info > TLV_MAX_ELEMENT)
        rc = pt_fail(PT_ERR_LIMIT, "SIGNER_INFO of %zu bytes is over %u", info, TLV_MAX_ELEMENT);
    if (rc == PT_OK)
        pt_writer_patch_u16(w, group + 1, (uint16_t)info);
    return rc;
}

/* §5.2 items 1-16, SIGNATURE zero-filled; then HEADER_LENGTH patched with the final size. */
static pt_err header_write(pt_writer *w, const tlv_build_params *p, const tlv_cert_fields *s,
                           size_t k, uint8_t code)
{
    size_t at = 0;
    put_head(w, TLV_HDR_VERSION, 2);
    pt_writer_u8(w, 1);
    pt_writer_u8(w, 2);
    put_head(w, TLV_HDR_HEADER_LENGTH, 2);
    pt_writer_u16(w, 0); /* patched below */
    put_head(w, TLV_HDR_SIGNER_VERSION, 2);
    pt_writer_u8(w, 1);
    pt_writer_u8(w, p->signer_version_minor);
    pt_err rc = signer_info_write(w, s);
    if (rc != PT_OK)
        return rc;
    put_head(w, TLV_HDR_SIGNATURE_INFO, 15);
    put_u8(w, TLV_HDR_DIGEST_ALGORITHM, p->digest);
    put_head(w, TLV_HDR_SIGNATURE_ALGORITHM_INFO, 8);
    put_u8(w, TLV_HDR_SIGNATURE_ALGORITHM, 0);
    put_u8(w, TLV_HDR_SIGNATURE_MODULUS, code);
    put_head(w, TLV_HDR_SIGNATURE, (uint16_t)k);
    pt_writer_reserve(w, k, &at);
    rc = put_string(w, TLV_HDR_FILENAME, p->filename, "FILENAME");
    if (rc != PT_OK)
        return rc;
    put_head(w, TLV_HDR_TIMESTAMP, 4);
    pt_writer_u32(w, p->timestamp);
    /* §5.5: the SIGNATURE element is already counted, so this pads the final size. */
    while (pt_writer_len(w) % 4 != 0)
        pt_writer_u8(w, TLV_HDR_PADDING);
    size_t hl = pt_writer_len(w);
    if (hl > TLV_MAX_ELEMENT)
        return pt_fail(PT_ERR_LIMIT, "header of %zu bytes is over %u", hl, TLV_MAX_ELEMENT);
    pt_writer_patch_u16(w, 8, (uint16_t)hl);
    return PT_OK;
}

static pt_err record_elements_write(pt_writer *w, const tlv_build_record *r,
                                    const tlv_cert_fields *c, bool full)
{
    pt_writer_u8(w, TLV_REC_RECORD_LENGTH);
    pt_writer_u16(w, 2);
    pt_writer_u16(w, 0); /* patched by the caller */
    pt_err rc = put_string(w, TLV_REC_SUBJECT_NAME, c->subject, "SUBJECT_NAME");
    if (rc == PT_OK)
        rc = put_string(w, TLV_REC_ISSUER_NAME, c->issuer, "ISSUER_NAME");
    if (rc == PT_OK)
        rc = put_tlv(w, TLV_REC_SERIAL_NUMBER, c->serial, c->serial_len, "SERIAL_NUMBER");
    put_head(w, TLV_REC_ROLE, 2);
    pt_writer_u16(w, r->role);
    if (rc == PT_OK && full)
        rc = put_tlv(w, TLV_REC_PUBLIC_KEY, c->public_key, c->public_key_len, "PUBLIC_KEY");
    if (rc == PT_OK && full)
        rc = put_tlv(w, TLV_REC_SIGNATURE, c->signature, c->signature_len, "SIGNATURE");
    if (rc == PT_OK && full)
        rc = put_tlv(w, TLV_REC_CERTIFICATE, c->der, c->der_len, "CERTIFICATE");
    /* Optional elements last: the part every writer emits keeps its usual layout. */
    if (rc == PT_OK && r->dns_name != NULL)
        rc = put_string(w, TLV_REC_DNS_NAME, r->dns_name, "DNS_NAME");
    if (rc == PT_OK && r->has_ipv4)
        rc = put_tlv(w, TLV_REC_IP_ADDRESS, r->ipv4, 4, "IP_ADDRESS");
    return rc;
}

/* One record (§7.1), built apart so that its length is known, then appended to out. */
static pt_err record_write(pt_writer *out, const tlv_build_params *p, size_t i)
{
    const tlv_build_record *r = &p->records[i];
    bool full = !p->nonsecure || r->role == TLV_ROLE_SAST;
    tlv_cert_fields c;
    pt_err rc = cert_fields_get(r->cert, full, &c);
    if (rc != PT_OK)
        return pt_err_context(rc, "record %zu", i + 1);
    pt_writer w;
    pt_writer_init(&w, TLV_MAX_ELEMENT);
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = record_elements_write(&w, r, &c, full);
    if (rc == PT_OK) {
        rc = pt_writer_finish(&w, &buf, &len);
        if (rc == PT_ERR_LIMIT)
            rc = pt_fail(rc, "the record is over the %u bytes a record can hold", TLV_MAX_ELEMENT);
    }
    if (rc == PT_OK) {
        buf[3] = (uint8_t)(len >> 8);
        buf[4] = (uint8_t)len;
        pt_writer_bytes(out, buf, len);
    } else {
        rc = pt_err_context(rc, "record %zu (%s)", i + 1, c.subject);
    }
    pt_writer_free(&w);
    OPENSSL_free(buf);
    cert_fields_free(&c);
    return rc;
}

/* What the builder writes, the parser must accept with the signer found: checked every time. */
static pt_err output_check(const uint8_t *buf, size_t len)
{
    tlv_file *f = NULL;
    pt_err rc = tlv_file_parse(buf, len, &f);
    if (rc != PT_OK)
        return pt_err_context(PT_ERR_INTERNAL, "built file does not parse");
    if (tlv_file_signer_record(f) == NULL)
        rc = pt_fail(PT_ERR_INTERNAL, "built file has no signer record");
    tlv_file_free(f);
    return rc;
}

static pt_err size_check(const tlv_build_params *p, size_t len)
{
    if (p->max_bytes != 0 && len > p->max_bytes)
        return pt_fail(PT_ERR_LIMIT,
                       "%s file size (%zu bytes) has exceeded the Maximum (%zu bytes)",
                       file_kind(p), len, p->max_bytes);
    if (p->over_warn_bytes != NULL)
        *p->over_warn_bytes = p->warn_bytes != 0 && len > p->warn_bytes;
    return PT_OK;
}

pt_err tlv_build_unsigned(const tlv_build_params *p, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (p == NULL)
        return pt_fail(PT_ERR_USAGE, "no build parameters");
    if (p->over_warn_bytes != NULL)
        *p->over_warn_bytes = false;
    size_t k = 0;
    uint8_t code = 0;
    pt_err rc = params_check(p, &k, &code);
    if (rc != PT_OK)
        return rc;
    tlv_cert_fields signer;
    rc = cert_fields_get(p->signer_cert, false, &signer);
    if (rc != PT_OK)
        return pt_err_context(rc, "signer certificate");
    pt_writer w;
    /* Nothing larger can be read back (TLV_FILE_MAX_BYTES). */
    pt_writer_init(&w, TLV_FILE_MAX_BYTES);
    rc = header_write(&w, p, &signer, k, code);
    for (size_t i = 0; rc == PT_OK && i < p->n_records; i++)
        rc = record_write(&w, p, i);
    cert_fields_free(&signer);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (rc == PT_OK)
        rc = pt_writer_finish(&w, &buf, &n);
    pt_writer_free(&w);
    if (rc == PT_OK)
        rc = size_check(p, n);
    if (rc == PT_OK)
        rc = output_check(buf, n);
    if (rc != PT_OK) {
        OPENSSL_free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return PT_OK;
}

/* Run the callback and bring its answer to exactly k bytes. */
static pt_err signature_make(const tlv_file *f, tlv_sign_fn sign, void *ctx, uint8_t *sig)
{
    uint8_t *covered = NULL;
    size_t n = 0, k = f->signature_len, got = k;
    pt_err rc = tlv_file_covered_bytes(f, &covered, &n);
    if (rc != PT_OK)
        return rc;
    rc = sign(ctx, tlv_digest_md(f->digest), covered, n, sig, &got);
    OPENSSL_free(covered);
    if (rc != PT_OK)
        return pt_err_context(rc, "signing failed");
    if (got > k)
        return pt_fail(PT_ERR_INTERNAL, "the signer returned %zu bytes for a %zu-byte SIGNATURE",
                       got, k);
    /* §6.2: the signature is the integer left-padded to k bytes. */
    memmove(sig + (k - got), sig, got);
    memset(sig, 0, k - got);
    return PT_OK;
}

pt_err tlv_file_sign_in_place(uint8_t *buf, size_t len, tlv_sign_fn sign, void *ctx)
{
    if (buf == NULL || sign == NULL)
        return pt_fail(PT_ERR_USAGE, "no file or no signing function");
    tlv_file *f = NULL;
    pt_err rc = tlv_file_parse(buf, len, &f);
    if (rc != PT_OK)
        return pt_err_context(rc, "cannot sign");
    size_t k = f->signature_len;
    uint8_t *sig = OPENSSL_zalloc(k);
    if (sig == NULL) {
        tlv_file_free(f);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    rc = signature_make(f, sign, ctx, sig);
    if (rc == PT_OK) {
        /* Check on the parsed copy first, so buf changes only with a good signature. */
        tlv_verify_result res;
        memcpy(f->raw + f->signature_offset + 3, sig, k);
        rc = tlv_file_verify(f, NULL, &res);
        if (rc != PT_OK)
            rc = pt_err_context(rc, "the new signature was not stored (does the signing key match "
                                    "the signer certificate?)");
    }
    if (rc == PT_OK)
        memcpy(buf + f->signature_offset + 3, sig, k);
    OPENSSL_free(sig);
    tlv_file_free(f);
    return rc;
}

pt_err tlv_build_signed(const tlv_build_params *p, tlv_sign_fn sign, void *ctx, uint8_t **out,
                        size_t *len)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    pt_err rc = tlv_build_unsigned(p, &buf, &n);
    if (rc == PT_OK)
        rc = tlv_file_sign_in_place(buf, n, sign, ctx);
    if (rc != PT_OK) {
        OPENSSL_free(buf);
        *out = NULL;
        *len = 0;
        return rc;
    }
    *out = buf;
    *len = n;
    return PT_OK;
}

pt_err tlv_sign_with_pkey(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len,
                          uint8_t *sig, size_t *sig_len)
{
    EVP_PKEY *key = ctx;
    if (key == NULL || md == NULL)
        return pt_fail(PT_ERR_USAGE, "no key or no digest to sign with");
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return pt_fail(PT_ERR_UNSUPPORTED, "CTL/ITL files are signed with RSA keys only");
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t need = 0;
    pt_err rc = PT_OK;
    if (mctx == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (EVP_DigestSignInit(mctx, &pctx, md, NULL, key) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
        EVP_DigestSign(mctx, NULL, &need, data, len) != 1 ||
        (need <= *sig_len && EVP_DigestSign(mctx, sig, sig_len, data, len) != 1))
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot sign with the key");
    else if (need > *sig_len)
        rc =
            pt_fail(PT_ERR_INTERNAL, "a %zu-byte signature does not fit %zu bytes", need, *sig_len);
    EVP_MD_CTX_free(mctx);
    return rc;
}
