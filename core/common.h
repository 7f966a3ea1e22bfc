/* core/common.h — small primitives every module uses: assertions, the
 * return conventions, likely/unlikely, array sizes.
 *
 * Return conventions (one place, used everywhere):
 *   - predicates and parsers that only succeed or fail return 1/0 (bool);
 *   - syscall and CQE wrappers return 0 or a positive count on success and
 *     -errno on failure, as liburing does;
 *   - anything richer returns an enum with a name table (see h1.h).
 * Never "a count, or -1".
 *
 * Assertions come in two tiers. RLB_ASSERT is always on and cheap: slot state
 * at each transition, in-flight counts, bounds. RLB_ASSERT_HOT guards per-byte
 * and per-CQE conditions and compiles away unless DEBUG_STRICT is defined.
 * Assertions are for programmer errors only; bad input takes the error path.
 */
#ifndef RLB_COMMON_H
#define RLB_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define RLB_LIKELY(x)    __builtin_expect(!!(x), 1)
#define RLB_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define RLB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RLB_COLD         __attribute__((cold))
#define RLB_CACHELINE    64

/* rlb_assert_fail prints the failed condition with its place and aborts. */
__attribute__((noreturn, cold)) void rlb_assert_fail(const char *cond, const char *file, int line);

#define RLB_ASSERT(cond)                                                                           \
	do {                                                                                       \
		if (RLB_UNLIKELY(!(cond)))                                                         \
			rlb_assert_fail(#cond, __FILE__, __LINE__);                                \
	} while (0)

#ifdef DEBUG_STRICT
#define RLB_ASSERT_HOT(cond) RLB_ASSERT(cond)
#else
#define RLB_ASSERT_HOT(cond) ((void)0)
#endif

/* rlb_now_ms and rlb_now_us read CLOCK_MONOTONIC, the one clock every
 * thread's deadlines and timestamps share (shards, checker, control). */
uint64_t rlb_now_ms(void);
uint64_t rlb_now_us(void);

/* rlb_json_text writes `in` into out[0..cap) escaped for the inside of a
 * JSON string ('"', '\\', control bytes and bytes beyond ASCII as \\u00XX:
 * a configured path may hold any of them); cut short rather than overrun.
 * Returns out. */
const char *rlb_json_text(char *out, size_t cap, const char *in);

/* rlb_xmalloc allocates at boot or on the control thread; it dies on OOM,
 * because a process that cannot build its configuration cannot serve. */
void *rlb_xcalloc(size_t num, size_t size);

#endif
