/*
 * Unit tests of the hsmd wire protocol: message codec and frame I/O.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hex.h"
#include "hsmd_proto.h"

/* Bytes from a hex dump (spaces allowed), as in PROTOCOL.md. */
static uint8_t *from_hex(const char *hex, size_t *len)
{
    uint8_t *out = NULL;
    assert_int_equal(pt_hex_decode(hex, &out, len), PT_OK);
    return out;
}

static void request_init(hsmd_request *req, hsmd_msg_type type, uint32_t id, const char *label,
                         const uint8_t *data, size_t len)
{
    memset(req, 0, sizeof *req);
    req->type = type;
    req->id = id;
    if (label != NULL)
        snprintf(req->label, sizeof req->label, "%s", label);
    req->data = data;
    req->data_len = len;
}

static void request_roundtrip(const hsmd_request *in)
{
    uint8_t *body = NULL;
    size_t len = 0;
    hsmd_request out;
    assert_int_equal(hsmd_request_encode(in, &body, &len), PT_OK);
    assert_int_equal(hsmd_request_parse(body, len, &out), PT_OK);
    assert_int_equal(out.type, in->type);
    assert_int_equal(out.id, in->id);
    assert_int_equal(out.version, HSMD_PROTO_VERSION);
    assert_string_equal(out.label, in->label);
    assert_int_equal(out.data_len, in->data_len);
    if (in->data_len > 0)
        assert_memory_equal(out.data, in->data, in->data_len);
    else
        assert_null(out.data);
    /* The other direction's parser refuses it. */
    hsmd_response resp;
    assert_int_equal(hsmd_response_parse(body, len, &resp), PT_ERR_FORMAT);
    OPENSSL_free(body);
}

static void response_roundtrip(const hsmd_response *in)
{
    uint8_t *body = NULL;
    size_t len = 0;
    hsmd_response out;
    assert_int_equal(hsmd_response_encode(in, &body, &len), PT_OK);
    assert_int_equal(hsmd_response_parse(body, len, &out), PT_OK);
    assert_int_equal(out.type, in->type);
    assert_int_equal(out.id, in->id);
    assert_int_equal(out.code, in->code);
    assert_string_equal(out.reason, in->reason);
    assert_int_equal(out.payload_len, in->payload_len);
    if (in->payload_len > 0)
        assert_memory_equal(out.payload, in->payload, in->payload_len);
    hsmd_request req;
    assert_int_equal(hsmd_request_parse(body, len, &req), PT_ERR_FORMAT);
    OPENSSL_free(body);
}

static void test_roundtrip_requests(void **state)
{
    (void)state;
    static uint8_t tbs[HSMD_TBS_MAX], file[HSMD_FILE_MAX];
    for (size_t i = 0; i < sizeof file; i++)
        file[i] = (uint8_t)(i * 7);
    memcpy(tbs, file, sizeof tbs);
    char longest[HSMD_LABEL_MAX + 1];
    memset(longest, '~', HSMD_LABEL_MAX);
    longest[HSMD_LABEL_MAX] = '\0';
    hsmd_request req;

    request_init(&req, HSMD_MSG_STATUS, 0, NULL, NULL, 0);
    request_roundtrip(&req);
    request_init(&req, HSMD_MSG_CERT, 0xffffffffu, "CAPF-CA", NULL, 0);
    request_roundtrip(&req);
    request_init(&req, HSMD_MSG_CERT, 2, longest, NULL, 0);
    request_roundtrip(&req);
    request_init(&req, HSMD_MSG_ISSUE, 3, "CAPF-CA", tbs, 1);
    request_roundtrip(&req);
    request_init(&req, HSMD_MSG_ISSUE, 4, "CAPF-CA", tbs, sizeof tbs);
    request_roundtrip(&req);
    request_init(&req, HSMD_MSG_SIGN_TLV, 5, "ITLRecovery", file, 4321);
    request_roundtrip(&req);
    request_init(&req, HSMD_MSG_SIGN_TLV, 6, "!", file, sizeof file);
    request_roundtrip(&req);
}

