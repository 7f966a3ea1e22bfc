/* core/timer.c — hashed timer wheel (see timer.h). */
#include "core/timer.h"

#include "core/common.h"

#include <string.h>

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ms, uint64_t tick_ms)
{
	RLB_ASSERT(tick_ms >= 1);
	memset(w, 0, sizeof(*w));
	w->tick_ms = tick_ms;
	w->now_tick = now_ms / tick_ms;
}

void timer_disarm(struct timer_wheel *w, struct timer *t)
{
	if (t->pprev == NULL)
		return;
	*t->pprev = t->next;
	if (t->next != NULL)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
	RLB_ASSERT(w->armed > 0);
	w->armed--;
}

void timer_arm(struct timer_wheel *w, struct timer *t, uint64_t deadline_ms)
{
	/* Round up: a timer fires on the first tick at or after its deadline,
	 * and always on a tick later than the one already processed. */
	uint64_t tick = (deadline_ms + w->tick_ms - 1) / w->tick_ms;
	struct timer **slot;

	timer_disarm(w, t);
	if (tick <= w->now_tick)
		tick = w->now_tick + 1;
	t->expire_tick = tick;
	slot = &w->slots[tick & (TIMER_SLOTS - 1)];
	t->next = *slot;
	if (t->next != NULL)
		t->next->pprev = &t->next;
	t->pprev = slot;
	*slot = t;
	w->armed++;
}

/* fire_slot fires the timers of one slot that are due by `tick`. Timers due
 * on a later lap stay. A fired timer may re-arm itself into this very slot
 * (one lap later), so the walk restarts from the head after each firing. */
static uint32_t fire_slot(struct timer_wheel *w, uint32_t idx, uint64_t tick, timer_fire_fn fire,
                          void *arg)
{
	uint32_t fired = 0;
	struct timer *t = w->slots[idx];

	while (t != NULL) {
		if (t->expire_tick > tick) {
			t = t->next;
			continue;
		}
		timer_disarm(w, t);
		fire(t, arg);
		fired++;
		t = w->slots[idx];
	}
	return fired;
}

uint32_t timer_wheel_advance(struct timer_wheel *w, uint64_t now_ms, timer_fire_fn fire, void *arg)
{
	uint64_t target = now_ms / w->tick_ms;
	uint64_t from = w->now_tick;
	uint32_t fired = 0;

	if (target <= from)
		return 0;
	/* The wheel's time moves to the target before any callback runs, so a
	 * timer re-armed by its callback lands after this advance and fires at
	 * most once per call, however long the stall was. */
	w->now_tick = target;
	if (w->armed == 0)
		return 0;
	/* After a long stall, one pass over every slot fires everything due;
	 * walking more than a lap of ticks would only revisit the same slots. */
	if (target - from >= TIMER_SLOTS) {
		for (uint32_t i = 0; i < TIMER_SLOTS; i++)
			fired += fire_slot(w, i, target, fire, arg);
		return fired;
	}
	for (uint64_t tick = from + 1; tick <= target; tick++)
		fired += fire_slot(w, (uint32_t)(tick & (TIMER_SLOTS - 1)), tick, fire, arg);
	return fired;
}
