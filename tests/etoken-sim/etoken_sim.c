/*
 * libetoken-sim.so: a PKCS#11 module that behaves like a SafeNet eToken on
 * top of a real module (SoftHSM2), for tests. It forwards every call to the
 * backend and adds what SoftHSM2 lacks: the retry counter of consecutive
 * wrong user PINs with its four token flags, the permanent lock, default-PIN
 * mode ("the PIN must be changed") and faults on demand (token removed,
 * device error while signing). What it simulates is described in README.md.
 *
 * State lives in a file shared by every process (esim_state.h), keyed by the
 * backend token's serial number, and is read afresh on every call that
 * depends on it, so that etoken-sim-ctl and other processes take effect at
 * once. Read-modify-write happens under a mutex (threads) and an exclusive
 * flock (processes).
 *
 * Only C_GetFunctionList is exported (version script etoken-sim.map).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#include "esim_state.h"

#define ESIM_EXPORT __attribute__((visibility("default")))

/* Slots whose token serial is remembered. */
#define ESIM_CACHE_SLOTS 64
/* Largest signature fetched from the backend to end an operation. */
#define ESIM_SIGNATURE_MAX (64 * 1024)
/* Attempts at reading the backend's slot list while it changes size. */
#define ESIM_SLOT_LIST_TRIES 4

#define ESIM_USER_PIN_FLAGS                                                                        \
    (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED |                       \
     CKF_USER_PIN_TO_BE_CHANGED)

#define ESIM_MANUFACTURER "phonetrust etoken-sim"
#define ESIM_MODEL        "eToken sim"
#define ESIM_LIBRARY      "phonetrust eToken simulator"
#define ESIM_VENDOR       "phonetrust"

typedef struct esim_slot_serial {
    CK_SLOT_ID slot;
    uint8_t serial[ESIM_SERIAL_MAX];
    size_t len;
} esim_slot_serial;

static struct {
    pthread_mutex_t load_lock;  /* loading the backend, C_Initialize, C_Finalize */
    pthread_mutex_t state_lock; /* read-modify-write of the state file */
    pthread_mutex_t cache_lock; /* cache, cache_count, cache_generation */
    void *backend_handle;
    CK_FUNCTION_LIST *backend; /* set once, never changed */
    CK_FUNCTION_LIST list;     /* the backend's list with our entries */
    atomic_bool initialized;
    char *state_path;        /* set by C_Initialize */
    unsigned long max_tries; /* set by C_Initialize */
    esim_slot_serial cache[ESIM_CACHE_SLOTS];
    size_t cache_count;
    size_t cache_next;              /* entry replaced when the cache is full */
    unsigned long cache_generation; /* bumped whenever entries are forgotten */
} esim = {
    .load_lock = PTHREAD_MUTEX_INITIALIZER,
    .state_lock = PTHREAD_MUTEX_INITIALIZER,
    .cache_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* What a call on a session needs to know. */
typedef struct esim_ctx {
    CK_SESSION_INFO session;
    esim_token token; /* serial (empty: uninitialised token, not simulated) and state */
} esim_ctx;

static void esim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void esim_log(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "etoken-sim: %s\n", msg);
}

static void esim_pad(CK_UTF8CHAR *field, size_t size, const char *text)
{
    size_t n = strlen(text);
    memset(field, ' ', size);
    memcpy(field, text, n < size ? n : size);
}

/* ---- slot → serial cache ---- */

static unsigned long esim_cache_generation_get(void)
{
    pthread_mutex_lock(&esim.cache_lock);
    unsigned long gen = esim.cache_generation;
    pthread_mutex_unlock(&esim.cache_lock);
    return gen;
}

