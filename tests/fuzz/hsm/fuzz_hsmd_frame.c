/*
 * Fuzz target: hsmd frames as a peer could send them. The input is a frame
 * (length prefix and body); the prefix goes through the same check the frame
 * reader makes, and the body through both parsers. Whatever parses must
 * encode back to exactly the same bytes: every message has one encoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hsmd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *body, size_t len)
{
    hsmd_request req;
    uint8_t *again = NULL;
    size_t again_len = 0;
    if (hsmd_request_parse(body, len, &req) != PT_OK)
        return;
    if (hsmd_request_encode(&req, &again, &again_len) != PT_OK || again_len != len ||
        memcmp(again, body, len) != 0)
        abort();
    OPENSSL_free(again);
}

static void check_response(const uint8_t *body, size_t len)
{
    hsmd_response resp;
    uint8_t *again = NULL;
    size_t again_len = 0;
    if (hsmd_response_parse(body, len, &resp) != PT_OK)
        return;
    if (strlen(resp.reason) > HSMD_REASON_MAX)
        abort();
    if (hsmd_response_encode(&resp, &again, &again_len) != PT_OK || again_len != len ||
        memcmp(again, body, len) != 0)
        abort();
    OPENSSL_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= HSMD_FRAME_PREFIX_LEN) {
        uint32_t declared = 0;
        pt_err rc = hsmd_frame_length_check(data, &declared);
        if (rc == PT_OK && (declared < HSMD_HEADER_LEN || declared > HSMD_FRAME_MAX))
            abort();
        data += HSMD_FRAME_PREFIX_LEN;
        size -= HSMD_FRAME_PREFIX_LEN;
    }
    check_request(data, size);
    check_response(data, size);
    return 0;
}
