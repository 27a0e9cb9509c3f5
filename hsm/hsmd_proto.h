/*
 * The wire protocol between hsmd and its local clients (capfd, ctlclient,
 * hsmctl). hsm/PROTOCOL.md describes every byte; this header is its C face.
 *
 * A frame is a u32 big-endian body length followed by the body. The body is a
 * fixed 10-byte header (magic "HSMD", version, message type, request id) and
 * then the message's fields as tag-length-value triples in ascending tag
 * order. Each message declares its fields once, in a table in hsmd_proto.c;
 * encoding and parsing both work from that table, so the encoder can never
 * produce what the parser refuses, and every message has exactly one encoding.
 *
 * Parsed messages borrow: the label is copied, but data, payload and similar
 * pointers point into the body that was parsed, which must outlive them.
 */
#ifndef HSMD_PROTO_H
#define HSMD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_error.h"

/* The only version this code speaks. A peer that sends another gets an error saying so. */
#define HSMD_PROTO_VERSION 1
/* "HSMD" in ASCII, the first four bytes of every body. */
#define HSMD_PROTO_MAGIC 0x48534d44u

/*
 * Largest body a peer may declare. A CTL is at most 75 KB, a certificate a few
 * KB, so 256 KiB leaves room without letting a client make hsmd buffer much.
 * A larger declared length is refused before any of the body is read.
 */
#define HSMD_FRAME_MAX (256 * 1024)
/* Bytes of the length prefix and of the fixed body header. */
#define HSMD_FRAME_PREFIX_LEN 4
#define HSMD_HEADER_LEN       10

/* Field bounds (see PROTOCOL.md). */
#define HSMD_LABEL_MAX   64           /* key label: 1..64 printable ASCII, no space */
#define HSMD_TBS_MAX     (64 * 1024)  /* DER TBSCertificate (= PT_DER_CERT_MAX) */
#define HSMD_FILE_MAX    (128 * 1024) /* CTL/ITL file to sign */
#define HSMD_REASON_MAX  1024         /* UTF-8 reason text of an ERROR */
#define HSMD_PAYLOAD_MAX (HSMD_FRAME_MAX - HSMD_HEADER_LEN - 5)

typedef enum hsmd_msg_type {
    HSMD_MSG_STATUS = 0x01,   /* request: health, keys, HSM state, counters */
    HSMD_MSG_CERT = 0x02,     /* request: the certificate of a key */
    HSMD_MSG_ISSUE = 0x03,    /* request: sign a DER TBSCertificate */
    HSMD_MSG_SIGN_TLV = 0x04, /* request: sign a CTL/ITL file */
    HSMD_MSG_OK = 0x81,       /* response: success, with a payload */
    HSMD_MSG_ERROR = 0x82,    /* response: refusal or failure, with a code and reason */
} hsmd_msg_type;

/*
 * Stable error codes carried by ERROR responses. Values never change meaning;
 * new ones may be added, and a reader treats a code it does not know as a
 * refusal.
 */
typedef enum hsmd_error_code {
    HSMD_ERR_BAD_REQUEST = 1,         /* the request was malformed */
    HSMD_ERR_UNKNOWN_KEY = 2,         /* no key with that label is configured */
    HSMD_ERR_NOT_ALLOWED = 3,         /* the key exists but not for this operation or peer */
    HSMD_ERR_REFUSED_BY_POLICY = 4,   /* the input failed the key's policy (lint) */
    HSMD_ERR_HSM_UNAVAILABLE = 5,     /* the HSM is missing, logged out or failing */
    HSMD_ERR_BUSY = 6,                /* at capacity; try again later */
    HSMD_ERR_INTERNAL = 7,            /* a bug or an audit log failure in hsmd */
    HSMD_ERR_UNSUPPORTED_VERSION = 8, /* the request used another protocol version */
} hsmd_error_code;

typedef struct hsmd_request {
    hsmd_msg_type type;
    uint32_t id;                    /* echoed in the response */
    char label[HSMD_LABEL_MAX + 1]; /* CERT, ISSUE, SIGN_TLV; "" for STATUS */
    const uint8_t *data;            /* ISSUE: the TBS; SIGN_TLV: the file; else NULL */
    size_t data_len;
    uint8_t version; /* set by parse (also when it is unsupported) */
} hsmd_request;

