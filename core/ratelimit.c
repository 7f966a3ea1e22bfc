/* core/ratelimit.c — the shared rate-limit and connection-count tables
 * (see ratelimit.h).
 *
 * Layout. A table is an array of buckets of RL_WAYS 64-bit words, each
 * bucket one cache line. A key is mixed with the table's seed into h; the
 * low bits of h choose the bucket and the high bits are the key's
 * fingerprint, never 0, so a fingerprint of 0 marks an empty word.
 *
 *   rate word:       fingerprint (24) | TAT mod 2^40 in us (40)
 *   connection word: fingerprint (24) | version (16) | count (24, >= 1)
 *
 * Ownership and threads: a table belongs to whoever made it at start-up
 * and is shared by every shard. Each word is changed only by a
 * compare-and-swap of the whole word against the value its decision was
 * based on, so a decision applies exactly to the state it read or not at
 * all (then the bucket is read again). No other memory is published
 * through these words, so relaxed ordering is enough: atomicity of each
 * word, and the single order of writes to it, is all the algorithm needs.
 *
 * Claims. A key not in its bucket takes the first empty word; a rate key
 * failing that takes the word with the oldest TAT among those not ahead of
 * now (a full budget: taking it changes no one's limit). Two threads
 * claiming the same new key read the same bucket and pick the same word,
 * so one compare-and-swap fails and that thread finds the key on its next
 * read. They can pick different words only if the bucket changed between
 * their reads (a word freed up); each claimer reads the bucket again
 * after its claim and, finding the key in another word, gives its own back
 * and decides again. Two words for one rate key (a second budget) remain
 * only if a request used the claimed word before it could be given back,
 * a race within a race; a connection count stays exact even then
 * (conn_confirm says why).
 */
#include "core/ratelimit.h"

#include "core/common.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RL_WAYS     8
#define RL_TAT_MASK ((UINT64_C(1) << RL_TAT_BITS) - 1)
#define RL_RFP_BITS (64 - RL_TAT_BITS) /* rate fingerprint */
#define RL_CNT_BITS 24
#define RL_VER_BITS 16
#define RL_CFP_BITS 24 /* connection fingerprint */

struct rl_bucket {
	_Alignas(RLB_CACHELINE) _Atomic uint64_t w[RL_WAYS];
};

_Static_assert(sizeof(struct rl_bucket) == RLB_CACHELINE, "a bucket is one cache line");
_Static_assert(RL_SPAN_MAX_US >= RL_INTERVAL_MAX_US, "one interval of the slowest rate fits");
_Static_assert(RL_SPAN_MAX_US + RL_LAG_MAX_US < UINT64_C(1) << (RL_TAT_BITS - 1),
               "every TAT rl_take may take as real decodes exactly");

/* The part both tables share. The overflow counter sits on its own line:
 * it is written (rarely) while every shard reads the fields above it. */
struct rl_slots {
	struct rl_bucket *buckets;
	uint64_t mask; /* buckets - 1 */
	uint64_t seed;
	_Alignas(RLB_CACHELINE) _Atomic uint64_t overflows;
};

struct rl_table {
	struct rl_slots s;
};

struct rl_conns {
	struct rl_slots s;
};

/* ---- shared helpers ---------------------------------------------------- */

/* rl_mix scrambles key ^ seed with a bijective finalizer (xor-shifts and
 * odd multipliers), so that every bit of h depends on every bit of the key
 * and distinct keys stay distinct. */
static uint64_t rl_mix(uint64_t seed, uint64_t key)
{
	uint64_t h = key ^ seed;

	h = (h ^ (h >> 31)) * UINT64_C(0x7fb5d329728ea185);
	h = (h ^ (h >> 27)) * UINT64_C(0x81dadef4bc2dd44d);
	return h ^ (h >> 33);
}

/* rl_fingerprint returns the top `bits` bits of h, with 0 remapped to 1:
 * fingerprint 0 marks an empty word. */
