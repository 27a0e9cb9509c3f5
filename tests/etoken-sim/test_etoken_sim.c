/*
 * Tests of libetoken-sim.so over SoftHSM2, one group of rules per run:
 *
 *     test-etoken-sim GROUP MODULE CTL
 *
 * Every test makes its own directory with its own softhsm2.conf, two tokens
 * initialised through PKCS#11 (C_InitToken, then C_InitPIN as SO) and its
 * own state file, so that tests run in parallel and never touch the
 * machine's tokens. The test PINs below are constants of this file: they
 * never appear on a command line.
 *
 * The program also serves as the "other process" of the tests:
 *
 *     test-etoken-sim --helper MODULE LABEL N
 *
 * tries N wrong user PINs on the token LABEL and prints how they were
 * answered.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <p11-kit/pkcs11.h>

#include "esim_state.h"

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
static const bool built_with_asan = true;
#else
static const bool built_with_asan = false;
#endif

#define SO_PIN    "so-pin-4321"
#define USER_PIN  "user-pin-1234"
#define NEW_PIN   "user-pin-5678"
#define WRONG_PIN "wrong-pin-0000"

#define PIN_FLAGS                                                                                  \
    (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED |                       \
     CKF_USER_PIN_TO_BE_CHANGED)

#define NTOKENS 2
static const char *const token_labels[NTOKENS] = {"sim-a", "sim-b"};

static char *module_path;
static char *ctl_path;
static void *module_handle;
static CK_FUNCTION_LIST *p11;

typedef struct fixture {
    char dir[1024];
    char conf[PATH_MAX];
    char state[PATH_MAX];
    CK_SLOT_ID slot[NTOKENS];
    char serial[NTOKENS][ESIM_SERIAL_MAX + 1];
} fixture;

#define assert_rv(expr, want)                                                                      \
    do {                                                                                           \
        CK_RV rv_ = (expr);                                                                        \
        if (rv_ != (CK_RV)(want)) {                                                                \
            print_error("%s = 0x%lx, expected 0x%lx\n", #expr, (unsigned long)rv_,                 \
                        (unsigned long)(want));                                                    \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- PKCS#11 helpers ---- */

static CK_RV initialize(void)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    return p11->C_Initialize(&args);
}

static void pad(CK_UTF8CHAR *field, size_t size, const char *text)
{
    /* PKCS#11 text fields are blank-padded, not NUL-terminated. */
    memset(field, ' ', size);
    memcpy(field, text, strlen(text)); // NOLINT(bugprone-not-null-terminated-result)
}

/* The slot whose token has this label, or (label NULL) an uninitialised token. */
static bool find_slot(CK_FUNCTION_LIST *f, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_UTF8CHAR want[32];
    if (label != NULL)
        pad(want, sizeof want, label);
    if (f->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK)
        return false;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        bool initialised = (info.flags & CKF_TOKEN_INITIALIZED) != 0;
        if ((label == NULL && !initialised) ||
            (label != NULL && initialised && memcmp(info.label, want, sizeof want) == 0)) {
            *slot = slots[i];
            return true;
        }
    }
    return false;
}

static CK_SESSION_HANDLE open_session(CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    assert_rv(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
              CKR_OK);
    return s;
}

static CK_RV login_pin(CK_SESSION_HANDLE s, CK_USER_TYPE user, char *pin)
{
    return p11->C_Login(s, user, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_RV set_pin(CK_SESSION_HANDLE s, char *old_pin, char *new_pin)
{
    return p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)old_pin, strlen(old_pin), (CK_UTF8CHAR_PTR)new_pin,
                         strlen(new_pin));
}

static void wrong_logins(CK_SESSION_HANDLE s, int n)
{
    for (int i = 0; i < n; i++)
        assert_rv(login_pin(s, CKU_USER, WRONG_PIN), CKR_PIN_INCORRECT);
}

static CK_TOKEN_INFO token_info(CK_SLOT_ID slot)
{
    CK_TOKEN_INFO info;
    assert_rv(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    return info;
}

static void assert_pin_flags(CK_SLOT_ID slot, CK_FLAGS want)
{
    CK_FLAGS got = token_info(slot).flags & PIN_FLAGS;
    if (got != want) {
        print_error("user PIN flags 0x%lx, expected 0x%lx\n", (unsigned long)got,
                    (unsigned long)want);
        fail();
    }
}

static CK_STATE session_state(CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO info;
    assert_rv(p11->C_GetSessionInfo(s, &info), CKR_OK);
    return info.state;
}

static bool slot_listed(CK_BBOOL present, CK_SLOT_ID slot)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 0;
    assert_rv(p11->C_GetSlotList(present, NULL, &n), CKR_OK);
    assert_true(n <= 16);
    CK_ULONG m = n;
    assert_rv(p11->C_GetSlotList(present, slots, &m), CKR_OK);
    assert_int_equal(m, n);
    for (CK_ULONG i = 0; i < n; i++)
        if (slots[i] == slot)
            return true;
    return false;
}

/* A 32-byte HMAC key in the session (the session must be logged in). */
static CK_OBJECT_HANDLE hmac_key(CK_SESSION_HANDLE s)
{
    CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE templ[] = {
        {CKA_CLASS, &cls, sizeof cls},     {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE_LEN, &len, sizeof len}, {CKA_SIGN, &yes, sizeof yes},
        {CKA_TOKEN, &no, sizeof no},
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    assert_rv(p11->C_GenerateKey(s, &mech, templ, sizeof templ / sizeof templ[0], &key), CKR_OK);
    return key;
}

static CK_MECHANISM hmac_mech = {CKM_SHA256_HMAC, NULL, 0};
static CK_BYTE sign_data[] = "a CTL to sign";

static CK_RV sign_once(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_BYTE sig[64];
    CK_ULONG sig_len = sizeof sig;
    CK_RV rv = p11->C_SignInit(s, &hmac_mech, key);
    if (rv != CKR_OK)
        return rv;
    return p11->C_Sign(s, sign_data, sizeof sign_data - 1, sig, &sig_len);
}

static CK_RV sign_multi(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_BYTE sig[64];
    CK_ULONG sig_len = sizeof sig;
    CK_RV rv = p11->C_SignInit(s, &hmac_mech, key);
    if (rv == CKR_OK)
        rv = p11->C_SignUpdate(s, sign_data, sizeof sign_data - 1);
    if (rv == CKR_OK)
        rv = p11->C_SignFinal(s, sig, &sig_len);
    return rv;
}

static CK_RV generate_ec_pair(CK_SESSION_HANDLE s)
{
    static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, p256, sizeof p256}, {CKA_TOKEN, &no, sizeof no}};
    CK_ATTRIBUTE priv[] = {{CKA_SIGN, &yes, sizeof yes}, {CKA_TOKEN, &no, sizeof no}};
    CK_OBJECT_HANDLE hpub, hpriv;
    return p11->C_GenerateKeyPair(s, &mech, pub, 2, priv, 2, &hpub, &hpriv);
}

