/*
 * hsmd's configuration file: an INI file read with inih (hsm/README.md,
 * "hsmd.conf", describes every setting and its default).
 *
 *   [hsmd]            the PKCS#11 module and token, the socket, the audit log,
 *                     the thread, queue and timeout sizes
 *   [key NAME]        one per key: NAME is what clients ask for (KEY_LABEL);
 *                     its token label, operation, who may use it, its limits
 *
 * The parser is strict: unknown sections and settings, settings given twice,
 * empty values, indented lines (which inih would glue onto the previous value),
 * over-long lines and NUL bytes are refused, each with its line number. User
 * and group names are resolved once, while parsing.
 */
#ifndef HSMD_CONFIG_H
#define HSMD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hsmd_proto.h"
#include "pt_error.h"

/* Where hsmd looks without --config. */
#define HSMD_CONFIG_DEFAULT_PATH "/etc/phonetrust/hsmd.conf"
/* Largest configuration file read. */
#define HSMD_CONFIG_MAX_BYTES (256 * 1024)
/* Longest line, without its newline (inih's line buffer is 200 bytes). */
#define HSMD_CONFIG_LINE_MAX 198
/* At most this many [key] sections, and users or groups in one list. */
#define HSMD_CONFIG_MAX_KEYS 32
#define HSMD_CONFIG_MAX_IDS  64

/* Defaults (README.md lists them with the settings). */
#define HSMD_DEFAULT_SOCKET            "/run/phonetrust/hsmd.sock"
#define HSMD_DEFAULT_SOCKET_MODE       0660
#define HSMD_DEFAULT_AUDIT_LOG         "/var/lib/phonetrust-hsm/audit.log"
#define HSMD_DEFAULT_SESSIONS          4
#define HSMD_DEFAULT_WORKERS           8
#define HSMD_DEFAULT_QUEUE             64
#define HSMD_DEFAULT_MAX_CLIENTS       128
#define HSMD_DEFAULT_FRAME_TIMEOUT_MS  10000
#define HSMD_DEFAULT_IDLE_TIMEOUT_MS   60000
#define HSMD_DEFAULT_RECOVERY_MS       1000
#define HSMD_DEFAULT_MAX_VALIDITY_DAYS 1827 /* 5 years, leap days included */

/* The operation a key serves. */
typedef enum hsmd_op {
    HSMD_OP_ISSUE = 1,    /* sign end-entity certificates (TBSCertificate) */
    HSMD_OP_SIGN_TLV = 2, /* sign CTL/ITL files */
} hsmd_op;

/* Digests, as a bit set. */
enum {
    HSMD_DIGEST_SHA1 = 1u << 0,
    HSMD_DIGEST_SHA256 = 1u << 1,
    HSMD_DIGEST_SHA384 = 1u << 2,
    HSMD_DIGEST_SHA512 = 1u << 3,
};

typedef struct hsmd_id_list {
    size_t n;
    uint32_t ids[HSMD_CONFIG_MAX_IDS];
} hsmd_id_list;

typedef struct hsmd_key_config {
    char name[HSMD_LABEL_MAX + 1]; /* from [key NAME]: the label clients send */
    char *label;                   /* CKA_LABEL of the private key on the token */
    hsmd_op op;
    char *certificate;      /* PEM/DER file; NULL: the token's certificate with the key's label */
    hsmd_id_list users;     /* allow-users */
    hsmd_id_list groups;    /* allow-groups */
    long max_validity_days; /* issue */
    unsigned digests;       /* HSMD_DIGEST_* */
    unsigned line;          /* line of the [key NAME] header, for messages */
} hsmd_key_config;

typedef struct hsmd_config {
    char *module;    /* PKCS#11 module path (absolute) */
    char *token_uri; /* pkcs11: URI with pin-source */
    char *socket_path;
    mode_t socket_mode;
    bool has_socket_group;
    gid_t socket_group;
    char *audit_log;
    unsigned sessions;    /* PKCS#11 sessions per key */
    unsigned workers;     /* signing threads */
    unsigned queue;       /* signing requests that may wait for a worker */
    unsigned max_clients; /* connections at once */
    int frame_timeout_ms;
    int idle_timeout_ms;
    int recovery_interval_ms;
    int log_level; /* pt_log_level, or -1 when not set */
    hsmd_id_list status_users, status_groups;
    hsmd_key_config keys[HSMD_CONFIG_MAX_KEYS];
    size_t n_keys;
} hsmd_config;

/*
 * Parse a configuration held in memory; name is used in messages ("FILE:LINE:
 * ..."). Errors: PT_ERR_USAGE (anything wrong with the contents, with the line),
 * PT_ERR_LIMIT (over HSMD_CONFIG_MAX_BYTES), PT_ERR_NOMEM. Free with
 * hsmd_config_free.
 */
pt_err hsmd_config_parse(const char *text, size_t len, const char *name, hsmd_config **out);

/* Read and parse the file at path. */
pt_err hsmd_config_load(const char *path, hsmd_config **out);

void hsmd_config_free(hsmd_config *cfg);

/* The key clients call name, or NULL. */
const hsmd_key_config *hsmd_config_key(const hsmd_config *cfg, const char *name);

/* "issue" or "sign-tlv". */
const char *hsmd_op_name(hsmd_op op);

/* The digest for one HSMD_DIGEST_* bit, and the bit for an EVP_MD type (0 when none). */
const char *hsmd_digest_name(unsigned bit);
unsigned hsmd_digest_bit_from_nid(int md_nid);

/* Is uid in users, or gid or one of groups[0..n_groups) in groups? */
bool hsmd_ids_allow(const hsmd_id_list *users, const hsmd_id_list *groups, uid_t uid, gid_t gid,
                    const gid_t *sup_groups, size_t n_groups);

#endif