static void test_roundtrip_responses(void **state)
{
    (void)state;
    static uint8_t payload[HSMD_PAYLOAD_MAX];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i ^ 0x5a);
    hsmd_response resp = {.type = HSMD_MSG_OK, .id = 9, .payload = payload, .payload_len = 1200};
    response_roundtrip(&resp);
    resp.payload_len = sizeof payload; /* the largest body there is */
    response_roundtrip(&resp);
    resp.payload_len = 0;
    resp.payload = NULL;
    response_roundtrip(&resp);

    for (int code = HSMD_ERR_BAD_REQUEST; code <= HSMD_ERR_UNSUPPORTED_VERSION; code++) {
        hsmd_response_set_error(&resp, (uint32_t)code, code,
                                "a reason: \xc3\xa9t\xc3\xa9 \xe2\x82\xac");
        response_roundtrip(&resp);
    }
    hsmd_response_set_error(&resp, 10, HSMD_ERR_BUSY, NULL); /* no reason: field left out */
    response_roundtrip(&resp);
    hsmd_response_set_error(&resp, 11, 999, "a code from a newer hsmd");
    response_roundtrip(&resp);
}

/* The examples of PROTOCOL.md, typed from the document, not produced by the encoder. */
static const char doc_status_request[] = "00 00 00 0A 48 53 4D 44 01 01 00 00 00 01";
static const char doc_ok_response[] =
    "00 00 00 11 48 53 4D 44 01 81 00 00 00 01 10 00 00 00 02 7B 7D";
static const char doc_cert_request[] = "00 00 00 1A"
                                       "48 53 4D 44 01 02 00 00 00 07"
                                       "01 00 00 00 0B"
                                       "49 54 4C 52 65 63 6F 76 65 72 79";
static const char doc_error_response[] = "00 00 00 21"
                                         "48 53 4D 44 01 82 00 00 00 07"
                                         "20 00 00 00 02 00 02"
                                         "21 00 00 00 0B"
                                         "75 6E 6B 6E 6F 77 6E 20 6B 65 79";

/* Check that frame (prefix + body) is what the encoder gives and what the parser reads. */
static void check_doc_frame(const char *hex, const uint8_t *body, size_t len)
{
    size_t flen = 0;
    uint8_t *frame = from_hex(hex, &flen);
    uint32_t blen = 0;
    assert_int_equal(hsmd_frame_length_check(frame, &blen), PT_OK);
    assert_int_equal(blen, flen - 4);
    assert_int_equal(len, blen);
    assert_memory_equal(body, frame + 4, len);
    OPENSSL_free(frame);
}

static void test_document_examples(void **state)
{
    (void)state;
    uint8_t *body = NULL;
    size_t len = 0;
    hsmd_request req;
    hsmd_response resp;

    request_init(&req, HSMD_MSG_CERT, 7, "ITLRecovery", NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);
    check_doc_frame(doc_cert_request, body, len);
    assert_int_equal(hsmd_request_parse(body, len, &req), PT_OK);
    assert_int_equal(req.type, HSMD_MSG_CERT);
    assert_int_equal(req.id, 7);
    assert_string_equal(req.label, "ITLRecovery");
    OPENSSL_free(body);

    hsmd_response_set_error(&resp, 7, HSMD_ERR_UNKNOWN_KEY, "unknown key");
    assert_int_equal(hsmd_response_encode(&resp, &body, &len), PT_OK);
    check_doc_frame(doc_error_response, body, len);
    assert_int_equal(hsmd_response_parse(body, len, &resp), PT_OK);
    assert_int_equal(resp.code, HSMD_ERR_UNKNOWN_KEY);
    assert_string_equal(resp.reason, "unknown key");
    OPENSSL_free(body);

    request_init(&req, HSMD_MSG_STATUS, 1, NULL, NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);
    check_doc_frame(doc_status_request, body, len);
    OPENSSL_free(body);

    resp = (hsmd_response){
        .type = HSMD_MSG_OK, .id = 1, .payload = (const uint8_t *)"{}", .payload_len = 2};
    assert_int_equal(hsmd_response_encode(&resp, &body, &len), PT_OK);
    check_doc_frame(doc_ok_response, body, len);
    OPENSSL_free(body);
}

