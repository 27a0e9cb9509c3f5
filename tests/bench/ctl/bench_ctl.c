/*
 * bench-ctl: how long ctlclient's CTL work takes on a SoftHSM2 token,
 * compared with the floor: one bare OpenSSL signature (EVP_DigestSign on the
 * token's key) over the same number of bytes on the same token.
 *
 *   bench-ctl [N]      (N repetitions per measurement, default 31; the median is shown)
 *
 * For (a) a CTL of 2 SAST and 3 server records and (b) one of 100 records it
 * times build-and-sign (tlv_build_unsigned + ctl_signer_sign, as create does
 * after the PIN was given), parse (tlv_file_parse) and verify
 * (tlv_file_verify), and prints each as a ratio to the floor. It makes its
 * own token store and tokens; run by `meson test --benchmark` or by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "cert.h"
#include "cli.h"
#include "ctlbuild.h"
#include "key.h"
#include "keygen.h"
#include "pt_config.h"
#include "signer.h"
#include "test_store.h"
#include "tlv.h"

#define BENCH_MAX_N 1001

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-ctl: %s: %s\n", what, pt_err_message());
    exit(1);
}

/* A token with an RSA-2048 SAST key and its self-signed certificate. */
static void enroll(pt_test_store *s, const char *label)
{
    uint8_t id[16];
    token_keygen_spec spec = {EVP_PKEY_RSA, 2048, 0};
    pt_cert_profile prof = {false, -1, "critical,digitalSignature", 3650};
    X509_NAME *name = NULL;
    X509 *x = NULL;
    token_key *k = NULL;
    char subject[64];
    snprintf(subject, sizeof subject, "CN=%s,O=Example,OU=VoIP", label);
    if (!pt_test_store_add_token(s, label))
        exit(1);
    token *t = pt_test_store_login(s, label);
    if (t == NULL)
        exit(1);
    if (token_random_id(id, sizeof id) != PT_OK ||
        token_keypair_generate(t, &spec, TOKEN_SAST_LABEL, id, sizeof id) != PT_OK ||
        token_key_find_by_label(t, TOKEN_SAST_LABEL, id, sizeof id, &k) != PT_OK ||
        pt_name_parse(subject, &name) != PT_OK ||
        pt_cert_self_signed(token_key_pkey(k), name, &prof, &x) != PT_OK ||
        token_cert_store(t, x, TOKEN_SAST_LABEL, id, sizeof id) != PT_OK)
        die("enrolling a token");
    X509_free(x);
    X509_NAME_free(name);
    token_key_free(k);
    token_close(t);
}

static X509 *server_cert(EVP_PKEY *key, int i)
{
    X509_NAME *name = NULL;
    X509 *x = NULL;
    char subject[64];
    pt_cert_profile prof = {false, -1, "critical,digitalSignature,keyEncipherment", 3650};
    snprintf(subject, sizeof subject, "CN=server-%d.example.com,O=Example,OU=VoIP", i);
    if (pt_name_parse(subject, &name) != PT_OK ||
        pt_cert_self_signed(key, name, &prof, &x) != PT_OK)
        die("making a server certificate");
    X509_NAME_free(name);
    return x;
}

typedef struct bench_row {
    const char *name;
    size_t records, bytes;
    double build_sign, parse, verify, floor;
} bench_row;

static void run_case(bench_row *row, ctl_signer *signer, token_key *bare, const ctl_records *recs,
                     int n)
{
    static double t[BENCH_MAX_N];
    ctl_common_opts o;
    memset(&o, 0, sizeof o);
    tlv_build_params p;
    memset(&p, 0, sizeof p);
    p.signer_cert = ctl_signer_cert(signer);
    p.digest = TLV_DIGEST_SHA1;
    p.filename = "CTLFile.tlv";
    p.timestamp = 1700000000;
    p.records = recs->v;
    p.n_records = recs->n;
    p.max_records = TLV_CTL_MAX_RECORDS;
    p.max_bytes = TLV_CTL_MAX_BYTES;
    uint8_t *file = NULL;
    size_t len = 0;

    for (int i = 0; i < n; i++) {
        OPENSSL_free(file);
        double t0 = now_ms();
        if (tlv_build_unsigned(&p, &file, &len) != PT_OK ||
            ctl_signer_sign(signer, &o, file, len) != PT_OK)
            die("build and sign");
        t[i] = now_ms() - t0;
    }
    row->build_sign = median(t, n);
    row->records = recs->n;
    row->bytes = len;

    /* The floor: one signature over as many bytes as the CTL's signature covers. */
    for (int i = 0; i < n; i++) {
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        double t0 = now_ms();
        if (token_key_sign(bare, EVP_sha1(), file, len - 259, &sig, &sig_len) != PT_OK)
            die("bare signature");
        t[i] = now_ms() - t0;
        OPENSSL_free(sig);
    }
    row->floor = median(t, n);

    tlv_file *f = NULL;
    for (int i = 0; i < n; i++) {
        tlv_file_free(f);
        double t0 = now_ms();
        if (tlv_file_parse(file, len, &f) != PT_OK)
            die("parse");
        t[i] = now_ms() - t0;
    }
    row->parse = median(t, n);
    for (int i = 0; i < n; i++) {
        tlv_verify_result res;
        double t0 = now_ms();
        if (tlv_file_verify(f, NULL, &res) != PT_OK)
            die("verify");
        t[i] = now_ms() - t0;
    }
    row->verify = median(t, n);
    tlv_file_free(f);
    OPENSSL_free(file);
}

