/*
 * Fuzz target: hsmd's issue lint, which parses a DER TBSCertificate sent by
 * any local client before the CAPF CA key is used. The policy is an EC CA
 * ("CN=Fuzz CA,O=phonetrust", the issuer of the seeds) at a fixed time, so
 * runs are reproducible. What passes must be what the rules say.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "der.h"
#include "hsmd_config.h"
#include "hsmd_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds were made shortly after this time (2026-11-23). */
#define FUZZ_NOW ((time_t)1795441015)

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBszCCAVmgAwIBAgIUbdHF76wdR9lNw3Mk1pvNEb90jbcwCgYIKoZIzj0EAwIw\n"
                             "JzEQMA4GA1UEAwwHRnV6eiBDQTETMBEGA1UECgwKcGhvbmV0cnVzdDAeFw0yNjEx\n"
                             "MjMxMzM2MjBaFw00NjExMTgxMzM2MjBaMCcxEDAOBgNVBAMMB0Z1enogQ0ExEzAR\n"
                             "BgNVBAoMCnBob25ldHJ1c3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQJZOSB\n"
                             "5C8ON1ysg2COuP+F5tAf+GOAoq6aHsBgDFT60DvKplSvoVjRDiG4rBEmwvXiUnZg\n"
                             "4lpUg0xucgwE4MpPo2MwYTAdBgNVHQ4EFgQUViYAaRaB10uzYWINVuU/J7jGN3cw\n"
                             "HwYDVR0jBBgwFoAUViYAaRaB10uzYWINVuU/J7jGN3cwDwYDVR0TAQH/BAUwAwEB\n"
                             "/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSAAwRQIhANftZwvwag5AmxCH\n"
                             "NPHmrPI1hKJOVSfMBadAyRBNO7UoAiBXoW5NraUBPIJ3zD2TCJdXdgDIBQsFwWqK\n"
                             "gyWZNLpw5w==\n"
                             "-----END CERTIFICATE-----\n";

static X509 *ca_cert(void)
{
    static X509 *ca;
    if (ca == NULL && pt_cert_parse((const uint8_t *)ca_pem, sizeof ca_pem - 1, &ca) != PT_OK)
        abort();
    return ca;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsmd_issue_policy p = {ca_cert(), EVP_PKEY_EC,
                           HSMD_DIGEST_SHA256 | HSMD_DIGEST_SHA384 | HSMD_DIGEST_SHA512, 1827};
    hsmd_issue_info info;
    pt_err rc = hsmd_issue_check(&p, data, size, FUZZ_NOW, &info);
    if (rc != PT_OK) {
        if (info.md != NULL || (rc != PT_ERR_FORMAT && rc != PT_ERR_REFUSED))
            abort();
        return 0;
    }
    /* What hsmd's own parser accepted, OpenSSL's X509 parser must read the same way. */
    X509 *x = NULL;
    if (info.md == NULL || pt_der_tbs_to_x509(data, size, &x) != PT_OK ||
        X509_get_version(x) != X509_VERSION_3 ||
        X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(p.ca_cert)) != 0 ||
        X509_check_ca(x) != 0 || (X509_get_extension_flags(x) & EXFLAG_INVALID) != 0)
        abort();
    X509_free(x);
    /* A made-up signature never becomes a certificate. */
    static const uint8_t junk[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    if (hsmd_issue_finish(&p, data, size, info.md, junk, sizeof junk, &cert, &cert_len) == PT_OK)
        abort();
    return 0;
}
