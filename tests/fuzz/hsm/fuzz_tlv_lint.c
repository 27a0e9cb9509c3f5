/*
 * Fuzz target: hsmd's sign-tlv lint, which parses a CTL/ITL file sent by any
 * local client before the ITLRecovery key is used. The key is the RSA-1024
 * certificate below (the signer of the seeds). What passes must name it, and
 * a zero signature must never verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "cert.h"
#include "hsmd_config.h"
#include "hsmd_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char itlr_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIICPDCCAaWgAwIBAgIUToATmZUJJuw3AHyK0o26Jx8FoYQwDQYJKoZIhvcNAQEL\n"
                               "BQAwMDEZMBcGA1UEAwwQSVRMUkVDT1ZFUllfRlVaWjETMBEGA1UECgwKcGhvbmV0\n"
                               "cnVzdDAeFw0yNjExMjMxMzM2MjBaFw00NjExMTgxMzM2MjBaMDAxGTAXBgNVBAMM\n"
                               "EElUTFJFQ09WRVJZX0ZVWloxEzARBgNVBAoMCnBob25ldHJ1c3QwgZ8wDQYJKoZI\n"
                               "hvcNAQEBBQADgY0AMIGJAoGBAN+WfUTU4WASj6aqyzqond6DMvmdtD4VzqmF33Iz\n"
                               "xyLIJfTtCoeC7H2bwNmo/CoA9ye3l3zNKvxPdvEQk1m8+Rsvf3mwJRN/ggJH2pnA\n"
                               "b0NZX28FuiIYKIiibWL8F0MWi4+CnmyzJwAoXD6BAQCEChu0da8cfNtec3IN6Lam\n"
                               "tmz3AgMBAAGjUzBRMB0GA1UdDgQWBBRU514qHOxz1GjWTRB9Qt/hHn+zRTAfBgNV\n"
                               "HSMEGDAWgBRU514qHOxz1GjWTRB9Qt/hHn+zRTAPBgNVHRMBAf8EBTADAQH/MA0G\n"
                               "CSqGSIb3DQEBCwUAA4GBAGBMkpr+P9hX7nGJI/HeNQU3Z7ETjik6KKZo+oig0PIj\n"
                               "WAtxHKXy860X8DGLZppPivLCJG72T/j+JV84FlyYmFMCGj70ue8ditwaXLQ4awDI\n"
                               "CteKLUVAzMeX91IEXCr9VLqezCJ81fDByyteXWtpheP9y1bUdJh8CqyktKzr8Wwg\n"
                               "-----END CERTIFICATE-----\n";

static const hsmd_tlv_policy *policy(void)
{
    static hsmd_tlv_policy p;
    static X509 *cert;
    if (cert == NULL &&
        (pt_cert_parse((const uint8_t *)itlr_pem, sizeof itlr_pem - 1, &cert) != PT_OK ||
         hsmd_tlv_policy_init(&p, cert, EVP_PKEY_RSA, 1024,
                              HSMD_DIGEST_SHA1 | HSMD_DIGEST_SHA512) != PT_OK))
        abort();
    return &p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const hsmd_tlv_policy *p = policy();
    tlv_file *f = NULL;
    pt_err rc = hsmd_tlv_check(p, data, size, &f);
    if (rc != PT_OK) {
        if (f != NULL || (rc != PT_ERR_FORMAT && rc != PT_ERR_REFUSED && rc != PT_ERR_LIMIT))
            abort();
        return 0;
    }
    if (f == NULL || f->signature_len != 128 || f->n_warnings != 0 || f->signer_name == NULL ||
        strcmp(f->signer_name, p->name) != 0)
        abort();
    uint8_t *covered = NULL, *out = NULL;
    size_t covered_len = 0, out_len = 0;
    if (tlv_file_covered_bytes(f, &covered, &covered_len) != PT_OK ||
        covered_len != size - 3 - f->signature_len)
        abort();
    static const uint8_t zero[128];
    if (hsmd_tlv_finish(f, zero, sizeof zero, &out, &out_len) == PT_OK)
        abort();
    OPENSSL_free(covered);
    tlv_file_free(f);
    return 0;
}
