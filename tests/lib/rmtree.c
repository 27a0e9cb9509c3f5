#include "rmtree.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int pt_test_rmtree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int pt_test_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (!(e->d_name[0] == '.' &&
              (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0'))))
            n++;
    closedir(d);
    return n;
}
