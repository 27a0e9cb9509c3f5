#include "tlv_file.h"

#include <string.h>

#include <openssl/crypto.h>

#include "fileio.h"

static void record_clear(tlv_record *rec)
{
    OPENSSL_free(rec->subject);
    OPENSSL_free(rec->issuer);
    OPENSSL_free(rec->dns_name);
    OPENSSL_free(rec->serial);
    OPENSSL_free(rec->public_key);
    OPENSSL_free(rec->cert_signature);
    OPENSSL_free(rec->certificate);
    OPENSSL_free(rec->ip_address);
    OPENSSL_free(rec->cert_hash);
}

pt_err tlv_file_load(const char *path, tlv_file **out)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    pt_err rc = pt_file_read(path, TLV_FILE_MAX_BYTES, &data, &len);
    if (rc == PT_OK)
        rc = tlv_file_parse(data, len, out);
    OPENSSL_free(data);
    return rc == PT_OK ? rc : pt_err_context(rc, "%s", path);
}

void tlv_file_free(tlv_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_records; i++)
        record_clear(&f->records[i]);
    OPENSSL_free(f->records);
    for (size_t i = 0; i < f->n_warnings; i++)
        OPENSSL_free(f->warnings[i]);
    OPENSSL_free(f->warnings);
    OPENSSL_free(f->signer_name);
    OPENSSL_free(f->signer_issuer);
    OPENSSL_free(f->signer_serial);
    OPENSSL_free(f->filename);
    OPENSSL_free(f->raw);
    OPENSSL_free(f);
}

pt_err tlv_file_covered_bytes(const tlv_file *f, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (f == NULL || f->raw == NULL)
        return pt_fail(PT_ERR_USAGE, "no parsed file");
    size_t s = f->signature_offset, k = f->signature_len;
    /* Holds for anything tlv_file_parse accepted; checked because the struct is public. */
    if (k == 0 || s > f->raw_len || 3 + k > f->raw_len - s)
        return pt_fail(PT_ERR_INTERNAL, "SIGNATURE at offset %zu (%zu bytes) is outside the file",
                       s, k);
    size_t n = f->raw_len - 3 - k;
    uint8_t *buf = OPENSSL_malloc(n > 0 ? n : 1);
    if (buf == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    memcpy(buf, f->raw, s);
    memcpy(buf + s, f->raw + s + 3 + k, f->raw_len - s - 3 - k);
    *out = buf;
    *len = n;
    return PT_OK;
}

static void serial_strip(const uint8_t **p, size_t *n)
{
    while (*n > 0 && (*p)[0] == 0) {
        (*p)++;
        (*n)--;
    }
}

bool tlv_serial_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (a == NULL || b == NULL || alen == 0 || blen == 0)
        return false;
    serial_strip(&a, &alen);
    serial_strip(&b, &blen);
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

const tlv_record *tlv_file_signer_record(const tlv_file *f)
{
    const tlv_record *found = NULL;
    if (f == NULL)
        return NULL;
    /* §8: existing readers take the last match; matches are normally identical. */
    for (size_t i = 0; i < f->n_records; i++) {
        const tlv_record *rec = &f->records[i];
        if (rec->has_role && rec->role == TLV_ROLE_SAST &&
            tlv_serial_equal(rec->serial, rec->serial_len, f->signer_serial, f->signer_serial_len))
            found = rec;
    }
    return found;
}

const tlv_record *tlv_file_find_serial(const tlv_file *f, const uint8_t *serial, size_t len,
                                       int role)
{
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < f->n_records; i++) {
        const tlv_record *rec = &f->records[i];
        if (role >= 0 && (!rec->has_role || rec->role != role))
            continue;
        if (tlv_serial_equal(rec->serial, rec->serial_len, serial, len))
            return rec;
    }
    return NULL;
}
