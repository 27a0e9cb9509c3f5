/*
 * tlv_file_parse: the reader of spec/tlv-files.md §5.3 and §7, driven by one
 * table of fields for the header and one for records.
 */
#include "der.h"
#include "tlv_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "bytes.h"

/* How a value is stored in the struct the table describes. */
typedef enum tlv_kind {
    TLV_K_GROUP,     /* header group: entered, not skipped (§4) */
    TLV_K_LENGTH,    /* VERSION/HEADER_LENGTH/RECORD_LENGTH: only at their fixed place */
    TLV_K_PAIR,      /* u8 major, u8 minor */
    TLV_K_U8,        /* exactly one byte */
    TLV_K_U8_LOOSE,  /* one byte when the length is 1; otherwise noted and skipped */
    TLV_K_U16,       /* exactly two bytes */
    TLV_K_U32,       /* exactly four bytes */
    TLV_K_STRING,    /* text with its NUL; stored without it */
    TLV_K_BYTES,     /* any bytes, stored as they are */
    TLV_K_SIGNATURE, /* the file signature: only its place is remembered */
} tlv_kind;

#define TLV_NO_FIELD ((size_t)-1)

typedef struct tlv_field {
    const char *name;
    size_t at;  /* the value; for a pair the major, for bytes the pointer */
    size_t at2; /* pair: the minor; bytes: the length */
    size_t has; /* a bool set when the element is present, or TLV_NO_FIELD */
    tlv_kind kind;
    uint8_t tag;
} tlv_field;

/* Rows read tag first; the struct is ordered for size. */
#define FIELD(t, n, k, a, a2, h)                                                                   \
    {                                                                                              \
        .tag = (t), .name = (n), .kind = (k), .at = (a), .at2 = (a2), .has = (h)                   \
    }

#define F_(s, m) offsetof(s, m)
#define HDR(m)   F_(tlv_file, m)
#define REC(m)   F_(tlv_record, m)
#define NONE     TLV_NO_FIELD

/* §5.1 */
static const tlv_field header_fields[] = {
    FIELD(TLV_HDR_VERSION, "VERSION", TLV_K_LENGTH, NONE, NONE, NONE),
    FIELD(TLV_HDR_HEADER_LENGTH, "HEADER_LENGTH", TLV_K_LENGTH, NONE, NONE, NONE),
    FIELD(TLV_HDR_SIGNER_INFO, "SIGNER_INFO", TLV_K_GROUP, NONE, NONE, NONE),
    FIELD(TLV_HDR_SIGNER_NAME, "SIGNER_NAME", TLV_K_STRING, HDR(signer_name), NONE, NONE),
    FIELD(TLV_HDR_SIGNER_SERIAL, "SIGNER_SERIAL", TLV_K_BYTES, HDR(signer_serial),
          HDR(signer_serial_len), NONE),
    FIELD(TLV_HDR_SIGNER_ISSUER, "SIGNER_ISSUER", TLV_K_STRING, HDR(signer_issuer), NONE, NONE),
    FIELD(TLV_HDR_SIGNATURE_INFO, "SIGNATURE_INFO", TLV_K_GROUP, NONE, NONE, NONE),
    FIELD(TLV_HDR_DIGEST_ALGORITHM, "DIGEST_ALGORITHM", TLV_K_U8, HDR(digest), NONE, NONE),
    FIELD(TLV_HDR_SIGNATURE_ALGORITHM_INFO, "SIGNATURE_ALGORITHM_INFO", TLV_K_GROUP, NONE, NONE,
          NONE),
    FIELD(TLV_HDR_SIGNATURE_ALGORITHM, "SIGNATURE_ALGORITHM", TLV_K_U8, HDR(signature_algorithm),
          NONE, NONE),
    FIELD(TLV_HDR_SIGNATURE_MODULUS, "SIGNATURE_MODULUS", TLV_K_U8, HDR(modulus_code), NONE, NONE),
    FIELD(TLV_HDR_SIGNATURE, "SIGNATURE", TLV_K_SIGNATURE, NONE, NONE, NONE),
    FIELD(TLV_HDR_FILENAME, "FILENAME", TLV_K_STRING, HDR(filename), NONE, NONE),
    FIELD(TLV_HDR_TIMESTAMP, "TIMESTAMP", TLV_K_U32, HDR(timestamp), NONE, HDR(has_timestamp)),
    FIELD(TLV_HDR_SIGNER_VERSION, "SIGNER_VERSION", TLV_K_PAIR, HDR(signer_version_major),
          HDR(signer_version_minor), HDR(has_signer_version)),
};