int main(int argc, char **argv)
{
    long n = 31;
    if (argc > 1 && !pt_cli_parse_long(argv[1], 1, BENCH_MAX_N, &n)) {
        fprintf(stderr, "usage: bench-ctl [N]   (1 to %d repetitions)\n", BENCH_MAX_N);
        return 2;
    }
    /* By hand, the SoftHSM2 module found at configure time; meson test sets the variable. */
    setenv("PT_SOFTHSM_MODULE", PT_SOFTHSM_MODULE_PATH, 0);
    pt_test_store s;
    if (!pt_test_store_init(&s))
        return 77;
    enroll(&s, "SAST-1");
    enroll(&s, "SAST-2");

    char uri1[512], uri2[512];
    snprintf(uri1, sizeof uri1, "pkcs11:token=SAST-1?pin-source=file:%s", s.pin_file);
    snprintf(uri2, sizeof uri2, "pkcs11:token=SAST-2?pin-source=file:%s", s.pin_file);
    ctl_modules *mods = NULL;
    ctl_signer *s1 = NULL, *s2 = NULL;
    token_module *m = NULL;
    token_uri *u = NULL;
    token *t = NULL;
    token_key *bare = NULL;
    token_pin_source src = {TOKEN_PIN_FROM_FILE, s.pin_file, -1};
    token_login_opts lo = {&src, NULL, false};
    if (ctl_modules_new(s.module, &mods) != PT_OK ||
        ctl_signer_open(mods, uri1, NULL, &s1) != PT_OK ||
        ctl_signer_open(mods, uri2, NULL, &s2) != PT_OK ||
        ctl_modules_get(mods, NULL, &m) != PT_OK || token_uri_parse(uri1, &u) != PT_OK ||
        token_select(m, u, &t) != PT_OK || token_login(t, &lo) != PT_OK ||
        token_key_find_by_label(t, TOKEN_SAST_LABEL, NULL, 0, &bare) != PT_OK)
        die("opening the tokens");

    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
    ctl_records small, big;
    ctl_records_init(&small);
    ctl_records_init(&big);
    ctl_records *both[] = {&small, &big};
    for (int k = 0; k < 2; k++) {
        ctl_records_add(both[k], TLV_ROLE_SAST, ctl_signer_cert(s1), NULL, false, NULL);
        ctl_records_add(both[k], TLV_ROLE_SAST, ctl_signer_cert(s2), NULL, false, NULL);
    }
    static const uint16_t roles[] = {TLV_ROLE_CCM_TFTP, TLV_ROLE_CAPF, TLV_ROLE_TVS};
    for (int i = 0; i < 3; i++) {
        X509 *x = server_cert(rsa, i);
        ctl_records_add(&small, roles[i], x, "server.example.com", false, NULL);
        X509_free(x);
    }
    for (int i = 0; i < 98; i++) {
        X509 *x = server_cert(i == 0 ? rsa : ec, i);
        ctl_records_add(&big, i == 0 ? TLV_ROLE_CCM_TFTP : TLV_ROLE_TVS, x, NULL, false, NULL);
        X509_free(x);
    }

    /* The first signature logs in (the PIN comes from a file): not timed. */
    bench_row rows[2] = {{"2 SAST + 3 servers", 0, 0, 0, 0, 0, 0},
                         {"100 records", 0, 0, 0, 0, 0, 0}};
    run_case(&rows[0], s1, bare, &small, 1);
    run_case(&rows[0], s1, bare, &small, (int)n);
    run_case(&rows[1], s1, bare, &big, (int)n);

    printf("ctlclient CTL benchmark on SoftHSM2 (RSA-2048, SHA-1), median of %ld\n", n);
    printf("floor = one bare EVP_DigestSign on the same token over the same number of bytes\n\n");
    printf("%-20s %7s %7s | %10s %10s %10s %10s | %8s %8s %8s\n", "case", "records", "bytes",
           "build+sign", "parse", "verify", "floor", "b+s/fl", "parse/fl", "verif/fl");
    for (int k = 0; k < 2; k++) {
        const bench_row *r = &rows[k];
        printf("%-20s %7zu %7zu | %7.3f ms %7.3f ms %7.3f ms %7.3f ms | %8.2f %8.3f %8.3f\n",
               r->name, r->records, r->bytes, r->build_sign, r->parse, r->verify, r->floor,
               r->build_sign / r->floor, r->parse / r->floor, r->verify / r->floor);
    }
    ctl_records_free(&small);
    ctl_records_free(&big);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    token_key_free(bare);
    token_close(t);
    token_uri_free(u);
    ctl_signer_close(s1);
    ctl_signer_close(s2);
    ctl_modules_free(mods);
    pt_test_store_cleanup(&s);
    return 0;
}
