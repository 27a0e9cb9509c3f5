/*
 * hsmd's audit log: an append-only file of text lines, one record per
 * request, each carrying the SHA-256 of the record before it, so that
 * altering, removing or reordering a record breaks the chain from that record
 * on. hsm/AUDIT.md describes the format and what the chain does and does not
 * protect against.
 *
 * hsmd appends a record and returns a signature only after
 * audit_log_append() has made the record durable (write + fdatasync).
 */
#ifndef HSM_AUDIT_H
#define HSM_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pt_error.h"

/* Longest record line, without its newline; the format's own maximum is about 1,400. */
#define AUDIT_LINE_MAX 2048
/* Bytes of a note kept; a longer note is cut and ends in "...". */
#define AUDIT_NOTE_MAX 256
/* Bytes of a key label kept (the protocol allows 64). */
#define AUDIT_KEY_MAX 64
/* Lower-case hex SHA-256, plus NUL. */
#define AUDIT_HASH_HEX 65

typedef struct audit_log audit_log;

typedef enum audit_open_mode {
    /* Continue the chain; refuse a broken one (PT_ERR_VERIFY). */
    AUDIT_OPEN_EXISTING = 0,
    /*
     * As above, but when the chain is broken rename the file aside
     * (PATH.broken-<UTC time>) and start a new file whose first record names
     * it and links to its last good hash. An intact log is continued as is.
     */
    AUDIT_OPEN_NEW_CHAIN = 1,
} audit_open_mode;

typedef enum audit_result {
    AUDIT_RESULT_OK = 0,      /* "ok" */
    AUDIT_RESULT_REFUSED = 1, /* "refused:<refusal>" */
    AUDIT_RESULT_ERROR = 2,   /* "error": hsmd failed (HSM error, internal error) */
} audit_result;

typedef struct audit_entry {
    uid_t uid; /* the peer's, from SO_PEERCRED */
    pid_t pid;
    const char *op;              /* "issue", "sign-tlv", "cert", "status", ...: [a-z0-9-]{1,16} */
    const char *key;             /* key label, or NULL when there is none */
    const uint8_t *input_sha256; /* 32 bytes: SHA-256 of the TBS or file; NULL when none */
    audit_result result;
    const char *refusal; /* with AUDIT_RESULT_REFUSED: "refused-by-policy", ...: [a-z0-9-]{1,32} */
    const char *serial;  /* serial of the issued certificate, upper-case hex; or NULL */
    const char *note;    /* free text (a refusal's reason), or NULL; stored escaped */
} audit_entry;

/*
 * Open (creating it, mode 0600, when missing) the log at path for appending:
 * take an exclusive lock (PT_ERR_BUSY when another process holds it), verify
 * the whole chain, then:
 *  - intact: continue it (an empty file gets its first record, "chain-start");
 *  - only an incomplete last line (a torn write, never acknowledged): cut it
 *    off, warn, and append a "repair" record saying what was cut;
 *  - broken: PT_ERR_VERIFY naming the first bad line and why, unless mode is
 *    AUDIT_OPEN_NEW_CHAIN (see above).
 */
pt_err audit_log_open(const char *path, audit_open_mode mode, audit_log **out);

/*
 * Append one record: one write(2) of one whole line on the O_APPEND
 * descriptor, then fdatasync. Only when this returns PT_OK may the caller
 * hand out the signature the record describes. Thread-safe. After a failed
 * write the partial line is cut off again; after a failed fdatasync the log
 * refuses every later append (what reached the disk is unknown): restart,
 * and audit_log_open will verify and repair.
 */
pt_err audit_log_append(audit_log *log, const audit_entry *e);

/* Most records audit_log_append_many takes at once. */
#define AUDIT_BATCH_MAX 256

/*
 * Append n records (1..AUDIT_BATCH_MAX), chained in the order given, with one
 * write(2) and one fdatasync ("group commit"): when this returns PT_OK every
 * one of them is durable; otherwise none may be taken as written, and the
 * caller reports the failure to the owner of each. An invalid entry fails the
 * whole call before anything is written. Thread-safe.
 */
pt_err audit_log_append_many(audit_log *log, const audit_entry *const *entries, size_t n);

/* The last record's sequence number and hash (what to publish elsewhere). */
void audit_log_head(audit_log *log, uint64_t *seq, char hash[AUDIT_HASH_HEX]);

/* Close and free; NULL is ignored. */
void audit_log_close(audit_log *log);

typedef enum audit_problem {
    AUDIT_PROBLEM_NONE = 0,
    AUDIT_PROBLEM_MALFORMED,   /* a line that is not a record (or is too long) */
    AUDIT_PROBLEM_ALTERED,     /* a record whose content does not match its own hash */
    AUDIT_PROBLEM_SEQ_GAP,     /* a record with an unexpected seq: one missing, repeated or moved */
    AUDIT_PROBLEM_BROKEN_LINK, /* a record whose prev is not the hash of the record before it */
    AUDIT_PROBLEM_TORN_TAIL,   /* an incomplete last line (no newline) */
} audit_problem;

typedef struct audit_verify_report {
    uint64_t good_records;          /* records verified before the first problem */
    uint64_t good_bytes;            /* length of the verified prefix of the file */
    uint64_t last_seq;              /* seq of the last good record (0 when none) */
    char last_hash[AUDIT_HASH_HEX]; /* its hash (zeros when none) */
    char anchor[AUDIT_HASH_HEX]; /* the first record's prev: zeros, or the head of an older file */
    audit_problem problem;
    uint64_t line;    /* 1-based line of the first problem (0 when none) */
    uint64_t seq;     /* the seq expected on that line */
    char detail[256]; /* what was wrong with it */
} audit_verify_report;

/* "malformed line", "altered content", ... */
const char *audit_problem_name(audit_problem p);

/*
 * Verify the file at path. PT_OK when every line is a good record (an empty
 * file has none); PT_ERR_VERIFY with rep saying where and why otherwise;
 * other errors when the file cannot be read. This backs `hsmctl audit verify`.
 */
pt_err audit_log_verify_file(const char *path, audit_verify_report *rep);

/* The same over bytes in memory (for tests and the fuzz target). */
pt_err audit_verify_buffer(const uint8_t *data, size_t len, audit_verify_report *rep);

/* A span of a parsed line (not NUL-terminated). */
typedef struct audit_span {
    const char *p;
    size_t len;
} audit_span;

typedef struct audit_record {
    uint64_t seq;
    uint32_t uid, pid;
    audit_span time, op, key, input, result, serial, note; /* as written ("-" when none) */
    char prev[AUDIT_HASH_HEX];
    char hash[AUDIT_HASH_HEX];
    size_t hashed_len; /* the record's hash covers line[0 .. hashed_len) */
} audit_record;

/*
 * Parse one line (without its newline) into rec, which then points into
 * line. PT_ERR_FORMAT with the reason for anything that is not a well-formed
 * record; the hash is not checked here.
 */
pt_err audit_line_parse(const char *line, size_t len, audit_record *rec);

/*
 * Decode an escaped field (key or note) into out (NUL-terminated, cut to
 * outlen - 1 bytes); "-" decodes to "".
 */
void audit_span_decode(audit_span s, char *out, size_t outlen);

#endif
