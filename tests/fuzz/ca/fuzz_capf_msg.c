/*
 * Fuzz target for the CAPF message codec: the header-first path a server
 * uses, the whole-message parse, a body under a command chosen by the input,
 * every getter, and a re-encoding of what parsed.
 *
 * Seed corpus (corpus-capf-msg/): the messages of the §12 transcript and the
 * other captured openings, the vendor AUTH_REQUEST of §10.1, and a
 * certificate AUTH_RESPONSE with SUDI_DATA laid out as §12 describes.
 *
 * Invariants are checked with abort(): the fuzzer reports a violation as a
 * crash, the replayer under `meson test` as a failure.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capf_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool rc_ok(pt_err rc)
{
    return rc == PT_OK || rc == PT_ERR_NOT_FOUND || rc == PT_ERR_FORMAT;
}

static void exercise_scalars(const capf_msg *m, uint8_t tag)
{
    uint8_t v8;
    uint16_t v16;
    const uint8_t *p;
    const char *s;
    size_t n;
    check(rc_ok(capf_msg_get_u8(m, tag, &v8)));
    check(rc_ok(capf_msg_get_u16(m, tag, &v16)));
    pt_err rc = capf_msg_get_bytes(m, tag, &p, &n);
    check(rc == PT_OK ? capf_msg_has(m, tag) : rc == PT_ERR_NOT_FOUND && !capf_msg_has(m, tag));
    rc = capf_msg_get_string(m, tag, &s, &n);
    check(rc_ok(rc));
    if (rc == PT_OK)
        check(s[n] == '\0' && strlen(s) == n);
}

static void exercise_composites(const capf_msg *m)
{
    const uint8_t *der;
    size_t n;
    capf_sha2_signed sha2;
    capf_sudi sudi;
    char notes[1024];
    pt_err rc = capf_msg_get_certificate(m, &der, &n);
    check(rc_ok(rc));
    if (rc == PT_OK)
        check(n >= 2 && der[0] == 0x30);
    check(rc_ok(capf_msg_get_sha2_signed_data(m, &sha2)));
    rc = capf_msg_get_sudi(m, &sudi);
    check(rc_ok(rc));
    if (rc == PT_OK)
        check(sudi.cert_len + sudi.sha1_sig_len + sudi.sha512_sig_len + 9 <= 65535);
    capf_msg_notes_format(m, notes, sizeof notes);
    check(strlen(notes) < sizeof notes);
}

/*
 * When the elements a message carries are a valid set for its command, the
 * encoder must accept them and its output must parse to the same values.
 */
static void exercise_reencode(const capf_msg *m)
{
    capf_el els[256];
    size_t n = 0;
    for (int t = 0; t < 256; t++) {
        const uint8_t *p;
        size_t len;
        if (capf_msg_get_bytes(m, (uint8_t)t, &p, &len) == PT_OK)
            els[n++] = (capf_el){(uint8_t)t, p, len};
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (capf_msg_encode(capf_msg_command(m), capf_msg_session_id(m), els, n, &buf, &len) != PT_OK)
        return;
    capf_msg *again = NULL;
    check(len <= CAPF_MSG_MAX && capf_msg_parse(buf, len, &again) == PT_OK);
    check(capf_msg_session_id(again) == capf_msg_session_id(m));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t plen;
        check(capf_msg_get_bytes(again, els[i].tag, &p, &plen) == PT_OK);
        check(plen == els[i].len && (plen == 0 || memcmp(p, els[i].value, plen) == 0));
    }
    capf_msg_free(again);
    capf_msg_buf_free(buf, len);
}

static void exercise(const capf_msg *m)
{
    for (int t = 0; t < 256; t++)
        exercise_scalars(m, (uint8_t)t);
    exercise_composites(m);
    exercise_reencode(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    capf_msg *m = NULL;
    capf_header h;

    /* As a server reads: header first, then exactly LENGTH bytes. */
    bool whole_ok = capf_msg_parse(data, size, &m) == PT_OK;
    check(whole_ok == (m != NULL));
    capf_msg_free(m);
    m = NULL;
    if (size >= CAPF_HEADER_LEN && capf_msg_header_parse(data, &h) == PT_OK) {
        pt_err rc = capf_msg_parse_body(&h, data + CAPF_HEADER_LEN, size - CAPF_HEADER_LEN, &m);
        check((rc == PT_OK) == whole_ok);
        if (rc == PT_OK) {
            check(capf_msg_command(m) == data[1]);
            exercise(m);
        }
        capf_msg_free(m);
        m = NULL;
    } else {
        check(!whole_ok);
    }

    /* The rest as the body of the command in the first byte, to reach every layout. */
    if (size >= 1 && size - 1 <= CAPF_MSG_READ_MAX - CAPF_HEADER_LEN) {
        capf_header any = {data[0], 0x01020304, (uint16_t)(size - 1)};
        if (capf_msg_parse_body(&any, data + 1, size - 1, &m) == PT_OK)
            exercise(m);
        capf_msg_free(m);
    }
    return 0;
}
