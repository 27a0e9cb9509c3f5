/*
 * fake-hsmd: a stand-in for hsmd in ctlclient's tests. It speaks hsmd's wire
 * protocol (hsm/PROTOCOL.md) on a Unix socket, with one key held in a PEM
 * file: CERT answers with its certificate, SIGN_TLV signs the file with the
 * TLV codec. With --tamper it changes a byte outside the signature of every
 * file it signs, so the client's check of the answer can be tested.
 *
 *   fake-hsmd [--tamper] SOCKET LABEL KEY.pem CERT.pem
 *
 * It prints "ready" once it listens, serves each connection in a child
 * process until it is killed, and never runs longer than 120 seconds.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cert.h"
#include "hsmd_proto.h"
#include "tlv.h"

typedef struct fake {
    const char *label;
    EVP_PKEY *key;
    X509 *cert;
    int tamper;
} fake;

static pt_err answer(const fake *f, const hsmd_request *req, hsmd_response *resp, uint8_t **buf)
{
    size_t len = 0;
    memset(resp, 0, sizeof *resp);
    resp->type = HSMD_MSG_OK;
    resp->id = req->id;
    if (req->type == HSMD_MSG_STATUS) {
        resp->payload = (const uint8_t *)"{}";
        resp->payload_len = 2;
        return PT_OK;
    }
    if (strcmp(req->label, f->label) != 0) {
        hsmd_response_set_error(resp, req->id, HSMD_ERR_UNKNOWN_KEY, "unknown key");
        return PT_OK;
    }
    pt_err rc = PT_OK;
    if (req->type == HSMD_MSG_CERT) {
        rc = pt_cert_to_der(f->cert, buf, &len);
    } else if (req->type == HSMD_MSG_SIGN_TLV) {
        *buf = OPENSSL_memdup(req->data, req->data_len);
        len = req->data_len;
        rc = *buf != NULL ? tlv_file_sign_in_place(*buf, len, tlv_sign_with_pkey, f->key)
                          : PT_ERR_NOMEM;
        if (rc == PT_OK && f->tamper)
            (*buf)[len - 1] ^= 1;
    } else {
        hsmd_response_set_error(resp, req->id, HSMD_ERR_BAD_REQUEST, "not served here");
        return PT_OK;
    }
    if (rc != PT_OK) {
        hsmd_response_set_error(resp, req->id, HSMD_ERR_REFUSED_BY_POLICY, pt_err_message());
        return PT_OK;
    }
    resp->payload = *buf;
    resp->payload_len = len;
    return PT_OK;
}

static void serve(const fake *f, int fd)
{
    for (;;) {
        uint8_t *body = NULL, *out = NULL, *buf = NULL;
        size_t len = 0, out_len = 0;
        hsmd_request req;
        hsmd_response resp;
        if (hsmd_frame_read(fd, hsmd_deadline_after(30000), &body, &len) != PT_OK)
            return;
        pt_err rc = hsmd_request_parse(body, len, &req);
        if (rc == PT_OK)
            rc = answer(f, &req, &resp, &buf);
        if (rc == PT_OK)
            rc = hsmd_response_encode(&resp, &out, &out_len);
        if (rc == PT_OK)
            rc = hsmd_frame_write(fd, hsmd_deadline_after(30000), out, out_len);
        OPENSSL_free(body);
        OPENSSL_free(out);
        OPENSSL_free(buf);
        if (rc != PT_OK)
            return;
    }
}

int main(int argc, char **argv)
{
    fake f = {0};
    int i = 1;
    if (argc > 1 && strcmp(argv[1], "--tamper") == 0) {
        f.tamper = 1;
        i++;
    }
    if (argc - i != 4) {
        fprintf(stderr, "usage: fake-hsmd [--tamper] SOCKET LABEL KEY.pem CERT.pem\n");
        return 2;
    }
    f.label = argv[i + 1];
    FILE *kf = fopen(argv[i + 2], "r");
    f.key = kf != NULL ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    if (kf != NULL)
        fclose(kf);
    if (f.key == NULL || pt_cert_load_file(argv[i + 3], &f.cert) != PT_OK) {
        fprintf(stderr, "fake-hsmd: cannot load the key or certificate\n");
        return 1;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(argv[i]) >= sizeof sa.sun_path)
        return 2;
    memcpy(sa.sun_path, argv[i], strlen(argv[i]));
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(argv[i]);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 4) != 0) {
        perror("fake-hsmd");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the system */
    alarm(120);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        if (fork() == 0) {
            close(s);
            serve(&f, c);
            _exit(0);
        }
        close(c);
    }
}