static CK_RV create_data_object(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    CK_BYTE value[] = "data";
    CK_ATTRIBUTE templ[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, &no, sizeof no},
        {CKA_VALUE, value, sizeof value},
    };
    CK_OBJECT_HANDLE obj;
    return p11->C_CreateObject(s, templ, 3, &obj);
}

/* ---- the state file, read directly ---- */

static esim_token state_token(const fixture *fx, int i)
{
    esim_state st;
    esim_token t;
    esim_state_init(&st);
    if (esim_state_load(fx->state, &st) != PT_OK) {
        print_error("%s\n", pt_err_message());
        fail();
    }
    esim_state_get(&st, (const uint8_t *)fx->serial[i], strlen(fx->serial[i]), &t);
    esim_state_free(&st);
    return t;
}

/* ---- other processes ---- */

typedef struct proc {
    pid_t pid;
    int out_fd;
} proc;

static bool proc_start(proc *p, char *const argv[], bool search_path)
{
    int fds[2];
    posix_spawn_file_actions_t fa;
    p->pid = -1;
    p->out_fd = -1;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    int rc = search_path ? posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ)
                         : posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        errno = rc;
        return false;
    }
    p->out_fd = fds[0];
    return true;
}

/* Wait for p; its standard output in out. Returns its exit status (-1: killed). */
static int proc_finish(proc *p, char *out, size_t out_size)
{
    size_t used = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = read(p->out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t take = (size_t)n;
        if (take > out_size - 1 - used)
            take = out_size - 1 - used;
        memcpy(out + used, buf, take);
        used += take;
    }
    out[used] = '\0';
    close(p->out_fd);
    int status;
    while (waitpid(p->pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run(char *const argv[], bool search_path, char *out, size_t out_size)
{
    proc p;
    if (!proc_start(&p, argv, search_path)) {
        print_error("cannot run %s: %s\n", argv[0], strerror(errno));
        fail();
    }
    return proc_finish(&p, out, out_size);
}

/* Run etoken-sim-ctl with up to four arguments; its exit status. */
static int ctl(char *out, size_t out_size, char *a1, char *a2, char *a3, char *a4)
{
    char *argv[] = {ctl_path, a1, a2, a3, a4, NULL};
    char scratch[4096];
    if (out == NULL) {
        out = scratch;
        out_size = sizeof scratch;
    }
    return run(argv, false, out, out_size);
}

static void ctl_ok(char *a1, char *a2, char *a3)
{
    char out[4096];
    int status = ctl(out, sizeof out, a1, a2, a3, NULL);
    if (status != 0) {
        print_error("etoken-sim-ctl %s %s %s: exit %d\n", a1, a2 ? a2 : "", a3 ? a3 : "", status);
        fail();
    }
}

static void helper_start(proc *p, char *label, int n)
{
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    char *argv[] = {"/proc/self/exe", "--helper", module_path, label, count, NULL};
    if (!proc_start(p, argv, false)) {
        print_error("cannot run the helper: %s\n", strerror(errno));
        fail();
    }
    /*
     * Wait until the helper has found its token: SoftHSM2 rewrites a token's
     * file when a wrong PIN sets its count-low flag, and a process loading the
     * token store at that moment may not see the token yet.
     */
    char line[16];
    size_t used = 0;
    while (used < sizeof line - 1) {
        ssize_t got = read(p->out_fd, line + used, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || line[used] == '\n')
            break;
        used++;
    }
    line[used] = '\0';
    if (strcmp(line, "ready") != 0) {
        print_error("helper did not start: '%s'\n", line);
        fail();
    }
}

static void helper_finish(proc *p, int *incorrect, int *locked)
{
    char out[256];
    int other = -1;
    int status = proc_finish(p, out, sizeof out);
    if (status != 0 ||
        sscanf(out, "incorrect=%d locked=%d other=%d", incorrect, locked, // NOLINT(cert-err34-c)
               &other) != 3 ||
        other != 0) {
        print_error("helper: exit %d, said '%s'\n", status, out);
        fail();
    }
}

/* ---- fixture ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void init_token(const char *label)
{
    CK_SLOT_ID slot;
    CK_UTF8CHAR lab[32];
    assert_true(find_slot(p11, NULL, &slot));
    pad(lab, sizeof lab, label);
    assert_rv(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), lab), CKR_OK);
    CK_SESSION_HANDLE s = open_session(slot);
    assert_rv(login_pin(s, CKU_SO, SO_PIN), CKR_OK);
    assert_rv(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)), CKR_OK);
    assert_rv(p11->C_Logout(s), CKR_OK);
    assert_rv(p11->C_CloseSession(s), CKR_OK);
    /* SoftHSM2 offers the next uninitialised token after a restart. */
    assert_rv(p11->C_Finalize(NULL), CKR_OK);
    assert_rv(initialize(), CKR_OK);
}

/* Find the tokens again (slot IDs change when the library restarts). */
static void fixture_find_tokens(fixture *fx)
{
    for (int i = 0; i < NTOKENS; i++) {
        assert_true(find_slot(p11, token_labels[i], &fx->slot[i]));
        CK_TOKEN_INFO info = token_info(fx->slot[i]);
        uint8_t serial[ESIM_SERIAL_MAX];
        size_t len;
        assert_true(esim_serial_trim(info.serialNumber, sizeof info.serialNumber, serial, &len));
        assert_true(len > 0);
        memcpy(fx->serial[i], serial, len);
        fx->serial[i][len] = '\0';
    }
}

static int fixture_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char path[PATH_MAX + 32];
    char conf[2 * PATH_MAX];
    const char *tmp = getenv("TMPDIR");

    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "%s/etoken-sim-test-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(path, sizeof path, "%s/tokens", fx->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(fx->conf, sizeof fx->conf, "%s/softhsm2.conf", fx->dir);
    snprintf(conf, sizeof conf,
             "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", path);
    write_file(fx->conf, conf);
    snprintf(fx->state, sizeof fx->state, "%s/sim.state", fx->dir);
    setenv("SOFTHSM2_CONF", fx->conf, 1);
    setenv("ETOKEN_SIM_STATE", fx->state, 1);
    unsetenv("ETOKEN_SIM_MAX_TRIES");

    assert_rv(initialize(), CKR_OK);
    for (int i = 0; i < NTOKENS; i++)
        init_token(token_labels[i]);
    fixture_find_tokens(fx);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int fixture_teardown(void **state)
{
    fixture *fx = *state;
    (void)p11->C_Finalize(NULL);
    if (fx != NULL) {
        nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(fx);
    }
    unsetenv("SOFTHSM2_CONF");
    unsetenv("ETOKEN_SIM_STATE");
    unsetenv("ETOKEN_SIM_MAX_TRIES");
    return 0;
}

/* ---- group "module" ---- */

static void test_module_identity(void **state)
{
    fixture *fx = *state;
    CK_INFO info;
    CK_UTF8CHAR want[32];

    assert_rv(p11->C_GetInfo(&info), CKR_OK);
    pad(want, 32, "phonetrust eToken simulator");
    assert_memory_equal(info.libraryDescription, want, 32);
    pad(want, 32, "phonetrust");
    assert_memory_equal(info.manufacturerID, want, 32);

    CK_TOKEN_INFO ti = token_info(fx->slot[0]);
    pad(want, 32, "phonetrust etoken-sim");
    assert_memory_equal(ti.manufacturerID, want, 32);
    pad(want, 16, "eToken sim");
    assert_memory_equal(ti.model, want, 16);
    pad(want, 32, "sim-a");
    assert_memory_equal(ti.label, want, 32);
    assert_int_equal(ti.flags & PIN_FLAGS, 0);
    assert_true(ti.flags & CKF_USER_PIN_INITIALIZED);

    /* The uninitialised token SoftHSM2 offers is passed through. */
    CK_SLOT_ID free_slot;
    assert_true(find_slot(p11, NULL, &free_slot));
    ti = token_info(free_slot);
    assert_false(ti.flags & CKF_TOKEN_INITIALIZED);
    pad(want, 16, "eToken sim");
    assert_memory_equal(ti.model, want, 16);

    /* Only the PKCS#11 entry point is exported. */
    assert_non_null(dlsym(module_handle, "C_GetFunctionList"));
    assert_null(dlsym(module_handle, "C_Login"));
    assert_null(dlsym(module_handle, "esim_state_load"));
    assert_null(dlsym(module_handle, "pt_fail"));
    assert_int_equal(p11->version.major, 2);

    /* Ordinary calls still reach the backend. */
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    CK_BYTE random[16];
    assert_rv(p11->C_GenerateRandom(s, random, sizeof random), CKR_OK);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    assert_rv(sign_once(s, hmac_key(s)), CKR_OK);
    assert_rv(p11->C_CloseSession(s), CKR_OK);
    assert_rv(p11->C_GetSessionInfo(s, &(CK_SESSION_INFO){0}), CKR_SESSION_HANDLE_INVALID);
}

static void test_module_config(void **state)
{
    fixture *fx = *state;
    char path[PATH_MAX + 32];
    assert_rv(p11->C_Finalize(NULL), CKR_OK);

    /* No state file can be found. */
    unsetenv("ETOKEN_SIM_STATE");
    unsetenv("SOFTHSM2_CONF");
    assert_rv(initialize(), CKR_GENERAL_ERROR);

    /* Default: next to softhsm2.conf. */
    setenv("SOFTHSM2_CONF", fx->conf, 1);
    assert_rv(initialize(), CKR_OK);
    fixture_find_tokens(fx);
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    wrong_logins(s, 1);
    snprintf(path, sizeof path, "%s/etoken-sim.state", fx->dir);
    assert_int_equal(access(path, F_OK), 0);
    assert_rv(p11->C_Finalize(NULL), CKR_OK);

    /* A bad ETOKEN_SIM_MAX_TRIES. */
    setenv("ETOKEN_SIM_STATE", fx->state, 1);
    setenv("ETOKEN_SIM_MAX_TRIES", "many", 1);
    assert_rv(initialize(), CKR_GENERAL_ERROR);
    assert_rv(p11->C_GetSlotList(CK_TRUE, NULL, &(CK_ULONG){0}), CKR_CRYPTOKI_NOT_INITIALIZED);
    unsetenv("ETOKEN_SIM_MAX_TRIES");
    assert_rv(initialize(), CKR_OK);
    assert_rv(initialize(), CKR_CRYPTOKI_ALREADY_INITIALIZED);

    /* A damaged state file makes the calls that need it fail, loudly. */
    fixture_find_tokens(fx);
    write_file(fx->state, "not a state file\n");
    CK_TOKEN_INFO ti;
    assert_rv(p11->C_GetTokenInfo(fx->slot[0], &ti), CKR_GENERAL_ERROR);
    unlink(fx->state);
    assert_rv(p11->C_GetTokenInfo(fx->slot[0], &ti), CKR_OK);
}

/* SoftHSM2 sets its own COUNT_LOW after a wrong PIN; only the simulator's count matters. */
static void test_module_backend_flags_cleared(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    wrong_logins(s, 1);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
    ctl_ok("reset", fx->serial[0], NULL);
    assert_pin_flags(fx->slot[0], 0);
}

/* ---- group "counter" ---- */

static void test_counter_flags_and_lock(void **state)
{
    fixture *fx = *state;
    CK_SLOT_ID slot = fx->slot[0];
    CK_SESSION_HANDLE s = open_session(slot);

    assert_pin_flags(slot, 0);
    wrong_logins(s, 1);
    assert_pin_flags(slot, CKF_USER_PIN_COUNT_LOW);
    wrong_logins(s, 13);
    assert_int_equal(state_token(fx, 0).wrong, 14);
    assert_pin_flags(slot, CKF_USER_PIN_COUNT_LOW);
    wrong_logins(s, 1); /* 15: tolerated, but the next one locks */
    assert_pin_flags(slot, CKF_USER_PIN_FINAL_TRY);
    assert_false(state_token(fx, 0).locked);

    assert_rv(login_pin(s, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED); /* the 16th */
    assert_pin_flags(slot, CKF_USER_PIN_LOCKED);
    esim_token t = state_token(fx, 0);
    assert_true(t.locked);
    assert_int_equal(t.wrong, 16);

    /* Locked for good: the right PIN is refused and nothing is logged in. */
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
    assert_int_equal(session_state(s), CKS_RW_PUBLIC_SESSION);
    assert_rv(set_pin(s, USER_PIN, NEW_PIN), CKR_PIN_LOCKED);
    assert_rv(login_pin(s, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
    assert_int_equal(state_token(fx, 0).wrong, 16);

    /* A restart does not unlock it. */
    assert_rv(p11->C_Finalize(NULL), CKR_OK);
    assert_rv(initialize(), CKR_OK);
    fixture_find_tokens(fx);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_LOCKED);
    s = open_session(fx->slot[0]);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_PIN_LOCKED);

    /* The SO PIN is not the simulator's business. */
    assert_rv(login_pin(s, CKU_SO, SO_PIN), CKR_OK);
    assert_rv(p11->C_Logout(s), CKR_OK);
    /* The other token is untouched. */
    assert_pin_flags(fx->slot[1], 0);
}

static void test_counter_right_pin_resets(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    wrong_logins(s, 5);
    assert_int_equal(state_token(fx, 0).wrong, 5);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    assert_int_equal(session_state(s), CKS_RW_USER_FUNCTIONS);
    assert_pin_flags(fx->slot[0], 0);
    assert_int_equal(state_token(fx, 0).wrong, 0);
    assert_rv(p11->C_Logout(s), CKR_OK);
    /* Counting starts again from zero: 15 more are tolerated. */
    wrong_logins(s, 15);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_FINAL_TRY);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    assert_pin_flags(fx->slot[0], 0);
}

static void test_counter_so_untouched(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    assert_rv(login_pin(s, CKU_SO, WRONG_PIN), CKR_PIN_INCORRECT);
    assert_rv(login_pin(s, CKU_SO, WRONG_PIN), CKR_PIN_INCORRECT);
    assert_int_equal(state_token(fx, 0).wrong, 0);
    assert_pin_flags(fx->slot[0], 0);
    /* Changing the SO PIN with a wrong old one does not count either. */
    assert_rv(login_pin(s, CKU_SO, SO_PIN), CKR_OK);
    assert_rv(set_pin(s, WRONG_PIN, "so-pin-9999"), CKR_PIN_INCORRECT);
    assert_int_equal(state_token(fx, 0).wrong, 0);
    assert_rv(p11->C_Logout(s), CKR_OK);
}

static void test_counter_set_pin(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    /* In a public R/W session C_SetPIN changes the user PIN. */
    assert_rv(set_pin(s, WRONG_PIN, NEW_PIN), CKR_PIN_INCORRECT);
    assert_rv(set_pin(s, WRONG_PIN, NEW_PIN), CKR_PIN_INCORRECT);
    assert_int_equal(state_token(fx, 0).wrong, 2);
    wrong_logins(s, 12);
    assert_rv(set_pin(s, WRONG_PIN, NEW_PIN), CKR_PIN_INCORRECT); /* 15 */
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_FINAL_TRY);
    assert_rv(set_pin(s, USER_PIN, NEW_PIN), CKR_OK);
    assert_pin_flags(fx->slot[0], 0);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_PIN_INCORRECT);
    assert_rv(login_pin(s, CKU_USER, NEW_PIN), CKR_OK);
    assert_int_equal(state_token(fx, 0).wrong, 0);
    /* Logged in as the user, C_SetPIN still counts a wrong old PIN. */
    assert_rv(set_pin(s, WRONG_PIN, USER_PIN), CKR_PIN_INCORRECT);
    assert_int_equal(state_token(fx, 0).wrong, 1);
    assert_rv(set_pin(s, NEW_PIN, USER_PIN), CKR_OK);
    assert_int_equal(state_token(fx, 0).wrong, 0);
}

