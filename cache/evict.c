/* cache/evict.c — S3-FIFO eviction in bytes (see evict.h for the policy
 * and its threading rules).
 *
 * Queues are intrusive doubly linked lists with byte and object counts;
 * moving a node between queues or back to M's head is two unlinks and two
 * links, no allocation. Room is made before a node is linked, so the loop
 * can never pick the node being inserted. The loop evicts from S while S
 * holds at least its share (10% of the bytes), otherwise from M, and from
 * whichever queue is not empty when the other is; every step either removes
 * a node, moves one from S to M (at most once per node), or spends one unit
 * of M's reinsertion allowance, which is sized so that it never binds
 * unless other threads keep touching nodes during the loop: the loop
 * always ends.
 *
 * The ghost holds fingerprints (64-bit key hashes), never pointers: a ring
 * in arrival order, the oldest overwritten by the newest, and an index of
 * ring positions with linear probing at most half full, whose deletions
 * shift the following entries back (no tombstones), so a lookup stops at the
 * first empty slot. A ghost hit removes the fingerprint; an overwritten ring
 * position removes its index entry if it is still there.
 */
#include "cache/evict.h"

#include "core/common.h"

#include <stdlib.h>
#include <string.h>

enum { Q_NONE = 0, Q_SMALL = 1, Q_MAIN = 2 };

#define GHOST_MIN        1024u
#define GHOST_MAX        (1u << 26) /* 64 Mi fingerprints, about 1.5 GiB */
#define GHOST_BYTES_EACH (16u * 1024)
#define FP_MIX           0x9e3779b97f4a7c15ull

/* ---- queues ----------------------------------------------------------- */

static void q_push(struct evict_queue *q, struct evict_node *n)
{
	n->prev = NULL;
	n->next = q->head;
	if (q->head != NULL)
		q->head->prev = n;
	else
		q->tail = n;
	q->head = n;
	q->bytes += n->size;
	q->count++;
}

static void q_unlink(struct evict_queue *q, struct evict_node *n)
{
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		q->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		q->tail = n->prev;
	n->next = n->prev = NULL;
	RLB_ASSERT(q->bytes >= n->size && q->count > 0);
	q->bytes -= n->size;
	q->count--;
}

static struct evict_queue *queue_of(struct evict_policy *p, const struct evict_node *n)
{
	if (n->queue == Q_SMALL)
		return &p->small;
	if (n->queue == Q_MAIN)
		return &p->main;
	return NULL;
}

/* ---- ghost ------------------------------------------------------------ */

static uint32_t ghost_home(const struct evict_ghost *g, uint64_t fp)
{
	return (uint32_t)((fp * FP_MIX) >> 32) & g->mask;
}

/* ghost_delete_at empties index slot i and shifts back the entries after it
 * whose home is not between the hole and their slot. */
static void ghost_delete_at(struct evict_ghost *g, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t k;

		j = (j + 1) & g->mask;
		if (g->index[j] == 0)
			break;
		k = ghost_home(g, g->ring[g->index[j] - 1]);
		if (((j - k) & g->mask) >= ((j - i) & g->mask)) {
			g->index[i] = g->index[j];
			i = j;
		}
	}
	g->index[i] = 0;
	g->live--;
}

/* ghost_take removes fingerprint fp and says whether it was there. */
static bool ghost_take(struct evict_ghost *g, uint64_t fp)
{
	for (uint32_t i = ghost_home(g, fp); g->index[i] != 0; i = (i + 1) & g->mask) {
		if (g->ring[g->index[i] - 1] == fp) {
			ghost_delete_at(g, i);
			return true;
		}
	}
	return false;
}

/* ghost_forget removes the index entry of ring position pos, if any. */
static void ghost_forget(struct evict_ghost *g, uint32_t pos)
{
	for (uint32_t i = ghost_home(g, g->ring[pos]); g->index[i] != 0; i = (i + 1) & g->mask) {
		if (g->index[i] == pos + 1) {
			ghost_delete_at(g, i);
			return;
		}
	}
}

static void ghost_add(struct evict_ghost *g, uint64_t fp)
{
	uint32_t pos = g->pos, i;

	if (g->filled == g->cap)
		ghost_forget(g, pos);
	else
		g->filled++;
	g->ring[pos] = fp;
	for (i = ghost_home(g, fp); g->index[i] != 0; i = (i + 1) & g->mask)
		;
	g->index[i] = pos + 1;
	g->live++;
	RLB_ASSERT(g->live <= g->cap);
	g->pos = pos + 1 == g->cap ? 0 : pos + 1;
}

/* ---- eviction --------------------------------------------------------- */

/* evict_small takes S's tail: one hit while in S moves it to M, none sends
 * it to the ghost and out. */
