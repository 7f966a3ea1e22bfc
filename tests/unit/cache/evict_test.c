/* tests/unit/cache/evict_test.c — unit tests for cache/evict.c.
 *
 * Goal: the S3-FIFO policy keeps the promises of its header: the bytes
 * charged never exceed the capacity after any insert or resize, and the
 * node being inserted is never the one evicted; objects never hit in the
 * small queue S are evicted (to the ghost) before objects that were hit,
 * which move to the main queue M; a key whose fingerprint is in the ghost
 * goes straight to M, and that ghost entry is spent; in M a hit object
 * survives a pass (lazy promotion) and loses one hit; remove works in every
 * queue, calls nothing back and leaves no ghost entry; an object larger than
 * the capacity is refused with no side effect, one as large as the capacity
 * empties the cache, zero-size objects are free; a working set that is
 * re-accessed survives a long scan of one-time keys (which flushes an LRU of
 * the same size); the ghost keeps a fixed size through millions of distinct
 * keys, its oldest fingerprints aging out; concurrent hits from other
 * threads never break the owner's loop.
 *
 * Method: the module is #included so the queues and the ghost index can be
 * walked: check() verifies links, queue tags, byte and object counts, the
 * budget, and that every ghost index entry is reachable from its home slot.
 * Objects are `struct tobj` (an evict_node plus an id and an "in the cache"
 * flag) with hashes from a fixed-seed splitmix64; the eviction callback
 * checks the node is already unlinked, clears the flag and logs the id, so
 * the order of evictions can be compared with the expected one. Every run
 * is identical (the threaded test asserts only invariants). No timing
 * assertions.
 */
#include "cache/evict.c"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct tobj {
	struct evict_node n;
	uint32_t id;
	bool in;
};

struct tcache {
	struct evict_policy p;
	struct tobj *o;
	uint32_t num;
	uint32_t *log; /* ids in eviction order */
	uint32_t logged, log_cap;
};