/* Parse a hex body (no prefix) as a request; return the result. */
static pt_err parse_request_hex(const char *hex, hsmd_request *req)
{
    size_t len = 0;
    uint8_t *body = from_hex(hex, &len);
    pt_err rc = hsmd_request_parse(body, len, req);
    OPENSSL_free(body);
    return rc;
}

static void test_unsupported_version(void **state)
{
    (void)state;
    hsmd_request req;
    hsmd_response resp;
    /* A version-2 CERT request: the header still tells the id, so hsmd can answer. */
    assert_int_equal(parse_request_hex("48534D44 02 02 0000002A 01 00000001 41", &req),
                     PT_ERR_UNSUPPORTED);
    assert_int_equal(req.version, 2);
    assert_int_equal(req.id, 42);
    assert_non_null(strstr(pt_err_message(), "version 2"));
    size_t len = 0;
    uint8_t *body = from_hex("48534D44 00 81 00000001 10 00000000", &len);
    assert_int_equal(hsmd_response_parse(body, len, &resp), PT_ERR_UNSUPPORTED);
    assert_int_equal(resp.version, 0);
    OPENSSL_free(body);
}

static void test_bad_headers(void **state)
{
    (void)state;
    hsmd_request req;
    assert_int_equal(parse_request_hex("48534D45 01 01 00000001", &req), PT_ERR_PROTOCOL);
    assert_int_equal(parse_request_hex("48534D44 01 01 000000", &req), PT_ERR_PROTOCOL);
    assert_int_equal(parse_request_hex("48534D44 01 05 00000001", &req), PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 00 00000001", &req), PT_ERR_FORMAT);
    assert_int_equal(hsmd_request_parse(NULL, 0, &req), PT_ERR_PROTOCOL);
}

static void test_bad_fields(void **state)
{
    (void)state;
    hsmd_request req;
    /* Unknown tag, and a tag another message owns. */
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 00000001 41 05 00000000", &req),
                     PT_ERR_FORMAT);
    assert_non_null(strstr(pt_err_message(), "unknown field 0x05"));
    assert_int_equal(
        parse_request_hex("48534D44 01 02 00000001 01 00000001 41 02 00000001 30", &req),
        PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 01 00000001 01 00000001 41", &req),
                     PT_ERR_FORMAT);
    /* Out of order, repeated, missing. */
    assert_int_equal(
        parse_request_hex("48534D44 01 03 00000001 02 00000001 30 01 00000001 41", &req),
        PT_ERR_FORMAT);
    assert_int_equal(
        parse_request_hex("48534D44 01 02 00000001 01 00000001 41 01 00000001 41", &req),
        PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 03 00000001 01 00000001 41", &req),
                     PT_ERR_FORMAT);
    assert_non_null(strstr(pt_err_message(), "missing"));
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001", &req), PT_ERR_FORMAT);
    /* Labels: empty, a space, a control byte, too long (checked before taking bytes). */
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 00000000", &req), PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 00000003 41 20 41", &req),
                     PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 00000002 41 0A", &req),
                     PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 00000041", &req), PT_ERR_FORMAT);
    assert_non_null(strstr(pt_err_message(), "over the limit"));
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 FFFFFFFF 41", &req),
                     PT_ERR_FORMAT);
    /* Length past the end, trailing bytes, an empty TBS. */
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 00000002 41", &req),
                     PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 02 00000001 01 00000001 41 00", &req),
                     PT_ERR_FORMAT);
    assert_int_equal(parse_request_hex("48534D44 01 03 00000001 01 00000001 41 02 00000000", &req),
                     PT_ERR_FORMAT);
}

