/* bench/pick_bench.c — nanoseconds per pick for every balancing algorithm
 * with 4, 64 and 1024 backends.
 *
 * Each pool gets weights from 1 to 10 and live counters (in-flight requests
 * 0..31, EWMA 200..5000 µs) drawn from a fixed seed; a background of counter
 * updates is not simulated, so the figures are the cost of the decision
 * itself, on one core, with the pool's cache lines warm. Keys for the hash
 * algorithms are fresh random 64-bit values, so table lookups miss as they
 * would with real traffic. Run by bench/run.sh when built (make bench). */
#include "balancer/balancer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PICKS 2000000u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double measure(const struct balancer_ops *ops, uint32_t n, uint32_t factor)
{
	struct lb_pool pool = {.ops = ops, .num_backends = n, .balance_factor_pct = factor};
	struct lb_local local = {.rng = 42};
	struct lb_ctx ctx = {0};
	uint64_t seed = 7, sink = 0, t0, t1;

	pool.backends = calloc(n, sizeof(*pool.backends));
	pool.live = aligned_alloc(LB_CACHELINE, (size_t)n * sizeof(*pool.live));
	if (pool.backends == NULL || pool.live == NULL) {
		fprintf(stderr, "pick_bench: out of memory\n");
		exit(1);
	}
	memset(pool.live, 0, (size_t)n * sizeof(*pool.live));
	for (uint32_t i = 0; i < n; i++) {
		pool.backends[i].uid = i;
		pool.backends[i].weight = 1 + (uint32_t)(lb_random(&local) % 10);
		snprintf(pool.backends[i].name, sizeof(pool.backends[i].name), "10.0.%u.%u:80",
		         i / 256, i % 256);
		atomic_store(&pool.live[i].active, (uint32_t)(lb_random(&local) % 32));
		atomic_store(&pool.live[i].ewma_us, 200 + (uint32_t)(lb_random(&local) % 4800));
	}
	if (!ops->build(&pool)) {
		fprintf(stderr, "pick_bench: %s: build failed\n", ops->name);
		exit(1);
	}
	t0 = now_ns();
	for (uint32_t k = 0; k < PICKS; k++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		ctx.hash = seed;
		sink += (uint64_t)ops->pick(&pool, &local, &ctx);
	}
	t1 = now_ns();
	ops->release(&pool);
	free(pool.backends);
	free(pool.live);
	if (sink == 0xdeadbeef)
		printf(" ");
	return (double)(t1 - t0) / PICKS;
}

int main(void)
{
	static const char *const names[] = {"round_robin", "least_conn", "weighted_least_conn",
	                                    "random_two",  "least_time", "hash"};
	static const uint32_t sizes[] = {4, 64, 1024};

	printf("| algorithm | 4 backends | 64 backends | 1024 backends |\n");
	printf("|---|---:|---:|---:|\n");
	for (size_t a = 0; a < sizeof(names) / sizeof(names[0]); a++) {
		const struct balancer_ops *ops = balancer_find(names[a]);

		printf("| %s |", names[a]);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			printf(" %.1f ns |", measure(ops, sizes[i], 0));
		printf("\n");
	}
	printf("| hash, hash_balance_factor 125 |");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		printf(" %.1f ns |", measure(balancer_find("hash"), sizes[i], 125));
	printf("\n");
	return 0;
}
