/*
 * Bounds-checked reading and writing of big-endian byte strings.
 *
 * Every parser of untrusted bytes (TLV files, CAPF messages, hsmd frames,
 * token attributes) reads through a pt_reader: lengths are checked by
 * subtraction against what remains, a failed read sets a sticky flag and
 * returns zeroes, and pt_reader_done() tells whether the input was consumed
 * exactly. The struct is declared here so readers can live on the stack;
 * treat its fields as private.
 */
#ifndef PT_BYTES_H
#define PT_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_error.h"

typedef struct pt_reader {
    const uint8_t *data; /* private */
    size_t len;          /* private */
    size_t pos;          /* private */
    size_t base;         /* private: offset of data[0] in the outermost input */
    bool failed;         /* private */
} pt_reader;

void pt_reader_init(pt_reader *r, const void *data, size_t len);

/* Each returns false (and sets the sticky failure) when too few bytes remain. */
bool pt_reader_u8(pt_reader *r, uint8_t *v);
bool pt_reader_u16(pt_reader *r, uint16_t *v);
bool pt_reader_u32(pt_reader *r, uint32_t *v);
bool pt_reader_u32le(pt_reader *r, uint32_t *v);
/* Borrow the next n bytes (no copy); *p stays valid as long as the input. */
bool pt_reader_bytes(pt_reader *r, size_t n, const uint8_t **p);
bool pt_reader_skip(pt_reader *r, size_t n);
/* Peek at the next byte without consuming it. */
bool pt_reader_peek_u8(const pt_reader *r, uint8_t *v);
/* A reader over the next n bytes; offsets reported by it stay absolute. */
bool pt_reader_sub(pt_reader *r, size_t n, pt_reader *sub);

size_t pt_reader_remaining(const pt_reader *r);
/* Offset of the next byte from the start of the outermost input. */
size_t pt_reader_offset(const pt_reader *r);
bool pt_reader_failed(const pt_reader *r);
/* True when nothing failed and every byte was consumed. */
bool pt_reader_done(const pt_reader *r);

/*
 * A growable output buffer with a hard maximum size. Writes past the maximum
 * (or failed allocations) set a sticky failure; pt_writer_finish reports it.
 * The buffer is wiped when freed, so it may hold secrets.
 */
typedef struct pt_writer {
    uint8_t *buf;  /* private */
    size_t len;    /* private */
    size_t cap;    /* private */
    size_t max;    /* private */
    bool failed;   /* private */
    bool overflow; /* private: failed because of max */
    bool invalid;  /* private: failed because a value could not be encoded */
} pt_writer;

void pt_writer_init(pt_writer *w, size_t max);
bool pt_writer_u8(pt_writer *w, uint8_t v);
bool pt_writer_u16(pt_writer *w, uint16_t v);
bool pt_writer_u32(pt_writer *w, uint32_t v);
bool pt_writer_u32le(pt_writer *w, uint32_t v);
bool pt_writer_bytes(pt_writer *w, const void *p, size_t n);
/* Append n zero bytes and report where they start, to patch later. */
bool pt_writer_reserve(pt_writer *w, size_t n, size_t *offset);
/* Overwrite 2 bytes at offset (inside what was written) with v, big-endian. */
bool pt_writer_patch_u16(pt_writer *w, size_t offset, uint16_t v);
size_t pt_writer_len(const pt_writer *w);
/* The bytes written so far (NULL when nothing was written). */
const uint8_t *pt_writer_data(const pt_writer *w);
bool pt_writer_failed(const pt_writer *w);
/* Mark the writer failed (an encoder found a value it cannot write). */
void pt_writer_set_failed(pt_writer *w);

/*
 * Hand the buffer to the caller (free with OPENSSL_free, or OPENSSL_clear_free
 * for secrets) or report why writing failed (PT_ERR_LIMIT or PT_ERR_NOMEM).
 * The writer is empty afterwards either way. A writer that wrote nothing
 * yields a valid 1-byte allocation and *len = 0.
 */
pt_err pt_writer_finish(pt_writer *w, uint8_t **out, size_t *len);
/* Wipe and free whatever was written. */
void pt_writer_free(pt_writer *w);

#endif