static void test_counter_two_tokens(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE a = open_session(fx->slot[0]);
    CK_SESSION_HANDLE b = open_session(fx->slot[1]);
    wrong_logins(a, 3);
    wrong_logins(b, 15);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
    assert_pin_flags(fx->slot[1], CKF_USER_PIN_FINAL_TRY);
    assert_int_equal(state_token(fx, 0).wrong, 3);
    assert_int_equal(state_token(fx, 1).wrong, 15);
    assert_rv(login_pin(b, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
    assert_pin_flags(fx->slot[1], CKF_USER_PIN_LOCKED);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
    assert_rv(login_pin(a, CKU_USER, USER_PIN), CKR_OK);
    assert_pin_flags(fx->slot[0], 0);
    assert_pin_flags(fx->slot[1], CKF_USER_PIN_LOCKED);
}

static void test_counter_max_tries(void **state)
{
    fixture *fx = *state;
    assert_rv(p11->C_Finalize(NULL), CKR_OK);
    setenv("ETOKEN_SIM_MAX_TRIES", "3", 1);
    assert_rv(initialize(), CKR_OK);
    fixture_find_tokens(fx);
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    wrong_logins(s, 2);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
    wrong_logins(s, 1);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_FINAL_TRY);
    assert_rv(login_pin(s, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_LOCKED);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
}

/* ---- group "persistence" ---- */

static void test_persist_restart(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    wrong_logins(s, 3);
    assert_rv(p11->C_Finalize(NULL), CKR_OK);
    assert_rv(initialize(), CKR_OK);
    fixture_find_tokens(fx);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
    s = open_session(fx->slot[0]);
    wrong_logins(s, 12);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_FINAL_TRY);
    assert_int_equal(state_token(fx, 0).wrong, 15);
}

static void test_persist_other_process(void **state)
{
    fixture *fx = *state;
    proc p;
    int incorrect = 0, locked = 0;

    /* Another process tries 4 wrong PINs; this one sees them at once. */
    helper_start(&p, "sim-a", 4);
    helper_finish(&p, &incorrect, &locked);
    assert_int_equal(incorrect, 4);
    assert_int_equal(locked, 0);
    assert_int_equal(state_token(fx, 0).wrong, 4);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
    assert_pin_flags(fx->slot[1], 0);

    /* This process continues the count the other one left. */
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    wrong_logins(s, 10);
    helper_start(&p, "sim-a", 3);
    helper_finish(&p, &incorrect, &locked);
    assert_int_equal(incorrect, 1); /* the 15th */
    assert_int_equal(locked, 2);    /* the 16th locks; the 17th finds it locked */
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_LOCKED);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
}

