/* tests/unit/core/timer_test.c — unit tests for core/timer.c.
 *
 * Goal: the hashed timer wheel never fires a timer early, fires it on the
 * first tick at or after its deadline and exactly once, keeps timers that
 * share a slot but lie on different laps apart, survives stalls longer than
 * a lap, and stays consistent (the `armed` count, the slot lists) when
 * callbacks re-arm or disarm timers while the wheel walks a slot.
 *
 * Method: the module is #included so the wheel's internals (slots, now_tick,
 * armed) can be checked directly. Time is a plain number handed to
 * timer_wheel_advance, so every test is deterministic. Each timer is embedded
 * in a `struct tt` that records how often and at which advance it fired; the
 * fire callback finds it with container_of and may run a per-timer action
 * (re-arm itself, disarm another timer).
 */
#include "core/timer.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

enum tt_action {
	TT_NONE,
	TT_REARM_NOW,   /* re-arm itself with deadline = the advance's now_ms */
	TT_REARM_PAST,  /* re-arm itself with deadline 0 (long past) */
	TT_DISARM_PEER, /* disarm tt->peer */
};

struct tt {
	struct timer t;
	uint32_t fired;      /* times fired */
	uint64_t fired_now;  /* now_ms of the advance that fired it last */
	uint64_t fired_tick; /* w->now_tick when it fired last */
	enum tt_action action;
	uint32_t action_max; /* run the action at most this many times (0 = never) */
	struct tt *peer;
};

/* The state the callback needs: the wheel and the now_ms being advanced to. */
struct fire_ctx {
	struct timer_wheel *w;
	uint64_t now_ms;
	uint32_t calls;
};

static void on_fire(struct timer *t, void *arg)
{
	struct fire_ctx *fc = arg;
	struct tt *x = (struct tt *)((char *)t - offsetof(struct tt, t));

	/* A timer is disarmed before its callback runs. */
	assert_false(timer_armed(t));
	assert_true(t->expire_tick <= fc->w->now_tick);
	x->fired++;
	x->fired_now = fc->now_ms;
	x->fired_tick = fc->w->now_tick;
	fc->calls++;
	if (x->action_max == 0)
		return;
	x->action_max--;
	switch (x->action) {
	case TT_REARM_NOW:
		timer_arm(fc->w, t, fc->now_ms);
		break;
	case TT_REARM_PAST:
		timer_arm(fc->w, t, 0);
		break;
	case TT_DISARM_PEER:
		timer_disarm(fc->w, &x->peer->t);
		break;
	case TT_NONE:
		break;
	}
}

static struct timer_wheel *new_wheel(uint64_t now_ms, uint64_t tick_ms)
{
	struct timer_wheel *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	timer_wheel_init(w, now_ms, tick_ms);
	return w;
}

/* advance runs timer_wheel_advance to `now_ms` and checks its return against
 * the callbacks seen. */
static uint32_t advance(struct timer_wheel *w, uint64_t now_ms)
{
	struct fire_ctx fc = {.w = w, .now_ms = now_ms};
	uint32_t n = timer_wheel_advance(w, now_ms, on_fire, &fc);

	assert_int_equal(n, fc.calls);
	return n;
}

/* count_listed walks every slot and counts the linked timers, checking the
 * pprev back-links on the way; it must always equal w->armed. */
static uint32_t count_listed(const struct timer_wheel *w)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < TIMER_SLOTS; i++) {
		struct timer *const *pp = &w->slots[i];

		for (struct timer *t = w->slots[i]; t != NULL; t = t->next) {
			assert_ptr_equal(t->pprev, pp);
			assert_int_equal(t->expire_tick & (TIMER_SLOTS - 1), i);
			pp = &t->next;
			n++;
		}
	}
	return n;
}

static void check_armed(const struct timer_wheel *w, uint32_t want)
{
	assert_int_equal(w->armed, want);
	assert_int_equal(count_listed(w), want);
}