static uint64_t rl_fingerprint(uint64_t h, unsigned bits)
{
	uint64_t fp = h >> (64 - bits);

	return fp != 0 ? fp : 1;
}

static struct rl_bucket *rl_bucket_of(const struct rl_slots *s, uint64_t h)
{
	return &s->buckets[h & s->mask];
}

static uint64_t rl_load(_Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
}

/* rl_cas replaces *w by `next` if it still holds `old`. */
static bool rl_cas(_Atomic uint64_t *w, uint64_t old, uint64_t next)
{
	return atomic_compare_exchange_strong_explicit(w, &old, next, memory_order_relaxed,
	                                               memory_order_relaxed);
}

static void rl_count_overflow(struct rl_slots *s)
{
	atomic_fetch_add_explicit(&s->overflows, 1, memory_order_relaxed);
}

/* rl_random_seed reads a seed from the kernel; if that fails (no entropy
 * yet at early boot) the clock and an address still vary per run. */
static uint64_t rl_random_seed(const void *salt)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = rlb_now_us() ^ (uint64_t)(uintptr_t)salt;
	return seed;
}

/* rl_slots_init allocates the buckets of `s` (zeroed before); returns 1,
 * or 0 on OOM. */
static int rl_slots_init(struct rl_slots *s, uint32_t slots)
{
	size_t nbuckets;

	RLB_ASSERT(slots >= RL_WAYS);
	RLB_ASSERT((slots & (slots - 1)) == 0);
	nbuckets = slots / RL_WAYS;
	s->buckets = aligned_alloc(RLB_CACHELINE, nbuckets * sizeof(struct rl_bucket));
	if (s->buckets == NULL)
		return 0;
	memset(s->buckets, 0, nbuckets * sizeof(struct rl_bucket));
	s->mask = nbuckets - 1;
	s->seed = rl_random_seed(s);
	atomic_init(&s->overflows, 0);
	return 1;
}

/* rl_new allocates a zeroed table struct of `size` bytes whose first member
 * is its rl_slots, and its buckets; NULL on OOM. */
static void *rl_new(size_t size, uint32_t slots)
{
	struct rl_slots *s = aligned_alloc(RLB_CACHELINE, size);

	if (s == NULL)
		return NULL;
	memset(s, 0, size);
	if (!rl_slots_init(s, slots)) {
		free(s);
		return NULL;
	}
	return s;
}

static void rl_free(struct rl_slots *s)
{
	if (s == NULL)
		return;
	free(s->buckets);
	free(s);
}

/* ---- rate limits -------------------------------------------------------- */

/* rl_new and rl_free rely on these: a table starts with its slots. */
_Static_assert(offsetof(struct rl_table, s) == 0, "a table starts with its slots");
_Static_assert(offsetof(struct rl_conns, s) == 0, "a table starts with its slots");
_Static_assert(sizeof(struct rl_table) % RLB_CACHELINE == 0, "aligned_alloc wants a multiple");
_Static_assert(sizeof(struct rl_conns) % RLB_CACHELINE == 0, "aligned_alloc wants a multiple");

struct rl_table *rl_table_new(uint32_t slots)
{
	return rl_new(sizeof(struct rl_table), slots);
}

void rl_table_free(struct rl_table *t)
{
	rl_free(t != NULL ? &t->s : NULL);
}

uint64_t rl_overflows(const struct rl_table *t)
{
	return atomic_load_explicit(&t->s.overflows, memory_order_relaxed);
}

/* tat_ahead decodes a word's TAT as a signed distance from now: the
 * difference of the two times modulo 2^40, read as a 40-bit two's
 * complement number. It is exact while the TAT lies within 2^39 us of now
 * either way, which holds for every live TAT (at most RL_SPAN_MAX_US ahead)
 * and for every TAT less than 2^39 us old; an older TAT may wrap into the
 * future (see rl_sweep). */