static void test_bad_response_fields(void **state)
{
    (void)state;
    hsmd_response resp;
    size_t len = 0;
    static const char *const bad[] = {
        "48534D44 01 82 00000001 21 00000001 41",                        /* no code */
        "48534D44 01 82 00000001 20 00000001 02",                        /* code of 1 byte */
        "48534D44 01 82 00000001 20 00000002 0002 21 00000000",          /* empty reason present */
        "48534D44 01 82 00000001 20 00000002 0002 21 00000001 0A",       /* control character */
        "48534D44 01 82 00000001 20 00000002 0002 21 00000002 C0 80",    /* overlong UTF-8 */
        "48534D44 01 82 00000001 20 00000002 0002 21 00000003 ED A0 80", /* surrogate */
        "48534D44 01 82 00000001 20 00000002 0002 21 00000002 C2 9B",    /* C1 control (CSI) */
        "48534D44 01 82 00000001 20 00000002 0002 21 00000001 E2",       /* cut character */
        "48534D44 01 81 00000001",                                       /* OK without payload */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *body = from_hex(bad[i], &len);
        assert_int_equal(hsmd_response_parse(body, len, &resp), PT_ERR_FORMAT);
        OPENSSL_free(body);
    }
}

static void test_encode_refuses(void **state)
{
    (void)state;
    uint8_t *body = NULL;
    size_t len = 0;
    static uint8_t big[HSMD_FILE_MAX + 1];
    hsmd_request req;
    request_init(&req, HSMD_MSG_CERT, 1, "has space", NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_ERR_USAGE);
    assert_null(body);
    assert_string_equal(pt_err_message(), "cannot encode: cert: key label must be printable "
                                          "ASCII without spaces (0x21..0x7E)");
    request_init(&req, HSMD_MSG_CERT, 1, "", NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_ERR_USAGE);
    request_init(&req, HSMD_MSG_ISSUE, 1, "k", big, HSMD_TBS_MAX + 1);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_ERR_USAGE);
    request_init(&req, HSMD_MSG_SIGN_TLV, 1, "k", big, sizeof big);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_ERR_USAGE);
    request_init(&req, HSMD_MSG_SIGN_TLV, 1, "k", NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_ERR_USAGE);
    request_init(&req, HSMD_MSG_OK, 1, "k", NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_ERR_USAGE);
    hsmd_response resp = {.type = HSMD_MSG_CERT};
    assert_int_equal(hsmd_response_encode(&resp, &body, &len), PT_ERR_USAGE);
    hsmd_response_set_error(&resp, 1, HSMD_ERR_INTERNAL, "x");
    strcpy(resp.reason, "bad\x01");
    assert_int_equal(hsmd_response_encode(&resp, &body, &len), PT_ERR_USAGE);
}

static void test_set_error_sanitises(void **state)
{
    (void)state;
    hsmd_response resp;
    hsmd_response_set_error(&resp, 1, HSMD_ERR_REFUSED_BY_POLICY, "CN=\xff\x01x\n\xc3\xa9");
    assert_string_equal(resp.reason, "CN=??x?\xc3\xa9");
    char long_reason[3000];
    memset(long_reason, 'a', sizeof long_reason);
    /* A 2-byte character straddling the limit is dropped whole. */
    memcpy(long_reason + HSMD_REASON_MAX - 1, "\xc3\xa9", 2);
    long_reason[sizeof long_reason - 1] = '\0';
    hsmd_response_set_error(&resp, 1, HSMD_ERR_REFUSED_BY_POLICY, long_reason);
    assert_int_equal(strlen(resp.reason), HSMD_REASON_MAX - 1);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(hsmd_response_encode(&resp, &body, &len), PT_OK);
    OPENSSL_free(body);
}