static uint64_t splitmix64(uint64_t x)
{
	uint64_t z = x + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct tobj *obj_of(struct evict_node *n)
{
	return (struct tobj *)(void *)((char *)n - offsetof(struct tobj, n));
}

static void on_evict(struct evict_node *n, void *arg)
{
	struct tcache *c = arg;
	struct tobj *o = obj_of(n);

	assert_int_equal(n->queue, Q_NONE);
	assert_null(n->next);
	assert_null(n->prev);
	assert_true(o->in);
	o->in = false;
	if (c->logged < c->log_cap)
		c->log[c->logged] = o->id;
	c->logged++;
}

/* tc_new makes a cache of `capacity` bytes and `num` objects of `size`
 * bytes each (id i, hash splitmix64(i)). */
static struct tcache *tc_new(uint64_t capacity, uint32_t ghost, uint32_t num, uint32_t size)
{
	struct tcache *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_int_equal(evict_init(&c->p, capacity, ghost), 0);
	c->num = num;
	c->o = calloc(num, sizeof(*c->o));
	c->log_cap = 4096;
	c->log = calloc(c->log_cap, sizeof(*c->log));
	assert_non_null(c->o);
	assert_non_null(c->log);
	for (uint32_t i = 0; i < num; i++) {
		c->o[i].id = i;
		c->o[i].n.hash = splitmix64(i);
		c->o[i].n.size = size;
	}
	return c;
}

static void tc_free(struct tcache *c)
{
	evict_destroy(&c->p);
	free(c->o);
	free(c->log);
	free(c);
}

static bool tc_insert(struct tcache *c, uint32_t id)
{
	struct tobj *o = &c->o[id];

	assert_false(o->in);
	if (!evict_insert(&c->p, &o->n, on_evict, c))
		return false;
	o->in = true;
	return true;
}

static void tc_remove(struct tcache *c, uint32_t id)
{
	assert_true(c->o[id].in);
	evict_remove(&c->p, &c->o[id].n);
	c->o[id].in = false;
}

static bool ghost_has(const struct evict_ghost *g, uint64_t fp)
{
	for (uint32_t i = ghost_home(g, fp); g->index[i] != 0; i = (i + 1) & g->mask)
		if (g->ring[g->index[i] - 1] == fp)
			return true;
	return false;
}

static void check_queue(const struct evict_queue *q, uint8_t tag)
{
	const struct evict_node *prev = NULL;
	uint64_t bytes = 0, count = 0;

	for (const struct evict_node *n = q->head; n != NULL; n = n->next) {
		assert_ptr_equal(n->prev, prev);
		assert_int_equal(n->queue, tag);
		assert_true(atomic_load(&n->freq) <= EVICT_FREQ_MAX);
		bytes += n->size;
		count++;
		prev = n;
	}
	assert_ptr_equal(q->tail, prev);
	assert_int_equal(bytes, q->bytes);
	assert_int_equal(count, q->count);
}

static void check_ghost(const struct evict_ghost *g)
{
	uint32_t used = 0;

	assert_true(g->filled <= g->cap);
	for (uint32_t i = 0; i <= g->mask; i++) {
		if (g->index[i] == 0)
			continue;
		used++;
		assert_true(g->index[i] - 1 < g->filled);
		/* Reachable: no empty slot between its home and its slot. */
		for (uint32_t j = ghost_home(g, g->ring[g->index[i] - 1]); j != i;
		     j = (j + 1) & g->mask)
			assert_int_not_equal(g->index[j], 0);
	}
	assert_int_equal(used, g->live);
	assert_true(g->live <= g->cap);
}

/* check walks everything: queues, the budget, the ghost, the in flags. */
static void check(const struct tcache *c)
{
	uint64_t in = 0;

	check_queue(&c->p.small, Q_SMALL);
	check_queue(&c->p.main, Q_MAIN);
	check_ghost(&c->p.ghost);
	assert_true(evict_bytes(&c->p) <= c->p.capacity);
	for (uint32_t i = 0; i < c->num; i++) {
		in += c->o[i].in;
		assert_int_equal(c->o[i].in, c->o[i].n.queue != Q_NONE);
	}
	assert_int_equal(in, evict_count(&c->p));
}

/* ---- budget ----------------------------------------------------------- */

/* Random sizes (0 B up to the whole capacity), random hits, removals and
 * re-insertions: after every insert the budget holds and the new object is
 * in; the full invariants hold throughout. */
static void test_budget_random(void **state)
{
	(void)state;
	const uint64_t cap = 1 << 20;
	struct tcache *c = tc_new(cap, 0, 3000, 0);
	uint64_t seed = 1;

	for (uint32_t i = 0; i < c->num; i++) {
		uint64_t r = splitmix64(seed++);

		c->o[i].n.size = r % 16 == 0   ? 0
		                 : r % 97 == 0 ? (uint32_t)cap
		                               : (uint32_t)((r >> 8) % (300 * 1024));
	}
	for (uint32_t k = 0; k < 200000; k++) {
		uint64_t r = splitmix64(seed++);
		uint32_t id = (uint32_t)(r % c->num);

		if (c->o[id].in && (r >> 40) % 20 == 0) {
			tc_remove(c, id);
		} else if (c->o[id].in) {
			evict_touch(&c->o[id].n);
		} else {
			assert_true(tc_insert(c, id));
			assert_true(c->o[id].in);
			assert_true(evict_bytes(&c->p) <= cap);
		}
		if (k % 5000 == 0)
			check(c);
	}
	check(c);
	tc_free(c);
}

/* ---- small queue, ghost, main queue ----------------------------------- */

/* fill_one_hit: capacity 100 of 1-byte objects; 0..9 enter S, 0..4 are hit,
 * 10..99 fill the cache; 100..104 evict exactly the one-hit wonders 5..9
 * (FIFO order), while 0..4 move to M. */
static struct tcache *fill_one_hit(void)
{
	struct tcache *c = tc_new(100, 0, 1000, 1);

	for (uint32_t i = 0; i < 100; i++)
		assert_true(tc_insert(c, i));
	for (uint32_t i = 0; i < 5; i++)
		evict_touch(&c->o[i].n);
	assert_int_equal(c->logged, 0);
	for (uint32_t i = 100; i < 105; i++)
		assert_true(tc_insert(c, i));
	assert_int_equal(c->logged, 5);
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(c->log[i], 5 + i);
		assert_int_equal(c->o[i].n.queue, Q_MAIN);
		assert_true(ghost_has(&c->p.ghost, c->o[5 + i].n.hash));
	}
	check(c);
	return c;
}

/* One-hit wonders go first; 300 more one-time objects all pass through S
 * and out while the hit objects stay in M. */
