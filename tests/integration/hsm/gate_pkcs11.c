/*
 * A PKCS#11 module for tests that forwards every call to SoftHSM2 but can
 * hold signatures back: while the FIFO named by $HSMD_TEST_GATE exists,
 * C_Sign first waits for a writer to open it. A test makes hsmd's workers
 * busy for exactly as long as it wants, without timing anything:
 *
 *   mkfifo gate                     # signatures from now on wait
 *   ... requests pile up; the test polls hsmd's status ...
 *   exec 3>gate; rm gate; exec 3>&-   # release the waiting ones; no more waits
 *
 * $HSMD_TEST_GATE_BACKEND (default $PT_SOFTHSM_MODULE) is the real module.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

static CK_FUNCTION_LIST gate_list;
static CK_FUNCTION_LIST_PTR backend;

static CK_RV gate_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                       CK_ULONG_PTR sig_len)
{
    const char *gate = getenv("HSMD_TEST_GATE");
    if (gate != NULL && sig != NULL && access(gate, F_OK) == 0) {
        int fd = open(gate, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char b;
            if (read(fd, &b, 1) < 0)
                b = 0; /* released either way */
            close(fd);
        }
    }
    return backend->C_Sign(s, data, len, sig, sig_len);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    if (backend == NULL) {
        const char *path = getenv("HSMD_TEST_GATE_BACKEND");
        if (path == NULL)
            path = getenv("PT_SOFTHSM_MODULE");
        void *dl = path != NULL ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        CK_C_GetFunctionList get = NULL;
        if (dl != NULL)
            *(void **)&get = dlsym(dl, "C_GetFunctionList");
        if (get == NULL || get(&backend) != CKR_OK || backend == NULL)
            return CKR_GENERAL_ERROR;
        gate_list = *backend;
        gate_list.C_Sign = gate_sign;
    }
    *list = &gate_list;
    return CKR_OK;
}
