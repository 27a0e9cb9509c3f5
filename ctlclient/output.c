#include "output.h"

#include <string.h>

#include "fileio.h"

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

pt_err ctl_output_check(const char *const *paths, size_t n, const char **base)
{
    *base = NULL;
    if (n == 0)
        return pt_fail(PT_ERR_USAGE,
                       "no output location: give -o PATH (e.g. -o /tftpboot/CTLFile.tlv)");
    if (n > CTL_OUTPUT_MAX)
        return pt_fail(PT_ERR_USAGE, "at most %d output locations", CTL_OUTPUT_MAX);
    const char *first = base_name(paths[0]);
    for (size_t i = 0; i < n; i++) {
        const char *b = base_name(paths[i]);
        if (b[0] == '\0' || strcmp(b, ".") == 0 || strcmp(b, "..") == 0)
            return pt_fail(PT_ERR_USAGE, "-o %s: name a file, e.g. %sCTLFile.tlv", paths[i],
                           paths[i]);
        if (strlen(b) > 255)
            return pt_fail(PT_ERR_USAGE, "-o %s: the file name is too long", paths[i]);
        if (strcmp(b, first) != 0)
            return pt_fail(PT_ERR_USAGE,
                           "-o %s and -o %s have different file names; phones look for the name "
                           "written in the file, so every location must use the same one",
                           paths[0], paths[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(paths[i], paths[j]) == 0)
                return pt_fail(PT_ERR_USAGE, "-o %s is given twice", paths[i]);
    }
    *base = first;
    return PT_OK;
}

pt_err ctl_output_write(const char *const *paths, size_t n, const uint8_t *data, size_t len,
                        FILE *report)
{
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        pt_err rc = pt_file_write_atomic(paths[i], data, len, 0644);
        if (rc == PT_OK) {
            fprintf(report, "wrote %s (%zu bytes)\n", paths[i], len);
        } else {
            failed++;
            fprintf(report, "FAILED %s: %s (left as it was)\n", paths[i], pt_err_message());
        }
    }
    fflush(report);
    if (failed == n)
        return pt_fail(PT_ERR_IO, "no location could be written (see above): fix them and run the "
                                  "command again");
    if (failed > 0)
        return pt_fail(PT_ERR_IO,
                       "%zu of %zu locations could not be written (see above); the others hold "
                       "the new file: fix the failed ones and run the command again",
                       failed, n);
    return PT_OK;
}
