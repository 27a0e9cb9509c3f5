/*
 * CAPF protocol messages: framing, elements, and the layout of every message
 * (../shared/spec/capf-protocol.md §2, §4-§8, §10).
 *
 * Reading: capf_msg_header_parse() checks the 8 header bytes on their own so
 * that a reader can refuse a bad PROTOCOL_ID, an over-limit LENGTH or a wrong
 * session ID before it buffers the body; capf_msg_parse_body() then parses the
 * elements. Elements are kept by tag (the last occurrence wins, §4); unknown
 * tags are skipped and reported, never fatal.
 *
 * Writing: each message is declared once in a layout table (allowed elements,
 * required elements, write order). capf_msg_encode() writes only allowed
 * elements, in table order, and refuses a message that lacks a required one.
 * The builders below produce one contiguous buffer (header + elements) so that
 * the caller can hand it to TLS in a single write (§2 writing rule).
 */
#ifndef CAPF_MSG_H
#define CAPF_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_error.h"

/* Framing (§1, §2). */
#define CAPF_PORT        3804
#define CAPF_PROTOCOL_ID 0x55
#define CAPF_VERSION     3
#define CAPF_HEADER_LEN  8
/* Largest message (header + elements) we write: one TLS record (§2, CAPF-U2). */
#define CAPF_MSG_MAX 16384
/*
 * Largest message we read. Twice the write limit: tolerant of a peer that
 * writes bigger messages than we do (the largest known one, a certificate
 * AUTH_RESPONSE with a SUDI, is about 6 KB), while a session never buffers more
 * than 32 KB. LENGTH beyond CAPF_MSG_READ_MAX - CAPF_HEADER_LEN is refused
 * from the header alone.
 */
#define CAPF_MSG_READ_MAX 32768
/* Largest element value the u16 LENGTH can express. */
#define CAPF_EL_VALUE_MAX 65535

/* Commands (§5). */
enum {
    CAPF_CMD_AUTH_REQUEST = 1,
    CAPF_CMD_AUTH_RESPONSE = 2,
    CAPF_CMD_KEY_GENERATE_REQUEST = 3,
    CAPF_CMD_KEY_GENERATE_RESPONSE = 4,
    CAPF_CMD_ENCRYPT_RESPONSE = 5,
    CAPF_CMD_ENCRYPT_REQUEST = 6,
    CAPF_CMD_DECRYPT_REQUEST = 7,
    CAPF_CMD_DECRYPT_RESPONSE = 8,
    CAPF_CMD_STORE_CERTIFICATE_REQUEST = 9,
    CAPF_CMD_STORE_CERTIFICATE_RESPONSE = 10,
    CAPF_CMD_FETCH_CERTIFICATE_REQUEST = 11,
    CAPF_CMD_FETCH_CERTIFICATE_RESPONSE = 12,
    CAPF_CMD_DELETE_CERTIFICATE_REQUEST = 13,
    CAPF_CMD_DELETE_CERTIFICATE_RESPONSE = 14,
    CAPF_CMD_END_SESSION = 15,
    CAPF_CMD_RETRY_LATER = 16,
    CAPF_CMD_REQUEST_IN_PROGRESS = 17,
    CAPF_CMD_STATUS_REQUEST = 18,
    CAPF_CMD_STATUS_RESPONSE = 19,
    CAPF_CMD_ABORT_REQUEST = 20,
    CAPF_CMD_ABORT_RESPONSE = 21,
    CAPF_CMD_SIGN_CERTIFICATE_REQUEST = 22,
    CAPF_CMD_SIGN_CERTIFICATE_RESPONSE = 23,
};

/* Element tags (§6). 14 and 15 are undefined. */
enum {
    CAPF_EL_REASON = 1,
    CAPF_EL_REASON_INFO = 2,
    CAPF_EL_CERTIFICATE_TYPE = 3,
    CAPF_EL_CERTIFICATE = 4,
    CAPF_EL_CERTIFICATE_ID = 5,
    CAPF_EL_SIGNED_DATA = 6,
    CAPF_EL_VERSION = 7,
    CAPF_EL_AUTH_TYPE = 8,
    CAPF_EL_PUBLIC_KEY = 9,
    CAPF_EL_KEY_SIZE = 10,
    CAPF_EL_PASSWORD = 11,
    CAPF_EL_RETRY_DELAY = 12,
    CAPF_EL_DEVICE_NAME = 13,
    CAPF_EL_SUDI_DATA = 16,
    CAPF_EL_KEY_TYPE = 17,
    CAPF_EL_CURVE = 18,
    CAPF_EL_DIGEST_TYPE = 19,
    CAPF_EL_SHA2_SIGNED_DATA = 20,
};