static bool esim_cache_get(CK_SLOT_ID slot, uint8_t serial[ESIM_SERIAL_MAX], size_t *len,
                           unsigned long *gen)
{
    bool found = false;
    pthread_mutex_lock(&esim.cache_lock);
    *gen = esim.cache_generation;
    for (size_t i = 0; i < esim.cache_count; i++) {
        if (esim.cache[i].slot == slot) {
            memcpy(serial, esim.cache[i].serial, esim.cache[i].len);
            *len = esim.cache[i].len;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&esim.cache_lock);
    return found;
}

/*
 * Remember slot's serial, read from the backend while the cache was at
 * generation gen; dropped when something was forgotten since, because the
 * serial may be stale.
 */
static void esim_cache_put(CK_SLOT_ID slot, const uint8_t *serial, size_t len, unsigned long gen)
{
    pthread_mutex_lock(&esim.cache_lock);
    if (gen == esim.cache_generation) {
        size_t i = 0;
        while (i < esim.cache_count && esim.cache[i].slot != slot)
            i++;
        if (i == esim.cache_count) {
            if (esim.cache_count < ESIM_CACHE_SLOTS) {
                esim.cache_count++;
            } else {
                i = esim.cache_next;
                esim.cache_next = (esim.cache_next + 1) % ESIM_CACHE_SLOTS;
            }
        }
        esim.cache[i].slot = slot;
        memcpy(esim.cache[i].serial, serial, len);
        esim.cache[i].len = len;
    }
    pthread_mutex_unlock(&esim.cache_lock);
}

/* Forget one slot (after C_InitToken, which may give it a new serial). */
static void esim_cache_forget(CK_SLOT_ID slot)
{
    pthread_mutex_lock(&esim.cache_lock);
    for (size_t i = 0; i < esim.cache_count; i++) {
        if (esim.cache[i].slot == slot) {
            esim.cache[i] = esim.cache[esim.cache_count - 1];
            esim.cache_count--;
            break;
        }
    }
    esim.cache_next = 0;
    esim.cache_generation++;
    pthread_mutex_unlock(&esim.cache_lock);
}

static void esim_cache_clear(void)
{
    pthread_mutex_lock(&esim.cache_lock);
    esim.cache_count = 0;
    esim.cache_next = 0;
    esim.cache_generation++;
    pthread_mutex_unlock(&esim.cache_lock);
}

/* The serial in info; remembered for slot when the token is initialised. */
static void esim_serial_note(CK_SLOT_ID slot, const CK_TOKEN_INFO *info, unsigned long gen,
                             uint8_t serial[ESIM_SERIAL_MAX], size_t *len)
{
    /* The field is exactly ESIM_SERIAL_MAX bytes, so trimming cannot fail. */
    (void)esim_serial_trim(info->serialNumber, sizeof info->serialNumber, serial, len);
    if (*len > 0 && (info->flags & CKF_TOKEN_INITIALIZED))
        esim_cache_put(slot, serial, *len, gen);
}

/* The serial of the token in slot; empty for an uninitialised token. */
static CK_RV esim_slot_serial_get(CK_SLOT_ID slot, uint8_t serial[ESIM_SERIAL_MAX], size_t *len)
{
    unsigned long gen;
    *len = 0;
    if (esim_cache_get(slot, serial, len, &gen))
        return CKR_OK;
    CK_TOKEN_INFO info;
    CK_RV rv = esim.backend->C_GetTokenInfo(slot, &info);
    if (rv != CKR_OK)
        return rv;
    esim_serial_note(slot, &info, gen, serial, len);
    return CKR_OK;
}

/* ---- state ---- */

/* The state of the token with this serial, read afresh from the state file. */
static CK_RV esim_token_read(const uint8_t *serial, size_t len, esim_token *tok)
{
    esim_token_init(tok, serial, len);
    if (len == 0)
        return CKR_OK; /* an uninitialised token has no serial: nothing to simulate */
    esim_state st;
    esim_state_init(&st);
    pt_err rc = esim_state_load(esim.state_path, &st);
    if (rc != PT_OK) {
        esim_log("%s", pt_err_message());
        return CKR_GENERAL_ERROR;
    }
    esim_state_get(&st, serial, len, tok);
    esim_state_free(&st);
    return CKR_OK;
}

static bool esim_token_same(const esim_token *a, const esim_token *b)
{
    return a->wrong == b->wrong && a->locked == b->locked && a->default_pin == b->default_pin &&
           a->fault == b->fault;
}

/* Store tok in the state file; the caller holds both locks. */
static CK_RV esim_token_store(esim_state *st, const esim_token *tok)
{
    pt_err rc = esim_state_put(st, tok);
    if (rc == PT_OK)
        rc = esim_state_save(esim.state_path, st);
    if (rc != PT_OK) {
        esim_log("%s", pt_err_message());
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

/* Take the thread and process locks and read the current record for serial. */
static CK_RV esim_update_begin(const uint8_t *serial, size_t len, esim_state *st, int *lock_fd,
                               esim_token *tok)
{
    pthread_mutex_lock(&esim.state_lock);
    esim_state_init(st);
    pt_err rc = esim_state_lock(esim.state_path, lock_fd);
    if (rc == PT_OK)
        rc = esim_state_load(esim.state_path, st);
    if (rc != PT_OK) {
        esim_log("%s", pt_err_message());
        return CKR_GENERAL_ERROR;
    }
    esim_state_get(st, serial, len, tok);
    return CKR_OK;
}

static void esim_update_end(esim_state *st, int lock_fd)
{
    esim_state_free(st);
    esim_state_unlock(lock_fd);
    pthread_mutex_unlock(&esim.state_lock);
}

/* ---- entering a call ---- */

static CK_RV esim_check_initialized(void)
{
    return atomic_load(&esim.initialized) ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* A call about a slot: CKR_TOKEN_NOT_PRESENT when its token is "removed". */
static CK_RV esim_slot_enter(CK_SLOT_ID slot, esim_token *tok)
{
    uint8_t serial[ESIM_SERIAL_MAX];
    size_t len;
    CK_RV rv = esim_check_initialized();
    if (rv != CKR_OK)
        return rv;
    rv = esim_slot_serial_get(slot, serial, &len);
    if (rv != CKR_OK)
        return rv;
    rv = esim_token_read(serial, len, tok);
    if (rv != CKR_OK)
        return rv;
    return tok->fault == ESIM_FAULT_REMOVED ? CKR_TOKEN_NOT_PRESENT : CKR_OK;
}

/* A call on a session: CKR_DEVICE_REMOVED when its token is "removed". */
static CK_RV esim_session_enter(CK_SESSION_HANDLE session, esim_ctx *ctx)
{
    uint8_t serial[ESIM_SERIAL_MAX];
    size_t len;
    CK_RV rv = esim_check_initialized();
    if (rv != CKR_OK)
        return rv;
    /* Not cached: the backend reuses handles, and this call is cheap. */
    rv = esim.backend->C_GetSessionInfo(session, &ctx->session);
    if (rv != CKR_OK)
        return rv;
    rv = esim_slot_serial_get(ctx->session.slotID, serial, &len);
    if (rv == CKR_TOKEN_NOT_PRESENT)
        return CKR_DEVICE_REMOVED;
    if (rv != CKR_OK)
        return rv;
    rv = esim_token_read(serial, len, &ctx->token);
    if (rv != CKR_OK)
        return rv;
    return ctx->token.fault == ESIM_FAULT_REMOVED ? CKR_DEVICE_REMOVED : CKR_OK;
}

/* ---- the user PIN under the retry counter ---- */

typedef struct esim_pin_call {
    CK_SESSION_HANDLE session;
    bool set_pin; /* C_SetPIN, else C_Login */
    CK_USER_TYPE user;
    CK_UTF8CHAR_PTR pin;
    CK_ULONG pin_len;
    CK_UTF8CHAR_PTR new_pin;
    CK_ULONG new_pin_len;
} esim_pin_call;

static CK_RV esim_pin_call_run(const esim_pin_call *c)
{
    if (c->set_pin)
        return esim.backend->C_SetPIN(c->session, c->pin, c->pin_len, c->new_pin, c->new_pin_len);
    return esim.backend->C_Login(c->session, c->user, c->pin, c->pin_len);
}

/*
 * One try of the user PIN. A locked token refuses it with CKR_PIN_LOCKED
 * without asking the backend. Otherwise the backend decides: a wrong PIN
 * (CKR_PIN_INCORRECT) counts one more, and the one after max_tries locks the
 * token for good and is answered CKR_PIN_LOCKED; a right PIN resets the count
 * (and a PIN change ends default-PIN mode). Any other answer leaves the count
 * alone. The whole try runs under both locks, so that concurrent tries from
 * threads or processes are counted one after the other and none is lost.
 */
static CK_RV esim_pin_try(const esim_ctx *ctx, const esim_pin_call *call)
{
    const esim_token *seen = &ctx->token;
    esim_state st;
    esim_token before, after;
    int lock_fd = -1;

    if (seen->serial_len == 0)
        return esim_pin_call_run(call);
    CK_RV rv = esim_update_begin(seen->serial, seen->serial_len, &st, &lock_fd, &before);
    if (rv != CKR_OK)
        goto out;
    if (before.fault == ESIM_FAULT_REMOVED) {
        rv = CKR_DEVICE_REMOVED;
        goto out;
    }
    if (esim_token_is_locked(&before, esim.max_tries)) {
        rv = CKR_PIN_LOCKED;
        goto out;
    }
    rv = esim_pin_call_run(call);
    after = before;
    if (rv == CKR_PIN_INCORRECT) {
        after.wrong++;
        if (after.wrong > esim.max_tries) {
            after.locked = true;
            rv = CKR_PIN_LOCKED;
        }
    } else if (rv == CKR_OK) {
        after.wrong = 0;
        if (call->set_pin)
            after.default_pin = false;
    }
    if (!esim_token_same(&before, &after) && esim_token_store(&st, &after) != CKR_OK) {
        /* The count could not be kept: do not leave a login behind it. */
        if (rv == CKR_OK && !call->set_pin)
            (void)esim.backend->C_Logout(call->session);
        rv = CKR_GENERAL_ERROR;
    }
out:
    esim_update_end(&st, lock_fd);
    return rv;
}

/* ---- faults while signing ---- */

/* "remove-on-sign" fired: the token is "removed" from now on. */
static CK_RV esim_remove_on_sign_fire(const esim_token *seen)
{
    esim_state st;
    esim_token tok;
    int lock_fd = -1;
    CK_RV rv = esim_update_begin(seen->serial, seen->serial_len, &st, &lock_fd, &tok);
    if (rv == CKR_OK && tok.fault == ESIM_FAULT_REMOVE_ON_SIGN) {
        tok.fault = ESIM_FAULT_REMOVED;
        rv = esim_token_store(&st, &tok);
    }
    esim_update_end(&st, lock_fd);
    return rv;
}

/*
 * A failed C_Sign or C_SignFinal ends the signing operation (PKCS#11 2.40,
 * 5.12). When the simulator fails one on purpose, it ends the backend's
 * operation too, by completing it into a buffer that is wiped and dropped,
 * so that the session can sign again once the fault is gone.
 */
static void esim_sign_end(CK_SESSION_HANDLE session, bool single, CK_BYTE_PTR data,
                          CK_ULONG data_len)
{
    CK_ULONG len = 0;
    CK_RV rv = single ? esim.backend->C_Sign(session, data, data_len, NULL, &len)
                      : esim.backend->C_SignFinal(session, NULL, &len);
    if (rv != CKR_OK || len == 0 || len > ESIM_SIGNATURE_MAX)
        return; /* no operation, or the backend ended it */
    CK_BYTE *buf = malloc(len);
    if (buf == NULL)
        return;
    if (single)
        (void)esim.backend->C_Sign(session, data, data_len, buf, &len);
    else
        (void)esim.backend->C_SignFinal(session, buf, &len);
    OPENSSL_cleanse(buf, len);
    free(buf);
}

/* The faults that apply to the last step of a signature (C_Sign, C_SignFinal). */
static CK_RV esim_sign_last_step(const esim_ctx *ctx, CK_SESSION_HANDLE session, bool single,
                                 CK_BYTE_PTR data, CK_ULONG data_len)
{
    CK_RV rv = CKR_OK;
    if (single && ctx->token.default_pin) {
        rv = CKR_PIN_EXPIRED;
    } else if (ctx->token.fault == ESIM_FAULT_SIGN_DEVICE_ERROR) {
        rv = CKR_DEVICE_ERROR;
    } else if (ctx->token.fault == ESIM_FAULT_REMOVE_ON_SIGN) {
        rv = esim_remove_on_sign_fire(&ctx->token);
        if (rv == CKR_OK)
            rv = CKR_DEVICE_REMOVED;
    }
    if (rv != CKR_OK)
        esim_sign_end(session, single, data, data_len);
    return rv;
}

/* ---- the functions ---- */

static CK_RV esim_C_Initialize(CK_VOID_PTR init_args)
{
    char *state_path = NULL;
    unsigned long max_tries = 0;
    CK_RV rv;

    pthread_mutex_lock(&esim.load_lock);
    if (atomic_load(&esim.initialized)) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    pt_err rc = esim_config_state_path(&state_path);
    if (rc == PT_OK)
        rc = esim_config_max_tries(&max_tries);
    if (rc != PT_OK) {
        esim_log("C_Initialize: %s", pt_err_message());
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    /* The arguments (CKF_OS_LOCKING_OK, mutex callbacks) are the backend's business. */
    rv = esim.backend->C_Initialize(init_args);
    if (rv != CKR_OK)
        goto out;
    esim.state_path = state_path;
    state_path = NULL;
    esim.max_tries = max_tries;
    esim_cache_clear();
    atomic_store(&esim.initialized, true);
out:
    pthread_mutex_unlock(&esim.load_lock);
    free(state_path);
    return rv;
}

static CK_RV esim_C_Finalize(CK_VOID_PTR reserved)
{
    CK_RV rv;
    pthread_mutex_lock(&esim.load_lock);
    if (!atomic_load(&esim.initialized)) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    rv = esim.backend->C_Finalize(reserved);
    if (rv != CKR_OK)
        goto out;
    atomic_store(&esim.initialized, false);
    free(esim.state_path);
    esim.state_path = NULL;
    esim_cache_clear();
out:
    pthread_mutex_unlock(&esim.load_lock);
    return rv;
}

static CK_RV esim_C_GetInfo(CK_INFO_PTR info)
{
    CK_RV rv = esim_check_initialized();
    if (rv != CKR_OK)
        return rv;
    rv = esim.backend->C_GetInfo(info);
    if (rv != CKR_OK)
        return rv;
    esim_pad(info->manufacturerID, sizeof info->manufacturerID, ESIM_VENDOR);
    esim_pad(info->libraryDescription, sizeof info->libraryDescription, ESIM_LIBRARY);
    info->flags = 0;
    info->libraryVersion.major = 0;
    info->libraryVersion.minor = 1;
    return CKR_OK;
}

/* The backend's list of slots with a token, in a new array. */
static CK_RV esim_backend_slots(CK_SLOT_ID **out, CK_ULONG *count)
{
    CK_RV rv = CKR_BUFFER_TOO_SMALL;
    *out = NULL;
    *count = 0;
    for (int i = 0; i < ESIM_SLOT_LIST_TRIES && rv == CKR_BUFFER_TOO_SMALL; i++) {
        CK_ULONG n = 0;
        rv = esim.backend->C_GetSlotList(CK_TRUE, NULL, &n);
        if (rv != CKR_OK)
            return rv;
        CK_SLOT_ID *slots = calloc(n > 0 ? n : 1, sizeof *slots);
        if (slots == NULL)
            return CKR_HOST_MEMORY;
        rv = esim.backend->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv == CKR_OK) {
            *out = slots;
            *count = n;
        } else {
            free(slots);
        }
    }
    return rv;
}

static CK_RV esim_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, kept = 0;
    esim_state st;

    CK_RV rv = esim_check_initialized();
    if (rv != CKR_OK)
        return rv;
    if (count == NULL)
        return CKR_ARGUMENTS_BAD;
    if (!token_present)
        return esim.backend->C_GetSlotList(token_present, list, count);

    /* Leave out the slots whose token is "removed". */
    esim_state_init(&st);
    rv = esim_backend_slots(&slots, &n);
    if (rv != CKR_OK)
        goto out;
    pt_err rc = esim_state_load(esim.state_path, &st);
    if (rc != PT_OK) {
        esim_log("%s", pt_err_message());
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        uint8_t serial[ESIM_SERIAL_MAX];
        size_t len = 0;
        esim_token tok;
        if (esim_slot_serial_get(slots[i], serial, &len) == CKR_OK && len > 0) {
            esim_state_get(&st, serial, len, &tok);
            if (tok.fault == ESIM_FAULT_REMOVED)
                continue;
        }
        slots[kept++] = slots[i];
    }
    if (list == NULL) {
        rv = CKR_OK;
    } else if (*count < kept) {
        rv = CKR_BUFFER_TOO_SMALL;
    } else {
        memcpy(list, slots, kept * sizeof *slots);
        rv = CKR_OK;
    }
    *count = kept;
out:
    esim_state_free(&st);
    free(slots);
    return rv;
}

static CK_RV esim_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv = esim_check_initialized();
    if (rv != CKR_OK)
        return rv;
    rv = esim.backend->C_GetSlotInfo(slot, info);
    if (rv != CKR_OK || !(info->flags & CKF_TOKEN_PRESENT))
        return rv;
    uint8_t serial[ESIM_SERIAL_MAX];
    size_t len = 0;
    esim_token tok;
    if (esim_slot_serial_get(slot, serial, &len) != CKR_OK)
        return CKR_OK; /* what the backend says */
    rv = esim_token_read(serial, len, &tok);
    if (rv != CKR_OK)
        return rv;
    if (tok.fault == ESIM_FAULT_REMOVED)
        info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
    return CKR_OK;
}

static CK_RV esim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    uint8_t serial[ESIM_SERIAL_MAX];
    size_t len = 0;
    esim_token tok;

    CK_RV rv = esim_check_initialized();
    if (rv != CKR_OK)
        return rv;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    unsigned long gen = esim_cache_generation_get();
    rv = esim.backend->C_GetTokenInfo(slot, info);
    if (rv != CKR_OK)
        return rv;
    esim_serial_note(slot, info, gen, serial, &len);
    rv = esim_token_read(serial, len, &tok);
    if (rv == CKR_OK && tok.fault == ESIM_FAULT_REMOVED)
        rv = CKR_TOKEN_NOT_PRESENT;
    if (rv != CKR_OK) {
        memset(info, 0, sizeof *info);
        return rv;
    }
    esim_pad(info->manufacturerID, sizeof info->manufacturerID, ESIM_MANUFACTURER);
    esim_pad(info->model, sizeof info->model, ESIM_MODEL);
    if (len == 0)
        return CKR_OK; /* uninitialised: the backend's flags as they are */

    /* The backend's own view of the PIN (SoftHSM2 sets COUNT_LOW) gives way to ours. */
    info->flags &= ~(CK_FLAGS)ESIM_USER_PIN_FLAGS;
    if (esim_token_is_locked(&tok, esim.max_tries))
        info->flags |= CKF_USER_PIN_LOCKED;
    else if (tok.wrong == esim.max_tries)
        info->flags |= CKF_USER_PIN_FINAL_TRY;
    else if (tok.wrong > 0)
        info->flags |= CKF_USER_PIN_COUNT_LOW;
    if (tok.default_pin)
        info->flags |= CKF_USER_PIN_TO_BE_CHANGED;
    return CKR_OK;
}

static CK_RV esim_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                     CK_ULONG_PTR count)
{
    esim_token tok;
    CK_RV rv = esim_slot_enter(slot, &tok);
    if (rv != CKR_OK)
        return rv;
    return esim.backend->C_GetMechanismList(slot, list, count);
}

