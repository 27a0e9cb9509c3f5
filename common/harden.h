/*
 * Process hardening for programs that hold PINs or talk to key stores.
 */
#ifndef PT_HARDEN_H
#define PT_HARDEN_H

#include "pt_error.h"

/*
 * No core dumps (RLIMIT_CORE 0) and no ptrace attachment by other processes
 * of the same user (PR_SET_DUMPABLE 0), so that PINs and session state in
 * memory do not end up on disk or in a debugger.
 */
pt_err pt_harden_process(void);

/*
 * Set up OpenSSL's secure heap (locked in memory, never swapped) for PINs.
 * Failure is not fatal: OPENSSL_secure_malloc then falls back to malloc.
 */
void pt_secure_heap_init(void);

#endif