/* Reason codes (§7.1); others are unknown (CAPF-U11). */
enum {
    CAPF_REASON_NO_ACTION = 0,
    CAPF_REASON_OK = 1, /* "UPDATE_CERTIFICATE" */
    CAPF_REASON_UPDATE_CERTIFICATE = 1,
    CAPF_REASON_INVALID_ELEMENT = 7,
    CAPF_REASON_UNKNOWN_DEVICE = 9,
};

/* Authentication types (§7.2). Servers send CAPF_AUTH_NONE (CAPF-U3). */
enum {
    CAPF_AUTH_NONE = 0,
    CAPF_AUTH_STRING = 1,
    CAPF_AUTH_NO_PASSWORD = 2,
    CAPF_AUTH_LSC = 3,
    CAPF_AUTH_MIC = 4,
};

/* Certificate types (§7.3). */
enum {
    CAPF_CERT_LSC = 1,
    CAPF_CERT_MIC = 2,
};

/* Key types (§7.4) and curves (§7.5). */
enum {
    CAPF_KEY_RSA = 0,
    CAPF_KEY_EC = 1,
};
enum {
    CAPF_CURVE_P256 = 0, /* secp256r1 / prime256v1 */
    CAPF_CURVE_P384 = 1, /* secp384r1 */
    CAPF_CURVE_P521 = 2, /* secp521r1 */
};

/* Digest codes (§7.6). */
enum {
    CAPF_DIGEST_SHA1 = 1,
    CAPF_DIGEST_SHA256 = 2,
    CAPF_DIGEST_SHA512 = 3,
};

/* Names for logs: "AUTH_REQUEST", "DEVICE_NAME", "INVALID_ELEMENT"; "?" when unknown. */
const char *capf_cmd_name(uint8_t command);
const char *capf_el_name(uint8_t tag);
const char *capf_reason_name(uint8_t reason);
/* True for the tags §6 defines (1-13, 16-20). */
bool capf_el_is_known(uint8_t tag);

/* ------------------------------------------------------------------------ */
/* Message layouts (§4 write order, §10 element sets)                        */

typedef enum capf_dir {
    CAPF_DIR_UNKNOWN = 0, /* commands with no known flow (5-8, 18-23) */
    CAPF_DIR_SERVER_TO_CLIENT,
    CAPF_DIR_CLIENT_TO_SERVER,
} capf_dir;

typedef struct capf_el_rule {
    uint8_t tag;
    bool required; /* a writer must send it (readers may be more lenient) */
} capf_el_rule;

typedef struct capf_msg_layout {
    uint8_t command;
    capf_dir dir;
    /* Allowed elements in write order; NULL/0 for a message without elements. */
    const capf_el_rule *rules;
    size_t n_rules;
    /*
     * true when the element set is the caller's choice (RETRY_LATER, whose
     * layout is unknown, CAPF-U13): any §6 tag, written in the caller's order.
     */
    bool open;
} capf_msg_layout;

/* The layout of a command, or NULL for commands with no known layout. */
const capf_msg_layout *capf_msg_layout_find(uint8_t command);

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

typedef struct capf_header {
    uint8_t command;
    uint32_t session_id;
    uint16_t length; /* bytes of elements that follow the header */
} capf_header;

/*
 * Parse the 8 header bytes. PT_ERR_PROTOCOL when PROTOCOL_ID is not 0x55
 * (abort the session), PT_ERR_LIMIT when LENGTH exceeds the read limit
 * (refuse before buffering). The caller checks session_id (§3).
 */
pt_err capf_msg_header_parse(const uint8_t hdr[CAPF_HEADER_LEN], capf_header *out);

/* A parsed message; owns a copy of its elements. */
typedef struct capf_msg capf_msg;

/*
 * Parse the elements that follow hdr; len must equal hdr->length. Unknown
 * tags are skipped; a fixed-size element (u8/u16) shorter than its type, or an
 * element that crosses the end, is PT_ERR_FORMAT.
 */
pt_err capf_msg_parse_body(const capf_header *hdr, const uint8_t *body, size_t len, capf_msg **out);
/* Parse a whole message (header + exactly LENGTH bytes of elements). */
pt_err capf_msg_parse(const uint8_t *data, size_t len, capf_msg **out);
/* Free m (wiping it: it may hold a password). NULL is fine. */
void capf_msg_free(capf_msg *m);

uint8_t capf_msg_command(const capf_msg *m);
uint32_t capf_msg_session_id(const capf_msg *m);
bool capf_msg_has(const capf_msg *m, uint8_t tag);