static CK_RV esim_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                     CK_MECHANISM_INFO_PTR info)
{
    esim_token tok;
    CK_RV rv = esim_slot_enter(slot, &tok);
    if (rv != CKR_OK)
        return rv;
    return esim.backend->C_GetMechanismInfo(slot, type, info);
}

static CK_RV esim_C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR so_pin, CK_ULONG so_pin_len,
                              CK_UTF8CHAR_PTR label)
{
    esim_token tok;
    CK_RV rv = esim_slot_enter(slot, &tok);
    if (rv != CKR_OK)
        return rv;
    rv = esim.backend->C_InitToken(slot, so_pin, so_pin_len, label);
    esim_cache_forget(slot);
    return rv;
}

static CK_RV esim_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application,
                                CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session)
{
    esim_token tok;
    CK_RV rv = esim_slot_enter(slot, &tok);
    if (rv != CKR_OK)
        return rv;
    return esim.backend->C_OpenSession(slot, flags, application, notify, session);
}

static CK_RV esim_C_CloseSession(CK_SESSION_HANDLE session)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv == CKR_DEVICE_REMOVED) {
        /* The token is gone, and so is the session: free the backend's. */
        (void)esim.backend->C_CloseSession(session);
        return rv;
    }
    if (rv != CKR_OK)
        return rv;
    return esim.backend->C_CloseSession(session);
}

