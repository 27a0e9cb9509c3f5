/*
 * Writes the seed corpus of fuzz_tlv into the folder named on the command
 * line: valid CTL and ITL files (SHA-1 and SHA-512, RSA and EC records,
 * nonsecure, DNS/IP fields) and a few malformed ones. Keys are fresh each
 * run; the committed corpus was made once with
 *     ninja -C build tests/fuzz/ctl/tlv_gen_corpus
 *     build/tests/fuzz/ctl/tlv_gen_corpus tests/fuzz/ctl/corpus-tlv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tlv_testutil.h"

static const char *dir;

static void save(const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!tt_write_file(path, data, len)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    printf("%s: %zu bytes\n", path, len);
}

static uint8_t *build(X509 *signer, EVP_PKEY *key, uint8_t digest, const char *filename,
                      bool nonsecure, tlv_build_record *recs, size_t n, size_t *len)
{
    tlv_build_params p = {.signer_cert = signer,
                          .digest = digest,
                          .filename = filename,
                          .timestamp = 1700000000,
                          .nonsecure = nonsecure,
                          .records = recs,
                          .n_records = n,
                          .signer_version_minor = digest == TLV_DIGEST_SHA512};
    uint8_t *buf = tt_build(&p, key, len);
    if (buf == NULL)
        exit(1);
    return buf;
}

/* Variants of a valid file that the parser must refuse. */
static void save_malformed(const uint8_t *f, size_t len)
{
    uint8_t *c = malloc(len + 3);
    size_t hl = (size_t)f[8] << 8 | f[9];
    if (c == NULL)
        exit(1);
    save("bad-truncated-header.tlv", f, 40);
    memcpy(c, f, len);
    c[hl + 3] = 0;
    c[hl + 4] = 4;
    save("bad-record-length-4.tlv", c, len);
    memcpy(c, f, len);
    memset(c + len, 0, 3);
    save("bad-trailing-bytes.tlv", c, len + 3);
    c[9] = (uint8_t)(hl + 1);
    save("bad-header-length-odd.tlv", c, len);
    memcpy(c, f, len);
    for (size_t i = 10; i + 3 < hl; i++) {
        if (c[i] == TLV_HDR_DIGEST_ALGORITHM && c[i + 1] == 0 && c[i + 2] == 1) {
            c[i + 3] = TLV_DIGEST_SHA256;
            break;
        }
    }
    save("bad-digest-2.tlv", c, len);
    free(c);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    EVP_PKEY *k1 = tt_rsa_key(1024), *k2 = tt_rsa_key(2048);
    X509 *sast1 = tt_cert(k1, "/CN=SAST-1/O=Example/OU=VoIP/C=NZ", 0x1001);
    X509 *sast2 = tt_cert(k2, "/CN=SAST-2/O=Example", 0x1002);
    X509 *cucm = tt_cert(tt_rsa_key(1024), "/CN=cucm.example.com", 0x2001);
    X509 *capf = tt_cert(tt_ec_key("P-256"), "/CN=capf.example.com", 0x2002);
    X509 *tvs =
        tt_cert_ex(tt_ec_key("P-384"), "/CN=tvs.example.com", "/CN=SAST-1/O=Example/OU=VoIP/C=NZ",
                   (const uint8_t *)"\x86\x01", 2, k1, EVP_sha1());
    X509 *app = tt_cert(tt_ec_key("P-521"), "/CN=app.example.com", 0x2004);
    tlv_build_record ctl[] = {
        {.role = TLV_ROLE_SAST, .cert = sast1},
        {.role = TLV_ROLE_SAST, .cert = sast2},
        {.role = TLV_ROLE_CCM_TFTP,
         .cert = cucm,
         .dns_name = "cucm.example.com",
         .has_ipv4 = true,
         .ipv4 = {192, 0, 2, 10}},
        {.role = TLV_ROLE_CAPF, .cert = capf, .dns_name = ""},
        {.role = TLV_ROLE_APP_SERVER, .cert = app},
    };
    tlv_build_record itl[] = {
        {.role = TLV_ROLE_SAST, .cert = sast1},
        {.role = TLV_ROLE_TFTP, .cert = sast1},
        {.role = TLV_ROLE_TVS, .cert = tvs},
        {.role = TLV_ROLE_CAPF, .cert = capf},
    };
    size_t len = 0;
    uint8_t *f = build(sast1, k1, TLV_DIGEST_SHA1, "CTLFile.tlv", false, ctl, 5, &len);
    save("ctl-sha1-rsa-ec.tlv", f, len);
    save_malformed(f, len);
    OPENSSL_free(f);
    f = build(sast2, k2, TLV_DIGEST_SHA512, "CTLFile.tlv", false, ctl, 5, &len);
    save("ctl-sha512-rsa2048.tlv", f, len);
    OPENSSL_free(f);
    f = build(sast1, k1, TLV_DIGEST_SHA1, "CTLFile.tlv", true, ctl, 5, &len);
    save("ctl-nonsecure.tlv", f, len);
    OPENSSL_free(f);
    f = build(sast1, k1, TLV_DIGEST_SHA1, "ITLFile.tlv", false, itl, 4, &len);
    save("itl-sha1.tlv", f, len);
    OPENSSL_free(f);
    f = build(sast1, k1, TLV_DIGEST_SHA512, "ITLFile.tlv", false, itl, 1, &len);
    save("itl-sha512-minimal.tlv", f, len);
    OPENSSL_free(f);
    X509 *all[] = {sast1, sast2, cucm, capf, tvs, app};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        X509_free(all[i]);
    tt_cleanup();
    return 0;
}