typedef struct hsmd_response {
    hsmd_msg_type type;
    uint32_t id;
    const uint8_t *payload; /* OK: certificate DER, signed file or status JSON */
    size_t payload_len;
    uint16_t code;                    /* ERROR: an hsmd_error_code (maybe one unknown here) */
    char reason[HSMD_REASON_MAX + 1]; /* ERROR: UTF-8 text, NUL-terminated */
    uint8_t version;                  /* set by parse (also when it is unsupported) */
} hsmd_response;

/*
 * Encode a message body (no length prefix; hsmd_frame_write adds it) into a
 * new buffer (free with OPENSSL_free). Refuses (PT_ERR_USAGE) a value the
 * parser would refuse: a bad label, an empty or oversized field, a reason that
 * is not valid UTF-8, a response type in a request and so on.
 */
pt_err hsmd_request_encode(const hsmd_request *req, uint8_t **body, size_t *len);
pt_err hsmd_response_encode(const hsmd_response *resp, uint8_t **body, size_t *len);

/*
 * Parse a body. Errors: PT_ERR_PROTOCOL (not an hsmd body: bad magic, shorter
 * than the header), PT_ERR_UNSUPPORTED (another protocol version; version, type
 * and id are still filled in from the fixed header so the server can answer
 * with HSMD_ERR_UNSUPPORTED_VERSION), PT_ERR_FORMAT (anything else: unknown
 * type or field, fields out of order or repeated, bad lengths or values,
 * missing fields, trailing bytes). req/resp point into body afterwards.
 */
pt_err hsmd_request_parse(const uint8_t *body, size_t len, hsmd_request *req);
pt_err hsmd_response_parse(const uint8_t *body, size_t len, hsmd_response *resp);

/*
 * Fill resp as an ERROR for request id: reason is copied, cut to
 * HSMD_REASON_MAX bytes on a character boundary, with bytes that are not
 * valid UTF-8 or are control characters replaced by '?', so that any text
 * (an OpenSSL message, a subject name) can be sent safely.
 */
void hsmd_response_set_error(hsmd_response *resp, uint32_t id, hsmd_error_code code,
                             const char *reason);

/* A label is 1..HSMD_LABEL_MAX bytes, each printable ASCII other than space (0x21..0x7E). */
bool hsmd_label_valid(const char *label);

/* "issue", "sign-tlv", "cert", "status", "ok", "error"; "unknown" for anything else. */
const char *hsmd_msg_type_name(int type);
/* "bad-request", "unknown-key", ...; "unknown" for codes not listed above. */
const char *hsmd_error_code_name(int code);
/* The client's view of an ERROR code (PT_ERR_REFUSED for codes not listed above). */
pt_err hsmd_error_code_to_pt_err(int code);
/* The server's choice of ERROR code for a failure (PT_ERR_NOT_FOUND -> unknown-key, ...). */
hsmd_error_code hsmd_error_code_from_pt_err(pt_err rc);

/*
 * Deadlines are absolute CLOCK_MONOTONIC times in milliseconds, so that one
 * deadline can cover several reads and writes. HSMD_NO_DEADLINE waits forever.
 */
#define HSMD_NO_DEADLINE INT64_MAX
int64_t hsmd_now_ms(void);
/* now + timeout_ms; HSMD_NO_DEADLINE when timeout_ms is negative. */
int64_t hsmd_deadline_after(int timeout_ms);

/*
 * Check a frame's length prefix: PT_ERR_LIMIT when over HSMD_FRAME_MAX,
 * PT_ERR_PROTOCOL when shorter than the body header.
 */
pt_err hsmd_frame_length_check(const uint8_t prefix[HSMD_FRAME_PREFIX_LEN], uint32_t *body_len);

/*
 * Read one frame from fd (blocking or not) until deadline, into a new buffer
 * (free with OPENSSL_free). Partial reads and EINTR are handled; the declared
 * length is checked before any of the body is read. Errors: PT_ERR_IO when the
 * peer closed the connection before the first byte of a frame (a clean end),
 * PT_ERR_PROTOCOL when it closed inside a frame or declared a bad length,
 * PT_ERR_LIMIT, PT_ERR_TIMEOUT, PT_ERR_ERRNO.
 */
pt_err hsmd_frame_read(int fd, int64_t deadline, uint8_t **body, size_t *len);

/*
 * Write the length prefix and body to fd until deadline. Never raises SIGPIPE
 * on a socket whose peer went away (PT_ERR_ERRNO with EPIPE instead). On
 * sockets the deadline is exact; on pipes a write of more than PIPE_BUF bytes
 * may block past it.
 */
pt_err hsmd_frame_write(int fd, int64_t deadline, const uint8_t *body, size_t len);

#endif