static void test_init(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(12345, 10);

	assert_int_equal(w->tick_ms, 10);
	assert_int_equal(w->now_tick, 1234);
	check_armed(w, 0);
	/* Advancing an empty wheel moves time and fires nothing. */
	assert_int_equal(advance(w, 99999), 0);
	assert_int_equal(w->now_tick, 9999);
	/* Going backwards does nothing. */
	assert_int_equal(advance(w, 5), 0);
	assert_int_equal(w->now_tick, 9999);
	free(w);
}

/* With tick 1 ms, a timer for deadline D fires at the advance to D, not
 * before; every millisecond is stepped so "early" would be seen. */
static void test_never_early_fires_at_deadline(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(1000, 1);
	struct tt x[5];
	const uint64_t deadlines[5] = {1001, 1002, 1017, 1000 + TIMER_SLOTS - 1,
	                               1000 + TIMER_SLOTS};

	memset(x, 0, sizeof(x));
	for (int i = 0; i < 5; i++)
		timer_arm(w, &x[i].t, deadlines[i]);
	check_armed(w, 5);
	for (uint64_t now = 1000; now <= 1000 + TIMER_SLOTS + 2; now++) {
		advance(w, now);
		for (int i = 0; i < 5; i++) {
			if (now < deadlines[i])
				assert_int_equal(x[i].fired, 0);
			else
				assert_int_equal(x[i].fired, 1);
		}
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(x[i].fired_now, deadlines[i]);
	check_armed(w, 0);
	free(w);
}

/* With tick 10 ms, a deadline between tick boundaries fires on the first
 * tick boundary at or after it, i.e. the deadline rounded up to a tick. */
static void test_rounds_up_to_tick(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(100, 10);
	struct tt a, b, c;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	timer_arm(w, &a.t, 121); /* fires at 130 */
	timer_arm(w, &b.t, 130); /* fires at 130 */
	timer_arm(w, &c.t, 131); /* fires at 140 */
	for (uint64_t now = 100; now < 130; now++)
		assert_int_equal(advance(w, now), 0);
	assert_int_equal(a.fired + b.fired + c.fired, 0);
	assert_int_equal(advance(w, 130), 2);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(c.fired, 0);
	assert_int_equal(advance(w, 139), 0);
	assert_int_equal(advance(w, 140), 1);
	assert_int_equal(c.fired, 1);
	/* Advancing inside a tick (141..149) processes no new tick. */
	assert_int_equal(advance(w, 149), 0);
	check_armed(w, 0);
	free(w);
}

/* A deadline at or before the current tick fires on the next tick, never in
 * the past tick and never at once (timer_arm does not call back). */
static void test_past_deadline_fires_next_tick(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(5000, 10);
	struct tt a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	timer_arm(w, &a.t, 0);
	timer_arm(w, &b.t, 5000);
	assert_int_equal(a.t.expire_tick, 501);
	assert_int_equal(b.t.expire_tick, 501);
	assert_int_equal(advance(w, 5009), 0);
	assert_int_equal(advance(w, 5010), 2);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 1);
	check_armed(w, 0);
	free(w);
}

static void test_disarm_idempotent(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt a, b, c;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	/* Disarming a never-armed (zeroed) timer does nothing. */
	timer_disarm(w, &a.t);
	check_armed(w, 0);
	/* Three timers in one slot: disarm the middle, then the head, twice each. */
	timer_arm(w, &a.t, 10);
	timer_arm(w, &b.t, 10);
	timer_arm(w, &c.t, 10);
	check_armed(w, 3);
	timer_disarm(w, &b.t);
	assert_false(timer_armed(&b.t));
	check_armed(w, 2);
	timer_disarm(w, &b.t);
	check_armed(w, 2);
	timer_disarm(w, &c.t); /* c is the slot head (last armed) */
	timer_disarm(w, &c.t);
	check_armed(w, 1);
	assert_true(timer_armed(&a.t));
	assert_int_equal(advance(w, 100), 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 0);
	assert_int_equal(c.fired, 0);
	/* A fired timer is disarmed; disarming it again does nothing. */
	timer_disarm(w, &a.t);
	check_armed(w, 0);
	free(w);
}

/* Re-arming moves the deadline both later and earlier, and leaves the timer
 * armed once (armed count unchanged). */