/* ---- group "default-pin" ---- */

static void test_default_pin(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    CK_OBJECT_HANDLE key = hmac_key(s);
    assert_rv(p11->C_SignInit(s, &hmac_mech, key), CKR_OK); /* started before the mode */

    ctl_ok("default-pin", fx->serial[0], "on");
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_TO_BE_CHANGED);
    assert_pin_flags(fx->slot[1], 0);
    CK_BYTE sig[64];
    CK_ULONG sig_len = sizeof sig;
    assert_rv(p11->C_Sign(s, sign_data, 4, sig, &sig_len), CKR_PIN_EXPIRED);
    assert_rv(p11->C_SignInit(s, &hmac_mech, key), CKR_PIN_EXPIRED);
    assert_rv(generate_ec_pair(s), CKR_PIN_EXPIRED);
    assert_rv(create_data_object(s), CKR_PIN_EXPIRED);

    /* The right PIN still logs in; a wrong one still counts. */
    assert_rv(p11->C_Logout(s), CKR_OK);
    wrong_logins(s, 1);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_TO_BE_CHANGED | CKF_USER_PIN_COUNT_LOW);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_TO_BE_CHANGED);
    key = hmac_key(s); /* the logout destroyed the private session key */
    assert_rv(sign_once(s, key), CKR_PIN_EXPIRED);

    /* A failed change leaves the mode on and counts. */
    assert_rv(set_pin(s, WRONG_PIN, NEW_PIN), CKR_PIN_INCORRECT);
    assert_true(state_token(fx, 0).default_pin);
    assert_int_equal(state_token(fx, 0).wrong, 1);
    assert_rv(sign_once(s, key), CKR_PIN_EXPIRED);

    /* The change ends it. */
    assert_rv(set_pin(s, USER_PIN, NEW_PIN), CKR_OK);
    assert_pin_flags(fx->slot[0], 0);
    assert_false(state_token(fx, 0).default_pin);
    assert_rv(sign_once(s, key), CKR_OK);
    assert_rv(sign_multi(s, key), CKR_OK);
    assert_rv(generate_ec_pair(s), CKR_OK);
    assert_rv(create_data_object(s), CKR_OK);
}

