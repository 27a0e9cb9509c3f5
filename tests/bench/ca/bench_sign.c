/*
 * bench-sign: the signature part of capfd's cost floor. Signs a
 * certificate-sized input N times, one after the other, with a key on a
 * PKCS#11 token through the session pool hsmd uses (token_signer), and
 * prints the rate.
 *
 * Usage: bench-sign URI N   (URI: pkcs11:token=...;object=...?pin-source=file:...;
 *                            the module is $PT_SOFTHSM_MODULE)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cli.h"
#include "login.h"
#include "signer.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = 0;
    if (argc != 3 || !pt_cli_parse_long(argv[2], 1, 1000000, &n)) {
        fprintf(stderr, "usage: bench-sign URI N\n");
        return PT_EXIT_USAGE;
    }
    token_uri *u = NULL;
    token *t = NULL;
    token_signer *s = NULL;
    token_pin_source pin;
    pt_err rc = token_uri_parse(argv[1], &u);
    if (rc == PT_OK)
        rc = token_pin_source_from_uri(token_uri_pin_source(u), &pin);
    token_login_opts lo = {&pin, NULL, false};
    if (rc == PT_OK)
        rc = token_open(argv[1], getenv("PT_SOFTHSM_MODULE"), &t);
    if (rc == PT_OK)
        rc = token_login(t, &lo);
    if (rc == PT_OK)
        rc = token_signer_open(t, token_uri_object_label(u), 1, &s);
    uint8_t tbs[900];
    memset(tbs, 0x5a, sizeof tbs);
    double t0 = now_s();
    for (long i = 0; rc == PT_OK && i < n; i++) {
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        tbs[i % sizeof tbs] ^= 1;
        rc = token_signer_sign(s, EVP_sha256(), tbs, sizeof tbs, 5000, &sig, &sig_len);
        OPENSSL_free(sig);
    }
    double secs = now_s() - t0;
    token_signer_close(s);
    token_close(t);
    token_uri_free(u);
    if (rc != PT_OK)
        return pt_cli_report(rc, "bench-sign");
    printf("signatures: %ld seconds: %.3f per-second: %.2f\n", n, secs, (double)n / secs);
    return PT_EXIT_OK;
}