static void test_rearm_moves_deadline(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	timer_arm(w, &a.t, 10);
	timer_arm(w, &a.t, 50); /* later */
	check_armed(w, 1);
	assert_int_equal(advance(w, 49), 0);
	assert_int_equal(advance(w, 50), 1);
	assert_int_equal(a.fired_now, 50);

	timer_arm(w, &b.t, 500);
	timer_arm(w, &b.t, 60); /* earlier */
	check_armed(w, 1);
	assert_int_equal(advance(w, 59), 0);
	assert_int_equal(advance(w, 60), 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(advance(w, 1000), 0);
	assert_int_equal(b.fired, 1);
	/* Re-arm into the same slot one lap later. */
	timer_arm(w, &b.t, 2000);
	timer_arm(w, &b.t, 2000 + TIMER_SLOTS);
	check_armed(w, 1);
	assert_int_equal(advance(w, 2000), 0);
	assert_int_equal(advance(w, 2000 + TIMER_SLOTS - 1), 0);
	assert_int_equal(advance(w, 2000 + TIMER_SLOTS), 1);
	assert_int_equal(b.fired, 2);
	check_armed(w, 0);
	free(w);
}

/* Timers that hash to one slot but whose deadlines are laps apart fire in
 * their own lap, one at a time, stepping one tick at a time. */
static void test_same_slot_different_laps(void **state)
{
	(void)state;
	enum { N = 6 };
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt x[N];

	memset(x, 0, sizeof(x));
	/* Arm in a scrambled order so the slot list is not sorted by lap. */
	const int order[N] = {3, 0, 5, 1, 4, 2};
	for (int k = 0; k < N; k++) {
		int i = order[k];

		timer_arm(w, &x[i].t, 7 + (uint64_t)i * TIMER_SLOTS);
	}
	check_armed(w, N);
	assert_non_null(w->slots[7]);
	for (uint64_t now = 1; now <= 7 + (uint64_t)N * TIMER_SLOTS; now++) {
		advance(w, now);
		for (int i = 0; i < N; i++) {
			uint64_t due = 7 + (uint64_t)i * TIMER_SLOTS;

			assert_int_equal(x[i].fired, now >= due ? 1 : 0);
		}
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(x[i].fired_now, 7 + (uint64_t)i * TIMER_SLOTS);
	check_armed(w, 0);
	free(w);
}

/* The same with coarse advances (several ticks, less than a lap, at once). */
static void test_same_slot_laps_coarse_advance(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt x[3];

	memset(x, 0, sizeof(x));
	for (int i = 0; i < 3; i++)
		timer_arm(w, &x[i].t, 100 + (uint64_t)i * TIMER_SLOTS);
	assert_int_equal(advance(w, 1000), 1);
	assert_int_equal(x[0].fired, 1);
	assert_int_equal(advance(w, 1000 + TIMER_SLOTS - 1), 1); /* passes 100 + SLOTS */
	assert_int_equal(x[1].fired, 1);
	assert_int_equal(x[2].fired, 0);
	check_armed(w, 1);
	free(w);
}

/* A stall longer than a lap fires everything due exactly once, and nothing
 * that is not yet due (including timers sharing a slot with due ones). */
static void test_long_stall(void **state)
{
	(void)state;
	enum { N = 3 * TIMER_SLOTS };
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt *x = calloc(N, sizeof(*x));
	const uint64_t stall_to = 2 * TIMER_SLOTS + 100;
	uint32_t due = 0;

	assert_non_null(x);
	/* Deadlines 1..N: the ones <= stall_to are due. */
	for (uint32_t i = 0; i < N; i++)
		timer_arm(w, &x[i].t, (uint64_t)i + 1);
	check_armed(w, N);
	for (uint32_t i = 0; i < N; i++)
		due += (uint64_t)i + 1 <= stall_to;
	assert_int_equal(stall_to - 0, 2 * TIMER_SLOTS + 100); /* > TIMER_SLOTS ticks */
	assert_int_equal(advance(w, stall_to), due);
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(x[i].fired, (uint64_t)i + 1 <= stall_to ? 1 : 0);
	check_armed(w, N - due);
	/* Stepping on fires the rest, each once, at its deadline. */
	for (uint64_t now = stall_to + 1; now <= N + 5; now++)
		advance(w, now);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(x[i].fired, 1);
		if ((uint64_t)i + 1 > stall_to)
			assert_int_equal(x[i].fired_now, (uint64_t)i + 1);
	}
	check_armed(w, 0);
	free(x);
	free(w);
}

/* A stall of exactly TIMER_SLOTS ticks takes the one-pass path; a stall of
 * TIMER_SLOTS - 1 ticks takes the tick-by-tick path. Both fire all due
 * timers once. */
static void test_stall_boundaries(void **state)
{
	(void)state;
	for (uint32_t len = TIMER_SLOTS - 1; len <= TIMER_SLOTS + 1; len++) {
		struct timer_wheel *w = new_wheel(0, 1);
		struct tt x[4];

		memset(x, 0, sizeof(x));
		timer_arm(w, &x[0].t, 1);
		timer_arm(w, &x[1].t, len);
		timer_arm(w, &x[2].t, len + 1);
		timer_arm(w, &x[3].t, (uint64_t)len + TIMER_SLOTS); /* same slot as x[1] */
		assert_int_equal(advance(w, len), 2);
		assert_int_equal(x[0].fired, 1);
		assert_int_equal(x[1].fired, 1);
		assert_int_equal(x[2].fired, 0);
		assert_int_equal(x[3].fired, 0);
		assert_int_equal(advance(w, len + 1), 1);
		assert_int_equal(x[2].fired, 1);
		check_armed(w, 1);
		free(w);
	}
}

/* A callback that re-arms its own timer to "now" does not loop: after a
 * one-tick advance and after a stall, it fires once per advance and again
 * on the next tick. */
static void test_rearm_self_now(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.action = TT_REARM_NOW;
	a.action_max = 1000000;
	b.action = TT_REARM_PAST;
	b.action_max = 1000000;
	timer_arm(w, &a.t, 5);
	timer_arm(w, &b.t, 5);
	assert_int_equal(advance(w, 4), 0);
	assert_int_equal(advance(w, 5), 2);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 1);
	assert_true(timer_armed(&a.t));
	assert_true(timer_armed(&b.t));
	assert_int_equal(a.t.expire_tick, 6);
	assert_int_equal(b.t.expire_tick, 6);
	check_armed(w, 2);
	/* Advancing to the same time again fires nothing. */
	assert_int_equal(advance(w, 5), 0);
	assert_int_equal(advance(w, 6), 2);
	assert_int_equal(a.fired, 2);
	assert_int_equal(b.fired, 2);
	/* After a stall longer than a lap: once each, re-armed past the stall. */
	assert_int_equal(advance(w, 6 + 3 * TIMER_SLOTS), 2);
	assert_int_equal(a.fired, 3);
	assert_int_equal(b.fired, 3);
	assert_int_equal(a.t.expire_tick, 7 + 3 * TIMER_SLOTS);
	assert_int_equal(b.t.expire_tick, 7 + 3 * TIMER_SLOTS);
	check_armed(w, 2);
	free(w);
}