static void test_default_pin_off(void **state)
{
    fixture *fx = *state;
    ctl_ok("default-pin", fx->serial[1], "on");
    assert_pin_flags(fx->slot[1], CKF_USER_PIN_TO_BE_CHANGED);
    CK_SESSION_HANDLE s = open_session(fx->slot[1]);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    CK_OBJECT_HANDLE key = hmac_key(s);
    assert_rv(sign_once(s, key), CKR_PIN_EXPIRED);
    ctl_ok("default-pin", fx->serial[1], "off");
    assert_pin_flags(fx->slot[1], 0);
    assert_rv(sign_once(s, key), CKR_OK);
}

/* ---- group "faults" ---- */

static void test_fault_removed(void **state)
{
    fixture *fx = *state;
    CK_SLOT_ID slot = fx->slot[0];
    CK_SESSION_HANDLE s = open_session(slot);
    CK_SESSION_HANDLE other = open_session(fx->slot[1]);
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_SESSION_INFO info;
    CK_SESSION_HANDLE s2;

    assert_true(slot_listed(CK_TRUE, slot));
    ctl_ok("fault", fx->serial[0], "removed");
    assert_false(slot_listed(CK_TRUE, slot));
    assert_true(slot_listed(CK_FALSE, slot));
    assert_true(slot_listed(CK_TRUE, fx->slot[1]));
    /* Asking for the count first, then with a buffer too small. */
    CK_ULONG n = 0;
    assert_rv(p11->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_true(n >= 1);
    CK_SLOT_ID one;
    n = 0;
    assert_rv(p11->C_GetSlotList(CK_TRUE, &one, &n), CKR_BUFFER_TOO_SMALL);

    assert_rv(p11->C_GetSlotInfo(slot, &si), CKR_OK);
    assert_false(si.flags & CKF_TOKEN_PRESENT);
    assert_rv(p11->C_GetSlotInfo(fx->slot[1], &si), CKR_OK);
    assert_true(si.flags & CKF_TOKEN_PRESENT);
    assert_rv(p11->C_GetTokenInfo(slot, &ti), CKR_TOKEN_NOT_PRESENT);
    assert_rv(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2), CKR_TOKEN_NOT_PRESENT);
    CK_ULONG nmech = 0;
    assert_rv(p11->C_GetMechanismList(slot, NULL, &nmech), CKR_TOKEN_NOT_PRESENT);

    /* Every call on an existing session of the token. */
    assert_rv(p11->C_GetSessionInfo(s, &info), CKR_DEVICE_REMOVED);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_DEVICE_REMOVED);
    assert_rv(login_pin(s, CKU_SO, SO_PIN), CKR_DEVICE_REMOVED);
    assert_rv(p11->C_FindObjectsInit(s, NULL, 0), CKR_DEVICE_REMOVED);
    CK_BYTE random[8];
    assert_rv(p11->C_GenerateRandom(s, random, sizeof random), CKR_DEVICE_REMOVED);
    assert_rv(p11->C_SignInit(s, &hmac_mech, 1), CKR_DEVICE_REMOVED);
    assert_rv(p11->C_Logout(s), CKR_DEVICE_REMOVED);
    assert_int_equal(state_token(fx, 0).wrong, 0); /* no PIN reached the token */
    /* The other token works. */
    assert_rv(p11->C_GetSessionInfo(other, &info), CKR_OK);
    assert_rv(login_pin(other, CKU_USER, USER_PIN), CKR_OK);

    /* Put back: its sessions answer again (a real token would have lost them). */
    ctl_ok("fault", fx->serial[0], "none");
    assert_true(slot_listed(CK_TRUE, slot));
    assert_rv(p11->C_GetSessionInfo(s, &info), CKR_OK);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);

    /* Closing a session of a removed token frees it. */
    ctl_ok("fault", fx->serial[0], "removed");
    assert_rv(p11->C_CloseSession(s), CKR_DEVICE_REMOVED);
    ctl_ok("fault", fx->serial[0], "none");
    assert_rv(p11->C_GetSessionInfo(s, &info), CKR_SESSION_HANDLE_INVALID);
}

static void test_fault_sign_device_error(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    CK_BYTE sig[64];
    CK_ULONG sig_len = sizeof sig;

    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    CK_OBJECT_HANDLE key = hmac_key(s);
    ctl_ok("fault", fx->serial[0], "sign-device-error");
    assert_rv(sign_once(s, key), CKR_DEVICE_ERROR);
    /* The failed C_Sign ended the operation: a new one can start. */
    assert_rv(p11->C_SignInit(s, &hmac_mech, key), CKR_OK);
    assert_rv(p11->C_SignUpdate(s, sign_data, 4), CKR_DEVICE_ERROR);
    assert_rv(p11->C_SignFinal(s, sig, &sig_len), CKR_DEVICE_ERROR);
    assert_rv(p11->C_SignInit(s, &hmac_mech, key), CKR_OK);
    assert_rv(p11->C_SignFinal(s, sig, &sig_len), CKR_DEVICE_ERROR);
    /* Other calls and the other token are fine. */
    CK_BYTE random[8];
    assert_rv(p11->C_GenerateRandom(s, random, sizeof random), CKR_OK);
    assert_true(slot_listed(CK_TRUE, fx->slot[0]));

    ctl_ok("fault", fx->serial[0], "none");
    assert_rv(sign_once(s, key), CKR_OK);
    assert_rv(sign_multi(s, key), CKR_OK);
}