static void test_every_truncation(void **state)
{
    (void)state;
    static const uint8_t tbs[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    hsmd_request req, out;
    hsmd_response resp;
    uint8_t *body = NULL;
    size_t len = 0;
    request_init(&req, HSMD_MSG_ISSUE, 77, "CAPF-CA", tbs, sizeof tbs);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);
    for (size_t cut = 0; cut < len; cut++) {
        /* An exact-size copy, so a read past the cut is caught under ASan. */
        uint8_t *copy = OPENSSL_memdup(body, cut ? cut : 1);
        pt_err rc = hsmd_request_parse(cut ? copy : NULL, cut, &out);
        assert_true(rc == PT_ERR_FORMAT || rc == PT_ERR_PROTOCOL);
        OPENSSL_free(copy);
    }
    OPENSSL_free(body);

    hsmd_response_set_error(&resp, 5, HSMD_ERR_NOT_ALLOWED, "issue is not allowed for this key");
    assert_int_equal(hsmd_response_encode(&resp, &body, &len), PT_OK);
    for (size_t cut = 0; cut < len; cut++) {
        hsmd_response r2;
        pt_err rc = hsmd_response_parse(body, cut, &r2);
        /*
         * Cut right after the code, the optional reason is simply absent: a
         * valid message. Only the frame's length tells the two apart, which
         * is why a frame is read whole or not at all.
         */
        if (cut == HSMD_HEADER_LEN + 7) {
            assert_int_equal(rc, PT_OK);
            assert_string_equal(r2.reason, "");
        } else {
            assert_true(rc == PT_ERR_FORMAT || rc == PT_ERR_PROTOCOL);
        }
    }
    OPENSSL_free(body);
}

/* A small fixed generator: the same mutations on every run. */
static uint32_t lcg_next(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void test_mutations(void **state)
{
    (void)state;
    static const uint8_t file[] = "a CTL file with its signature zero-filled\0\0\0\0";
    hsmd_request req;
    uint8_t *body = NULL;
    size_t len = 0;
    uint32_t seed = 20261123u;
    unsigned accepted = 0;
    request_init(&req, HSMD_MSG_SIGN_TLV, 3, "ITLRecovery", file, sizeof file);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);
    for (int round = 0; round < 20000; round++) {
        uint8_t *m = OPENSSL_memdup(body, len);
        int flips = 1 + (int)(lcg_next(&seed) % 3);
        for (int i = 0; i < flips; i++)
            m[lcg_next(&seed) % len] ^= (uint8_t)(1u << (lcg_next(&seed) % 8));
        hsmd_request out;
        hsmd_response resp;
        if (hsmd_request_parse(m, len, &out) == PT_OK) {
            /* Whatever parses re-encodes to the same bytes: one encoding per message. */
            uint8_t *again = NULL;
            size_t again_len = 0;
            assert_int_equal(hsmd_request_encode(&out, &again, &again_len), PT_OK);
            assert_int_equal(again_len, len);
            assert_memory_equal(again, m, len);
            OPENSSL_free(again);
            accepted++;
        }
        assert_int_not_equal(hsmd_response_parse(m, len, &resp), PT_OK);
        OPENSSL_free(m);
    }
    /* Flips inside the id, the label's letters or the file still parse. */
    assert_true(accepted > 0);
    OPENSSL_free(body);
}

