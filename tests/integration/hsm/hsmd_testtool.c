/*
 * hsmd-testtool: what the hsmd integration tests need that no command offers.
 *
 *   tbs CA.pem OUT [options]         a DER TBSCertificate issued by CA.pem's subject
 *       --ca-true --key-cert-sign --issuer DN --subject DN --days N
 *       --start SECONDS (offset from now) --alg rsa-sha256|rsa-sha1|ecdsa-sha256
 *   itl SIGNER.pem OUT [--digest sha1|sha512] [--add CERT.pem]...
 *                                    an unsigned ITL (tlv_build_unsigned) with the
 *                                    signer as its SAST record (and CAPF records)
 *   covered FILE COVERED SIG         the bytes a CTL/ITL signature covers, and the signature
 *   tlv-verify FILE                  tlv_file_parse + tlv_file_verify (exit 0 when valid)
 *   raw SOCKET FILE                  send FILE's bytes, print the answer:
 *                                    "ok", "error NAME: REASON" or "closed"
 *   midframe SOCKET N                N times: connect, send part of a frame, hang up
 *   hold SOCKET READY                connect, create the file READY, and stay connected
 *                                    (sending nothing) until killed
 *   load SOCKET LABEL CA.pem CLIENTS REQUESTS OUTDIR
 *                                    CLIENTS threads, each issuing up to REQUESTS
 *                                    certificates through hsm_client; every certificate
 *                                    received is appended to OUTDIR/client-N.txt as
 *                                    "SERIAL INPUT-SHA256" before the next request.
 *                                    Stops a client at its first failure.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "cert.h"
#include "fileio.h"
#include "hex.h"
#include "hsm_client.h"
#include "hsmd_proto.h"
#include "test_tbs.h"
#include "tlv.h"

/* A whole decimal number, or fallback when the text is not one. */
static long number(const char *text, long fallback)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' ? v : fallback;
}

static int die(const char *what)
{
    fprintf(stderr, "hsmd-testtool: %s: %s\n", what, pt_err_message());
    return 1;
}

static int cmd_tbs(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    X509 *ca = NULL;
    if (pt_cert_load_file(argv[0], &ca) != PT_OK)
        return die("CA certificate");
    const char *out = argv[1];
    pt_test_tbs t;
    memset(&t, 0, sizeof t);
    X509_NAME *issuer = NULL;
    const char *alg = "rsa-sha256";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--ca-true") == 0) {
            t.ca = true;
        } else if (strcmp(a, "--key-cert-sign") == 0) {
            t.key_cert_sign = true;
        } else if (strcmp(a, "--issuer") == 0 && v) {
            if (pt_name_parse(v, &issuer) != PT_OK)
                return die("--issuer");
            i++;
        } else if (strcmp(a, "--subject") == 0 && v) {
            t.subject = v;
            i++;
        } else if (strcmp(a, "--days") == 0 && v) {
            t.validity_seconds = number(v, 0) * 86400L;
            i++;
        } else if (strcmp(a, "--start") == 0 && v) {
            t.not_before_offset = number(v, 0);
            i++;
        } else if (strcmp(a, "--alg") == 0 && v) {
            alg = v;
            i++;
        } else {
            fprintf(stderr, "hsmd-testtool: tbs: unknown option %s\n", a);
            return 2;
        }
    }
    t.issuer = issuer != NULL ? issuer : X509_get_subject_name(ca);
    t.sig_key = pt_test_key(strncmp(alg, "ecdsa", 5) == 0 ? "ec" : "rsa");
    t.md = strcmp(alg, "rsa-sha1") == 0 ? EVP_sha1() : EVP_sha256();
    size_t len = 0;
    uint8_t *tbs = t.sig_key != NULL ? pt_test_tbs_build(&t, &len) : NULL;
    int rc = tbs != NULL && pt_file_write_atomic(out, tbs, len, 0644) == PT_OK ? 0 : 1;
    OPENSSL_free(tbs);
    EVP_PKEY_free(t.sig_key);
    X509_NAME_free(issuer);
    X509_free(ca);
    return rc;
}