static void test_fault_remove_on_sign(void **state)
{
    fixture *fx = *state;
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);
    CK_SESSION_INFO info;
    CK_BYTE sig[64];
    CK_ULONG sig_len = sizeof sig;

    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    CK_OBJECT_HANDLE key = hmac_key(s);
    ctl_ok("fault", fx->serial[0], "remove-on-sign");
    assert_true(slot_listed(CK_TRUE, fx->slot[0]));
    /* Until the signature, nothing happens. */
    assert_rv(p11->C_SignInit(s, &hmac_mech, key), CKR_OK);
    assert_rv(p11->C_SignUpdate(s, sign_data, 4), CKR_OK);
    assert_int_equal(state_token(fx, 0).fault, ESIM_FAULT_REMOVE_ON_SIGN);
    assert_rv(p11->C_SignFinal(s, sig, &sig_len), CKR_DEVICE_REMOVED);
    assert_int_equal(state_token(fx, 0).fault, ESIM_FAULT_REMOVED);
    assert_false(slot_listed(CK_TRUE, fx->slot[0]));
    assert_rv(p11->C_GetSessionInfo(s, &info), CKR_DEVICE_REMOVED);

    /* The same with single-part C_Sign. */
    ctl_ok("fault", fx->serial[0], "remove-on-sign");
    assert_rv(p11->C_SignInit(s, &hmac_mech, key), CKR_OK);
    assert_rv(p11->C_Sign(s, sign_data, 4, sig, &sig_len), CKR_DEVICE_REMOVED);
    assert_int_equal(state_token(fx, 0).fault, ESIM_FAULT_REMOVED);
    CK_TOKEN_INFO ti;
    assert_rv(p11->C_GetTokenInfo(fx->slot[0], &ti), CKR_TOKEN_NOT_PRESENT);

    ctl_ok("fault", fx->serial[0], "none");
    assert_rv(sign_once(s, key), CKR_OK);
}

/* ---- group "ctl" ---- */

static void test_ctl_usage(void **state)
{
    fixture *fx = *state;
    char out[8192];
    char *serial = fx->serial[0];

    assert_int_equal(ctl(out, sizeof out, "--help", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "Usage: etoken-sim-ctl"));
    assert_int_equal(ctl(out, sizeof out, "fault", "--help", NULL, NULL), 0);
    assert_non_null(strstr(out, "remove-on-sign"));
    assert_int_equal(ctl(NULL, 0, NULL, NULL, NULL, NULL), 2);
    assert_int_equal(ctl(NULL, 0, "--bogus", NULL, NULL, NULL), 2);
    assert_int_equal(ctl(NULL, 0, "--state", NULL, NULL, NULL), 2);
    assert_int_equal(ctl(NULL, 0, "unlock", serial, NULL, NULL), 2);
    assert_int_equal(ctl(NULL, 0, "lock", NULL, NULL, NULL), 2);
    assert_int_equal(ctl(NULL, 0, "lock", serial, "now", NULL), 2);
    assert_int_equal(ctl(NULL, 0, "set-tries", serial, "16", NULL), 2);
    assert_int_equal(ctl(NULL, 0, "set-tries", serial, "-1", NULL), 2);
    assert_int_equal(ctl(NULL, 0, "set-tries", serial, "x", NULL), 2);
    assert_int_equal(ctl(NULL, 0, "default-pin", serial, "yes", NULL), 2);
    assert_int_equal(ctl(NULL, 0, "fault", serial, "fire", NULL), 2);
    assert_int_equal(ctl(NULL, 0, "show", serial, serial, NULL), 2);
    assert_int_equal(ctl(NULL, 0, "reset", "0123456789abcdef0", NULL, NULL), 2);
    assert_int_equal(ctl(NULL, 0, "reset", "   ", NULL, NULL), 2);
    /* Nothing was written by any of these. */
    assert_int_equal(access(fx->state, F_OK), -1);

    /* No state file to be found. */
    unsetenv("ETOKEN_SIM_STATE");
    unsetenv("SOFTHSM2_CONF");
    assert_int_equal(ctl(NULL, 0, "show", NULL, NULL, NULL), 2);
    setenv("ETOKEN_SIM_STATE", fx->state, 1);
    setenv("SOFTHSM2_CONF", fx->conf, 1);

    /* A damaged state file: failure, and the file is left as it was. */
    write_file(fx->state, "etoken-sim-state 1\ntoken serial=x\n");
    assert_int_equal(ctl(NULL, 0, "show", NULL, NULL, NULL), 1);
    assert_int_equal(ctl(NULL, 0, "reset", serial, NULL, NULL), 1);
    CK_TOKEN_INFO ti;
    assert_rv(p11->C_GetTokenInfo(fx->slot[0], &ti), CKR_GENERAL_ERROR);
    unlink(fx->state);
}