static int64_t tat_ahead(uint64_t word, uint64_t now_us)
{
	uint64_t d = (word - now_us) & RL_TAT_MASK;

	if (d >> (RL_TAT_BITS - 1))
		return (int64_t)d - (int64_t)(UINT64_C(1) << RL_TAT_BITS);
	return (int64_t)d;
}

/* The word rl_take will compare-and-swap: the key's own word, or the one it
 * may claim; idx -1 when neither exists (the bucket is full of live keys). */
struct rl_pick {
	int idx;
	bool own;
	uint64_t old; /* the word as read */
};

/* rl_scan reads a bucket once: the key's first word if it has one, else
 * the first empty word, else the word whose TAT is oldest among those not
 * ahead of now. */
static struct rl_pick rl_scan(struct rl_bucket *b, uint64_t fp, uint64_t now_us)
{
	int empty = -1, oldest = -1;
	int64_t oldest_ahead = 1;
	uint64_t oldest_word = 0;

	for (int i = 0; i < RL_WAYS; i++) {
		uint64_t w = rl_load(&b->w[i]);
		int64_t ahead;

		if (w == 0) {
			if (empty < 0)
				empty = i;
			continue;
		}
		if (w >> RL_TAT_BITS == fp)
			return (struct rl_pick){i, true, w};
		ahead = tat_ahead(w, now_us);
		if (ahead <= 0 && ahead < oldest_ahead) {
			oldest = i;
			oldest_ahead = ahead;
			oldest_word = w;
		}
	}
	if (empty >= 0)
		return (struct rl_pick){empty, false, 0};
	return (struct rl_pick){oldest, false, oldest_word};
}

/* gcra decides a request whose key's TAT is `ahead` us after now (0 when it
 * is not ahead: a full budget). */
static enum rl_verdict gcra(uint64_t ahead, uint64_t tolerance_us, uint64_t max_delay_us,
                            uint64_t *wait_us)
{
	if (ahead <= tolerance_us) {
		*wait_us = 0;
		return RL_ALLOW;
	}
	*wait_us = ahead - tolerance_us;
	/* With max_delay 0 the wait (>= 1) is never within it. */
	return *wait_us <= max_delay_us ? RL_DELAY : RL_REJECT;
}

/* rl_held_elsewhere says whether a word of the bucket other than `at`
 * holds the key. */
static bool rl_held_elsewhere(struct rl_bucket *b, uint64_t fp, int at)
{
	for (int i = 0; i < RL_WAYS; i++)
		if (i != at && rl_load(&b->w[i]) >> RL_TAT_BITS == fp)
			return true;
	return false;
}

enum rl_verdict rl_take(struct rl_table *t, uint64_t key, uint64_t now_us, uint64_t interval_us,
                        uint64_t tolerance_us, uint64_t max_delay_us, uint64_t *wait_us)
{
	uint64_t h = rl_mix(t->s.seed, key), span;
	uint64_t fp = rl_fingerprint(h, RL_RFP_BITS);
	struct rl_bucket *b = rl_bucket_of(&t->s, h);

	/* Each term is checked alone first so that the sum cannot wrap. */
	RLB_ASSERT(interval_us >= 1);
	RLB_ASSERT(interval_us <= RL_SPAN_MAX_US);
	RLB_ASSERT(tolerance_us <= RL_SPAN_MAX_US);
	RLB_ASSERT(max_delay_us <= RL_SPAN_MAX_US);
	span = interval_us + tolerance_us + max_delay_us;
	RLB_ASSERT(span <= RL_SPAN_MAX_US);
	for (int tries = 0; tries < RL_TRIES_MAX; tries++) {
		struct rl_pick p = rl_scan(b, fp, now_us);
		uint64_t ahead = 0, next;
		enum rl_verdict v;

		if (p.idx < 0)
			break;
		if (p.own) {
			int64_t a = tat_ahead(p.old, now_us);

			/* A TAT at most span ahead of the now of the thread
			 * that wrote it, seen with a now up to RL_LAG_MAX_US
			 * older, is real: forgetting it would reset the
			 * budget. Further ahead, no thread can have written
			 * it with these parameters: a stale word. */
			if (a > 0 && (uint64_t)a <= span + RL_LAG_MAX_US)
				ahead = (uint64_t)a;
		}
		v = gcra(ahead, tolerance_us, max_delay_us, wait_us);
		if (v == RL_REJECT)
			return v; /* nothing to store: the TAT stays */
		next = fp << RL_TAT_BITS | ((now_us + ahead + interval_us) & RL_TAT_MASK);
		if (!rl_cas(&b->w[p.idx], p.old, next))
			continue;
		/* A claim that raced another claim of the key gives its word
		 * back (as it was) and decides again on the other word. If
		 * giving it back fails, a request of the key already used it:
		 * keep it. */
		if (!p.own && rl_held_elsewhere(b, fp, p.idx) && rl_cas(&b->w[p.idx], next, p.old))
			continue;
		return v;
	}
	rl_count_overflow(&t->s);
	*wait_us = 0;
	return RL_ALLOW;
}