static CK_RV esim_C_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    esim_ctx ctx;
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    *info = ctx.session;
    return CKR_OK;
}

static CK_RV esim_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                          CK_ULONG pin_len)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    /*
     * The counter guards the user PIN: CKU_USER, and CKU_CONTEXT_SPECIFIC,
     * which re-enters the user PIN for a key. The SO PIN is the backend's.
     */
    if (user != CKU_USER && user != CKU_CONTEXT_SPECIFIC)
        return esim.backend->C_Login(session, user, pin, pin_len);
    esim_pin_call call = {
        .session = session,
        .set_pin = false,
        .user = user,
        .pin = pin,
        .pin_len = pin_len,
    };
    return esim_pin_try(&ctx, &call);
}

static CK_RV esim_C_SetPIN(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_pin_len,
                           CK_UTF8CHAR_PTR new_pin, CK_ULONG new_pin_len)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    /* C_SetPIN changes the SO PIN in an SO session, else the user PIN. */
    if (ctx.session.state == CKS_RW_SO_FUNCTIONS)
        return esim.backend->C_SetPIN(session, old_pin, old_pin_len, new_pin, new_pin_len);
    esim_pin_call call = {
        .session = session,
        .set_pin = true,
        .pin = old_pin,
        .pin_len = old_pin_len,
        .new_pin = new_pin,
        .new_pin_len = new_pin_len,
    };
    return esim_pin_try(&ctx, &call);
}