/* §7.2 */
static const tlv_field record_fields[] = {
    FIELD(TLV_REC_RECORD_LENGTH, "RECORD_LENGTH", TLV_K_LENGTH, NONE, NONE, NONE),
    FIELD(TLV_REC_DNS_NAME, "DNS_NAME", TLV_K_STRING, REC(dns_name), NONE, NONE),
    FIELD(TLV_REC_SUBJECT_NAME, "SUBJECT_NAME", TLV_K_STRING, REC(subject), NONE, NONE),
    FIELD(TLV_REC_ROLE, "ROLE", TLV_K_U16, REC(role), NONE, REC(has_role)),
    FIELD(TLV_REC_ISSUER_NAME, "ISSUER_NAME", TLV_K_STRING, REC(issuer), NONE, NONE),
    FIELD(TLV_REC_SERIAL_NUMBER, "SERIAL_NUMBER", TLV_K_BYTES, REC(serial), REC(serial_len), NONE),
    FIELD(TLV_REC_PUBLIC_KEY, "PUBLIC_KEY", TLV_K_BYTES, REC(public_key), REC(public_key_len),
          NONE),
    FIELD(TLV_REC_SIGNATURE, "SIGNATURE", TLV_K_BYTES, REC(cert_signature), REC(cert_signature_len),
          NONE),
    FIELD(TLV_REC_CERTIFICATE, "CERTIFICATE", TLV_K_BYTES, REC(certificate), REC(certificate_len),
          NONE),
    FIELD(TLV_REC_IP_ADDRESS, "IP_ADDRESS", TLV_K_BYTES, REC(ip_address), REC(ip_address_len),
          NONE),
    FIELD(TLV_REC_CERTIFICATE_HASH, "CERTIFICATE_HASH", TLV_K_BYTES, REC(cert_hash),
          REC(cert_hash_len), NONE),
    FIELD(TLV_REC_HASH_ALGORITHM, "HASH_ALGORITHM", TLV_K_U8_LOOSE, REC(hash_algorithm), NONE,
          REC(has_hash_algorithm)),
};

#define FIELDS(t) (t), sizeof(t) / sizeof((t)[0])

static const tlv_field *field_find(const tlv_field *table, size_t n, uint8_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].tag == tag)
            return &table[i];
    return NULL;
}

/* Tags are below 32 in both tables, so one word tracks which were seen. */
static uint32_t tag_bit(uint8_t tag)
{
    return (uint32_t)1 << (tag & 31);
}