static void test_length_check(void **state)
{
    (void)state;
    uint32_t len = 0;
    static const uint8_t over[] = {0x00, 0x04, 0x00, 0x01};
    static const uint8_t max[] = {0x00, 0x04, 0x00, 0x00};
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t small[] = {0x00, 0x00, 0x00, 0x09};
    assert_int_equal(hsmd_frame_length_check(over, &len), PT_ERR_LIMIT);
    assert_int_equal(hsmd_frame_length_check(huge, &len), PT_ERR_LIMIT);
    assert_int_equal(hsmd_frame_length_check(max, &len), PT_OK);
    assert_int_equal(len, HSMD_FRAME_MAX);
    assert_int_equal(hsmd_frame_length_check(small, &len), PT_ERR_PROTOCOL);
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_oversized_not_read(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    static const uint8_t frame[] = {0x00, 0x04, 0x00, 0x01, 'b', 'o', 'd',
                                    'y',  'b',  'y',  't',  'e', 's'};
    assert_int_equal(write(sv[1], frame, sizeof frame), (ssize_t)sizeof frame);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(hsmd_frame_read(sv[0], hsmd_deadline_after(5000), &body, &len), PT_ERR_LIMIT);
    assert_null(body);
    /* Every body byte is still in the socket: the reader stopped at the length. */
    uint8_t rest[64];
    assert_int_equal(recv(sv[0], rest, sizeof rest, MSG_DONTWAIT), 9);
    assert_memory_equal(rest, "bodybytes", 9);
    close(sv[0]);
    close(sv[1]);
}

static void test_truncated_frames(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        pt_err rc;
    } cases[] = {
        {"", PT_ERR_IO},                                 /* clean end between frames */
        {"00 00", PT_ERR_PROTOCOL},                      /* inside the prefix */
        {"00 00 00 0A 48 53 4D", PT_ERR_PROTOCOL},       /* inside the body */
        {"00 00 00 05 48 53 4D 44 01", PT_ERR_PROTOCOL}, /* shorter than a header */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int sv[2];
        make_pair(sv);
        size_t n = 0;
        uint8_t *bytes = from_hex(cases[i].hex, &n);
        assert_int_equal(write(sv[1], bytes, n), (ssize_t)n);
        close(sv[1]);
        uint8_t *body = NULL;
        size_t len = 0;
        assert_int_equal(hsmd_frame_read(sv[0], hsmd_deadline_after(5000), &body, &len),
                         cases[i].rc);
        assert_null(body);
        OPENSSL_free(bytes);
        close(sv[0]);
    }
}

static void test_deadline_silent_peer(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    uint8_t *body = NULL;
    size_t len = 0;
    int64_t deadline = hsmd_deadline_after(100);
    assert_int_equal(hsmd_frame_read(sv[0], deadline, &body, &len), PT_ERR_TIMEOUT);
    assert_true(hsmd_now_ms() >= deadline);
    /* A peer that sends the prefix and then nothing times out too. */
    static const uint8_t prefix[] = {0x00, 0x00, 0x00, 0x20};
    assert_int_equal(write(sv[1], prefix, sizeof prefix), 4);
    deadline = hsmd_deadline_after(50);
    assert_int_equal(hsmd_frame_read(sv[0], deadline, &body, &len), PT_ERR_TIMEOUT);
    assert_true(hsmd_now_ms() >= deadline);
    close(sv[0]);
    close(sv[1]);
}

static void test_deadline_full_peer(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    int small = 4096;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    static uint8_t body[HSMD_FRAME_MAX];
    memset(body, 0x42, sizeof body);
    /* The peer never reads: the writer gives up at its deadline instead of blocking. */
    int64_t deadline = hsmd_deadline_after(50);
    assert_int_equal(hsmd_frame_write(sv[0], deadline, body, sizeof body), PT_ERR_TIMEOUT);
    assert_true(hsmd_now_ms() >= deadline);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_to_closed_peer(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    close(sv[1]);
    static const uint8_t body[HSMD_HEADER_LEN] = {0x48, 0x53, 0x4d, 0x44, 1, 1};
    /* EPIPE, not SIGPIPE (which would end this test program). */
    assert_int_equal(hsmd_frame_write(sv[0], hsmd_deadline_after(1000), body, sizeof body),
                     PT_ERR_ERRNO);
    close(sv[0]);
}

typedef struct trickle_arg {
    int fd;
    const uint8_t *data;
    size_t len;
} trickle_arg;

/* Send a frame one byte per write. */
static void *trickle_writer(void *p)
{
    trickle_arg *a = p;
    for (size_t i = 0; i < a->len; i++)
        if (send(a->fd, a->data + i, 1, MSG_NOSIGNAL) != 1)
            break;
    return NULL;
}

static void test_partial_reads(void **state)
{
    (void)state;
    hsmd_request req, out;
    uint8_t *body = NULL;
    size_t len = 0;
    request_init(&req, HSMD_MSG_CERT, 12, "ITLRecovery", NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);
    uint8_t frame[128];
    frame[0] = frame[1] = frame[2] = 0;
    frame[3] = (uint8_t)len;
    memcpy(frame + 4, body, len);

    int sv[2];
    make_pair(sv);
    trickle_arg a = {sv[1], frame, len + 4};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, trickle_writer, &a), 0);
    uint8_t *got = NULL;
    size_t got_len = 0;
    assert_int_equal(hsmd_frame_read(sv[0], hsmd_deadline_after(10000), &got, &got_len), PT_OK);
    pthread_join(t, NULL);
    assert_int_equal(got_len, len);
    assert_int_equal(hsmd_request_parse(got, got_len, &out), PT_OK);
    assert_string_equal(out.label, "ITLRecovery");
    OPENSSL_free(got);
    OPENSSL_free(body);
    close(sv[0]);
    close(sv[1]);
}