/*
 * What the parser noticed and tolerated, each tag listed once in order of
 * first occurrence; the pointer stays valid as long as m. Log them.
 *   unknown:    tags §6 does not define; skipped (not stored).
 *   unexpected: §6 tags that the command's layout does not allow; kept.
 *   oversized:  fixed-size elements longer than their type; kept, readers use
 *               the leading bytes as known readers do.
 *   repeated:   tags that occurred more than once; the last one is kept.
 */
const uint8_t *capf_msg_unknown_tags(const capf_msg *m, size_t *n);
const uint8_t *capf_msg_unexpected_tags(const capf_msg *m, size_t *n);
const uint8_t *capf_msg_oversized_tags(const capf_msg *m, size_t *n);
const uint8_t *capf_msg_repeated_tags(const capf_msg *m, size_t *n);
/*
 * One line for a log describing the above ("unknown tags 14,21; repeated 1"),
 * or "" when there is nothing to say. Returns out.
 */
char *capf_msg_notes_format(const capf_msg *m, char *out, size_t outlen);

/*
 * Typed getters. All return PT_ERR_NOT_FOUND when the element is absent and
 * PT_ERR_FORMAT when its value does not have the right shape. Pointers point
 * into m and stay valid as long as m.
 */
pt_err capf_msg_get_u8(const capf_msg *m, uint8_t tag, uint8_t *v);
pt_err capf_msg_get_u16(const capf_msg *m, uint8_t tag, uint16_t *v);
pt_err capf_msg_get_bytes(const capf_msg *m, uint8_t tag, const uint8_t **p, size_t *len);
/*
 * A NUL-terminated string element: the value must end with its only 0x00.
 * *len excludes the NUL (the empty PASSWORD `00` gives "" and 0).
 */
pt_err capf_msg_get_string(const capf_msg *m, uint8_t tag, const char **s, size_t *len);
/*
 * CERTIFICATE (§8.1): the DER certificate at value[5..], which must be one
 * DER SEQUENCE filling the rest. The inner tag, inner length and type bytes
 * are ignored, as known readers do (CAPF-U9).
 */
pt_err capf_msg_get_certificate(const capf_msg *m, const uint8_t **der, size_t *len);

/* SHA2_SIGNED_DATA (§8.2). The digest code is returned, not judged. */
typedef struct capf_sha2_signed {
    uint8_t digest;
    const uint8_t *sig;
    size_t sig_len;
} capf_sha2_signed;
pt_err capf_msg_get_sha2_signed_data(const capf_msg *m, capf_sha2_signed *out);

/* SUDI_DATA (§8.3): three items, each u8 type, u16 length, bytes. */
typedef struct capf_sudi {
    uint8_t cert_type; /* 0x00 as sent by known clients (CAPF-U10) */
    const uint8_t *cert;
    size_t cert_len;
    uint8_t sha1_type; /* 0x01 */
    const uint8_t *sha1_sig;
    size_t sha1_sig_len;
    uint8_t sha512_type; /* must be 3; checked by capf_auth */
    const uint8_t *sha512_sig;
    size_t sha512_sig_len;
} capf_sudi;
pt_err capf_msg_get_sudi(const capf_msg *m, capf_sudi *out);

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

/* One element to write; the encoder copies the value. */
typedef struct capf_el {
    uint8_t tag;
    const uint8_t *value;
    size_t len;
} capf_el;

/*
 * Encode a message from elements given in any order: each must be allowed by
 * the command's layout (PT_ERR_USAGE otherwise), at most once, fixed-size
 * elements with exactly their size; every required element must be present.
 * Output is written in layout order, at most CAPF_MSG_MAX bytes (PT_ERR_LIMIT).
 * Free *buf with capf_msg_buf_free().
 */
pt_err capf_msg_encode(uint8_t command, uint32_t session_id, const capf_el *els, size_t n,
                       uint8_t **buf, size_t *len);
/* Wipe and free a buffer from an encoder or builder (it may hold a password). */
void capf_msg_buf_free(uint8_t *buf, size_t len);

/*
 * The CERTIFICATE value (§8.1) for a DER certificate: 01, u16 N+2, u16 type, DER.
 * type is CAPF_CERT_LSC (`00 01`, what known peers write for every certificate)
 * or CAPF_CERT_MIC. Free with OPENSSL_free.
 */
pt_err capf_cert_wrap(const uint8_t *der, size_t der_len, uint16_t type, uint8_t **out,
                      size_t *out_len);

/* Server → client (§10). */
/* AUTH_REQUEST{VERSION=3, AUTH_TYPE=0} (§10.1 step 2). */
pt_err capf_msg_build_auth_request(uint32_t sid, uint8_t **buf, size_t *len);
/* KEY_GENERATE_REQUEST{KEY_SIZE=bits, KEY_TYPE=0}; bits 512, 1024, 2048, 3072 or 4096. */
pt_err capf_msg_build_key_generate_request_rsa(uint32_t sid, unsigned bits, uint8_t **buf,
                                               size_t *len);
