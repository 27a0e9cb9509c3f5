/* Removing a test's temporary directory without a shell. */
#ifndef PT_TEST_RMTREE_H
#define PT_TEST_RMTREE_H

/* Remove path and everything below it; 0 on success. */
int pt_test_rmtree(const char *path);

/* How many entries (other than . and ..) the directory holds, or -1. */
int pt_test_count_entries(const char *dir);

#endif