typedef struct slow_reader_arg {
    int fd;
    uint8_t *buf;
    size_t len;
} slow_reader_arg;

/* Read in small pieces so the writer sees a full socket and short writes. */
static void *slow_reader(void *p)
{
    slow_reader_arg *a = p;
    size_t got = 0;
    while (got < a->len) {
        size_t want = a->len - got < 1000 ? a->len - got : 1000;
        ssize_t n = recv(a->fd, a->buf + got, want, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    a->len = got;
    return NULL;
}

static void test_partial_writes(void **state)
{
    (void)state;
    static uint8_t file[HSMD_FILE_MAX];
    for (size_t i = 0; i < sizeof file; i++)
        file[i] = (uint8_t)(i * 13 + 1);
    hsmd_request req, out;
    uint8_t *body = NULL;
    size_t len = 0;
    request_init(&req, HSMD_MSG_SIGN_TLV, 99, "ITLRecovery", file, sizeof file);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);

    int sv[2];
    make_pair(sv);
    int small = 4096;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    uint8_t *received = OPENSSL_malloc(len + 4);
    slow_reader_arg a = {sv[1], received, len + 4};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_reader, &a), 0);
    assert_int_equal(hsmd_frame_write(sv[0], hsmd_deadline_after(20000), body, len), PT_OK);
    pthread_join(t, NULL);
    assert_int_equal(a.len, len + 4);
    uint32_t declared = 0;
    assert_int_equal(hsmd_frame_length_check(received, &declared), PT_OK);
    assert_int_equal(declared, len);
    assert_int_equal(hsmd_request_parse(received + 4, len, &out), PT_OK);
    assert_memory_equal(out.data, file, sizeof file);
    OPENSSL_free(received);
    OPENSSL_free(body);
    close(sv[0]);
    close(sv[1]);
}

static void test_frames_back_to_back(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    hsmd_request req, out;
    uint8_t *body = NULL;
    size_t len = 0;
    for (uint32_t id = 1; id <= 3; id++) {
        request_init(&req, HSMD_MSG_STATUS, id, NULL, NULL, 0);
        assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);
        assert_int_equal(hsmd_frame_write(sv[1], hsmd_deadline_after(1000), body, len), PT_OK);
        OPENSSL_free(body);
    }
    /* Each read takes exactly one frame, never part of the next. */
    for (uint32_t id = 1; id <= 3; id++) {
        assert_int_equal(hsmd_frame_read(sv[0], hsmd_deadline_after(1000), &body, &len), PT_OK);
        assert_int_equal(hsmd_request_parse(body, len, &out), PT_OK);
        assert_int_equal(out.id, id);
        OPENSSL_free(body);
    }
    close(sv[0]);
    close(sv[1]);
}