static void test_one_hit_wonders(void **state)
{
	(void)state;
	struct tcache *c = fill_one_hit();

	for (uint32_t i = 105; i < 405; i++)
		assert_true(tc_insert(c, i));
	for (uint32_t i = 0; i < 5; i++) {
		assert_true(c->o[i].in);
		assert_int_equal(c->o[i].n.queue, Q_MAIN);
	}
	/* Evicted in arrival order: 5..9, then 10, 11, ... */
	for (uint32_t k = 0; k < c->logged; k++)
		assert_int_equal(c->log[k], 5 + k);
	assert_int_equal(c->logged, 300 + 5);
	check(c);
	tc_free(c);
}

/* A key evicted from S comes back (ghost hit) into M, spending its ghost
 * entry; a new key enters S. */
static void test_ghost_hit_goes_to_main(void **state)
{
	(void)state;
	struct tcache *c = fill_one_hit();
	uint32_t live = c->p.ghost.live;

	assert_true(tc_insert(c, 7));
	assert_int_equal(c->o[7].n.queue, Q_MAIN);
	assert_false(ghost_has(&c->p.ghost, c->o[7].n.hash));
	assert_int_equal(atomic_load(&c->o[7].n.freq), 0);
	/* It evicted one more one-hit object from S, which entered the ghost. */
	assert_int_equal(c->p.ghost.live, live);
	assert_true(tc_insert(c, 500));
	assert_int_equal(c->o[500].n.queue, Q_SMALL);
	/* The ghost entry is spent: removed and re-inserted, 7 enters S. */
	tc_remove(c, 7);
	assert_true(tc_insert(c, 7));
	assert_int_equal(c->o[7].n.queue, Q_SMALL);
	check(c);
	tc_free(c);
}

/* M holds 0..9 (tail 0) not hit; 3 is hit. Ten ghost hits (10..19) evict
 * M's tail each time: 0, 1, 2, then 3 gets a second pass (its hit spent)
 * and 4..9 and 10 go instead; three more ghost hits (20..22) take 11, 12
 * and 3. */
static void test_lazy_promotion(void **state)
{
	(void)state;
	struct tcache *c = tc_new(10, 0, 100, 1);
	const uint32_t want[] = {0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 3};

	for (uint32_t i = 0; i < 30; i++)
		assert_true(tc_insert(c, i)); /* 0..19 evicted from S to the ghost */
	for (uint32_t i = 0; i < 10; i++)
		assert_true(tc_insert(c, i)); /* ghost hits: into M; 20..29 out */
	assert_int_equal(c->p.main.count, 10);
	assert_int_equal(c->p.small.count, 0);
	assert_ptr_equal(c->p.main.tail, &c->o[0].n);
	c->logged = 0;
	for (int k = 0; k < 5; k++)
		evict_touch(&c->o[3].n);
	assert_int_equal(atomic_load(&c->o[3].n.freq), EVICT_FREQ_MAX);
	atomic_store(&c->o[3].n.freq, 1);
	for (uint32_t i = 10; i < 20; i++) {
		assert_true(tc_insert(c, i));
		assert_int_equal(c->o[i].n.queue, Q_MAIN);
	}
	assert_true(c->o[3].in);
	assert_int_equal(atomic_load(&c->o[3].n.freq), 0);
	for (uint32_t i = 20; i < 23; i++) {
		assert_true(tc_insert(c, i));
		assert_int_equal(c->o[i].n.queue, Q_MAIN);
	}
	assert_int_equal(c->logged, RLB_ARRAY_LEN(want));
	for (uint32_t k = 0; k < RLB_ARRAY_LEN(want); k++)
		assert_int_equal(c->log[k], want[k]);
	check(c);
	tc_free(c);
}

/* ---- remove ----------------------------------------------------------- */

static void test_remove(void **state)
{
	(void)state;
	struct tcache *c = fill_one_hit();
	uint32_t live = c->p.ghost.live, logged = c->logged;
	uint64_t count = evict_count(&c->p), bytes = evict_bytes(&c->p);
	const uint32_t gone[] = {104, 10, 50, 4, 0, 2};

	/* From S: head (104), tail (10), middle (50). */
	tc_remove(c, 104);
	tc_remove(c, 10);
	tc_remove(c, 50);
	/* From M: head (4), tail (0), middle (2). */
	assert_ptr_equal(c->p.main.head, &c->o[4].n);
	assert_ptr_equal(c->p.main.tail, &c->o[0].n);
	tc_remove(c, 4);
	tc_remove(c, 0);
	tc_remove(c, 2);
	check(c);
	assert_int_equal(evict_count(&c->p), count - 6);
	assert_int_equal(evict_bytes(&c->p), bytes - 6);
	assert_int_equal(c->logged, logged); /* no callback */
	assert_int_equal(c->p.ghost.live, live);
	for (uint32_t k = 0; k < RLB_ARRAY_LEN(gone); k++)
		assert_false(ghost_has(&c->p.ghost, c->o[gone[k]].n.hash));
	/* Re-inserted: not ghost hits, so S. */
	assert_true(tc_insert(c, 0));
	assert_true(tc_insert(c, 10));
	assert_int_equal(c->o[0].n.queue, Q_SMALL);
	assert_int_equal(c->o[10].n.queue, Q_SMALL);
	/* Remove everything, in any order; the policy is empty and reusable. */
	for (uint32_t id = 0; id < c->num; id++)
		if (c->o[id].in)
			tc_remove(c, id);
	assert_int_equal(evict_count(&c->p), 0);
	assert_int_equal(evict_bytes(&c->p), 0);
	assert_null(c->p.small.head);
	assert_null(c->p.main.tail);
	assert_true(tc_insert(c, 3));
	check(c);
	tc_free(c);
}

