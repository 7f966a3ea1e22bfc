/* balancer/maglev.c — consistent hashing with Maglev (Eisenbud et al.,
 * NSDI 2016), weighted, with optional bounded load. Serves `hash` and
 * `ip_hash` (the same table; the proxy chooses what key it hashes).
 *
 * build() fills a lookup table of M = 65521 slots (prime, the same for every
 * pool size) from each backend's own permutation of the slots,
 * derived with XXH3 from the backend's name (its address), never from its
 * position in the list. So removing one of N backends only moves the slots
 * that backend owned — about 1/N of the keys — and adding one takes about
 * 1/(N+1) from the others. Weights: in each round of the fill, a backend
 * places slots in proportion to weight / max weight, so its share of the
 * table follows its weight.
 *
 * pick() is one table lookup: slot = hash mod M. With a balance factor
 * (hash_balance_factor, in percent), a backend already carrying more than
 * factor × the mean load (in-flight requests across all shards, as in
 * "consistent hashing with bounded loads", Mirrokni et al.) is passed over
 * and the walk continues through the following slots, which is again a
 * deterministic, key-dependent order. Excluded (already tried) backends are
 * passed over the same way.
 */
#include "balancer/balancer.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAGLEV_SEED_OFFSET 0x6d61676c65766f66ull /* "maglevof" */
#define MAGLEV_SEED_SKIP   0x6d61676c6576736bull /* "maglevsk" */

struct maglev {
	uint32_t size;   /* M, prime */
	uint16_t slot[]; /* backend index per slot */
};

/* One table size for every pool: if M followed N, adding or removing a
 * backend across a size step would change `hash mod M` for nearly every key
 * and move them all. 65521 (prime) keeps M >= 64 N up to the 1024 backends
 * a pool may have, for 128 KiB per hashing pool. */
#define MAGLEV_SIZE 65521u

static uint32_t table_size(uint32_t n)
{
	(void)n;
	return MAGLEV_SIZE;
}

struct perm {
	uint64_t offset, skip, next;
	uint64_t credit;
};

static void fill(struct maglev *t, const struct lb_pool *pool, struct perm *p, uint32_t wmax)
{
	uint32_t n = pool->num_backends, m = t->size, filled = 0;

	for (uint32_t j = 0; j < m; j++)
		t->slot[j] = UINT16_MAX;
	while (filled < m) {
		for (uint32_t i = 0; i < n && filled < m; i++) {
			uint32_t w = pool->backends[i].weight ? pool->backends[i].weight : 1;

			/* A backend of weight w takes w/wmax turns per round. */
			p[i].credit += w;
			while (p[i].credit >= wmax && filled < m) {
				uint64_t c = (p[i].offset + p[i].next * p[i].skip) % m;

				while (t->slot[c] != UINT16_MAX) {
					p[i].next++;
					c = (p[i].offset + p[i].next * p[i].skip) % m;
				}
				t->slot[c] = (uint16_t)i;
				p[i].next++;
				p[i].credit -= wmax;
				filled++;
			}
		}
	}
}

static int maglev_build(struct lb_pool *pool)
{
	uint32_t n = pool->num_backends, wmax = 1;
	struct maglev *t;
	struct perm *p;

	pool->state = NULL;
	if (n == 0)
		return 1;
	if (n >= UINT16_MAX)
		return 0;
	t = malloc(sizeof(*t) + (size_t)table_size(n) * sizeof(t->slot[0]));
	p = calloc(n, sizeof(*p));
	if (t == NULL || p == NULL) {
		free(t);
		free(p);
		return 0;
	}
	t->size = table_size(n);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = pool->backends[i].name;
		size_t len = strlen(name);

		p[i].offset = XXH3_64bits_withSeed(name, len, MAGLEV_SEED_OFFSET) % t->size;
		p[i].skip = XXH3_64bits_withSeed(name, len, MAGLEV_SEED_SKIP) % (t->size - 1) + 1;
		if (pool->backends[i].weight > wmax)
			wmax = pool->backends[i].weight;
	}
	fill(t, pool, p, wmax);
	free(p);
	pool->state = t;
	return 1;
}

static void maglev_release(struct lb_pool *pool)
{
	free(pool->state);
	pool->state = NULL;
}

/* within_bound says whether backend i can take one more request under the
 * balance factor: active + 1 <= factor * (total + 1) / N. */
static bool within_bound(const struct lb_pool *pool, uint32_t i, uint64_t total)
{
	uint64_t cap;

	if (pool->balance_factor_pct == 0)
		return true;
	cap = ((total + 1) * pool->balance_factor_pct + 100ull * pool->num_backends - 1) /
	      (100ull * pool->num_backends);
	return (uint64_t)lb_active(pool, i) + 1 <= cap;
}

static int32_t maglev_pick(const struct lb_pool *pool, struct lb_local *local,
                           const struct lb_ctx *ctx)
{
	const struct maglev *t = pool->state;
	uint64_t total = 0;
	uint32_t start;

	(void)local;
	if (t == NULL)
		return -1;
	if (pool->balance_factor_pct != 0)
		for (uint32_t i = 0; i < pool->num_backends; i++)
			total += lb_active(pool, i);
	start = (uint32_t)(ctx->hash % t->size);
	for (uint32_t k = 0; k < t->size; k++) {
		uint32_t i = t->slot[(start + k) % t->size];

		if (!lb_excluded(pool, ctx, i) && within_bound(pool, i, total))
			return (int32_t)i;
	}
	/* Everything is over the bound (or excluded): fall back to the
	 * key's own backend unless it was excluded. */
	for (uint32_t k = 0; k < t->size; k++) {
		uint32_t i = t->slot[(start + k) % t->size];

		if (!lb_excluded(pool, ctx, i))
			return (int32_t)i;
	}
	return -1;
}

const struct balancer_ops balancer_hash = {
        .name = "hash",
        .build = maglev_build,
        .release = maglev_release,
        .pick = maglev_pick,
};
