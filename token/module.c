#include "module.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "log.h"
#include "p11.h"
#include "token_paths.h"
#include "token_internal.h"

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *token_module_default_path(void)
{
    if (file_exists(PT_P11KIT_PROXY_PATH))
        return PT_P11KIT_PROXY_PATH;
    return PT_OPENSC_MODULE_PATH;
}

const char *token_module_path(const token_module *m)
{
    return m->path;
}

/* Take our own reference to the library libp11 loaded, to reach its function list. */
static pt_err module_bind_functions(token_module *m)
{
    m->dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL)
        return pt_fail(PT_ERR_IO, "cannot load PKCS#11 module %s: %s", m->path, dlerror());
    CK_C_GetFunctionList get = NULL;
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL)
        return pt_fail(PT_ERR_FORMAT, "%s is not a PKCS#11 module (no C_GetFunctionList)", m->path);
    CK_RV rv = get(&m->fl);
    if (rv != CKR_OK || m->fl == NULL)
        return token_ckr_fail(rv ? rv : CKR_GENERAL_ERROR, "C_GetFunctionList",
                              "loading the PKCS#11 module");
    /*
     * Most modules hand every caller the same, already initialised function
     * list; p11-kit's proxy hands out a new instance per call, which we must
     * initialise (and later finalize) ourselves.
     */
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->fl->C_Initialize(&args);
    if (rv == CKR_OK)
        m->fl_initialised_here = true;
    else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return token_ckr_fail(rv, "C_Initialize", "initialising the PKCS#11 module");
    return PT_OK;
}

pt_err token_module_raw_slots(token_module *m, CK_SLOT_ID *slots, CK_ULONG max, CK_ULONG *n)
{
    *n = max;
    CK_RV rv = m->fl->C_GetSlotList(CK_TRUE, slots, n);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        *n = 0;
        return pt_fail(PT_ERR_LIMIT, "the module has more than %lu tokens", (unsigned long)max);
    }
    if (rv != CKR_OK) {
        *n = 0;
        return token_ckr_fail(rv, "C_GetSlotList", "listing the slots of the module");
    }
    return PT_OK;
}

/* libp11's token fields are trimmed copies of the CK_TOKEN_INFO fields. */
static bool field_equal(const char *trimmed, const unsigned char *padded, size_t len)
{
    char buf[65];
    token_field_copy(buf, sizeof buf, padded, len);
    return trimmed != NULL && strcmp(trimmed, buf) == 0;
}

PKCS11_SLOT *token_module_libp11_slot(token_module *m, const CK_TOKEN_INFO *ti)
{
    for (unsigned i = 0; i < m->nslots; i++) {
        const PKCS11_TOKEN *tok = m->slots[i].token;
        if (tok != NULL && field_equal(tok->serialnr, ti->serialNumber, sizeof ti->serialNumber) &&
            field_equal(tok->label, ti->label, sizeof ti->label) &&
            field_equal(tok->manufacturer, ti->manufacturerID, sizeof ti->manufacturerID) &&
            field_equal(tok->model, ti->model, sizeof ti->model))
            return &m->slots[i];
    }
    return NULL;
}

pt_err token_module_open(const char *path, token_module **out)
{
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        path = token_module_default_path();
    if (!file_exists(path))
        return pt_fail(PT_ERR_NOT_FOUND,
                       "PKCS#11 module %s does not exist; give the right one with --module PATH "
                       "or module-path= in the URI",
                       path);

    token_module *m = OPENSSL_zalloc(sizeof *m);
    if (m == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc = PT_OK;
    m->path = OPENSSL_strdup(path);
    m->ctx = PKCS11_CTX_new();
    if (m->path == NULL || m->ctx == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    pt_log_debug("loading PKCS#11 module %s", path);
    if (PKCS11_CTX_load(m->ctx, path) != 0) {
        rc = token_libp11_fail("PKCS11_CTX_load", "loading the PKCS#11 module");
        rc = pt_err_context(rc, "cannot load or initialise PKCS#11 module %s", path);
        PKCS11_CTX_free(m->ctx);
        m->ctx = NULL;
        goto fail;
    }
    rc = module_bind_functions(m);
    if (rc != PT_OK)
        goto fail;
    if (PKCS11_enumerate_slots(m->ctx, &m->slots, &m->nslots) != 0) {
        m->slots = NULL;
        m->nslots = 0;
        rc = token_libp11_fail("PKCS11_enumerate_slots", "listing the slots of the module");
        goto fail;
    }
    *out = m;
    return PT_OK;
fail:
    token_module_close(m);
    return rc;
}

void token_module_close(token_module *m)
{
    if (m == NULL)
        return;
    if (m->fl != NULL && m->fl_initialised_here)
        (void)m->fl->C_Finalize(NULL);
    if (m->ctx != NULL) {
        if (m->slots != NULL)
            PKCS11_release_all_slots(m->ctx, m->slots, m->nslots);
        PKCS11_CTX_unload(m->ctx);
        PKCS11_CTX_free(m->ctx);
    }
    if (m->dl != NULL)
        dlclose(m->dl);
    OPENSSL_free(m->path);
    OPENSSL_free(m);
}