static void evict_small(struct evict_policy *p, void (*evict_cb)(struct evict_node *, void *),
                        void *arg)
{
	struct evict_node *t = p->small.tail;

	q_unlink(&p->small, t);
	if (atomic_load_explicit(&t->freq, memory_order_relaxed) > 0) {
		t->queue = Q_MAIN;
		q_push(&p->main, t);
		return;
	}
	ghost_add(&p->ghost, t->hash);
	t->queue = Q_NONE;
	evict_cb(t, arg);
}

/* evict_main takes M's tail: one hit since its last pass (and some of the
 * allowance left) sends it back to M's head with one hit less; none, out. */
static void evict_main(struct evict_policy *p, uint64_t *allowance,
                       void (*evict_cb)(struct evict_node *, void *), void *arg)
{
	struct evict_node *t = p->main.tail;
	uint8_t f = atomic_load_explicit(&t->freq, memory_order_relaxed);

	q_unlink(&p->main, t);
	if (f > 0 && *allowance > 0) {
		(*allowance)--;
		atomic_store_explicit(&t->freq, (uint8_t)(f - 1), memory_order_relaxed);
		q_push(&p->main, t);
		return;
	}
	t->queue = Q_NONE;
	evict_cb(t, arg);
}

/* make_room evicts until `need` more bytes fit in the capacity. */
static void make_room(struct evict_policy *p, uint64_t need,
                      void (*evict_cb)(struct evict_node *, void *), void *arg)
{
	/* Without concurrent hits, each node passes M at most EVICT_FREQ_MAX
	 * times before it goes: the allowance covers that for every node. */
	uint64_t allowance = (EVICT_FREQ_MAX + 1) * (p->small.count + p->main.count) + 1;

	RLB_ASSERT(need <= p->capacity);
	while (p->small.bytes + p->main.bytes + need > p->capacity) {
		bool from_small = p->small.count > 0 &&
		                  (p->small.bytes >= p->small_cap || p->main.count == 0);

		if (from_small) {
			evict_small(p, evict_cb, arg);
		} else {
			RLB_ASSERT(p->main.count > 0);
			evict_main(p, &allowance, evict_cb, arg);
		}
	}
}

/* ---- interface -------------------------------------------------------- */

static uint32_t ghost_default(uint64_t capacity)
{
	uint64_t n = capacity / GHOST_BYTES_EACH;

	return n < GHOST_MIN ? GHOST_MIN : n > GHOST_MAX ? GHOST_MAX : (uint32_t)n;
}

int evict_init(struct evict_policy *p, uint64_t capacity, uint32_t ghost_entries)
{
	struct evict_ghost *g = &p->ghost;
	uint32_t slots = 2;

	memset(p, 0, sizeof(*p));
	p->capacity = capacity;
	p->small_cap = capacity / 10;
	g->cap = ghost_entries == 0          ? ghost_default(capacity)
	         : ghost_entries > GHOST_MAX ? GHOST_MAX
	                                     : ghost_entries;
	while (slots < 2 * g->cap)
		slots *= 2;
	g->mask = slots - 1;
	g->ring = calloc(g->cap, sizeof(*g->ring));
	g->index = calloc(slots, sizeof(*g->index));
	if (g->ring == NULL || g->index == NULL) {
		evict_destroy(p);
		return -1;
	}
	return 0;
}

void evict_destroy(struct evict_policy *p)
{
	free(p->ghost.ring);
	free(p->ghost.index);
	memset(p, 0, sizeof(*p));
}

bool evict_insert(struct evict_policy *p, struct evict_node *n,
                  void (*evict_cb)(struct evict_node *, void *), void *arg)
{
	bool ghost_hit;

	if (n->size > p->capacity)
		return false;
	RLB_ASSERT(n->queue == Q_NONE);
	ghost_hit = ghost_take(&p->ghost, n->hash);
	make_room(p, n->size, evict_cb, arg);
	atomic_store_explicit(&n->freq, 0, memory_order_relaxed);
	n->queue = ghost_hit ? Q_MAIN : Q_SMALL;
	q_push(ghost_hit ? &p->main : &p->small, n);
	return true;
}

void evict_remove(struct evict_policy *p, struct evict_node *n)
{
	struct evict_queue *q = queue_of(p, n);

	RLB_ASSERT(q != NULL);
	q_unlink(q, n);
	n->queue = Q_NONE;
}

uint64_t evict_bytes(const struct evict_policy *p)
{
	return p->small.bytes + p->main.bytes;
}

uint64_t evict_count(const struct evict_policy *p)
{
	return p->small.count + p->main.count;
}

void evict_resize(struct evict_policy *p, uint64_t capacity,
                  void (*evict_cb)(struct evict_node *, void *), void *arg)
{
	p->capacity = capacity;
	p->small_cap = capacity / 10;
	make_room(p, 0, evict_cb, arg);
}
