/* core/timer.h — a hashed timer wheel, one per shard.
 *
 * Deadlines on the request path (header, body, idle, connect, response,
 * send) come from this wheel, never from a sleeping thread. Arming,
 * re-arming and disarming are O(1); advancing costs one slot per elapsed
 * tick plus the timers that fire. A timer never fires early: it fires on the
 * first tick at or after its deadline, so precision is one tick.
 *
 * Thread: shard-local. The struct timer is embedded in the object it times
 * (a connection); the wheel never allocates.
 */
#ifndef RLB_TIMER_H
#define RLB_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_SLOTS 4096u /* power of two; timers beyond one lap wait extra laps */

struct timer {
	struct timer *next;
	struct timer **pprev; /* NULL when not armed */
	uint64_t expire_tick;
};

struct timer_wheel {
	struct timer *slots[TIMER_SLOTS];
	uint64_t tick_ms;  /* length of one tick */
	uint64_t now_tick; /* ticks up to and including this one are processed */
	uint32_t armed;    /* number of armed timers */
};

/* timer_fire_fn is called for each expired timer, after it was disarmed; it
 * may re-arm it or arm and disarm others. */
typedef void (*timer_fire_fn)(struct timer *t, void *arg);

/* timer_wheel_init starts an empty wheel at time `now_ms` with ticks of
 * `tick_ms` milliseconds (>= 1). */
void timer_wheel_init(struct timer_wheel *w, uint64_t now_ms, uint64_t tick_ms);

/* timer_arm arms `t` (disarming it first if armed) to fire at `deadline_ms`. */
void timer_arm(struct timer_wheel *w, struct timer *t, uint64_t deadline_ms);

/* timer_disarm disarms `t`; doing nothing if it is not armed. */
void timer_disarm(struct timer_wheel *w, struct timer *t);

/* timer_armed says whether `t` is armed. */
static inline bool timer_armed(const struct timer *t)
{
	return t->pprev != 0;
}

/* timer_wheel_advance processes every tick up to `now_ms` and calls `fire`
 * for each timer whose deadline passed. Returns the number fired. */
uint32_t timer_wheel_advance(struct timer_wheel *w, uint64_t now_ms, timer_fire_fn fire, void *arg);

#endif
