/*
 * The eToken simulator's persistent state and configuration, shared by the
 * PKCS#11 module (libetoken-sim.so) and the control tool (etoken-sim-ctl).
 *
 * The state file holds one record per token, keyed by the token's serial
 * number (as the backend reports it, trailing blanks removed). A token that
 * has no record is in the fresh state: no wrong PIN, not locked, no default
 * PIN, no fault; esim_state_put drops a record that becomes fresh.
 *
 * The file is replaced atomically (pt_file_write_atomic) and updated only
 * under an exclusive flock(2) on "<state>.lock", so that several processes
 * (and the control tool) never lose an update. Readers do not lock: a rename
 * is atomic, so a reader sees either the old or the new file.
 */
#ifndef ESIM_STATE_H
#define ESIM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_error.h"

/* A PKCS#11 serialNumber is 16 bytes, blank padded. */
#define ESIM_SERIAL_MAX 16
/* Consecutive wrong user PINs a SafeNet eToken tolerates; the next one locks it. */
#define ESIM_MAX_TRIES_DEFAULT 15
/* Largest ETOKEN_SIM_MAX_TRIES accepted. */
#define ESIM_MAX_TRIES_LIMIT 1000
/* Largest wrong-PIN count a state file may hold. */
#define ESIM_WRONG_LIMIT 1000000UL
/* Limits on the state file. */
#define ESIM_STATE_FILE_MAX   (256 * 1024)
#define ESIM_STATE_TOKENS_MAX 1024
#define ESIM_STATE_LINE_MAX   512
/* First line of every state file. */
#define ESIM_STATE_MAGIC "etoken-sim-state 1"
/* Name of the state file next to $SOFTHSM2_CONF when ETOKEN_SIM_STATE is not set. */
#define ESIM_STATE_DEFAULT_NAME "etoken-sim.state"

typedef enum esim_fault {
    ESIM_FAULT_NONE = 0,
    ESIM_FAULT_REMOVED,           /* the token is out of its slot */
    ESIM_FAULT_SIGN_DEVICE_ERROR, /* signing fails with CKR_DEVICE_ERROR */
    ESIM_FAULT_REMOVE_ON_SIGN,    /* the next signature removes the token */
} esim_fault;

typedef struct esim_token {
    uint8_t serial[ESIM_SERIAL_MAX];
    size_t serial_len;
    unsigned long wrong; /* consecutive wrong user PINs */
    bool locked;         /* locked for good */
    bool default_pin;    /* the PIN must be changed before use */
    esim_fault fault;
} esim_token;

typedef struct esim_state {
    esim_token *tokens;
    size_t ntokens;
} esim_state;

/* "none", "removed", "sign-device-error", "remove-on-sign". */
const char *esim_fault_name(esim_fault fault);
bool esim_fault_parse(const char *name, esim_fault *out);

/*
 * Serial from a blank-padded PKCS#11 field (or a command-line argument):
 * trailing blanks and NULs are removed. False when over ESIM_SERIAL_MAX bytes.
 */
bool esim_serial_trim(const void *raw, size_t raw_len, uint8_t serial[ESIM_SERIAL_MAX],
                      size_t *serial_len);
/*
 * The serial as written in the state file and shown by the control tool:
 * printable ASCII other than '%' and '=' as is, every other byte as %XX.
 * out must hold 3 * ESIM_SERIAL_MAX + 1 bytes.
 */
#define ESIM_SERIAL_TEXT_MAX (3 * ESIM_SERIAL_MAX + 1)
void esim_serial_encode(const uint8_t *serial, size_t len, char out[ESIM_SERIAL_TEXT_MAX]);

/* A token record in the fresh state. */
void esim_token_init(esim_token *t, const uint8_t *serial, size_t serial_len);
/* True when t holds nothing but its serial (the fresh state). */
bool esim_token_is_fresh(const esim_token *t);
/* Locked for good, or more wrong PINs than max_tries tolerates. */
bool esim_token_is_locked(const esim_token *t, unsigned long max_tries);
/* "ok", "count-low", "final-try" or "locked". */
const char *esim_token_pin_state(const esim_token *t, unsigned long max_tries);

void esim_state_init(esim_state *s);
void esim_state_free(esim_state *s);
/* Parse the bytes of a state file (PT_ERR_FORMAT or PT_ERR_LIMIT when bad). */
pt_err esim_state_parse(const uint8_t *data, size_t len, esim_state *s);
/* The bytes of a state file (free with OPENSSL_free). */
pt_err esim_state_format(const esim_state *s, uint8_t **out, size_t *len);
/* Load path; a missing file is an empty state. */
pt_err esim_state_load(const char *path, esim_state *s);
/* Replace path atomically and durably. */
pt_err esim_state_save(const char *path, const esim_state *s);
/* Copy of the record for serial, or a fresh record when there is none. */
void esim_state_get(const esim_state *s, const uint8_t *serial, size_t serial_len, esim_token *out);
/* Store t in place of the record with the same serial; a fresh t removes it. */
pt_err esim_state_put(esim_state *s, const esim_token *t);

/* Take the exclusive lock that guards updates of path ("<path>.lock"). */
pt_err esim_state_lock(const char *path, int *fd);
void esim_state_unlock(int fd);

/*
 * Configuration from the environment (read with secure_getenv).
 * State path: $ETOKEN_SIM_STATE, else "etoken-sim.state" in the directory of
 * $SOFTHSM2_CONF; PT_ERR_USAGE when neither is set. Free with free().
 */
pt_err esim_config_state_path(char **out);
/* $ETOKEN_SIM_MAX_TRIES (1..ESIM_MAX_TRIES_LIMIT), default 15. */
pt_err esim_config_max_tries(unsigned long *out);
/*
 * $ETOKEN_SIM_BACKEND, else the first existing of the usual SoftHSM2 paths;
 * PT_ERR_NOT_FOUND when there is none. Free with free().
 */
pt_err esim_config_backend_path(char **out);

#endif