static CK_RV esim_C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                                 CK_OBJECT_HANDLE_PTR object)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    if (ctx.token.default_pin)
        return CKR_PIN_EXPIRED;
    return esim.backend->C_CreateObject(session, templ, count, object);
}

static CK_RV esim_C_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                    CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count,
                                    CK_ATTRIBUTE_PTR priv_templ, CK_ULONG priv_count,
                                    CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    if (ctx.token.default_pin)
        return CKR_PIN_EXPIRED;
    return esim.backend->C_GenerateKeyPair(session, mechanism, pub_templ, pub_count, priv_templ,
                                           priv_count, pub, priv);
}

static CK_RV esim_C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                             CK_OBJECT_HANDLE key)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    if (ctx.token.default_pin)
        return CKR_PIN_EXPIRED;
    return esim.backend->C_SignInit(session, mechanism, key);
}

static CK_RV esim_C_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                         CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    rv = esim_sign_last_step(&ctx, session, true, data, data_len);
    if (rv != CKR_OK)
        return rv;
    return esim.backend->C_Sign(session, data, data_len, signature, signature_len);
}

static CK_RV esim_C_SignUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    if (ctx.token.fault == ESIM_FAULT_SIGN_DEVICE_ERROR) {
        esim_sign_end(session, false, NULL, 0);
        return CKR_DEVICE_ERROR;
    }
    return esim.backend->C_SignUpdate(session, part, part_len);
}