static void test_ctl_commands(void **state)
{
    fixture *fx = *state;
    char out[8192], want[256];
    char *serial = fx->serial[0];
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);

    /* A token not in the file is fresh. */
    assert_int_equal(ctl(out, sizeof out, "show", serial, NULL, NULL), 0);
    snprintf(want, sizeof want,
             "serial=%s wrong=0 max=15 locked=no default-pin=no fault=none pin=ok\n", serial);
    assert_string_equal(out, want);
    assert_int_equal(ctl(out, sizeof out, "show", NULL, NULL, NULL), 0);
    assert_string_equal(out, "");

    assert_int_equal(ctl(out, sizeof out, "set-tries", serial, "14", NULL), 0);
    assert_non_null(strstr(out, "wrong=14 max=15 locked=no"));
    assert_non_null(strstr(out, "pin=count-low"));
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
    wrong_logins(s, 1);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_FINAL_TRY);
    ctl_ok("set-tries", serial, "15");
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK); /* the right PIN resets */
    assert_rv(p11->C_Logout(s), CKR_OK);
    assert_int_equal(ctl(out, sizeof out, "show", serial, NULL, NULL), 0);
    assert_non_null(strstr(out, "wrong=0 "));

    assert_int_equal(ctl(out, sizeof out, "lock", serial, NULL, NULL), 0);
    assert_non_null(strstr(out, "locked=yes"));
    assert_non_null(strstr(out, "pin=locked"));
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_LOCKED);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_PIN_LOCKED);

    ctl_ok("default-pin", serial, "on");
    ctl_ok("fault", fx->serial[1], "sign-device-error");
    assert_int_equal(ctl(out, sizeof out, "show", NULL, NULL, NULL), 0);
    snprintf(want, sizeof want,
             "serial=%s wrong=16 max=15 locked=yes default-pin=yes fault=none pin=locked\n"
             "serial=%s wrong=0 max=15 locked=no default-pin=no fault=sign-device-error "
             "pin=ok\n",
             serial, fx->serial[1]);
    assert_string_equal(out, want);

    /* reset: fresh again, and the record leaves the file. */
    assert_int_equal(ctl(out, sizeof out, "reset", serial, NULL, NULL), 0);
    assert_non_null(strstr(out, "wrong=0 max=15 locked=no default-pin=no fault=none pin=ok"));
    assert_pin_flags(fx->slot[0], 0);
    assert_rv(login_pin(s, CKU_USER, USER_PIN), CKR_OK);
    ctl_ok("fault", fx->serial[1], "none");
    assert_int_equal(ctl(out, sizeof out, "show", NULL, NULL, NULL), 0);
    assert_string_equal(out, "");

    /* The serial as the backend pads it works too. */
    char padded[ESIM_SERIAL_MAX + 8];
    snprintf(padded, sizeof padded, "%s   ", serial);
    ctl_ok("set-tries", padded, "2");
    assert_int_equal(state_token(fx, 0).wrong, 2);

    /* --state names another file; ETOKEN_SIM_MAX_TRIES changes the bounds. */
    char other[PATH_MAX + 16];
    snprintf(other, sizeof other, "%s/other.state", fx->dir);
    assert_int_equal(ctl(out, sizeof out, "--state", other, "fault", serial), 2);
    char *argv[] = {ctl_path, "--state", other, "fault", serial, "removed", NULL};
    assert_int_equal(run(argv, false, out, sizeof out), 0);
    assert_int_equal(access(other, F_OK), 0);
    assert_true(slot_listed(CK_TRUE, fx->slot[0])); /* the module reads its own file */
    setenv("ETOKEN_SIM_MAX_TRIES", "3", 1);
    assert_int_equal(ctl(NULL, 0, "set-tries", serial, "4", NULL), 2);
    assert_int_equal(ctl(out, sizeof out, "set-tries", serial, "3", NULL), 0);
    assert_non_null(strstr(out, "max=3 locked=no default-pin=no fault=none pin=final-try"));
    unsetenv("ETOKEN_SIM_MAX_TRIES");
}

/* ---- group "threads" ---- */

typedef struct login_job {
    CK_SESSION_HANDLE session;
    int tries;
    int incorrect;
} login_job;

static void *login_worker(void *arg)
{
    login_job *job = arg;
    for (int i = 0; i < job->tries; i++)
        if (login_pin(job->session, CKU_USER, WRONG_PIN) == CKR_PIN_INCORRECT)
            job->incorrect++;
    return NULL;
}

static void test_threads_logins(void **state)
{
    fixture *fx = *state;
    pthread_t th[2];
    login_job jobs[2] = {
        {open_session(fx->slot[0]), 7, 0},
        {open_session(fx->slot[0]), 7, 0},
    };
    login_job other = {open_session(fx->slot[1]), 5, 0};
    pthread_t th_other;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, login_worker, &jobs[i]), 0);
    assert_int_equal(pthread_create(&th_other, NULL, login_worker, &other), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(pthread_join(th_other, NULL), 0);
    assert_int_equal(jobs[0].incorrect + jobs[1].incorrect, 14);
    assert_int_equal(other.incorrect, 5);
    assert_int_equal(state_token(fx, 0).wrong, 14);
    assert_int_equal(state_token(fx, 1).wrong, 5);
    assert_pin_flags(fx->slot[0], CKF_USER_PIN_COUNT_LOW);
}

