#include "harden.h"

#include <sys/prctl.h>
#include <sys/resource.h>

pt_err pt_harden_process(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return pt_fail_errno("cannot disable core dumps");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return pt_fail_errno("cannot disable ptrace attachment");
    return PT_OK;
}