/* ---- sizes ------------------------------------------------------------ */

/* Larger than the capacity: refused, nothing changes. As large as the
 * capacity: everything else goes. Zero bytes: admitted for free. Larger
 * than S's share: admitted, and it leaves S first. */
static void test_sizes(void **state)
{
	(void)state;
	struct tcache *c = fill_one_hit();
	uint64_t count = evict_count(&c->p), bytes = evict_bytes(&c->p);
	uint32_t live = c->p.ghost.live, logged = c->logged;

	c->o[600].n.size = 101;
	assert_false(tc_insert(c, 600));
	assert_int_equal(c->o[600].n.queue, Q_NONE);
	assert_int_equal(evict_count(&c->p), count);
	assert_int_equal(evict_bytes(&c->p), bytes);
	assert_int_equal(c->p.ghost.live, live);
	assert_int_equal(c->logged, logged);
	assert_false(ghost_has(&c->p.ghost, c->o[600].n.hash));
	check(c);

	c->o[601].n.size = 100;
	assert_true(tc_insert(c, 601));
	assert_int_equal(evict_count(&c->p), 1);
	assert_int_equal(evict_bytes(&c->p), 100);
	for (uint32_t i = 0; i < 6; i++) {
		c->o[610 + i].n.size = 0;
		assert_true(tc_insert(c, 610 + i));
	}
	assert_true(c->o[601].in);
	assert_int_equal(evict_count(&c->p), 7);
	check(c);

	/* 601 (100 bytes, S) was not hit: a 60-byte object evicts it. */
	c->o[602].n.size = 60;
	assert_true(tc_insert(c, 602));
	assert_false(c->o[601].in);
	assert_true(c->o[602].in);
	assert_int_equal(evict_bytes(&c->p), 60);
	check(c);
	tc_free(c);
}

/* ---- resize ----------------------------------------------------------- */

static void test_resize(void **state)
{
	(void)state;
	struct tcache *c = tc_new(1000, 0, 200, 10);

	for (uint32_t i = 0; i < 100; i++)
		assert_true(tc_insert(c, i));
	for (uint32_t i = 0; i < 100; i += 3)
		evict_touch(&c->o[i].n);
	assert_int_equal(evict_bytes(&c->p), 1000);
	evict_resize(&c->p, 300, on_evict, c);
	assert_int_equal(evict_bytes(&c->p), 300);
	assert_int_equal(c->logged, 70);
	check(c);
	evict_resize(&c->p, 2000, on_evict, c);
	assert_int_equal(c->logged, 70);
	for (uint32_t i = 100; i < 200; i++)
		assert_true(tc_insert(c, i));
	assert_int_equal(c->logged, 70);
	assert_int_equal(evict_bytes(&c->p), 1300);
	check(c);
	evict_resize(&c->p, 0, on_evict, c);
	assert_int_equal(evict_bytes(&c->p), 0);
	assert_int_equal(evict_count(&c->p), 0);
	check(c);
	tc_free(c);
}

/* ---- scan resistance -------------------------------------------------- */

/* A count-based LRU of 1-byte objects over key ids, for comparison. */
struct tlru {
	int32_t *prev, *next;
	bool *in;
	int32_t head, tail;
	uint32_t count, cap;
};