uint64_t rl_sweep(struct rl_table *t, uint64_t now_us)
{
	uint64_t freed = 0;

	for (uint64_t i = 0; i <= t->s.mask; i++) {
		struct rl_bucket *b = &t->s.buckets[i];

		for (int j = 0; j < RL_WAYS; j++) {
			uint64_t w = rl_load(&b->w[j]);

			/* A failed swap means a request just used the word. */
			if (w != 0 && tat_ahead(w, now_us) <= 0 && rl_cas(&b->w[j], w, 0))
				freed++;
		}
	}
	return freed;
}

/* ---- rate parsing ------------------------------------------------------- */

#define RL_RATE_DIGITS_MAX   16 /* keeps the mantissa far below 2^64 */
#define RL_RATE_DECIMALS_MAX 6

/* parse_decimal reads "123" or "1.25" at *p into mant / scale (scale a
 * power of ten) and advances *p past it; returns 1/0. */
static int parse_decimal(const char **p, uint64_t *mant, uint64_t *scale)
{
	const char *c = *p;
	int digits = 0, decimals = -1; /* -1: no point yet */

	*mant = 0;
	*scale = 1;
	for (;; c++) {
		if (*c >= '0' && *c <= '9') {
			if (++digits > RL_RATE_DIGITS_MAX)
				return 0;
			*mant = *mant * 10 + (uint64_t)(*c - '0');
			if (decimals >= 0) {
				if (++decimals > RL_RATE_DECIMALS_MAX)
					return 0;
				*scale *= 10;
			}
		} else if (*c == '.' && decimals < 0 && digits > 0) {
			decimals = 0;
		} else {
			break;
		}
	}
	if (digits == 0 || decimals == 0) /* "", "/s", "5." */
		return 0;
	*p = c;
	return 1;
}

/* parse_per reads what follows the number: "", "/s", "/m", "/h", with an
 * optional "r" before the slash as nginx writes it; 1/0. */
static int parse_per(const char *p, uint64_t *unit_us)
{
	if (*p == '\0') {
		*unit_us = 1000000;
		return 1;
	}
	if (*p == 'r')
		p++;
	if (p[0] != '/' || p[1] == '\0' || p[2] != '\0')
		return 0;
	switch (p[1]) {
	case 's':
		*unit_us = UINT64_C(1000000);
		return 1;
	case 'm':
		*unit_us = UINT64_C(60000000);
		return 1;
	case 'h':
		*unit_us = UINT64_C(3600000000);
		return 1;
	default:
		return 0;
	}
}

int rl_parse_rate(const char *text, uint64_t *interval_us)
{
	const char *p = text;
	uint64_t mant, scale, unit_us, num;

	if (!parse_decimal(&p, &mant, &scale) || !parse_per(p, &unit_us) || mant == 0)
		return 0;
	/* The rate is mant / scale per unit_us, so T = unit_us * scale / mant
	 * (at most 3.6e9 * 1e6, far from overflow). */
	num = unit_us * scale;
	if (mant > num) /* more than one per microsecond */
		return 0;
	if ((unsigned __int128)mant * RL_INTERVAL_MAX_US < num) /* less than one per hour */
		return 0;
	*interval_us = (num + mant / 2) / mant;
	RLB_ASSERT(*interval_us >= RL_INTERVAL_MIN_US);
	RLB_ASSERT(*interval_us <= RL_INTERVAL_MAX_US);
	return 1;
}