/* A callback re-arming its own timer to a deadline already passed, during a
 * multi-tick advance (less than a lap), fires once per advance: the wheel's
 * time moves to the target before callbacks run, as on the stall path. */
static void test_rearm_self_past_multitick_bounded(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt a;

	memset(&a, 0, sizeof(a));
	a.action = TT_REARM_PAST;
	a.action_max = 1000000;
	timer_arm(w, &a.t, 1);
	advance(w, 100);
	assert_int_equal(a.fired, 1);
	assert_true(timer_armed(&a.t));
	assert_true(a.t.expire_tick > w->now_tick);
	check_armed(w, 1);
	free(w);
}

/* A callback re-arming its own timer to "now" (the time being advanced to)
 * fires again only on a later advance, on the tick-by-tick path too (this
 * once fired twice in one call: the wheel's time lagged behind the target
 * while callbacks ran). */
static void test_rearm_self_now_multitick_fires_once(void **state)
{
	(void)state;
	/* Static, not heap: a failed assertion longjmps out of the test and
	 * must not leak (LeakSanitizer in the SANITIZE=1 build). */
	static struct timer_wheel wheel;
	struct timer_wheel *w = &wheel;
	struct tt a;

	timer_wheel_init(w, 0, 1);
	memset(&a, 0, sizeof(a));
	a.action = TT_REARM_NOW;
	a.action_max = 1000000;
	timer_arm(w, &a.t, 5);
	assert_int_equal(advance(w, 10), 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(a.t.expire_tick, 11);
	assert_int_equal(advance(w, 11), 1);
	assert_int_equal(a.fired, 2);
}

/* A callback that disarms another due timer in the same slot (and same
 * tick) prevents it from firing, whichever order the slot list has. */
static void test_disarm_peer_same_slot(void **state)
{
	(void)state;
	for (int order = 0; order < 2; order++) {
		struct timer_wheel *w = new_wheel(0, 1);
		struct tt a, b, c;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		memset(&c, 0, sizeof(c));
		a.action = TT_DISARM_PEER;
		a.action_max = 1;
		a.peer = &b;
		b.action = TT_DISARM_PEER;
		b.action_max = 1;
		b.peer = &a;
		/* c shares the slot, one lap later: it stays. */
		timer_arm(w, &c.t, 20 + TIMER_SLOTS);
		if (order == 0) {
			timer_arm(w, &a.t, 20);
			timer_arm(w, &b.t, 20);
		} else {
			timer_arm(w, &b.t, 20);
			timer_arm(w, &a.t, 20);
		}
		check_armed(w, 3);
		assert_int_equal(advance(w, 20), 1);
		assert_int_equal(a.fired + b.fired, 1);
		assert_false(timer_armed(&a.t));
		assert_false(timer_armed(&b.t));
		assert_true(timer_armed(&c.t));
		check_armed(w, 1);
		assert_int_equal(advance(w, 20 + TIMER_SLOTS), 1);
		assert_int_equal(a.fired + b.fired, 1);
		assert_int_equal(c.fired, 1);
		check_armed(w, 0);
		free(w);
	}
}

/* The same during a stall (the one-pass path), and disarming a due timer in
 * a slot not yet walked. */
static void test_disarm_peer_during_stall(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(0, 1);
	struct tt a, b, d;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&d, 0, sizeof(d));
	a.action = TT_DISARM_PEER;
	a.action_max = 1;
	a.peer = &d; /* d is due too, in a slot walked later */
	timer_arm(w, &a.t, 3);
	timer_arm(w, &b.t, 3);
	timer_arm(w, &d.t, 9);
	assert_int_equal(advance(w, 2 * TIMER_SLOTS), 2);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(d.fired, 0);
	check_armed(w, 0);
	free(w);
}