/* KEY_GENERATE_REQUEST{KEY_TYPE=1, CURVE=curve}; curve CAPF_CURVE_*. */
pt_err capf_msg_build_key_generate_request_ec(uint32_t sid, uint8_t curve, uint8_t **buf,
                                              size_t *len);
/* STORE_CERTIFICATE_REQUEST{CERTIFICATE_TYPE=1, CERTIFICATE=wrapped LSC}. */
pt_err capf_msg_build_store_certificate_request(uint32_t sid, const uint8_t *der, size_t der_len,
                                                uint8_t **buf, size_t *len);
/* FETCH_CERTIFICATE_REQUEST{} and DELETE_CERTIFICATE_REQUEST{}. */
pt_err capf_msg_build_fetch_request(uint32_t sid, uint8_t **buf, size_t *len);
pt_err capf_msg_build_delete_request(uint32_t sid, uint8_t **buf, size_t *len);
/* END_SESSION{REASON=reason}. */
pt_err capf_msg_build_end_session(uint32_t sid, uint8_t reason, uint8_t **buf, size_t *len);
/*
 * RETRY_LATER with the caller's elements in the caller's order (CAPF-U13: no
 * known peer understands it; capfd keeps it disabled by default).
 */
pt_err capf_msg_build_retry_later(uint32_t sid, const capf_el *els, size_t n, uint8_t **buf,
                                  size_t *len);

/* Client → server (§10). */
/*
 * AUTH_RESPONSE{REASON=1, VERSION=3, PASSWORD, DEVICE_NAME} for null and
 * password authentication. password "" sends the empty string `00` (what
 * known clients do when they have none); NULL omits PASSWORD (as a softphone
 * did). device_name: 1-64 printable ASCII characters.
 */
pt_err capf_msg_build_auth_response(uint32_t sid, const char *device_name, const char *password,
                                    uint8_t **buf, size_t *len);

/* Inputs of a certificate AUTH_RESPONSE (§9.3, §9.4). */
typedef struct capf_cert_auth {
    const char *device_name;
    const char *password; /* as for capf_msg_build_auth_response */
    const uint8_t *cert;  /* DER of the LSC or MIC authenticated with */
    size_t cert_len;
    const uint8_t *signed_data; /* SHA-1 signature over the auth blob */
    size_t signed_data_len;
    const uint8_t *sha2_sig; /* SHA-512 signature; the builder adds `03` u16 L */
    size_t sha2_sig_len;
    /* SUDI_DATA, sent when sudi_cert is not NULL. */
    const uint8_t *sudi_cert;
    size_t sudi_cert_len;
    const uint8_t *sudi_sha1_sig;
    size_t sudi_sha1_sig_len;
    const uint8_t *sudi_sha512_sig;
    size_t sudi_sha512_sig_len;
} capf_cert_auth;
/* AUTH_RESPONSE{REASON=1, CERTIFICATE, SIGNED_DATA, VERSION=3, PASSWORD, DEVICE_NAME,
 * [SUDI_DATA], SHA2_SIGNED_DATA}. */
pt_err capf_msg_build_auth_response_cert(uint32_t sid, const capf_cert_auth *a, uint8_t **buf,
                                         size_t *len);
/* REQUEST_IN_PROGRESS{}. */
pt_err capf_msg_build_request_in_progress(uint32_t sid, uint8_t **buf, size_t *len);

/* No REASON element (for reason arguments that are optional). */
#define CAPF_NO_REASON (-1)
/*
 * KEY_GENERATE_RESPONSE{[REASON], [PUBLIC_KEY]}: spki NULL when key generation
 * failed; reason CAPF_NO_REASON or a reason code.
 */
pt_err capf_msg_build_key_generate_response(uint32_t sid, const uint8_t *spki, size_t spki_len,
                                            int reason, uint8_t **buf, size_t *len);
/* STORE_CERTIFICATE_RESPONSE{REASON}. */
pt_err capf_msg_build_store_certificate_response(uint32_t sid, uint8_t reason, uint8_t **buf,
                                                 size_t *len);
/* FETCH_CERTIFICATE_RESPONSE{REASON, [CERTIFICATE]}: der NULL sends REASON only. */
pt_err capf_msg_build_fetch_response(uint32_t sid, uint8_t reason, const uint8_t *der,
                                     size_t der_len, uint8_t **buf, size_t *len);
/* DELETE_CERTIFICATE_RESPONSE{REASON}. */
pt_err capf_msg_build_delete_response(uint32_t sid, uint8_t reason, uint8_t **buf, size_t *len);

#endif
