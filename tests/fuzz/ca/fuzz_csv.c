/*
 * Fuzz target for the CSV reader capfctl import uses on files from anywhere.
 * Beyond not crashing, leaking or reading out of bounds: whatever it reads,
 * the writer writes back so that it reads the same again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const capf_csv *csv)
{
    pt_writer w;
    pt_writer_init(&w, 4 * (size_t)CAPF_CSV_FILE_MAX);
    for (size_t i = 0; i < csv->nrecords; i++)
        capf_csv_write_record(&w, (const char *const *)csv->records[i].fields,
                              csv->records[i].nfields);
    uint8_t *out = NULL;
    size_t len = 0;
    if (pt_writer_finish(&w, &out, &len) != PT_OK)
        abort();
    capf_csv *back = NULL;
    if (capf_csv_parse(out, len, &back) != PT_OK || back->nrecords != csv->nrecords)
        abort();
    for (size_t i = 0; i < csv->nrecords; i++) {
        if (back->records[i].nfields != csv->records[i].nfields)
            abort();
        for (size_t f = 0; f < csv->records[i].nfields; f++)
            if (strcmp(back->records[i].fields[f], csv->records[i].fields[f]) != 0)
                abort();
    }
    capf_csv_free(back);
    OPENSSL_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    capf_csv *csv = NULL;
    pt_err rc = capf_csv_parse(data, size, &csv);
    if (rc == PT_OK) {
        /* Every record has at least one field, every field its NUL and no other. */
        for (size_t i = 0; i < csv->nrecords; i++)
            if (csv->records[i].nfields == 0 || csv->records[i].line == 0)
                abort();
        round_trip(csv);
    } else if (csv != NULL || (rc != PT_ERR_FORMAT && rc != PT_ERR_LIMIT)) {
        abort();
    }
    capf_csv_free(csv);
    return 0;
}
