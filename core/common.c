/* core/common.c — assertion failure and boot-time allocation. */
#include "core/common.h"

void rlb_assert_fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "ringlb: assertion failed: %s (%s:%d)\n", cond, file, line);
	fflush(stderr);
	abort();
}

void *rlb_xcalloc(size_t num, size_t size)
{
	void *p = calloc(num ? num : 1, size ? size : 1);

	if (p == NULL) {
		fprintf(stderr, "ringlb: out of memory allocating %zu x %zu bytes\n", num, size);
		abort();
	}
	return p;
}