static bool lru_access(struct tlru *l, int32_t k)
{
	bool hit = l->in[k];

	if (hit) {
		if (l->prev[k] >= 0)
			l->next[l->prev[k]] = l->next[k];
		else
			l->head = l->next[k];
		if (l->next[k] >= 0)
			l->prev[l->next[k]] = l->prev[k];
		else
			l->tail = l->prev[k];
		l->count--;
	} else if (l->count == l->cap) {
		int32_t t = l->tail;

		l->tail = l->prev[t];
		l->next[l->tail] = -1;
		l->in[t] = false;
		l->count--;
	}
	l->prev[k] = -1;
	l->next[k] = l->head;
	if (l->head >= 0)
		l->prev[l->head] = k;
	else
		l->tail = k;
	l->head = k;
	l->in[k] = true;
	l->count++;
	return hit;
}

#define SCAN_CAP    1000u
#define SCAN_WORK   500u
#define SCAN_PER    4u /* one-time keys after each working-set access */
#define SCAN_ROUNDS 20u

/* Capacity 1000 objects; each round reads the 500 working keys once,
 * each followed by 4 one-time keys (2000 a round): the working set's reuse
 * distance (2500 distinct keys) exceeds the cache, so LRU never hits it.
 * S3-FIFO keeps it in M from its second access (a ghost hit). */
static void test_scan_resistance(void **state)
{
	(void)state;
	uint32_t keys = SCAN_WORK + SCAN_ROUNDS * SCAN_WORK * SCAN_PER;
	struct tcache *c = tc_new(SCAN_CAP, 4096, keys, 1);
	struct tlru l = {.head = -1, .tail = -1, .cap = SCAN_CAP};
	uint32_t scan = SCAN_WORK, s3_hits = 0, lru_hits = 0, reads = 0;

	l.prev = calloc(keys, sizeof(*l.prev));
	l.next = calloc(keys, sizeof(*l.next));
	l.in = calloc(keys, sizeof(*l.in));
	assert_true(l.prev != NULL && l.next != NULL && l.in != NULL);
	c->log_cap = 0;
	for (uint32_t r = 0; r < SCAN_ROUNDS; r++) {
		for (uint32_t w = 0; w < SCAN_WORK; w++) {
			reads++;
			lru_hits += lru_access(&l, (int32_t)w);
			if (c->o[w].in) {
				s3_hits++;
				evict_touch(&c->o[w].n);
			} else {
				assert_true(tc_insert(c, w));
			}
			for (uint32_t k = 0; k < SCAN_PER; k++, scan++) {
				lru_access(&l, (int32_t)scan);
				assert_true(tc_insert(c, scan));
			}
		}
	}
	print_message("working set hit ratio: S3-FIFO %.3f, LRU %.3f\n", (double)s3_hits / reads,
	              (double)lru_hits / reads);
	assert_int_equal(lru_hits, 0);
	assert_true(s3_hits >= reads * 85 / 100);
	check(c);
	free(l.prev);
	free(l.next);
	free(l.in);
	tc_free(c);
}

/* ---- ghost bounds ----------------------------------------------------- */

struct pool {
	struct tobj o[65];
	uint32_t free[65];
	uint32_t nfree;
};

static void on_evict_pool(struct evict_node *n, void *arg)
{
	struct pool *pl = arg;

	pl->free[pl->nfree++] = (uint32_t)(obj_of(n) - pl->o);
}

/* Two million distinct keys through a 64-object cache with a ghost of
 * 1024: the ghost's arrays and size never change, it holds exactly the
 * last 1024 evicted fingerprints; an old key comes back to S, a recent one
 * to M. */
static void test_ghost_bounded(void **state)
{
	(void)state;
	const uint32_t n = 2000000;
	struct pool *pl = calloc(1, sizeof(*pl));
	struct evict_policy p;
	const uint64_t *ring;
	const uint32_t *index;
	struct tobj *o;

	assert_non_null(pl);
	assert_int_equal(evict_init(&p, 64, 1024), 0);
	ring = p.ghost.ring;
	index = p.ghost.index;
	assert_int_equal(p.ghost.mask + 1, 2048);
	for (uint32_t i = 0; i < 65; i++)
		pl->free[pl->nfree++] = i;
	for (uint32_t k = 0; k < n; k++) {
		o = &pl->o[pl->free[--pl->nfree]];
		o->n.hash = splitmix64(k);
		o->n.size = 1;
		assert_true(evict_insert(&p, &o->n, on_evict_pool, pl));
		assert_true(p.ghost.live <= 1024);
	}
	assert_ptr_equal(p.ghost.ring, ring);
	assert_ptr_equal(p.ghost.index, index);
	assert_int_equal(p.ghost.cap, 1024);
	assert_int_equal(p.ghost.live, 1024);
	check_ghost(&p.ghost);
	/* Keys n-64..n-1 are cached; n-1088..n-65 are the ghost. */
	assert_false(ghost_has(&p.ghost, splitmix64(0)));
	assert_false(ghost_has(&p.ghost, splitmix64(n - 1089)));
	for (uint32_t k = n - 1088; k < n - 64; k++)
		assert_true(ghost_has(&p.ghost, splitmix64(k)));
	o = &pl->o[pl->free[--pl->nfree]];
	o->n.hash = splitmix64(1000);
	assert_true(evict_insert(&p, &o->n, on_evict_pool, pl));
	assert_int_equal(o->n.queue, Q_SMALL);
	o = &pl->o[pl->free[--pl->nfree]];
	o->n.hash = splitmix64(n - 500);
	assert_true(evict_insert(&p, &o->n, on_evict_pool, pl));
	assert_int_equal(o->n.queue, Q_MAIN);
	evict_destroy(&p);
	free(pl);
}