/* ---- concurrent connections -------------------------------------------- */

/* Why a version: an acquire checks the key's count over the whole bucket
 * after its increment (rl_conn_acquire), and a bucket read word by word is
 * a consistent picture only if a second read finds every word unchanged;
 * the version makes "unchanged" mean "not written", not "same value". */
#define RL_CNT_MASK  ((UINT64_C(1) << RL_CNT_BITS) - 1)
#define RL_VER_SHIFT RL_CNT_BITS
#define RL_VER_MASK  ((UINT64_C(1) << RL_VER_BITS) - 1)
#define RL_CFP_SHIFT (RL_CNT_BITS + RL_VER_BITS)

_Static_assert(RL_CFP_SHIFT + RL_CFP_BITS == 64, "a connection word is 64 bits");
_Static_assert(RL_CONN_COUNT_MAX == RL_CNT_MASK, "the largest count fits the word");

struct rl_conns *rl_conns_new(uint32_t slots)
{
	return rl_new(sizeof(struct rl_conns), slots);
}

void rl_conns_free(struct rl_conns *t)
{
	rl_free(t != NULL ? &t->s : NULL);
}

uint64_t rl_conn_overflows(const struct rl_conns *t)
{
	return atomic_load_explicit(&t->s.overflows, memory_order_relaxed);
}

/* conn_word builds the word that replaces `old`: fingerprint fp (0: empty),
 * `count`, and old's version plus one. */
static uint64_t conn_word(uint64_t fp, uint64_t old, uint64_t count)
{
	uint64_t ver = ((old >> RL_VER_SHIFT) + 1) & RL_VER_MASK;

	RLB_ASSERT_HOT(count <= RL_CNT_MASK);
	RLB_ASSERT_HOT((fp == 0) == (count == 0));
	return fp << RL_CFP_SHIFT | ver << RL_VER_SHIFT | count;
}

/* What one read of a bucket says about a key. */
struct rl_cscan {
	uint64_t w[RL_WAYS]; /* the words as read */
	int first, last;     /* the key's first and last words, -1 if none */
	int empty;           /* the first empty word, -1 if none */
	uint64_t held;       /* the key's count, over all its words */
};

static void conn_read(struct rl_bucket *b, uint64_t fp, struct rl_cscan *s)
{
	s->first = s->last = s->empty = -1;
	s->held = 0;
	for (int i = 0; i < RL_WAYS; i++) {
		uint64_t w = rl_load(&b->w[i]);

		s->w[i] = w;
		if (w >> RL_CFP_SHIFT == 0) {
			if (s->empty < 0)
				s->empty = i;
		} else if (w >> RL_CFP_SHIFT == fp) {
			if (s->first < 0)
				s->first = i;
			s->last = i;
			s->held += w & RL_CNT_MASK;
		}
	}
}

/* conn_snapshot reads the bucket until two reads in a row agree on every
 * word: then all eight held those values together at one instant (the
 * start of the second read), so s->held was the key's count at that
 * instant. Returns false if the bucket never held still long enough. */
static bool conn_snapshot(struct rl_bucket *b, uint64_t fp, struct rl_cscan *s)
{
	struct rl_cscan again;

	conn_read(b, fp, s);
	for (int tries = 0; tries < RL_TRIES_MAX; tries++) {
		conn_read(b, fp, &again);
		if (memcmp(again.w, s->w, sizeof(s->w)) == 0)
			return true;
		*s = again;
	}
	return false;
}