static CK_RV esim_C_SignFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                              CK_ULONG_PTR signature_len)
{
    esim_ctx ctx;
    CK_RV rv = esim_session_enter(session, &ctx);
    if (rv != CKR_OK)
        return rv;
    rv = esim_sign_last_step(&ctx, session, false, NULL, 0);
    if (rv != CKR_OK)
        return rv;
    return esim.backend->C_SignFinal(session, signature, signature_len);
}

/*
 * Every other call on a session goes to the backend once the session's token
 * is known to be present. The parameter naming the session must be `session`.
 */
#define ESIM_SESSION_FORWARD(name, params, args)                                                   \
    static CK_RV esim_##name params                                                                \
    {                                                                                              \
        esim_ctx ctx;                                                                              \
        CK_RV rv = esim_session_enter(session, &ctx);                                              \
        if (rv != CKR_OK)                                                                          \
            return rv;                                                                             \
        return esim.backend->name args;                                                            \
    }

/* clang-format off */
ESIM_SESSION_FORWARD(C_InitPIN,
    (CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len),
    (session, pin, pin_len))
ESIM_SESSION_FORWARD(C_GetOperationState,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG_PTR state_len),
    (session, state, state_len))
ESIM_SESSION_FORWARD(C_SetOperationState,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG state_len,
     CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key),
    (session, state, state_len, enc_key, auth_key))
ESIM_SESSION_FORWARD(C_Logout, (CK_SESSION_HANDLE session), (session))
ESIM_SESSION_FORWARD(C_CopyObject,
    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
     CK_ULONG count, CK_OBJECT_HANDLE_PTR new_object),
    (session, object, templ, count, new_object))
ESIM_SESSION_FORWARD(C_DestroyObject,
    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object),
    (session, object))
ESIM_SESSION_FORWARD(C_GetObjectSize,
    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ULONG_PTR size),
    (session, object, size))
ESIM_SESSION_FORWARD(C_GetAttributeValue,
    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
     CK_ULONG count),
    (session, object, templ, count))
ESIM_SESSION_FORWARD(C_SetAttributeValue,
    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
     CK_ULONG count),
    (session, object, templ, count))
ESIM_SESSION_FORWARD(C_FindObjectsInit,
    (CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count),
    (session, templ, count))
ESIM_SESSION_FORWARD(C_FindObjects,
    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects, CK_ULONG max,
     CK_ULONG_PTR count),
    (session, objects, max, count))
