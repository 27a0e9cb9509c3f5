#include "tlv_verify.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "hex.h"
#include "tlv_encode.h"

/* The signer record's certificate, checked against the header's SIGNER_SERIAL. */
static pt_err signer_cert_load(const tlv_file *f, const tlv_record *signer, X509 **out)
{
    *out = NULL;
    if (signer->certificate == NULL)
        return pt_fail(PT_ERR_FORMAT, "offset %zu: the signer's SAST record carries no CERTIFICATE",
                       signer->offset);
    const unsigned char *p = signer->certificate;
    X509 *x = d2i_X509(NULL, &p, (long)signer->certificate_len);
    if (x == NULL)
        return pt_fail_openssl(PT_ERR_FORMAT, "offset %zu: the signer's CERTIFICATE does not parse",
                               signer->offset);
    uint8_t *serial = NULL;
    size_t serial_len = 0;
    pt_err rc = tlv_serial_encode(X509_get0_serialNumber(x), &serial, &serial_len);
    if (rc == PT_OK &&
        !tlv_serial_equal(serial, serial_len, f->signer_serial, f->signer_serial_len))
        rc = pt_fail(
            PT_ERR_VERIFY,
            "offset %zu: the signer record's certificate has another serial than SIGNER_SERIAL",
            signer->offset);
    OPENSSL_free(serial);
    if (rc != PT_OK) {
        X509_free(x);
        return rc;
    }
    *out = x;
    return PT_OK;
}

static pt_err signer_key_check(const tlv_file *f, EVP_PKEY *key)
{
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return pt_fail(PT_ERR_VERIFY, "the signer's key is not RSA; CTL/ITL signatures are RSA");
    if (f->signature_algorithm != 0)
        return pt_fail(PT_ERR_VERIFY, "SIGNATURE_ALGORITHM %u is not supported (only 0, RSA)",
                       f->signature_algorithm);
    if ((size_t)EVP_PKEY_get_size(key) != f->signature_len)
        return pt_fail(PT_ERR_VERIFY,
                       "the signature is %zu bytes but the signer's key is %d-bit RSA",
                       f->signature_len, EVP_PKEY_get_bits(key));
    return PT_OK;
}

/* §6.4 step 4: RSASSA-PKCS1-v1_5 over the covered bytes. */
static pt_err signature_check(const tlv_file *f, EVP_PKEY *key, bool *valid)
{
    *valid = false;
    const EVP_MD *md = tlv_digest_md(f->digest);
    if (md == NULL)
        return pt_fail(PT_ERR_FORMAT, "unknown digest code %u", f->digest);
    uint8_t *covered = NULL;
    size_t n = 0;
    pt_err rc = tlv_file_covered_bytes(f, &covered, &n);
    if (rc != PT_OK)
        return rc;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (mctx == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
    } else if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key) != 1 ||
               EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot set up signature verification");
    } else {
        const uint8_t *sig = f->raw + f->signature_offset + 3;
        *valid = EVP_DigestVerify(mctx, sig, f->signature_len, covered, n) == 1;
        /* A bad signature leaves entries on the queue; they are not a later caller's error. */
        ERR_clear_error();
    }
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(covered);
    return rc;
}

/* A phone holding previous trusts the SAST certificates it lists, exactly as listed. */
static bool previous_lists_signer(const tlv_file *previous, const tlv_record *signer)
{
    if (signer->certificate == NULL)
        return false;
    for (size_t i = 0; i < previous->n_records; i++) {
        const tlv_record *rec = &previous->records[i];
        if (rec->has_role && rec->role == TLV_ROLE_SAST && rec->certificate != NULL &&
            rec->certificate_len == signer->certificate_len &&
            memcmp(rec->certificate, signer->certificate, rec->certificate_len) == 0)
            return true;
    }
    return false;
}

static pt_err signer_missing(const tlv_file *f)
{
    char *hex = pt_hex_encode(f->signer_serial, f->signer_serial_len, ':');
    pt_err rc =
        pt_fail(PT_ERR_VERIFY,
                "no SAST record has the signer serial %s; a file must list its signer as SAST",
                hex != NULL ? hex : "?");
    OPENSSL_free(hex);
    return rc;
}

pt_err tlv_file_verify(const tlv_file *f, const tlv_file *previous, tlv_verify_result *res)
{
    memset(res, 0, sizeof *res);
    if (f == NULL || f->raw == NULL)
        return pt_fail(PT_ERR_USAGE, "no parsed file to verify");
    res->signer = tlv_file_signer_record(f);
    if (res->signer == NULL)
        return signer_missing(f);
    X509 *x = NULL;
    pt_err rc = signer_cert_load(f, res->signer, &x);
    if (rc == PT_OK)
        rc = signer_key_check(f, X509_get0_pubkey(x));
    if (rc == PT_OK)
        rc = signature_check(f, X509_get0_pubkey(x), &res->signature_valid);
    X509_free(x);
    if (previous != NULL)
        res->signer_in_previous = previous_lists_signer(previous, res->signer);
    if (rc != PT_OK)
        return rc;
    if (!res->signature_valid)
        return pt_fail(
            PT_ERR_VERIFY,
            "the signature does not verify with the certificate of the signer record at offset %zu",
            res->signer->offset);
    if (previous != NULL && !res->signer_in_previous)
        return pt_fail(PT_ERR_VERIFY,
                       "the signer is not a SAST certificate of the previous file; phones holding "
                       "it would refuse this file");
    return PT_OK;
}