/* Timers armed from inside a callback into other slots: a timer armed for a
 * later tick within the same advance fires in that advance (its deadline
 * passed), one armed beyond the target does not. The armed count follows. */
struct arm_others {
	struct tt self;
	struct tt *soon, *late;
	uint64_t soon_ms, late_ms;
};

static void on_fire_arm_others(struct timer *t, void *arg)
{
	struct fire_ctx *fc = arg;
	struct tt *x = (struct tt *)((char *)t - offsetof(struct tt, t));

	x->fired++;
	fc->calls++;
	if (x->peer != NULL) {
		struct arm_others *ao = (struct arm_others *)x;

		timer_arm(fc->w, &ao->soon->t, ao->soon_ms);
		timer_arm(fc->w, &ao->late->t, ao->late_ms);
		x->peer = NULL;
	}
}

static void test_arm_others_from_callback(void **state)
{
	(void)state;
	struct timer_wheel *w = new_wheel(0, 1);
	struct arm_others ao;
	struct tt soon, late;
	struct fire_ctx fc = {.w = w, .now_ms = 100};

	memset(&ao, 0, sizeof(ao));
	memset(&soon, 0, sizeof(soon));
	memset(&late, 0, sizeof(late));
	ao.self.peer = &ao.self; /* non-NULL: run the action once */
	ao.soon = &soon;
	ao.late = &late;
	ao.soon_ms = 50;
	ao.late_ms = 150;
	timer_arm(w, &ao.self.t, 10);
	/* Timers armed by a callback land after the advance in progress, even
	 * when their deadline lies inside it: they fire on the next advance. */
	assert_int_equal(timer_wheel_advance(w, 100, on_fire_arm_others, &fc), 1);
	assert_int_equal(ao.self.fired, 1);
	assert_int_equal(soon.fired, 0);
	assert_int_equal(late.fired, 0);
	check_armed(w, 2);
	fc.now_ms = 150;
	fc.calls = 0;
	assert_int_equal(timer_wheel_advance(w, 150, on_fire_arm_others, &fc), 2);
	assert_int_equal(soon.fired, 1);
	assert_int_equal(late.fired, 1);
	check_armed(w, 0);
	free(w);
}

