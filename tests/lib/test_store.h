/*
 * A private SoftHSM2 token store for C tests: a temporary directory with its
 * own softhsm2.conf, selected through SOFTHSM2_CONF for this process only.
 */
#ifndef PT_TEST_STORE_H
#define PT_TEST_STORE_H

#include <stdbool.h>

#include "token.h"

#define PT_TEST_PIN    "1234"
#define PT_TEST_SO_PIN "87654321"

typedef struct pt_test_store {
    char dir[256];
    char pin_file[300];
    const char *module; /* the SoftHSM2 module */
} pt_test_store;

/* Create the store; false (with a message on stderr) when SoftHSM2 is missing: skip the test. */
bool pt_test_store_init(pt_test_store *s);
/* Create a token labelled label with PT_TEST_PIN; false on failure. */
bool pt_test_store_add_token(pt_test_store *s, const char *label);
/* Open the token labelled label and log in with PT_TEST_PIN. */
token *pt_test_store_login(pt_test_store *s, const char *label);
/* Remove the store's directory. */
void pt_test_store_cleanup(pt_test_store *s);

#endif