ESIM_SESSION_FORWARD(C_FindObjectsFinal, (CK_SESSION_HANDLE session), (session))
ESIM_SESSION_FORWARD(C_EncryptInit,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key),
    (session, mechanism, key))
ESIM_SESSION_FORWARD(C_Encrypt,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, data, data_len, out, out_len))
ESIM_SESSION_FORWARD(C_EncryptUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, part, part_len, out, out_len))
ESIM_SESSION_FORWARD(C_EncryptFinal,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len),
    (session, out, out_len))
ESIM_SESSION_FORWARD(C_DecryptInit,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key),
    (session, mechanism, key))
ESIM_SESSION_FORWARD(C_Decrypt,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, data, data_len, out, out_len))
ESIM_SESSION_FORWARD(C_DecryptUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, part, part_len, out, out_len))
ESIM_SESSION_FORWARD(C_DecryptFinal,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len),
    (session, out, out_len))
ESIM_SESSION_FORWARD(C_DigestInit,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism),
    (session, mechanism))
ESIM_SESSION_FORWARD(C_Digest,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, data, data_len, out, out_len))
ESIM_SESSION_FORWARD(C_DigestUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len),
    (session, part, part_len))
ESIM_SESSION_FORWARD(C_DigestKey,
    (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key),
    (session, key))
ESIM_SESSION_FORWARD(C_DigestFinal,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len),
    (session, out, out_len))
ESIM_SESSION_FORWARD(C_SignRecoverInit,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key),
    (session, mechanism, key))
ESIM_SESSION_FORWARD(C_SignRecover,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, data, data_len, out, out_len))
ESIM_SESSION_FORWARD(C_VerifyInit,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key),
    (session, mechanism, key))
ESIM_SESSION_FORWARD(C_Verify,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
     CK_ULONG sig_len),
    (session, data, data_len, sig, sig_len))
ESIM_SESSION_FORWARD(C_VerifyUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len),
    (session, part, part_len))
ESIM_SESSION_FORWARD(C_VerifyFinal,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR sig, CK_ULONG sig_len),
    (session, sig, sig_len))
ESIM_SESSION_FORWARD(C_VerifyRecoverInit,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key),
    (session, mechanism, key))
ESIM_SESSION_FORWARD(C_VerifyRecover,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR sig, CK_ULONG sig_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, sig, sig_len, out, out_len))
ESIM_SESSION_FORWARD(C_DigestEncryptUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, part, part_len, out, out_len))
ESIM_SESSION_FORWARD(C_DecryptDigestUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, part, part_len, out, out_len))
ESIM_SESSION_FORWARD(C_SignEncryptUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, part, part_len, out, out_len))
ESIM_SESSION_FORWARD(C_DecryptVerifyUpdate,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out,
     CK_ULONG_PTR out_len),
    (session, part, part_len, out, out_len))
ESIM_SESSION_FORWARD(C_GenerateKey,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR templ,
     CK_ULONG count, CK_OBJECT_HANDLE_PTR key),
    (session, mechanism, templ, count, key))
ESIM_SESSION_FORWARD(C_WrapKey,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE wrapping_key,
     CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped, CK_ULONG_PTR wrapped_len),
    (session, mechanism, wrapping_key, key, wrapped, wrapped_len))
ESIM_SESSION_FORWARD(C_UnwrapKey,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE unwrapping_key,
     CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
     CK_OBJECT_HANDLE_PTR key),
    (session, mechanism, unwrapping_key, wrapped, wrapped_len, templ, count, key))
ESIM_SESSION_FORWARD(C_DeriveKey,
    (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE base_key,
     CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key),
    (session, mechanism, base_key, templ, count, key))
ESIM_SESSION_FORWARD(C_SeedRandom,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG seed_len),
    (session, seed, seed_len))
ESIM_SESSION_FORWARD(C_GenerateRandom,
    (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG out_len),
    (session, out, out_len))
ESIM_SESSION_FORWARD(C_GetFunctionStatus, (CK_SESSION_HANDLE session), (session))
ESIM_SESSION_FORWARD(C_CancelFunction, (CK_SESSION_HANDLE session), (session))
/* clang-format on */

/* ---- loading ---- */

/* Replace an entry the backend provides (a NULL entry stays NULL). */
#define ESIM_OVERRIDE(name)                                                                        \
    do {                                                                                           \
        if (esim.list.name != NULL)                                                                \
            esim.list.name = esim_##name;                                                          \
    } while (0)

/*
 * Load the backend once per process and build our function list as a copy
 * of its list with our entries in place. Left as they are: C_CloseAllSessions
 * and C_WaitForSlotEvent, which only concern slots.
 */