/* The armed count stays right through a random mix of arm, re-arm, disarm
 * and advance; every fired timer was due and was fired once per arming. */
static void test_armed_count_random(void **state)
{
	(void)state;
	enum { N = 256, OPS = 20000 };
	struct timer_wheel *w = new_wheel(0, 2);
	struct tt *x = calloc(N, sizeof(*x));
	uint64_t due_tick[N]; /* the tick it must fire on */
	uint32_t armed_model = 0, fired_model[N];
	uint64_t now = 0;
	unsigned int seed = 12345;

	assert_non_null(x);
	memset(fired_model, 0, sizeof(fired_model));
	for (int op = 0; op < OPS; op++) {
		uint32_t i = (uint32_t)rand_r(&seed) % N;
		int what = rand_r(&seed) % 4;

		if (what == 0 || what == 1) {
			uint64_t d = now + (uint64_t)(rand_r(&seed) % (3 * TIMER_SLOTS * 2));

			if (!timer_armed(&x[i].t))
				armed_model++;
			timer_arm(w, &x[i].t, d);
			/* The first tick at or after d, but after the current one. */
			due_tick[i] = (d + w->tick_ms - 1) / w->tick_ms;
			if (due_tick[i] <= w->now_tick)
				due_tick[i] = w->now_tick + 1;
		} else if (what == 2) {
			if (timer_armed(&x[i].t))
				armed_model--;
			timer_disarm(w, &x[i].t);
		} else {
			uint64_t step = (uint64_t)(rand_r(&seed) % 64);

			if (rand_r(&seed) % 200 == 0)
				step = (uint64_t)(rand_r(&seed) % (4 * TIMER_SLOTS * 2));
			now += step;
			for (uint32_t k = 0; k < N; k++)
				x[k].fired = 0;
			bool was_armed[N];
			for (uint32_t k = 0; k < N; k++)
				was_armed[k] = timer_armed(&x[k].t);
			advance(w, now);
			for (uint32_t k = 0; k < N; k++) {
				/* Due and armed: fired exactly once. */
				bool due = due_tick[k] <= now / w->tick_ms;
				uint32_t want = was_armed[k] && due ? 1 : 0;

				assert_int_equal(x[k].fired, want);
				if (want) {
					armed_model--;
					fired_model[k]++;
				}
				/* Not due: still armed. */
				if (was_armed[k] && !due)
					assert_true(timer_armed(&x[k].t));
			}
		}
		assert_int_equal(w->armed, armed_model);
	}
	check_armed(w, armed_model);
	free(x);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_init),
	        cmocka_unit_test(test_never_early_fires_at_deadline),
	        cmocka_unit_test(test_rounds_up_to_tick),
	        cmocka_unit_test(test_past_deadline_fires_next_tick),
	        cmocka_unit_test(test_disarm_idempotent),
	        cmocka_unit_test(test_rearm_moves_deadline),
	        cmocka_unit_test(test_same_slot_different_laps),
	        cmocka_unit_test(test_same_slot_laps_coarse_advance),
	        cmocka_unit_test(test_long_stall),
	        cmocka_unit_test(test_stall_boundaries),
	        cmocka_unit_test(test_rearm_self_now),
	        cmocka_unit_test(test_rearm_self_past_multitick_bounded),
	        cmocka_unit_test(test_rearm_self_now_multitick_fires_once),
	        cmocka_unit_test(test_disarm_peer_same_slot),
	        cmocka_unit_test(test_disarm_peer_during_stall),
	        cmocka_unit_test(test_arm_others_from_callback),
	        cmocka_unit_test(test_armed_count_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
