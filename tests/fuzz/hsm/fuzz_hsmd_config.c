/*
 * Fuzz target: hsmd's configuration parser (inih behind a line reader that
 * refuses what inih would take in a surprising way). What it accepts must be
 * a complete configuration.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hsmd_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsmd_config *cfg = NULL;
    pt_err rc = hsmd_config_parse((const char *)data, size, "fuzz.conf", &cfg);
    if (rc != PT_OK) {
        if (cfg != NULL || pt_err_message()[0] == '\0')
            abort();
        return 0;
    }
    if (cfg->module == NULL || cfg->module[0] != '/' || cfg->token_uri == NULL ||
        cfg->socket_path == NULL || cfg->audit_log == NULL || cfg->n_keys == 0 ||
        cfg->n_keys > HSMD_CONFIG_MAX_KEYS || cfg->sessions < 1 || cfg->sessions > 64 ||
        (cfg->socket_mode & 0600) != 0600 || (cfg->socket_mode & 0002) != 0)
        abort();
    for (size_t i = 0; i < cfg->n_keys; i++) {
        const hsmd_key_config *k = &cfg->keys[i];
        if (k->label == NULL || (k->op != HSMD_OP_ISSUE && k->op != HSMD_OP_SIGN_TLV) ||
            k->users.n + k->groups.n == 0 || k->digests == 0 || hsmd_config_key(cfg, k->name) != k)
            abort();
    }
    hsmd_config_free(cfg);
    return 0;
}
