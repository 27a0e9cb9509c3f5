#include "harden.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

pt_err pt_harden_process(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return pt_fail_errno("cannot disable core dumps");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return pt_fail_errno("cannot disable ptrace attachment");
    return PT_OK;
}

void pt_secure_heap_init(void)
{
    if (CRYPTO_secure_malloc_initialized())
        return;
    /* 16 KiB is plenty for a few PINs and stays under the default RLIMIT_MEMLOCK. */
    (void)CRYPTO_secure_malloc_init(16 * 1024, 32);
}