/* Sizes: the default ghost follows the capacity with a floor; an explicit
 * size is kept; the index is a power of two at least twice the ring. */
static void test_ghost_sizes(void **state)
{
	(void)state;
	struct evict_policy p;

	assert_int_equal(evict_init(&p, 0, 0), 0);
	assert_int_equal(p.ghost.cap, 1024);
	evict_destroy(&p);
	assert_int_equal(evict_init(&p, 1ull << 30, 0), 0);
	assert_int_equal(p.ghost.cap, 65536);
	assert_int_equal(p.ghost.mask + 1, 131072);
	evict_destroy(&p);
	assert_int_equal(evict_init(&p, 1ull << 30, 5000), 0);
	assert_int_equal(p.ghost.cap, 5000);
	assert_int_equal(p.ghost.mask + 1, 16384);
	evict_destroy(&p);
}

/* ---- concurrent hits -------------------------------------------------- */

struct toucher {
	struct tcache *c;
	atomic_bool stop;
	atomic_uint bad;
	uint32_t seed;
};

static void *touch_loop(void *arg)
{
	struct toucher *t = arg;
	uint64_t s = t->seed;

	while (!atomic_load(&t->stop)) {
		struct evict_node *n = &t->c->o[splitmix64(s++) % t->c->num].n;

		evict_touch(n);
		if (atomic_load_explicit(&n->freq, memory_order_relaxed) > EVICT_FREQ_MAX)
			atomic_fetch_add(&t->bad, 1);
	}
	return NULL;
}

/* Four threads hit nodes (which stay allocated) as fast as they can while
 * the owner inserts, removes and evicts: the loop always ends, freq stays
 * within 0..3, the invariants hold. */
static void test_concurrent_touch(void **state)
{
	(void)state;
	struct tcache *c = tc_new(64 * 100, 0, 512, 100);
	struct toucher t[4];
	pthread_t th[4];
	uint64_t seed = 3;

	c->log_cap = 0;
	for (uint32_t i = 0; i < 4; i++) {
		t[i].c = c;
		atomic_init(&t[i].stop, false);
		atomic_init(&t[i].bad, 0);
		t[i].seed = 1000 * i;
		assert_int_equal(pthread_create(&th[i], NULL, touch_loop, &t[i]), 0);
	}
	for (uint32_t k = 0; k < 200000; k++) {
		uint32_t id = (uint32_t)(splitmix64(seed++) % c->num);

		if (!c->o[id].in)
			assert_true(tc_insert(c, id));
		else if (k % 7 == 0)
			tc_remove(c, id);
		assert_true(evict_bytes(&c->p) <= c->p.capacity);
	}
	for (uint32_t i = 0; i < 4; i++) {
		atomic_store(&t[i].stop, true);
		pthread_join(th[i], NULL);
		assert_int_equal(atomic_load(&t[i].bad), 0);
	}
	check(c);
	tc_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_budget_random),
	        cmocka_unit_test(test_one_hit_wonders),
	        cmocka_unit_test(test_ghost_hit_goes_to_main),
	        cmocka_unit_test(test_lazy_promotion),
	        cmocka_unit_test(test_remove),
	        cmocka_unit_test(test_sizes),
	        cmocka_unit_test(test_resize),
	        cmocka_unit_test(test_scan_resistance),
	        cmocka_unit_test(test_ghost_bounded),
	        cmocka_unit_test(test_ghost_sizes),
	        cmocka_unit_test(test_concurrent_touch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
