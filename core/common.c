/* core/common.c — clocks, assertion failure, boot-time allocation, JSON text. */
#include "core/common.h"

#include <time.h>

uint64_t rlb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t rlb_now_ms(void)
{
	return rlb_now_us() / 1000;
}

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

const char *rlb_json_text(char *out, size_t cap, const char *in)
{
	size_t n = 0;

	for (; *in != '\0' && n + 7 < cap; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch == '"' || ch == '\\') {
			out[n++] = '\\';
			out[n++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n] = '\0';
	return out;
}
