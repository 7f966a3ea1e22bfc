/* core/health.h — active health checks.
 *
 * One checker thread, started by the control thread, checks every backend
 * of every pool that has a `health_check` section: it reads the current
 * snapshot through RCU each turn (so a reload adds and drops checks), runs
 * all due checks at once with non-blocking sockets and poll(2), and writes
 * the verdict into the backend's shared `lb_live.down`, which every
 * balancing algorithm reads. Nothing on a shard waits for a check.
 *
 * A backend starts up; `fall` failed checks in a row mark it down, `rise`
 * successful ones mark it up again. Each transition is logged.
 */
#ifndef RLB_HEALTH_H
#define RLB_HEALTH_H

/* health_start starts the checker thread. Returns 1, or 0 if the thread
 * cannot be created. */
int health_start(void);

/* health_stop asks the checker to stop and waits for it. Safe to call when
 * it was not started. */
void health_stop(void);

#endif
