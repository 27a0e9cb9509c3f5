#include "bytes.h"

#include <string.h>

#include <openssl/crypto.h>

void pt_reader_init(pt_reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = data != NULL ? len : 0;
    r->pos = 0;
    r->base = 0;
    r->failed = false;
}

size_t pt_reader_remaining(const pt_reader *r)
{
    return r->len - r->pos;
}

size_t pt_reader_offset(const pt_reader *r)
{
    return r->base + r->pos;
}

bool pt_reader_failed(const pt_reader *r)
{
    return r->failed;
}

bool pt_reader_done(const pt_reader *r)
{
    return !r->failed && r->pos == r->len;
}

/* The one place that decides whether n more bytes may be taken. */
static bool reader_take(pt_reader *r, size_t n, const uint8_t **p)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = true;
        *p = NULL;
        return false;
    }
    *p = r->data + r->pos;
    r->pos += n;
    return true;
}

bool pt_reader_u8(pt_reader *r, uint8_t *v)
{
    const uint8_t *p;
    if (!reader_take(r, 1, &p)) {
        *v = 0;
        return false;
    }
    *v = p[0];
    return true;
}

bool pt_reader_u16(pt_reader *r, uint16_t *v)
{
    const uint8_t *p;
    if (!reader_take(r, 2, &p)) {
        *v = 0;
        return false;
    }
    *v = (uint16_t)((unsigned)p[0] << 8 | p[1]);
    return true;
}

bool pt_reader_u32(pt_reader *r, uint32_t *v)
{
    const uint8_t *p;
    if (!reader_take(r, 4, &p)) {
        *v = 0;
        return false;
    }
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return true;
}

bool pt_reader_u32le(pt_reader *r, uint32_t *v)
{
    const uint8_t *p;
    if (!reader_take(r, 4, &p)) {
        *v = 0;
        return false;
    }
    *v = (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
    return true;
}

bool pt_reader_bytes(pt_reader *r, size_t n, const uint8_t **p)
{
    return reader_take(r, n, p);
}

bool pt_reader_skip(pt_reader *r, size_t n)
{
    const uint8_t *p;
    return reader_take(r, n, &p);
}

bool pt_reader_peek_u8(const pt_reader *r, uint8_t *v)
{
    if (r->failed || r->pos >= r->len) {
        *v = 0;
        return false;
    }
    *v = r->data[r->pos];
    return true;
}

bool pt_reader_sub(pt_reader *r, size_t n, pt_reader *sub)
{
    size_t start = pt_reader_offset(r);
    const uint8_t *p;
    if (!reader_take(r, n, &p)) {
        pt_reader_init(sub, NULL, 0);
        sub->failed = true;
        sub->base = start;
        return false;
    }
    pt_reader_init(sub, p, n);
    sub->base = start;
    return true;
}

void pt_writer_init(pt_writer *w, size_t max)
{
    memset(w, 0, sizeof *w);
    w->max = max;
}

static bool writer_grow(pt_writer *w, size_t n)
{
    if (w->failed)
        return false;
    if (w->len > w->max || n > w->max - w->len) {
        w->failed = true;
        w->overflow = true;
        return false;
    }
    size_t need = w->len + n;
    if (need <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > w->max)
        cap = w->max;
    /* Grow by copy so that the old buffer can be wiped: it may hold secrets. */
    uint8_t *nb = OPENSSL_malloc(cap);
    if (nb == NULL) {
        w->failed = true;
        return false;
    }
    if (w->len > 0)
        memcpy(nb, w->buf, w->len);
    OPENSSL_clear_free(w->buf, w->cap);
    w->buf = nb;
    w->cap = cap;
    return true;
}

bool pt_writer_bytes(pt_writer *w, const void *p, size_t n)
{
    if (!writer_grow(w, n))
        return false;
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
    return true;
}

bool pt_writer_u8(pt_writer *w, uint8_t v)
{
    return pt_writer_bytes(w, &v, 1);
}

bool pt_writer_u16(pt_writer *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return pt_writer_bytes(w, b, sizeof b);
}

bool pt_writer_u32(pt_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return pt_writer_bytes(w, b, sizeof b);
}

bool pt_writer_u32le(pt_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return pt_writer_bytes(w, b, sizeof b);
}

bool pt_writer_reserve(pt_writer *w, size_t n, size_t *offset)
{
    *offset = w->len;
    if (!writer_grow(w, n))
        return false;
    if (n > 0)
        memset(w->buf + w->len, 0, n);
    w->len += n;
    return true;
}

bool pt_writer_patch_u16(pt_writer *w, size_t offset, uint16_t v)
{
    if (w->failed || offset > w->len || w->len - offset < 2) {
        w->failed = true;
        return false;
    }
    w->buf[offset] = (uint8_t)(v >> 8);
    w->buf[offset + 1] = (uint8_t)v;
    return true;
}

size_t pt_writer_len(const pt_writer *w)
{
    return w->len;
}

const uint8_t *pt_writer_data(const pt_writer *w)
{
    return w->buf;
}

bool pt_writer_failed(const pt_writer *w)
{
    return w->failed;
}

void pt_writer_set_failed(pt_writer *w)
{
    w->failed = true;
    w->invalid = true;
}

pt_err pt_writer_finish(pt_writer *w, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (w->failed) {
        pt_err rc = w->overflow  ? pt_fail(PT_ERR_LIMIT, "output exceeds %zu bytes", w->max)
                    : w->invalid ? pt_fail(PT_ERR_FORMAT, "a value cannot be encoded")
                                 : pt_fail(PT_ERR_NOMEM, "out of memory building output");
        pt_writer_free(w);
        return rc;
    }
    if (w->buf == NULL) {
        w->buf = OPENSSL_zalloc(1);
        if (w->buf == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory building output");
    }
    *out = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return PT_OK;
}

void pt_writer_free(pt_writer *w)
{
    OPENSSL_clear_free(w->buf, w->cap);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->failed = false;
    w->overflow = false;
    w->invalid = false;
}