static int cmd_itl(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    X509 *signer = NULL;
    X509 *extra[8] = {0};
    size_t n_extra = 0;
    uint8_t digest = TLV_DIGEST_SHA1;
    if (pt_cert_load_file(argv[0], &signer) != PT_OK)
        return die("signer certificate");
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--digest") == 0) {
            digest = strcmp(argv[i + 1], "sha512") == 0 ? TLV_DIGEST_SHA512 : TLV_DIGEST_SHA1;
        } else if (strcmp(argv[i], "--add") == 0 && n_extra < 8) {
            if (pt_cert_load_file(argv[i + 1], &extra[n_extra]) != PT_OK)
                return die("--add");
            n_extra++;
        }
    }
    tlv_build_record recs[9];
    memset(recs, 0, sizeof recs);
    recs[0].role = TLV_ROLE_SAST;
    recs[0].cert = signer;
    for (size_t i = 0; i < n_extra; i++) {
        recs[i + 1].role = TLV_ROLE_CAPF;
        recs[i + 1].cert = extra[i];
    }
    tlv_build_params p = {
        .signer_cert = signer,
        .digest = digest,
        .filename = "ITLFile.tlv",
        .timestamp = (uint32_t)time(NULL),
        .records = recs,
        .n_records = n_extra + 1,
        .warn_bytes = TLV_ITL_WARN_BYTES,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err rc = tlv_build_unsigned(&p, &buf, &len);
    if (rc == PT_OK)
        rc = pt_file_write_atomic(argv[1], buf, len, 0644);
    OPENSSL_free(buf);
    X509_free(signer);
    for (size_t i = 0; i < n_extra; i++)
        X509_free(extra[i]);
    return rc == PT_OK ? 0 : die("itl");
}

static int cmd_covered(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    uint8_t *data = NULL, *covered = NULL;
    size_t len = 0, clen = 0;
    tlv_file *f = NULL;
    pt_err rc = pt_file_read(argv[0], TLV_FILE_MAX_BYTES, &data, &len);
    if (rc == PT_OK)
        rc = tlv_file_parse(data, len, &f);
    if (rc == PT_OK)
        rc = tlv_file_covered_bytes(f, &covered, &clen);
    if (rc == PT_OK)
        rc = pt_file_write_atomic(argv[1], covered, clen, 0644);
    if (rc == PT_OK)
        rc =
            pt_file_write_atomic(argv[2], f->raw + f->signature_offset + 3, f->signature_len, 0644);
    tlv_file_free(f);
    OPENSSL_free(data);
    OPENSSL_free(covered);
    return rc == PT_OK ? 0 : die("covered");
}

