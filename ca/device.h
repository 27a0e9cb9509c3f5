/*
 * What a CAPF device is made of, as names and values that capfctl reads from
 * administrators and capfd reads from the store: device names, scheduled
 * operations, authentication modes and strings, key specifications and the
 * status of the last operation. Parsing, validation and formatting only; no
 * storage here (see store.h).
 */
#ifndef CAPF_DEVICE_H
#define CAPF_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "pt_error.h"

/*
 * Device names. Two rules:
 *
 * - What the store and capfd accept (spec §9.1): 1 to CAPF_DEVICE_NAME_MAX
 *   printable ASCII characters (0x21-0x7e), looked up exactly as received.
 *
 * - What an administrator may create (capfctl add, import), at most
 *   CAPF_DEVICE_NAME_ADMIN_MAX characters as CUCM allows, letters folded to
 *   upper case:
 *     SEP or ATA followed by exactly 12 hex digits (the MAC address of a phone
 *       or an analogue adapter port), e.g. SEP58971ECC97C1;
 *     CSF, BOT, TCT or TAB (Jabber/Webex softphones on desktops, Android,
 *       iPhone, iPad) followed by 1 to 12 of A-Z 0-9 . _ -
 */
#define CAPF_DEVICE_NAME_MAX       64
#define CAPF_DEVICE_NAME_ADMIN_MAX 15

/* True when name (len bytes, no NUL needed) is a name capfd may look up. */
bool capf_device_name_acceptable(const char *name, size_t len);

/*
 * Check text against the administrator's rule and write its canonical form
 * (upper case) to out. PT_ERR_USAGE with a message that says what a valid
 * name looks like.
 */
pt_err capf_device_name_normalize(const char *text, char out[CAPF_DEVICE_NAME_ADMIN_MAX + 1]);

/* Authentication strings: 4 to 10 ASCII digits (CAPF-U14: what phones accept). */
#define CAPF_DEVICE_AUTH_STRING_MIN     4
#define CAPF_DEVICE_AUTH_STRING_MAX     10
#define CAPF_DEVICE_AUTH_STRING_DEFAULT 8

/* PT_ERR_USAGE unless text is 4 to 10 ASCII digits. The message never repeats text. */
pt_err capf_device_auth_string_check(const char *text);

/*
 * A uniformly random string of len digits (4..10) from the CSPRNG, in out
 * (at least len + 1 bytes). Wipe it with OPENSSL_cleanse when done.
 */
pt_err capf_device_auth_string_generate(size_t len, char *out, size_t outlen);

/* Free-text descriptions: valid UTF-8 without control characters, at most this many bytes. */
#define CAPF_DEVICE_DESCRIPTION_MAX 128
pt_err capf_device_description_check(const char *text);

/* The certificate operation scheduled for a device. */
typedef enum capf_device_op {
    CAPF_DEVICE_OP_NONE = 0,
    CAPF_DEVICE_OP_INSTALL,      /* install or upgrade the LSC (§10.2, §10.3) */
    CAPF_DEVICE_OP_DELETE,       /* delete the LSC (§10.5) */
    CAPF_DEVICE_OP_TROUBLESHOOT, /* fetch the phone's LSC or MIC (§10.4) */
} capf_device_op;

/* "none", "install", "delete", "troubleshoot". */
const char *capf_device_op_name(capf_device_op op);
pt_err capf_device_op_parse(const char *text, capf_device_op *out);

/* How a device authenticates to capfd (§9.2). */
typedef enum capf_device_auth {
    CAPF_DEVICE_AUTH_NULL = 0, /* no check */
    CAPF_DEVICE_AUTH_STRING,   /* a one-time authentication string */
    CAPF_DEVICE_AUTH_LSC,      /* its existing LSC (§9.3) */
    CAPF_DEVICE_AUTH_MIC,      /* its manufacturer-installed certificate (§9.3) */
} capf_device_auth;

/* "null", "string", "lsc", "mic". */
const char *capf_device_auth_name(capf_device_auth mode);
pt_err capf_device_auth_parse(const char *text, capf_device_auth *out);

/* Which key the phone is asked to generate. */
typedef enum capf_device_key_kind {
    CAPF_DEVICE_KEY_DEFAULT = 0,  /* capfd's service parameter */
    CAPF_DEVICE_KEY_RSA,          /* RSA of rsa_bits */
    CAPF_DEVICE_KEY_EC,           /* EC on curve */
    CAPF_DEVICE_KEY_EC_PREFERRED, /* EC on curve, RSA of rsa_bits when the phone cannot */
} capf_device_key_kind;

/* NIST curves by name; capfd maps them to the protocol's CURVE codes (§7.5). */
typedef enum capf_device_curve {
    CAPF_DEVICE_CURVE_P256 = 0,
    CAPF_DEVICE_CURVE_P384,
    CAPF_DEVICE_CURVE_P521,
} capf_device_curve;

typedef struct capf_device_key {
    capf_device_key_kind kind;
    unsigned rsa_bits;       /* RSA and EC_PREFERRED: 1024, 2048, 3072 or 4096 */
    capf_device_curve curve; /* EC and EC_PREFERRED */
} capf_device_key;

/* Longest canonical key text ("ec-preferred:P-256/rsa:2048") plus NUL. */
#define CAPF_DEVICE_KEY_TEXT_MAX 32

/*
 * "default", "rsa:1024|2048|3072|4096", "ec:P-256|P-384|P-521" or
 * "ec-preferred:<curve>/rsa:<bits>" (e.g. "ec-preferred:P-256/rsa:2048").
 */
pt_err capf_device_key_parse(const char *text, capf_device_key *out);
/* The canonical text of key, as parsed back by capf_device_key_parse. */
void capf_device_key_format(const capf_device_key *key, char out[CAPF_DEVICE_KEY_TEXT_MAX]);

/* The state of the last or current operation. */
typedef enum capf_device_state {
    CAPF_DEVICE_STATE_NONE = 0, /* no operation has been scheduled yet */
    CAPF_DEVICE_STATE_PENDING,
    CAPF_DEVICE_STATE_SUCCESS,
    CAPF_DEVICE_STATE_FAILED,
} capf_device_state;

/* "none", "pending", "success", "failed". */
const char *capf_device_state_name(capf_device_state state);
pt_err capf_device_state_parse(const char *text, capf_device_state *out);

/* Longest status text: an operation, a state and a reason. */
#define CAPF_DEVICE_REASON_MAX      200
#define CAPF_DEVICE_STATUS_TEXT_MAX (32 + CAPF_DEVICE_REASON_MAX)

/*
 * "none", "install pending", "delete success", "install failed: expired"
 * (reason may be NULL or empty).
 */
void capf_device_status_format(capf_device_op op, capf_device_state state, const char *reason,
                               char out[CAPF_DEVICE_STATUS_TEXT_MAX]);

#endif