/* Not every descriptor is a socket: a pipe takes the read/write path. */
static void test_frames_over_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    hsmd_request req, out;
    uint8_t *body = NULL;
    size_t len = 0;
    request_init(&req, HSMD_MSG_CERT, 5, "CAPF-CA", NULL, 0);
    assert_int_equal(hsmd_request_encode(&req, &body, &len), PT_OK);
    assert_int_equal(hsmd_frame_write(p[1], hsmd_deadline_after(1000), body, len), PT_OK);
    OPENSSL_free(body);
    close(p[1]);
    assert_int_equal(hsmd_frame_read(p[0], hsmd_deadline_after(1000), &body, &len), PT_OK);
    assert_int_equal(hsmd_request_parse(body, len, &out), PT_OK);
    assert_string_equal(out.label, "CAPF-CA");
    OPENSSL_free(body);
    assert_int_equal(hsmd_frame_read(p[0], hsmd_deadline_after(1000), &body, &len), PT_ERR_IO);
    close(p[0]);
}

static void test_names_and_mappings(void **state)
{
    (void)state;
    assert_string_equal(hsmd_msg_type_name(HSMD_MSG_SIGN_TLV), "sign-tlv");
    assert_string_equal(hsmd_msg_type_name(0x33), "unknown");
    assert_string_equal(hsmd_error_code_name(HSMD_ERR_REFUSED_BY_POLICY), "refused-by-policy");
    assert_string_equal(hsmd_error_code_name(HSMD_ERR_UNSUPPORTED_VERSION), "unsupported-version");
    assert_string_equal(hsmd_error_code_name(0), "unknown");
    assert_int_equal(hsmd_error_code_to_pt_err(HSMD_ERR_UNKNOWN_KEY), PT_ERR_NOT_FOUND);
    assert_int_equal(hsmd_error_code_to_pt_err(HSMD_ERR_HSM_UNAVAILABLE), PT_ERR_TOKEN_GONE);
    assert_int_equal(hsmd_error_code_to_pt_err(1234), PT_ERR_REFUSED);
    assert_int_equal(hsmd_error_code_from_pt_err(PT_ERR_NOT_FOUND), HSMD_ERR_UNKNOWN_KEY);
    assert_int_equal(hsmd_error_code_from_pt_err(PT_ERR_PIN_LOCKED), HSMD_ERR_HSM_UNAVAILABLE);
    assert_int_equal(hsmd_error_code_from_pt_err(PT_ERR_NOMEM), HSMD_ERR_INTERNAL);
    /* Every code maps back to the pt_err it came from. */
    for (int code = HSMD_ERR_BAD_REQUEST; code <= HSMD_ERR_UNSUPPORTED_VERSION; code++) {
        if (code == HSMD_ERR_NOT_ALLOWED)
            continue; /* hsmd chooses it itself; no pt_err stands for it */
        assert_int_equal(hsmd_error_code_from_pt_err(hsmd_error_code_to_pt_err(code)), code);
    }
    assert_true(hsmd_label_valid("ITLRecovery"));
    assert_false(hsmd_label_valid(""));
    assert_false(hsmd_label_valid(NULL));
    assert_false(hsmd_label_valid("CAPF CA"));
    assert_false(hsmd_label_valid("\xc3\xa9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_requests),
        cmocka_unit_test(test_roundtrip_responses),
        cmocka_unit_test(test_document_examples),
        cmocka_unit_test(test_unsupported_version),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_bad_response_fields),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_set_error_sanitises),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_length_check),
        cmocka_unit_test(test_oversized_not_read),
        cmocka_unit_test(test_truncated_frames),
        cmocka_unit_test(test_deadline_silent_peer),
        cmocka_unit_test(test_deadline_full_peer),
        cmocka_unit_test(test_write_to_closed_peer),
        cmocka_unit_test(test_partial_reads),
        cmocka_unit_test(test_partial_writes),
        cmocka_unit_test(test_frames_back_to_back),
        cmocka_unit_test(test_frames_over_pipe),
        cmocka_unit_test(test_names_and_mappings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