/* Two threads here and another process at the same time: still no count lost. */
static void test_threads_and_process(void **state)
{
    fixture *fx = *state;
    pthread_t th[2];
    login_job jobs[2] = {
        {open_session(fx->slot[0]), 4, 0},
        {open_session(fx->slot[0]), 4, 0},
    };
    proc p;
    int incorrect = 0, locked = 0;

    helper_start(&p, "sim-a", 5);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, login_worker, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    helper_finish(&p, &incorrect, &locked);
    assert_int_equal(incorrect, 5);
    assert_int_equal(jobs[0].incorrect + jobs[1].incorrect, 8);
    assert_int_equal(state_token(fx, 0).wrong, 13);

    /* Up to the lock, concurrently: exactly 2 more are tolerated, then it locks. */
    login_job last[2] = {
        {jobs[0].session, 3, 0},
        {jobs[1].session, 3, 0},
    };
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, login_worker, &last[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(last[0].incorrect + last[1].incorrect, 2);
    assert_true(state_token(fx, 0).locked);
    assert_int_equal(state_token(fx, 0).wrong, 16);
}

/* ---- group "pkcs11-tool" ---- */

static bool in_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    if (path == NULL)
        return false;
    while (*path != '\0') {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof buf - strlen(name) - 2) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
            if (access(buf, X_OK) == 0)
                return true;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

/* The lines pkcs11-tool -T prints for the token labelled label ("" when not listed). */
static void pkcs11_tool_token(const char *label, char *section, size_t size)
{
    char out[32768];
    char *argv[] = {"pkcs11-tool", "--module", module_path, "-T", NULL};
    assert_int_equal(run(argv, true, out, sizeof out), 0);
    section[0] = '\0';
    /* Each token starts with a "Slot " line; find the one whose label matches. */
    for (char *start = strstr(out, "Slot "); start != NULL;) {
        char *next = strstr(start + 1, "\nSlot ");
        size_t len = next != NULL ? (size_t)(next - start) : strlen(start);
        char want[64];
        snprintf(want, sizeof want, "token label        : %s\n", label);
        char *hit = strstr(start, want);
        if (hit != NULL && hit < start + len) {
            snprintf(section, size, "%.*s", (int)len, start);
            return;
        }
        start = next != NULL ? next + 1 : NULL;
    }
}

static void test_pkcs11_tool(void **state)
{
    fixture *fx = *state;
    char section[4096];
    CK_SESSION_HANDLE s = open_session(fx->slot[0]);

    pkcs11_tool_token("sim-a", section, sizeof section);
    assert_non_null(strstr(section, "token manufacturer : phonetrust etoken-sim"));
    assert_non_null(strstr(section, "token model        : eToken sim"));
    assert_null(strstr(section, "user PIN"));

    wrong_logins(s, 1);
    pkcs11_tool_token("sim-a", section, sizeof section);
    assert_non_null(strstr(section, "user PIN count low"));
    assert_null(strstr(section, "final user PIN try"));

    wrong_logins(s, 14);
    pkcs11_tool_token("sim-a", section, sizeof section);
    assert_non_null(strstr(section, "final user PIN try"));
    assert_null(strstr(section, "user PIN count low"));

    assert_rv(login_pin(s, CKU_USER, WRONG_PIN), CKR_PIN_LOCKED);
    pkcs11_tool_token("sim-a", section, sizeof section);
    assert_non_null(strstr(section, "user PIN locked"));
    assert_null(strstr(section, "final user PIN try"));

    ctl_ok("default-pin", fx->serial[1], "on");
    pkcs11_tool_token("sim-b", section, sizeof section);
    assert_non_null(strstr(section, "user PIN to be changed"));

    ctl_ok("fault", fx->serial[1], "removed");
    pkcs11_tool_token("sim-b", section, sizeof section);
    assert_string_equal(section, "");
    pkcs11_tool_token("sim-a", section, sizeof section);
    assert_non_null(strstr(section, "user PIN locked"));
    /* -L lists every slot: the one of the removed token is empty. */
    char out[32768];
    char *argv[] = {"pkcs11-tool", "--module", module_path, "-L", NULL};
    assert_int_equal(run(argv, true, out, sizeof out), 0);
    assert_non_null(strstr(out, "(empty)"));
}

/* ---- the helper process ---- */

static int helper_main(const char *module, const char *label, const char *count)
{
    char *end = NULL;
    long parsed = strtol(count, &end, 10);
    int n = end != count && *end == '\0' && parsed > 0 && parsed < 100000 ? (int)parsed : 0;
    int incorrect = 0, locked = 0, other = 0;
    void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList get_list = h ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
    CK_FUNCTION_LIST *f = NULL;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_C_INITIALIZE_ARGS args;

    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    if (get_list == NULL || get_list(&f) != CKR_OK || f->C_Initialize(&args) != CKR_OK) {
        fprintf(stderr, "helper: cannot load and initialise %s\n", module);
        return 1;
    }
    if (!find_slot(f, label, &slot) ||
        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK) {
        fprintf(stderr, "helper: no token %s\n", label);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        CK_RV rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)WRONG_PIN, strlen(WRONG_PIN));
        if (rv == CKR_PIN_INCORRECT)
            incorrect++;
        else if (rv == CKR_PIN_LOCKED)
            locked++;
        else
            other++;
    }
    f->C_Finalize(NULL);
    dlclose(h);
    printf("incorrect=%d locked=%d other=%d\n", incorrect, locked, other);
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    const struct CMUnitTest module_tests[] = {
        cmocka_unit_test_setup_teardown(test_module_identity, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_module_config, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_module_backend_flags_cleared, fixture_setup,
                                        fixture_teardown),
    };
    const struct CMUnitTest counter_tests[] = {
        cmocka_unit_test_setup_teardown(test_counter_flags_and_lock, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_counter_right_pin_resets, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_counter_so_untouched, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_counter_set_pin, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_counter_two_tokens, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_counter_max_tries, fixture_setup, fixture_teardown),
    };
    const struct CMUnitTest persistence_tests[] = {
        cmocka_unit_test_setup_teardown(test_persist_restart, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_persist_other_process, fixture_setup,
                                        fixture_teardown),
    };
    const struct CMUnitTest default_pin_tests[] = {
        cmocka_unit_test_setup_teardown(test_default_pin, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_default_pin_off, fixture_setup, fixture_teardown),
    };
    const struct CMUnitTest fault_tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_removed, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fault_sign_device_error, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fault_remove_on_sign, fixture_setup, fixture_teardown),
    };
    const struct CMUnitTest ctl_tests[] = {
        cmocka_unit_test_setup_teardown(test_ctl_usage, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_commands, fixture_setup, fixture_teardown),
    };
    const struct CMUnitTest thread_tests[] = {
        cmocka_unit_test_setup_teardown(test_threads_logins, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_threads_and_process, fixture_setup, fixture_teardown),
    };
    const struct CMUnitTest tool_tests[] = {
        cmocka_unit_test_setup_teardown(test_pkcs11_tool, fixture_setup, fixture_teardown),
    };

    if (argc == 5 && strcmp(argv[1], "--helper") == 0)
        return helper_main(argv[2], argv[3], argv[4]);
    if (argc != 4) {
        fprintf(stderr, "usage: %s GROUP MODULE CTL\n", argv[0]);
        return 2;
    }
    const char *group = argv[1];
    module_path = argv[2];
    ctl_path = argv[3];

    const char *softhsm = getenv("PT_SOFTHSM_MODULE");
    if (softhsm == NULL || softhsm[0] == '\0' || access(softhsm, R_OK) != 0) {
        printf("SKIP: libsofthsm2.so not found (install softhsm2, or set the softhsm_module "
               "meson option)\n");
        return 77;
    }
    if (strcmp(group, "pkcs11-tool") == 0 && built_with_asan) {
        /* An instrumented module cannot be loaded by a program built without ASan. */
        printf("SKIP: built with AddressSanitizer, so pkcs11-tool cannot load the module\n");
        return 77;
    }
    if (strcmp(group, "pkcs11-tool") == 0 && !in_path("pkcs11-tool")) {
        printf("SKIP: pkcs11-tool not found (install opensc)\n");
        return 77;
    }
    /* The backend is chosen when the module is loaded. */
    setenv("ETOKEN_SIM_BACKEND", softhsm, 1);
    module_handle = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (module_handle == NULL) {
        fprintf(stderr, "cannot load %s: %s\n", module_path, dlerror());
        return 1;
    }
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(module_handle, "C_GetFunctionList");
    if (get_list == NULL || get_list(&p11) != CKR_OK) {
        fprintf(stderr, "%s: no usable C_GetFunctionList\n", module_path);
        return 1;
    }

#define RUN_GROUP(name, tests)                                                                     \
    if (strcmp(group, name) == 0)                                                                  \
        return cmocka_run_group_tests_name("etoken-sim " name, tests, NULL, NULL);
    RUN_GROUP("module", module_tests)
    RUN_GROUP("counter", counter_tests)
    RUN_GROUP("persistence", persistence_tests)
    RUN_GROUP("default-pin", default_pin_tests)
    RUN_GROUP("faults", fault_tests)
    RUN_GROUP("ctl", ctl_tests)
    RUN_GROUP("threads", thread_tests)
    RUN_GROUP("pkcs11-tool", tool_tests)
#undef RUN_GROUP
    fprintf(stderr, "unknown group '%s'\n", group);
    return 2;
}