static int cmd_tlv_verify(int argc, char **argv)
{
    if (argc != 1)
        return 2;
    uint8_t *data = NULL;
    size_t len = 0;
    tlv_file *f = NULL;
    tlv_verify_result res;
    pt_err rc = pt_file_read(argv[0], TLV_FILE_MAX_BYTES, &data, &len);
    if (rc == PT_OK)
        rc = tlv_file_parse(data, len, &f);
    if (rc == PT_OK)
        rc = tlv_file_verify(f, NULL, &res);
    tlv_file_free(f);
    OPENSSL_free(data);
    if (rc != PT_OK)
        return die("tlv-verify");
    printf("valid\n");
    return 0;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int cmd_raw(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    uint8_t *data = NULL, *body = NULL;
    size_t len = 0, blen = 0;
    if (pt_file_read(argv[1], HSMD_FRAME_MAX * 2, &data, &len) != PT_OK)
        return die("raw");
    int fd = connect_to(argv[0]);
    if (fd < 0) {
        OPENSSL_free(data);
        fprintf(stderr, "hsmd-testtool: cannot connect to %s\n", argv[0]);
        return 1;
    }
    pt_err rc = pt_write_all(fd, data, len);
    OPENSSL_free(data);
    if (rc == PT_OK)
        rc = hsmd_frame_read(fd, hsmd_deadline_after(10000), &body, &blen);
    hsmd_response resp;
    memset(&resp, 0, sizeof resp);
    if (rc == PT_OK)
        rc = hsmd_response_parse(body, blen, &resp);
    if (rc == PT_OK && resp.type == HSMD_MSG_ERROR)
        printf("error %s: %s\n", hsmd_error_code_name(resp.code), resp.reason);
    else if (rc == PT_OK)
        printf("ok\n");
    else
        printf("closed\n");
    /* After an error hsmd hangs up: anything more is a protocol slip. */
    if (rc == PT_OK && resp.type == HSMD_MSG_ERROR) {
        uint8_t b;
        ssize_t n = recv(fd, &b, 1, 0);
        /* A reset is a close with our unread bytes still in hsmd's buffer. */
        printf("then %s\n", n == 0 || (n < 0 && errno == ECONNRESET) ? "closed" : "open");
    }
    OPENSSL_free(body);
    close(fd);
    return 0;
}

static int cmd_midframe(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int n = (int)number(argv[1], 0);
    /* A frame that declares 1000 bytes, of which only the header and a little arrive. */
    static const uint8_t part[] = {0x00, 0x00, 0x03, 0xE8, 'H', 'S', 'M', 'D', 0x01, 0x03};
    for (int i = 0; i < n; i++) {
        int fd = connect_to(argv[0]);
        if (fd < 0) {
            fprintf(stderr, "hsmd-testtool: cannot connect to %s\n", argv[0]);
            return 1;
        }
        size_t cut = 1 + (size_t)i % (sizeof part - 1);
        if (pt_write_all(fd, part, cut) != PT_OK)
            return die("midframe");
        close(fd);
    }
    return 0;
}

static int cmd_hold(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int fd = connect_to(argv[0]);
    if (fd < 0) {
        fprintf(stderr, "hsmd-testtool: cannot connect to %s\n", argv[0]);
        return 1;
    }
    if (pt_file_write_atomic(argv[1], "connected\n", 10, 0644) != PT_OK)
        return die("hold");
    for (;;)
        pause(); /* the test kills it: the kernel closes the connection */
}

typedef struct load_client {
    const char *socket, *label, *outdir;
    X509 *ca;
    int id, requests;
    int done;
    pt_err rc;
    char error[256];
} load_client;

static void *load_main(void *arg)
{
    load_client *lc = arg;
    hsm_client *c = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/client-%d.txt", lc->outdir, lc->id);
    FILE *out = fopen(path, "w");
    EVP_PKEY *key = pt_test_key("rsa");
    pt_err rc = out != NULL && key != NULL ? hsm_client_connect(lc->socket, 20000, &c)
                                           : pt_fail(PT_ERR_IO, "cannot start");
    pt_test_tbs t;
    memset(&t, 0, sizeof t);
    t.issuer = X509_get_subject_name(lc->ca);
    t.sig_key = key;
    for (int i = 0; rc == PT_OK && i < lc->requests; i++) {
        size_t len = 0;
        uint8_t *tbs = pt_test_tbs_build(&t, &len);
        X509 *cert = NULL;
        rc = tbs != NULL ? hsm_client_issue(c, lc->label, tbs, len, &cert)
                         : pt_fail(PT_ERR_INTERNAL, "no TBS");
        if (rc == PT_OK) {
            uint8_t h[SHA256_DIGEST_LENGTH];
            char hex[2 * SHA256_DIGEST_LENGTH + 1];
            SHA256(tbs, len, h);
            pt_hex_lower(h, sizeof h, hex);
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
            char *serial = bn != NULL ? BN_bn2hex(bn) : NULL;
            fprintf(out, "%s %s\n", serial != NULL ? serial : "?", hex);
            fflush(out);
            OPENSSL_free(serial);
            BN_free(bn);
            lc->done++;
        }
        X509_free(cert);
        OPENSSL_free(tbs);
    }
    lc->rc = rc;
    if (rc != PT_OK)
        snprintf(lc->error, sizeof lc->error, "%s", pt_err_message());
    hsm_client_close(c);
    EVP_PKEY_free(key);
    if (out != NULL)
        fclose(out);
    return NULL;
}

static int cmd_load(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    X509 *ca = NULL;
    if (pt_cert_load_file(argv[2], &ca) != PT_OK)
        return die("CA certificate");
    int n = (int)number(argv[3], 0);
    if (n < 1 || n > 64)
        return 2;
    load_client lc[64];
    pthread_t th[64];
    memset(lc, 0, sizeof lc);
    for (int i = 0; i < n; i++) {
        lc[i] =
            (load_client){argv[0], argv[1], argv[5], ca, i, (int)number(argv[4], 0), 0, PT_OK, ""};
        pthread_create(&th[i], NULL, load_main, &lc[i]);
    }
    int total = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += lc[i].done;
        if (lc[i].rc != PT_OK) {
            failed++;
            fprintf(stderr, "client %d stopped after %d: %s\n", i, lc[i].done, lc[i].error);
        }
    }
    printf("issued %d, clients failed %d\n", total, failed);
    X509_free(ca);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: hsmd-testtool tbs|itl|covered|tlv-verify|raw|midframe|hold|load ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;
    int rc = 2;
    if (strcmp(cmd, "tbs") == 0)
        rc = cmd_tbs(argc, argv);
    else if (strcmp(cmd, "itl") == 0)
        rc = cmd_itl(argc, argv);
    else if (strcmp(cmd, "covered") == 0)
        rc = cmd_covered(argc, argv);
    else if (strcmp(cmd, "tlv-verify") == 0)
        rc = cmd_tlv_verify(argc, argv);
    else if (strcmp(cmd, "raw") == 0)
        rc = cmd_raw(argc, argv);
    else if (strcmp(cmd, "midframe") == 0)
        rc = cmd_midframe(argc, argv);
    else if (strcmp(cmd, "hold") == 0)
        rc = cmd_hold(argc, argv);
    else if (strcmp(cmd, "load") == 0)
        rc = cmd_load(argc, argv);
    if (rc == 2)
        fprintf(stderr, "hsmd-testtool %s: bad arguments (see the comment in hsmd_testtool.c)\n",
                cmd);
    return rc;
}