static pt_err warnv(tlv_file *f, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static pt_err warn(tlv_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Note one lenient read; past TLV_FILE_MAX_WARNINGS only a final "more" line is kept. */
static pt_err warnv(tlv_file *f, const char *fmt, va_list ap)
{
    if (f->n_warnings > TLV_FILE_MAX_WARNINGS)
        return PT_OK;
    if (f->warnings == NULL) {
        f->warnings = OPENSSL_zalloc((TLV_FILE_MAX_WARNINGS + 1) * sizeof *f->warnings);
        if (f->warnings == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    char line[256];
    if (f->n_warnings == TLV_FILE_MAX_WARNINGS)
        snprintf(line, sizeof line, "more than %d warnings; the rest are not shown",
                 TLV_FILE_MAX_WARNINGS);
    else /* ap is started by warn(); clang 14's analyzer loses that when it inlines warnv */
        vsnprintf(line, sizeof line, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    f->warnings[f->n_warnings] = OPENSSL_strdup(line);
    if (f->warnings[f->n_warnings] == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    f->n_warnings++;
    return PT_OK;
}

static pt_err warn(tlv_file *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pt_err rc = warnv(f, fmt, ap);
    va_end(ap);
    return rc;
}

/* A copy that is never NULL, even for zero bytes, so "present but empty" stays visible. */
static uint8_t *bytes_dup(const uint8_t *p, size_t n)
{
    uint8_t *c = OPENSSL_malloc(n + 1);
    if (c != NULL) {
        if (n > 0)
            memcpy(c, p, n);
        c[n] = 0;
    }
    return c;
}

static pt_err store_string(tlv_file *f, const tlv_field *d, void *base, const uint8_t *v,
                           uint16_t len, size_t off)
{
    size_t n = len;
    bool terminated = n > 0 && v[n - 1] == 0;
    if (terminated)
        n--;
    /* A NUL inside would make the C string say less than the file does. */
    if (memchr(v, 0, n) != NULL)
        return pt_fail(PT_ERR_FORMAT, "offset %zu: %s has a NUL byte inside its text", off,
                       d->name);
    /* TLV-U13: an empty DNS_NAME may be stored with no bytes at all. */
    if (!terminated && len > 0) {
        pt_err rc = warn(f, "offset %zu: %s is not NUL-terminated", off, d->name);
        if (rc != PT_OK)
            return rc;
    }
    char *s = (char *)bytes_dup(v, n);
    if (s == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    *(char **)((char *)base + d->at) = s;
    return PT_OK;
}

static pt_err store_bytes(const tlv_field *d, void *base, const uint8_t *v, uint16_t len)
{
    uint8_t *c = bytes_dup(v, len);
    if (c == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    *(uint8_t **)((char *)base + d->at) = c;
    *(size_t *)((char *)base + d->at2) = len;
    return PT_OK;
}

static size_t kind_size(tlv_kind k)
{
    switch (k) {
    case TLV_K_U8:
    case TLV_K_U8_LOOSE:
        return 1;
    case TLV_K_PAIR:
    case TLV_K_U16:
        return 2;
    case TLV_K_U32:
        return 4;
    default:
        return 0;
    }
}

static pt_err store_number(tlv_file *f, const tlv_field *d, void *base, const uint8_t *v,
                           uint16_t len, size_t off)
{
    size_t want = kind_size(d->kind);
    if (len != want && d->kind == TLV_K_U8_LOOSE)
        return warn(f, "offset %zu: %s of %u bytes not understood; skipped", off, d->name, len);
    if (len != want)
        return pt_fail(PT_ERR_FORMAT, "offset %zu: %s has length %u, expected %zu", off, d->name,
                       len, want);
    char *at = (char *)base + d->at;
    switch (d->kind) {
    case TLV_K_PAIR:
        *(uint8_t *)at = v[0];
        *(uint8_t *)((char *)base + d->at2) = v[1];
        break;
    case TLV_K_U16:
        *(uint16_t *)at = (uint16_t)(v[0] << 8 | v[1]);
        break;
    case TLV_K_U32:
        *(uint32_t *)at = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
        break;
    default:
        *(uint8_t *)at = v[0];
        break;
    }
    if (d->has != TLV_NO_FIELD)
        *(bool *)((char *)base + d->has) = true;
    return PT_OK;
}

/* Store one element's value as the table says. */
static pt_err field_store(tlv_file *f, const tlv_field *d, void *base, const uint8_t *v,
                          uint16_t len, size_t off)
{
    switch (d->kind) {
    case TLV_K_STRING:
        return store_string(f, d, base, v, len, off);
    case TLV_K_BYTES:
        return store_bytes(d, base, v, len);
    case TLV_K_SIGNATURE:
        if (len == 0)
            return pt_fail(PT_ERR_FORMAT, "offset %zu: SIGNATURE is empty", off);
        f->signature_offset = off;
        f->signature_len = len;
        return PT_OK;
    case TLV_K_GROUP:
    case TLV_K_LENGTH:
        return pt_fail(PT_ERR_INTERNAL, "offset %zu: %s stored as a value", off, d->name);
    default:
        return store_number(f, d, base, v, len, off);
    }
}

/* Elements 1 and 2 at their fixed offsets (§5.3 steps 1-2), and HEADER_LENGTH's checks. */
static pt_err header_start_parse(tlv_file *f, pt_reader *r)
{
    uint8_t tag = 0, major = 0, minor = 0;
    uint16_t len = 0, hl = 0;
    if (pt_reader_remaining(r) < 10)
        return pt_fail(PT_ERR_FORMAT,
                       "offset 0: file is %zu bytes, too short for a header (at least 10)",
                       pt_reader_remaining(r));
    pt_reader_u8(r, &tag);
    pt_reader_u16(r, &len);
    if (tag != TLV_HDR_VERSION)
        return pt_fail(PT_ERR_FORMAT,
                       "offset 0: first tag is %u, not VERSION (1): not a CTL/ITL file", tag);
    if (len != 2)
        return pt_fail(PT_ERR_FORMAT, "offset 0: VERSION has length %u, expected 2", len);
    pt_reader_u8(r, &major);
    pt_reader_u8(r, &minor);
    pt_reader_u8(r, &tag);
    pt_reader_u16(r, &len);
    if (tag != TLV_HDR_HEADER_LENGTH)
        return pt_fail(PT_ERR_FORMAT, "offset 5: second tag is %u, not HEADER_LENGTH (2)", tag);
    if (len != 2)
        return pt_fail(PT_ERR_FORMAT, "offset 5: HEADER_LENGTH has length %u, expected 2", len);
    pt_reader_u16(r, &hl);
    if (hl < 10)
        return pt_fail(PT_ERR_FORMAT, "offset 8: HEADER_LENGTH %u is shorter than its own 10 bytes",
                       hl);
    /* Strict (§9 allows leniency for foreign files): every known writer pads to 4. */
    if (hl % 4 != 0)
        return pt_fail(PT_ERR_FORMAT, "offset 8: HEADER_LENGTH %u is not a multiple of 4", hl);
    if (hl > f->raw_len)
        return pt_fail(PT_ERR_FORMAT,
                       "offset 8: HEADER_LENGTH %u crosses end of file (file is %zu bytes)", hl,
                       f->raw_len);
    f->version_major = major;
    f->version_minor = minor;
    f->header_length = hl;
    if (major != 1 || minor != 2)
        return warn(f, "offset 0: VERSION is %u.%u, CTL/ITL files are 1.2", major, minor);
    return PT_OK;
}

/* A group's declared length is not relied on (§4), but it may not reach past the header. */
static pt_err header_group_enter(tlv_file *f, const tlv_field *d, uint16_t len, size_t off,
                                 const pt_reader *hdr)
{
    if (len > pt_reader_remaining(hdr))
        return pt_fail(PT_ERR_FORMAT, "offset %zu: %s group of %u bytes crosses HEADER_LENGTH (%u)",
                       off, d->name, len, f->header_length);
    if (d->tag == TLV_HDR_SIGNATURE_INFO && len != 15)
        return warn(f, "offset %zu: SIGNATURE_INFO group length is %u, writers use 15", off, len);
    if (d->tag == TLV_HDR_SIGNATURE_ALGORITHM_INFO && len != 8)
        return warn(f, "offset %zu: SIGNATURE_ALGORITHM_INFO group length is %u, writers use 8",
                    off, len);
    return PT_OK;
}

/* One header element at the reader's position (§5.3 step 3). */
static pt_err header_element_parse(tlv_file *f, pt_reader *hdr, uint32_t *seen)
{
    size_t off = pt_reader_offset(hdr);
    uint8_t tag = 0;
    uint16_t len = 0;
    pt_reader_u8(hdr, &tag);
    if (tag == TLV_HDR_PADDING)
        return PT_OK;
    const tlv_field *d = field_find(FIELDS(header_fields), tag);
    if (d == NULL)
        return pt_fail(PT_ERR_FORMAT, "offset %zu: unknown header tag %u", off, tag);
    if (!pt_reader_u16(hdr, &len))
        return pt_fail(PT_ERR_FORMAT, "offset %zu: %s (tag %u) crosses HEADER_LENGTH (%u)", off,
                       d->name, tag, f->header_length);
    if (*seen & tag_bit(tag))
        return pt_fail(PT_ERR_FORMAT, "offset %zu: %s appears twice in the header", off, d->name);
    *seen |= tag_bit(tag);
    if (d->kind == TLV_K_GROUP)
        return header_group_enter(f, d, len, off, hdr);
    const uint8_t *v = NULL;
    if (!pt_reader_bytes(hdr, len, &v))
        return pt_fail(PT_ERR_FORMAT,
                       "offset %zu: %s (tag %u) of %u bytes crosses HEADER_LENGTH (%u)", off,
                       d->name, tag, len, f->header_length);
    return field_store(f, d, f, v, len, off);
}

static pt_err digest_check(const tlv_file *f)
{
    switch (f->digest) {
    case TLV_DIGEST_SHA1:
    case TLV_DIGEST_SHA512:
        return PT_OK;
    case TLV_DIGEST_SHA256:
        return pt_fail(PT_ERR_FORMAT,
                       "digest code 2 (SHA-256) is not accepted by existing readers (TLV-U5); "
                       "files use 1 (SHA-1) or 3 (SHA-512)");
    case 4:
        return pt_fail(PT_ERR_FORMAT,
                       "digest code 4 is an early writer's withdrawn code for SHA-512; "
                       "SHA-512 is 3, and readers refuse 4");
    default:
        return pt_fail(PT_ERR_FORMAT, "unknown digest code %u (1 = SHA-1, 3 = SHA-512)", f->digest);
    }
}

/* §5.3 step 5, plus notes on values only warned about. */
static pt_err header_finish(tlv_file *f, uint32_t seen)
{
    static const struct {
        uint8_t tag;
        const char *name;
    } required[] = {{TLV_HDR_SIGNER_SERIAL, "SIGNER_SERIAL"},
                    {TLV_HDR_DIGEST_ALGORITHM, "DIGEST_ALGORITHM"},
                    {TLV_HDR_SIGNATURE, "SIGNATURE"}};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!(seen & tag_bit(required[i].tag)))
            return pt_fail(PT_ERR_FORMAT, "header (%u bytes) has no %s element", f->header_length,
                           required[i].name);
    }
    if (f->signer_serial_len == 0)
        return pt_fail(PT_ERR_FORMAT, "SIGNER_SERIAL is empty");
    pt_err rc = digest_check(f);
    if (rc == PT_OK && (seen & tag_bit(TLV_HDR_SIGNATURE_MODULUS)) &&
        tlv_modulus_bytes(f->modulus_code) != f->signature_len)
        rc = warn(f, "SIGNATURE_MODULUS code %u does not match the %zu-byte signature",
                  f->modulus_code, f->signature_len);
    if (rc == PT_OK && f->signature_algorithm != 0)
        rc = warn(f, "SIGNATURE_ALGORITHM is %u; only 0 (RSA PKCS#1 v1.5) is known",
                  f->signature_algorithm);
    return rc;
}

static pt_err header_parse(tlv_file *f, pt_reader *file)
{
    pt_err rc = header_start_parse(f, file);
    if (rc != PT_OK)
        return rc;
    pt_reader hdr;
    pt_reader_sub(file, f->header_length - 10u, &hdr);
    uint32_t seen = tag_bit(TLV_HDR_VERSION) | tag_bit(TLV_HDR_HEADER_LENGTH);
    while (rc == PT_OK && pt_reader_remaining(&hdr) > 0)
        rc = header_element_parse(f, &hdr, &seen);
    return rc == PT_OK ? header_finish(f, seen) : rc;
}

static pt_err record_unknown_tag(tlv_file *f, tlv_record *rec, size_t index, uint8_t tag,
                                 uint16_t len, size_t off)
{
    if (rec->n_unknown < sizeof rec->unknown_tags)
        rec->unknown_tags[rec->n_unknown++] = tag;
    return warn(f, "offset %zu: record %zu: unknown tag %u (%u bytes) skipped", off, index + 1, tag,
                len);
}

/* One element inside a record; rec_end is where the record ends, for messages. */
static pt_err record_element_parse(tlv_file *f, tlv_record *rec, size_t index, pt_reader *body,
                                   uint32_t *seen)
{
    size_t off = pt_reader_offset(body);
    size_t rec_end = rec->offset + rec->length;
    uint8_t tag = 0;
    uint16_t len = 0;
    const uint8_t *v = NULL;
    if (pt_reader_remaining(body) < 3)
        return pt_fail(
            PT_ERR_FORMAT,
            "offset %zu: record %zu: element cut short by the record's end at offset %zu", off,
            index + 1, rec_end);
    pt_reader_u8(body, &tag);
    pt_reader_u16(body, &len);
    const tlv_field *d = field_find(FIELDS(record_fields), tag);
    if (!pt_reader_bytes(body, len, &v))
        return pt_fail(PT_ERR_FORMAT,
                       "offset %zu: record %zu: %s (tag %u) of %u bytes crosses the record's end "
                       "at offset %zu",
                       off, index + 1, d != NULL ? d->name : "element", tag, len, rec_end);
    if (d == NULL)
        return record_unknown_tag(f, rec, index, tag, len, off);
    if (*seen & tag_bit(tag))
        return pt_fail(PT_ERR_FORMAT, "offset %zu: record %zu has a second %s", off, index + 1,
                       d->name);
    *seen |= tag_bit(tag);
    return field_store(f, d, rec, v, len, off);
}

/*
 * §9: a CERTIFICATE must parse and hold an RSA or EC key. The check is
 * structural (pt_der_cert_check): decoding every certificate with d2i_X509
 * costs ~100 µs each in OpenSSL 3.0, and the codec parses a file several
 * times while building and signing it. Whoever uses a certificate (verify,
 * show) decodes it then.
 */
static pt_err record_certificate_check(const tlv_record *rec, size_t index)
{
    if (rec->certificate == NULL)
        return PT_OK;
    pt_der_key_type key = PT_DER_KEY_OTHER;
    if (pt_der_cert_check(rec->certificate, rec->certificate_len, &key) != PT_OK)
        return pt_err_context(
            PT_ERR_FORMAT, "offset %zu: record %zu: CERTIFICATE is not one DER X.509 certificate",
            rec->offset, index + 1);
    if (key == PT_DER_KEY_OTHER)
        return pt_fail(PT_ERR_FORMAT,
                       "offset %zu: record %zu: certificate key is neither RSA nor EC", rec->offset,
                       index + 1);
    return PT_OK;
}

/* One record at the reader's position (§7.1). */
static pt_err record_parse(tlv_file *f, pt_reader *r, tlv_record *rec, size_t index)
{
    size_t off = pt_reader_offset(r), left = pt_reader_remaining(r);
    uint8_t tag = 0;
    uint16_t len = 0, rlen = 0;
    if (left < 5)
        return pt_fail(PT_ERR_FORMAT,
                       "offset %zu: %zu trailing bytes after the %s, too few for a record", off,
                       left, index == 0 ? "header" : "last record");
    pt_reader_u8(r, &tag);
    pt_reader_u16(r, &len);
    pt_reader_u16(r, &rlen);
    if (tag != TLV_REC_RECORD_LENGTH)
        return pt_fail(PT_ERR_FORMAT,
                       "offset %zu: record %zu starts with tag %u, not RECORD_LENGTH (1)", off,
                       index + 1, tag);
    if (len != 2)
        return pt_fail(PT_ERR_FORMAT,
                       "offset %zu: record %zu: RECORD_LENGTH has length %u, expected 2", off,
                       index + 1, len);
    if (rlen < 5)
        return pt_fail(PT_ERR_FORMAT, "offset %zu: record length %u is less than 5", off, rlen);
    if (rlen > left)
        return pt_fail(PT_ERR_FORMAT,
                       "offset %zu: record length %u crosses end of file (file is %zu bytes)", off,
                       rlen, f->raw_len);
    rec->offset = off;
    rec->length = rlen;
    pt_reader body;
    pt_reader_sub(r, rlen - 5u, &body);
    uint32_t seen = tag_bit(TLV_REC_RECORD_LENGTH);
    pt_err rc = PT_OK;
    while (rc == PT_OK && pt_reader_remaining(&body) > 0)
        rc = record_element_parse(f, rec, index, &body, &seen);
    return rc == PT_OK ? record_certificate_check(rec, index) : rc;
}

static pt_err records_grow(tlv_file *f, size_t *cap)
{
    if (f->n_records < *cap)
        return PT_OK;
    size_t ncap = *cap ? 2 * *cap : 8;
    if (ncap > TLV_PARSE_MAX_RECORDS)
        ncap = TLV_PARSE_MAX_RECORDS;
    tlv_record *n = OPENSSL_realloc(f->records, ncap * sizeof *n);
    if (n == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    f->records = n;
    *cap = ncap;
    return PT_OK;
}

static pt_err records_parse(tlv_file *f, pt_reader *r)
{
    size_t cap = 0;
    while (pt_reader_remaining(r) > 0) {
        if (f->n_records == TLV_PARSE_MAX_RECORDS)
            return pt_fail(PT_ERR_LIMIT, "offset %zu: more than %d records", pt_reader_offset(r),
                           TLV_PARSE_MAX_RECORDS);
        pt_err rc = records_grow(f, &cap);
        if (rc != PT_OK)
            return rc;
        /* Counted before parsing so that tlv_file_free releases a half-read record. */
        tlv_record *rec = &f->records[f->n_records++];
        memset(rec, 0, sizeof *rec);
        rc = record_parse(f, r, rec, f->n_records - 1);
        if (rc != PT_OK)
            return rc;
    }
    if (f->n_records == 0)
        return pt_fail(PT_ERR_FORMAT,
                       "offset %u: no records after the header; a file lists at least its signer",
                       f->header_length);
    return PT_OK;
}

/* Sizes phones cannot take are noted, not refused: the caller decides (design.md). */
static pt_err size_notes(tlv_file *f)
{
    const char *name = f->filename != NULL ? f->filename : "";
    pt_err rc = PT_OK;
    if (strncasecmp(name, "ITL", 3) == 0 && f->raw_len > TLV_ITL_WARN_BYTES)
        rc = warn(f,
                  "ITL is %zu bytes, over %d (64 KB): phones may fail to register; list fewer "
                  "certificates",
                  f->raw_len, TLV_ITL_WARN_BYTES);
    if (strncasecmp(name, "CTL", 3) != 0)
        return rc;
    if (rc == PT_OK && f->raw_len > TLV_CTL_MAX_BYTES)
        rc = warn(f, "CTL is %zu bytes, over the maximum of %d (75 KB) that phones accept",
                  f->raw_len, TLV_CTL_MAX_BYTES);
    if (rc == PT_OK && f->n_records > TLV_CTL_MAX_RECORDS)
        rc = warn(f, "CTL has %zu records, over the maximum of %d", f->n_records,
                  TLV_CTL_MAX_RECORDS);
    return rc;
}

pt_err tlv_file_parse(const uint8_t *data, size_t len, tlv_file **out)
{
    *out = NULL;
    if (data == NULL && len > 0)
        return pt_fail(PT_ERR_USAGE, "no data to parse");
    if (len > TLV_FILE_MAX_BYTES)
        return pt_fail(PT_ERR_LIMIT, "file is %zu bytes; CTL/ITL files over %d bytes are refused",
                       len, TLV_FILE_MAX_BYTES);
    tlv_file *f = OPENSSL_zalloc(sizeof *f);
    if (f == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    /* Exactly len bytes (not bytes_dup's len + 1), so that ASan sees any over-read. */
    f->raw = OPENSSL_malloc(len > 0 ? len : 1);
    if (f->raw != NULL && len > 0)
        memcpy(f->raw, data, len);
    if (f->raw == NULL) {
        tlv_file_free(f);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    f->raw_len = len;
    pt_reader r;
    pt_reader_init(&r, f->raw, f->raw_len);
    pt_err rc = header_parse(f, &r);
    if (rc == PT_OK)
        rc = records_parse(f, &r);
    if (rc == PT_OK)
        rc = size_notes(f);
    if (rc == PT_OK && !pt_reader_done(&r))
        rc = pt_fail(PT_ERR_INTERNAL, "parser stopped at offset %zu", pt_reader_offset(&r));
    if (rc != PT_OK) {
        tlv_file_free(f);
        return rc;
    }
    *out = f;
    return PT_OK;
}
