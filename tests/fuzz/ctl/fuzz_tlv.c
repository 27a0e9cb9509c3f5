/*
 * Fuzz target for the CTL/ITL codec: parse, and for anything that parses,
 * everything a caller does next (covered bytes, signer lookup, verification
 * alone and against itself, signing in place as hsmd would).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A signer that cannot match any certificate: exercises the checks around signing. */
static pt_err sign_pattern(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len,
                           uint8_t *sig, size_t *sig_len)
{
    (void)ctx;
    (void)md;
    (void)data;
    (void)len;
    memset(sig, 0xA5, *sig_len);
    return PT_OK;
}

static void records_walk(const tlv_file *f)
{
    for (size_t i = 0; i < f->n_records; i++) {
        const tlv_record *r = &f->records[i];
        (void)tlv_role_name(r->role);
        (void)tlv_file_find_serial(f, r->serial, r->serial_len, r->has_role ? r->role : -1);
    }
}

static void sign_copy(const uint8_t *data, size_t size)
{
    uint8_t *copy = OPENSSL_malloc(size);
    if (copy == NULL)
        return;
    memcpy(copy, data, size);
    (void)tlv_file_sign_in_place(copy, size, sign_pattern, NULL);
    OPENSSL_free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tlv_file *f = NULL;
    if (tlv_file_parse(data, size, &f) != PT_OK)
        return 0;
    uint8_t *covered = NULL;
    size_t covered_len = 0;
    if (tlv_file_covered_bytes(f, &covered, &covered_len) == PT_OK)
        OPENSSL_free(covered);
    (void)tlv_file_signer_record(f);
    records_walk(f);
    tlv_verify_result res;
    (void)tlv_file_verify(f, NULL, &res);
    (void)tlv_file_verify(f, f, &res);
    tlv_file_free(f);
    sign_copy(data, size);
    return 0;
}