/* conn_drop takes one connection off the key's count: off word `prefer`
 * if it still holds the key, else off the key's last word, so that a
 * second word a race left drains first. A word whose count reaches 0 is
 * empty. Not bounded like the others: a lost decrement would leak a count
 * for good. Lock-free all the same: every failed swap is another thread's
 * successful one on this bucket. */
static void conn_drop(struct rl_bucket *b, uint64_t fp, int prefer)
{
	for (;;) {
		struct rl_cscan s;
		int i;
		uint64_t count;

		conn_read(b, fp, &s);
		RLB_ASSERT(s.last >= 0); /* released more than acquired */
		i = prefer >= 0 && s.w[prefer] >> RL_CFP_SHIFT == fp ? prefer : s.last;
		count = s.w[i] & RL_CNT_MASK;
		if (rl_cas(&b->w[i], s.w[i],
		           count == 1 ? conn_word(0, s.w[i], 0) : conn_word(fp, s.w[i], count - 1)))
			return;
	}
}

/* conn_confirm checks an increment (on word `at`, `claimed` if it took an
 * empty word) against the key's whole count at one instant after it. Why
 * that suffices: were limit + 1 connections counted and answered OK at
 * once, the last of them to increment would have seen all limit + 1 in its
 * snapshot and backed off. Returns RL_CONN_OK, RL_CONN_LIMIT (backed off)
 * or -1: backed off because the claim made a second word for the key (a
 * race); the caller tries again and finds the first. */
static int conn_confirm(struct rl_conns *t, struct rl_bucket *b, uint64_t fp, int at, bool claimed,
                        uint32_t limit)
{
	struct rl_cscan s;

	if (!conn_snapshot(b, fp, &s)) {
		/* Never seen in practice: no count to trust, so count none. */
		conn_drop(b, fp, at);
		rl_count_overflow(&t->s);
		return RL_CONN_UNTRACKED;
	}
	if (s.held > limit) {
		conn_drop(b, fp, at);
		return RL_CONN_LIMIT;
	}
	if (claimed && s.first != at) {
		conn_drop(b, fp, at);
		return -1;
	}
	return RL_CONN_OK;
}

enum rl_conn_result rl_conn_acquire(struct rl_conns *t, uint64_t key, uint32_t limit)
{
	uint64_t h = rl_mix(t->s.seed, key);
	uint64_t fp = rl_fingerprint(h, RL_CFP_BITS);
	struct rl_bucket *b = rl_bucket_of(&t->s, h);

	if (limit > RL_CONN_COUNT_MAX)
		limit = RL_CONN_COUNT_MAX;
	for (int tries = 0; tries < RL_TRIES_MAX; tries++) {
		struct rl_cscan s;
		int at, r;

		conn_read(b, fp, &s);
		if (s.held >= limit)
			return RL_CONN_LIMIT;
		/* A word's count <= held < limit: the increment fits. */
		at = s.first >= 0 ? s.first : s.empty;
		if (at < 0)
			break;
		if (!rl_cas(&b->w[at], s.w[at],
		            conn_word(fp, s.w[at], s.first >= 0 ? (s.w[at] & RL_CNT_MASK) + 1 : 1)))
			continue;
		r = conn_confirm(t, b, fp, at, s.first < 0, limit);
		if (r >= 0)
			return (enum rl_conn_result)r;
	}
	rl_count_overflow(&t->s);
	return RL_CONN_UNTRACKED;
}

void rl_conn_release(struct rl_conns *t, uint64_t key)
{
	uint64_t h = rl_mix(t->s.seed, key);

	conn_drop(rl_bucket_of(&t->s, h), rl_fingerprint(h, RL_CFP_BITS), -1);
}

uint32_t rl_conn_count(const struct rl_conns *t, uint64_t key)
{
	uint64_t h = rl_mix(t->s.seed, key);
	struct rl_cscan s;

	conn_read(rl_bucket_of(&t->s, h), rl_fingerprint(h, RL_CFP_BITS), &s);
	return (uint32_t)s.held; /* at most 8 words of RL_CONN_COUNT_MAX: fits */
}
