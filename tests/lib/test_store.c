#include "test_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "login.h"
#include "provision.h"
#include "rmtree.h"

bool pt_test_store_init(pt_test_store *s)
{
    memset(s, 0, sizeof *s);
    s->module = getenv("PT_SOFTHSM_MODULE");
    if (s->module == NULL || access(s->module, R_OK) != 0) {
        fprintf(stderr, "SoftHSM2 is not installed: skipping\n");
        return false;
    }
    snprintf(s->dir, sizeof s->dir, "%s/pt-store-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(s->dir) == NULL)
        return false;
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/tokens", s->dir);
    if (mkdir(path, 0700) != 0)
        return false;
    snprintf(text, sizeof text,
             "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
             s->dir);
    snprintf(path, sizeof path, "%s/softhsm2.conf", s->dir);
    if (pt_file_write_atomic(path, text, strlen(text), 0600) != PT_OK)
        return false;
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(path, sizeof path, "%s/etoken-sim.state", s->dir);
    setenv("ETOKEN_SIM_STATE", path, 1);
    setenv("ETOKEN_SIM_BACKEND", s->module, 1);
    snprintf(s->pin_file, sizeof s->pin_file, "%s/pin", s->dir);
    return pt_file_write_atomic(s->pin_file, PT_TEST_PIN "\n", strlen(PT_TEST_PIN) + 1, 0600) ==
           PT_OK;
}

bool pt_test_store_add_token(pt_test_store *s, const char *label)
{
    token_module *m = NULL;
    token_info info;
    pt_err rc = token_module_open(s->module, &m);
    if (rc == PT_OK)
        rc = token_provision(m, label, PT_TEST_SO_PIN, PT_TEST_PIN, &info);
    token_module_close(m);
    if (rc != PT_OK)
        fprintf(stderr, "cannot create token %s: %s\n", label, pt_err_message());
    return rc == PT_OK;
}

token *pt_test_store_login(pt_test_store *s, const char *label)
{
    char uri[512];
    snprintf(uri, sizeof uri, "pkcs11:token=%s?pin-source=file:%s", label, s->pin_file);
    token *t = NULL;
    token_pin_source src = {TOKEN_PIN_FROM_FILE, s->pin_file, -1};
    token_login_opts lo = {&src, NULL, false};
    pt_err rc = token_open(uri, s->module, &t);
    if (rc == PT_OK)
        rc = token_login(t, &lo);
    if (rc != PT_OK) {
        fprintf(stderr, "cannot log in to %s: %s\n", label, pt_err_message());
        token_close(t);
        return NULL;
    }
    return t;
}

void pt_test_store_cleanup(pt_test_store *s)
{
    if (s->dir[0] == '\0')
        return;
    if (pt_test_rmtree(s->dir) != 0)
        fprintf(stderr, "cannot remove %s\n", s->dir);
}
