/*
 * A loaded PKCS#11 module: the libp11 context plus the module's own function
 * list, for the few calls libp11 does not offer (fresh token flags, login
 * with the exact return value, key generation with our own template,
 * certificate objects, PIN change).
 */
#ifndef TOKEN_MODULE_H
#define TOKEN_MODULE_H

#include "pt_error.h"

typedef struct token_module token_module;

/*
 * The module used when none is given: p11-kit's proxy (every module
 * registered with p11-kit) when installed, else OpenSC's module.
 */
const char *token_module_default_path(void);

/* Load and initialise a module (path NULL: the default). */
pt_err token_module_open(const char *path, token_module **out);
void token_module_close(token_module *m);
const char *token_module_path(const token_module *m);

#endif