static CK_RV esim_load(void)
{
    char *path = NULL;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&esim.load_lock);
    if (esim.backend != NULL)
        goto out;
    pt_err rc = esim_config_backend_path(&path);
    if (rc != PT_OK) {
        esim_log("%s", pt_err_message());
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        esim_log("cannot load the backend module %s: %s (set ETOKEN_SIM_BACKEND)", path, dlerror());
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    CK_FUNCTION_LIST *backend = NULL;
    if (get_list == NULL || (rv = get_list(&backend)) != CKR_OK || backend == NULL) {
        esim_log("%s is not a PKCS#11 module (no usable C_GetFunctionList)", path);
        dlclose(handle);
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    esim.list = *backend;
    /* Only the 2.x part of the list is copied: never claim more. */
    if (esim.list.version.major > 2) {
        esim.list.version.major = 2;
        esim.list.version.minor = 40;
    }
    esim.list.C_GetFunctionList = C_GetFunctionList;
    ESIM_OVERRIDE(C_Initialize);
    ESIM_OVERRIDE(C_Finalize);
    ESIM_OVERRIDE(C_GetInfo);
    ESIM_OVERRIDE(C_GetSlotList);
    ESIM_OVERRIDE(C_GetSlotInfo);
    ESIM_OVERRIDE(C_GetTokenInfo);
    ESIM_OVERRIDE(C_GetMechanismList);
    ESIM_OVERRIDE(C_GetMechanismInfo);
    ESIM_OVERRIDE(C_InitToken);
    ESIM_OVERRIDE(C_InitPIN);
    ESIM_OVERRIDE(C_SetPIN);
    ESIM_OVERRIDE(C_OpenSession);
    ESIM_OVERRIDE(C_CloseSession);
    ESIM_OVERRIDE(C_GetSessionInfo);
    ESIM_OVERRIDE(C_GetOperationState);
    ESIM_OVERRIDE(C_SetOperationState);
    ESIM_OVERRIDE(C_Login);
    ESIM_OVERRIDE(C_Logout);
    ESIM_OVERRIDE(C_CreateObject);
    ESIM_OVERRIDE(C_CopyObject);
    ESIM_OVERRIDE(C_DestroyObject);
    ESIM_OVERRIDE(C_GetObjectSize);
    ESIM_OVERRIDE(C_GetAttributeValue);
    ESIM_OVERRIDE(C_SetAttributeValue);
    ESIM_OVERRIDE(C_FindObjectsInit);
    ESIM_OVERRIDE(C_FindObjects);
    ESIM_OVERRIDE(C_FindObjectsFinal);
    ESIM_OVERRIDE(C_EncryptInit);
    ESIM_OVERRIDE(C_Encrypt);
    ESIM_OVERRIDE(C_EncryptUpdate);
    ESIM_OVERRIDE(C_EncryptFinal);
    ESIM_OVERRIDE(C_DecryptInit);
    ESIM_OVERRIDE(C_Decrypt);
    ESIM_OVERRIDE(C_DecryptUpdate);
    ESIM_OVERRIDE(C_DecryptFinal);
    ESIM_OVERRIDE(C_DigestInit);
    ESIM_OVERRIDE(C_Digest);
    ESIM_OVERRIDE(C_DigestUpdate);
    ESIM_OVERRIDE(C_DigestKey);
    ESIM_OVERRIDE(C_DigestFinal);
    ESIM_OVERRIDE(C_SignInit);
    ESIM_OVERRIDE(C_Sign);
    ESIM_OVERRIDE(C_SignUpdate);
    ESIM_OVERRIDE(C_SignFinal);
    ESIM_OVERRIDE(C_SignRecoverInit);
    ESIM_OVERRIDE(C_SignRecover);
    ESIM_OVERRIDE(C_VerifyInit);
    ESIM_OVERRIDE(C_Verify);
    ESIM_OVERRIDE(C_VerifyUpdate);
    ESIM_OVERRIDE(C_VerifyFinal);
    ESIM_OVERRIDE(C_VerifyRecoverInit);
    ESIM_OVERRIDE(C_VerifyRecover);
    ESIM_OVERRIDE(C_DigestEncryptUpdate);
    ESIM_OVERRIDE(C_DecryptDigestUpdate);
    ESIM_OVERRIDE(C_SignEncryptUpdate);
    ESIM_OVERRIDE(C_DecryptVerifyUpdate);
    ESIM_OVERRIDE(C_GenerateKey);
    ESIM_OVERRIDE(C_GenerateKeyPair);
    ESIM_OVERRIDE(C_WrapKey);
    ESIM_OVERRIDE(C_UnwrapKey);
    ESIM_OVERRIDE(C_DeriveKey);
    ESIM_OVERRIDE(C_SeedRandom);
    ESIM_OVERRIDE(C_GenerateRandom);
    ESIM_OVERRIDE(C_GetFunctionStatus);
    ESIM_OVERRIDE(C_CancelFunction);
    if (esim.list.C_Initialize != esim_C_Initialize || esim.list.C_Finalize != esim_C_Finalize ||
        esim.list.C_GetSessionInfo != esim_C_GetSessionInfo ||
        esim.list.C_GetTokenInfo != esim_C_GetTokenInfo) {
        esim_log("%s lacks functions every PKCS#11 module has", path);
        dlclose(handle);
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    /* Stays loaded for the life of the process, like the backend's own state. */
    esim.backend_handle = handle;
    esim.backend = backend;
out:
    pthread_mutex_unlock(&esim.load_lock);
    free(path);
    return rv;
}

ESIM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = esim_load();
    if (rv != CKR_OK)
        return rv;
    *list = &esim.list;
    return CKR_OK;
}
