/* tests/unit/core/ratelimit_test.c — the shared rate-limit (GCRA) and
 * connection-count tables.
 *
 * Goal: a fresh key admits 1 + burst requests at once and then one per
 * interval, with exact retry-after and delay values; delay mode admits
 * within max_delay and refuses beyond; keys are independent, key 0
 * included; the TAT stored modulo 2^40 us decodes right across the wrap
 * (every verdict equals a plain 64-bit GCRA model at any base time) and a
 * key idle far longer than 2^40 us is fresh again; rates parse; a bucket
 * full of live keys answers a new key untracked (counted) and expired words
 * are reused, empty ones first, then the oldest; four threads on one key
 * admit what the rate allows within 1%, on many keys exactly what a fixed
 * clock allows; racing first claims make one word. Connections: up to the
 * limit and no further, release, a full bucket is untracked, and four
 * threads acquiring and releasing never hold more than the limit and end
 * at 0.
 *
 * Method: ratelimit.c is #included, so the tests can find keys that share
 * a bucket (rl_mix with the table's seed) and read the words. Times are
 * explicit except in the threaded rate tests, which read rlb_now_us and
 * assert only bounds that hold however threads are scheduled (admitted <=
 * elapsed / T + burst + 1 exactly; >= 99% of it). Random choices come from
 * a fixed-seed splitmix64. About 1.6 s, most of it the two real-time runs.
 */
#include <stdlib.h>

/* hook_aligned_alloc fails the n-th allocation from now when fail_at is n,
 * so the out-of-memory paths of rl_*_new run; ASan sees any leak. */
static int fail_at;

static void *hook_aligned_alloc(size_t align, size_t size)
{
	if (fail_at > 0 && --fail_at == 0)
		return NULL;
	return aligned_alloc(align, size);
}

#define aligned_alloc(a, n) hook_aligned_alloc(a, n)
#include "core/ratelimit.c"
#undef aligned_alloc

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define TAT_WRAP (UINT64_C(1) << RL_TAT_BITS)

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static struct rl_table *table(uint32_t slots)
{
	struct rl_table *t = rl_table_new(slots);

	assert_non_null(t);
	return t;
}

/* take is rl_take without delay mode, checking that ALLOW waits 0. */
static enum rl_verdict take(struct rl_table *t, uint64_t key, uint64_t now, uint64_t T,
                            uint64_t burst, uint64_t *wait)
{
	enum rl_verdict v = rl_take(t, key, now, T, T * burst, 0, wait);

	if (v == RL_ALLOW)
		assert_int_equal(*wait, 0);
	return v;
}

/* allowed_now counts the ALLOWs of `key` at `now` before the first refusal
 * (at most `max`), and checks that refusal's retry-after. */
static uint64_t allowed_now(struct rl_table *t, uint64_t key, uint64_t now, uint64_t T,
                            uint64_t burst, uint64_t max, uint64_t want_wait)
{
	uint64_t n = 0, wait;

	while (n < max && take(t, key, now, T, burst, &wait) == RL_ALLOW)
		n++;
	assert_true(n < max);
	assert_int_equal(wait, want_wait);
	return n;
}

/* keys_sharing fills out[0..n) with keys that all land in one bucket. */
static void keys_sharing(const struct rl_slots *s, uint64_t *out, int n)
{
	uint64_t bucket = rl_mix(s->seed, 1) & s->mask;
	int found = 0;

	for (uint64_t k = 1; found < n; k++)
		if ((rl_mix(s->seed, k) & s->mask) == bucket)
			out[found++] = k;
}

/* word_of returns the index of the word that holds `key`, -1 if none, and
 * checks that no second word holds it. */
static int word_of(const struct rl_slots *s, uint64_t key, unsigned fp_bits)
{
	uint64_t h = rl_mix(s->seed, key), fp = rl_fingerprint(h, fp_bits);
	struct rl_bucket *b = rl_bucket_of(s, h);
	int at = -1;

	for (int i = 0; i < RL_WAYS; i++) {
		uint64_t w = atomic_load(&b->w[i]);

		if (w != 0 && w >> (64 - fp_bits) == fp) {
			assert_int_equal(at, -1);
			at = i;
		}
	}
	return at;
}

/* ---- 0. tables ------------------------------------------------------------ */

/* A table is one aligned line per 8 slots, all empty; either allocation
 * failing gives NULL and leaves nothing behind. */
static void test_table_new(void **state)
{
	struct rl_table *t = table(1u << 20);
	struct rl_conns *c;

	(void)state;
	assert_int_equal(t->s.mask, (1u << 17) - 1);
	assert_int_equal((uintptr_t)t->s.buckets % RLB_CACHELINE, 0);
	for (uint64_t i = 0; i <= t->s.mask; i += 4099)
		for (int j = 0; j < RL_WAYS; j++)
			assert_int_equal(atomic_load(&t->s.buckets[i].w[j]), 0);
	rl_table_free(t);
	for (int n = 1; n <= 2; n++) {
		fail_at = n;
		assert_null(rl_table_new(64));
		fail_at = n;
		assert_null(rl_conns_new(64));
	}
	fail_at = 0;
	c = rl_conns_new(8);
	assert_non_null(c);
	assert_int_equal(c->s.mask, 0);
	rl_conns_free(c);
}

/* ---- 1. GCRA ------------------------------------------------------------ */

/* 1 + burst at once, then one per T; retry-after counts down exactly; a
 * pause refills one request per T, up to the burst. */
static void test_burst_then_rate(void **state)
{
	struct rl_table *t = table(1024);
	const uint64_t T = 1000, B = 4, t0 = 5000000;
	uint64_t wait;

	(void)state;
	assert_int_equal(allowed_now(t, 7, t0, T, B, 100, T), 1 + B);
	assert_int_equal(take(t, 7, t0 + 1, T, B, &wait), RL_REJECT);
	assert_int_equal(wait, 999);
	assert_int_equal(take(t, 7, t0 + 999, T, B, &wait), RL_REJECT);
	assert_int_equal(wait, 1);
	/* Steady state: exactly one per T. */
	for (uint64_t i = 1; i <= 50; i++) {
		assert_int_equal(take(t, 7, t0 + i * T, T, B, &wait), RL_ALLOW);
		assert_int_equal(take(t, 7, t0 + i * T, T, B, &wait), RL_REJECT);
		assert_int_equal(wait, T);
		assert_int_equal(take(t, 7, t0 + i * T + 400, T, B, &wait), RL_REJECT);
		assert_int_equal(wait, 600);
	}
	/* TAT is t0 + 55 T. A pause of 3 T after t0 + 50 T gives back 3. */
	assert_int_equal(allowed_now(t, 7, t0 + 53 * T, T, B, 100, T), 3);
	/* A long pause gives back the whole burst and no more. */
	assert_int_equal(allowed_now(t, 7, t0 + 1000 * T, T, B, 100, T), 1 + B);
	rl_table_free(t);
}

/* Burst 0: requests strictly T apart. */
static void test_burst_zero(void **state)
{
	struct rl_table *t = table(8);
	const uint64_t T = 250000;
	uint64_t wait;

	(void)state;
	assert_int_equal(take(t, 42, 100, T, 0, &wait), RL_ALLOW);
	assert_int_equal(take(t, 42, 100, T, 0, &wait), RL_REJECT);
	assert_int_equal(wait, T);
	assert_int_equal(take(t, 42, 100 + T - 1, T, 0, &wait), RL_REJECT);
	assert_int_equal(wait, 1);
	assert_int_equal(take(t, 42, 100 + T, T, 0, &wait), RL_ALLOW);
	/* Late by 10 us: the next one is due T after this one, not before. */
	assert_int_equal(take(t, 42, 100 + 2 * T + 10, T, 0, &wait), RL_ALLOW);
	assert_int_equal(take(t, 42, 100 + 3 * T + 9, T, 0, &wait), RL_REJECT);
	assert_int_equal(wait, 1);
	assert_int_equal(take(t, 42, 100 + 3 * T + 10, T, 0, &wait), RL_ALLOW);
	assert_int_equal(rl_overflows(t), 0);
	rl_table_free(t);
}

/* Delay mode: past the burst, waits up to D are admitted with that wait
 * (and advance the TAT); a longer one is refused and changes nothing. */
static void test_delay_mode(void **state)
{
	struct rl_table *t = table(64);
	const uint64_t T = 1000, tau = 2000, D = 3000, t0 = 77777;
	uint64_t wait;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rl_take(t, 9, t0, T, tau, D, &wait), RL_ALLOW);
		assert_int_equal(wait, 0);
	}
	for (uint64_t i = 1; i <= 3; i++) {
		assert_int_equal(rl_take(t, 9, t0, T, tau, D, &wait), RL_DELAY);
		assert_int_equal(wait, i * T);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rl_take(t, 9, t0, T, tau, D, &wait), RL_REJECT);
		assert_int_equal(wait, 4000);
	}
	/* TAT is t0 + 6 T: 1 T later a wait of exactly D is still admitted. */
	assert_int_equal(rl_take(t, 9, t0 + T, T, tau, D, &wait), RL_DELAY);
	assert_int_equal(wait, D);
	assert_int_equal(rl_take(t, 9, t0 + T, T, tau, D, &wait), RL_REJECT);
	assert_int_equal(wait, D + 1000);
	/* Without delay mode the same key is refused with the same retry. */
	assert_int_equal(rl_take(t, 9, t0 + T, T, tau, 0, &wait), RL_REJECT);
	assert_int_equal(wait, D + 1000);
	rl_table_free(t);
}

/* Keys do not share budgets, key 0 included. */
static void test_keys_independent(void **state)
{
	struct rl_table *t = table(4096);
	const uint64_t keys[] = {0, 1, 2, UINT64_MAX, UINT64_C(0x8000000000000000), 12345};
	uint64_t wait;

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(keys); i++) {
		/* Each key's burst is whole, whatever the others did before. */
		assert_int_equal(allowed_now(t, keys[i], 1000, 100, 2 + i, 100, 100), 3 + i);
	}
	for (size_t i = 0; i < RLB_ARRAY_LEN(keys); i++) {
		assert_int_equal(take(t, keys[i], 1000, 100, 2 + i, &wait), RL_REJECT);
		assert_int_equal(word_of(&t->s, keys[i], RL_RFP_BITS) >= 0, 1);
	}
	assert_int_equal(rl_overflows(t), 0);
	rl_table_free(t);
}

/* ---- 2. the wrap of the stored TAT ---------------------------------------- */

/* A plain GCRA with 64-bit times: what rl_take must answer. */
struct model {
	uint64_t tat;
};

static enum rl_verdict model_take(struct model *m, uint64_t now, uint64_t T, uint64_t tau,
                                  uint64_t D, uint64_t *wait)
{
	uint64_t tat = m->tat > now ? m->tat : now;

	*wait = 0;
	if (tat - now > tau) {
		*wait = tat - now - tau;
		if (*wait > D)
			return RL_REJECT;
	}
	m->tat = tat + T;
	return *wait > 0 ? RL_DELAY : RL_ALLOW;
}

/* run_against_model plays 4000 requests of one key from time `base` (steps
 * of 0 to 3 T, sometimes a pause of up to 2^38 us) and compares every
 * verdict and wait with the model. */
static void run_against_model(uint64_t base, uint64_t seed, uint64_t D)
{
	struct rl_table *t = table(256);
	struct model m = {base};
	const uint64_t T = 1000, tau = 2500;
	uint64_t rng = seed, now = base;

	for (int i = 0; i < 4000; i++) {
		uint64_t r = splitmix64(&rng), got_wait, want_wait;
		enum rl_verdict got, want;

		now += r % 100 == 0 ? r % (UINT64_C(1) << 38) : r % (3 * T);
		got = rl_take(t, 0xfeed, now, T, tau, D, &got_wait);
		want = model_take(&m, now, T, tau, D, &want_wait);
		if (got != want || got_wait != want_wait)
			fail_msg("base %#llx request %d at +%llu: got %d wait %llu, want %d wait "
			         "%llu",
			         (unsigned long long)base, i, (unsigned long long)(now - base),
			         (int)got, (unsigned long long)got_wait, (int)want,
			         (unsigned long long)want_wait);
	}
	rl_table_free(t);
}

/* The same requests give the same answers wherever the clock stands, across
 * multiples of 2^40 us included. */
static void test_wrap_matches_model(void **state)
{
	const uint64_t bases[] = {
	        0,
	        TAT_WRAP - 20000,
	        7 * TAT_WRAP - 3,
	        TAT_WRAP / 2 - 1000,
	        (UINT64_C(1) << 62) - 5000,
	        UINT64_C(0x0123456789abcdef),
	};

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(bases); i++) {
		run_against_model(bases[i], i, 0);
		run_against_model(bases[i], i + 100, 4000);
	}
}

/* Steady requests T apart right across a wrap: never a false refusal. */
static void test_no_false_reject_at_wrap(void **state)
{
	struct rl_table *t = table(8);
	const uint64_t T = 100;
	uint64_t wait;

	(void)state;
	for (uint64_t now = 3 * TAT_WRAP - 50 * T; now < 3 * TAT_WRAP + 50 * T; now += T) {
		assert_int_equal(take(t, 5, now, T, 0, &wait), RL_ALLOW);
		assert_int_equal(take(t, 5, now + T / 2, T, 0, &wait), RL_REJECT);
		assert_int_equal(wait, T / 2);
	}
	rl_table_free(t);
}

/* A key idle far longer than 2^40 us is fresh again. A pause that is
 * almost a multiple of 2^40 us would decode as a TAT just ahead, so the
 * second half runs an rl_sweep during the pause, as the control thread
 * does. */
static void test_long_idle(void **state)
{
	struct rl_table *t = table(64);
	const uint64_t T = 1000, B = 4, t0 = 123456789;
	uint64_t later;

	(void)state;
	assert_int_equal(allowed_now(t, 11, t0, T, B, 100, T), 1 + B);
	later = t0 + 1000 * TAT_WRAP + TAT_WRAP / 2;
	assert_int_equal(allowed_now(t, 11, later, T, B, 100, T), 1 + B);
	/* TAT is later + 5 T; back 10,000 wraps + 777 us later. */
	assert_int_equal(rl_sweep(t, later + 60000000), 1);
	assert_int_equal(word_of(&t->s, 11, RL_RFP_BITS), -1);
	later += 10000 * TAT_WRAP + 777;
	assert_int_equal(allowed_now(t, 11, later, T, B, 100, T), 1 + B);
	rl_table_free(t);
}

/* rl_sweep frees the words whose TAT is not ahead of now, and only those. */
static void test_sweep(void **state)
{
	struct rl_table *t = table(4096);
	uint64_t wait;

	(void)state;
	for (uint64_t k = 0; k < 100; k++)
		assert_int_equal(rl_take(t, k, 1000, 10 + k, 0, 0, &wait), RL_ALLOW);
	/* TATs are 1010 .. 1109: at 1059, keys 0 .. 49 are done. */
	assert_int_equal(rl_sweep(t, 1059), 50);
	for (uint64_t k = 0; k < 100; k++)
		assert_int_equal(word_of(&t->s, k, RL_RFP_BITS) >= 0, k >= 50);
	assert_int_equal(rl_take(t, 60, 1059, 70, 0, 0, &wait), RL_REJECT);
	assert_int_equal(wait, 11);
	assert_int_equal(rl_sweep(t, 1059), 0);
	assert_int_equal(rl_sweep(t, 5000), 50);
	rl_table_free(t);
}

/* ---- 3. rate parsing ------------------------------------------------------ */

static void test_parse_rate(void **state)
{
	static const struct {
		const char *text;
		uint64_t interval_us;
	} good[] = {
	        {"100/s", 10000},     {"6000/m", 10000},   {"10/h", 360000000},
	        {"100", 10000},       {"0.5/s", 2000000},  {"10r/s", 100000},
	        {"1/h", 3600000000},  {"1000000/s", 1},    {"3/s", 333333},
	        {"2/s", 500000},      {"1.5/m", 40000000}, {"0.000278/s", 3597122302},
	        {"60000000/m", 1},    {"007/s", 142857},   {"1.000000/s", 1000000},
	        {"3600/h", 1000000},  {"666667/s", 1},     {"1", 1000000},
	        {"2.5r/m", 24000000}, {"400000/s", 3}, /* 2.5 us rounds up */
	};
	static const char *const bad[] = {
	        "",           "/s",         "abc",    "10/x",
	        "0/s",        "0",          "0.0/s",  "-1/s",
	        "+1/s",       "1e3/s",      "10/",    "10//s",
	        "1.2.3/s",    "5./s",       ".5/s",   "1.1234567/s",
	        "1000001/s",  "10000000/s", "0.9/h",  "24/d",
	        "10 /s",      " 10/s",      "10/s ",  "10r",
	        "10/sec",     "10/S",       "10rr/s", "99999999999999999999/s",
	        "0.000277/s", "1/hh",
	};
	uint64_t iv;

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(good); i++) {
		iv = 0;
		if (!rl_parse_rate(good[i].text, &iv) || iv != good[i].interval_us)
			fail_msg("\"%s\": got %llu, want %llu", good[i].text,
			         (unsigned long long)iv, (unsigned long long)good[i].interval_us);
	}
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		iv = 4242;
		if (rl_parse_rate(bad[i], &iv) || iv != 4242)
			fail_msg("\"%s\" parsed (%llu)", bad[i], (unsigned long long)iv);
	}
}

/* ---- 4. bucket pressure --------------------------------------------------- */

/* Eight live keys fill a bucket: a ninth is allowed untracked (counted)
 * while they stay live, and tracked once one of their words expires. */
static void test_bucket_full_fails_open(void **state)
{
	struct rl_table *t = table(64);
	uint64_t keys[9], wait;

	(void)state;
	keys_sharing(&t->s, keys, 9);
	for (int i = 0; i < 8; i++)
		assert_int_equal(take(t, keys[i], 0, 1000, 0, &wait), RL_ALLOW);
	for (int i = 0; i < 5; i++)
		assert_int_equal(take(t, keys[8], 500, 1000, 0, &wait), RL_ALLOW);
	assert_int_equal(rl_overflows(t), 5);
	assert_int_equal(word_of(&t->s, keys[8], RL_RFP_BITS), -1);
	/* The eight kept their state: still limited. */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(take(t, keys[i], 500, 1000, 0, &wait), RL_REJECT);
		assert_int_equal(wait, 500);
	}
	/* At 1000 their TATs are due: the ninth takes a word and is limited. */
	assert_int_equal(take(t, keys[8], 1000, 1000, 0, &wait), RL_ALLOW);
	assert_int_equal(take(t, keys[8], 1000, 1000, 0, &wait), RL_REJECT);
	assert_int_equal(wait, 1000);
	assert_int_equal(rl_overflows(t), 5);
	/* Ties among expired words go to the first in scan order. */
	assert_int_equal(word_of(&t->s, keys[8], RL_RFP_BITS), 0);
	assert_int_equal(word_of(&t->s, keys[0], RL_RFP_BITS), -1);
	rl_table_free(t);
}

/* A new key takes an empty word before an expired one, and among expired
 * words the one with the oldest TAT. */
static void test_bucket_reuse_order(void **state)
{
	struct rl_table *t = table(8);
	uint64_t keys[10], wait;

	(void)state;
	keys_sharing(&t->s, keys, 10);
	/* Seven keys, TATs 1000 + 10 i; word 7 stays empty. */
	for (int i = 0; i < 7; i++)
		assert_int_equal(take(t, keys[i], (uint64_t)i * 10, 1000, 0, &wait), RL_ALLOW);
	assert_int_equal(word_of(&t->s, keys[4], RL_RFP_BITS), 4);
	/* At 5000 all seven are due, yet the empty word goes first. */
	assert_int_equal(take(t, keys[7], 5000, 1000, 0, &wait), RL_ALLOW);
	assert_int_equal(word_of(&t->s, keys[7], RL_RFP_BITS), 7);
	/* Bucket full, all expired but key 7 (TAT 6000): the oldest goes first. */
	assert_int_equal(take(t, keys[8], 5000, 1000, 0, &wait), RL_ALLOW);
	assert_int_equal(word_of(&t->s, keys[8], RL_RFP_BITS), 0);
	assert_int_equal(take(t, keys[9], 5000, 1000, 0, &wait), RL_ALLOW);
	assert_int_equal(word_of(&t->s, keys[9], RL_RFP_BITS), 1);
	/* Key 1 lost its word but its budget was full anyway. */
	assert_int_equal(allowed_now(t, keys[1], 5000, 1000, 0, 10, 1000), 1);
	assert_int_equal(word_of(&t->s, keys[1], RL_RFP_BITS), 2);
	assert_int_equal(rl_overflows(t), 0);
	rl_table_free(t);
}

/* ---- 5. threads ----------------------------------------------------------- */

#define THREADS 4

struct hammer {
	struct rl_table *t;
	pthread_barrier_t *go;
	const uint64_t *keys;
	uint64_t num_keys, T, burst;
	uint64_t start_key;     /* threads start at different keys, to meet in every order */
	uint64_t end_us;        /* real time: run until then; 0: fixed clock */
	uint64_t first_us;      /* the first now this thread passed */
	uint64_t admitted[256]; /* per key */
	uint64_t calls;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	uint64_t wait;

	pthread_barrier_wait(h->go);
	h->first_us = h->end_us ? rlb_now_us() : 1000;
	for (uint64_t i = h->start_key;; i++) {
		uint64_t k = i % h->num_keys, now = h->end_us ? rlb_now_us() : 1000;

		if (h->end_us ? now >= h->end_us : h->calls >= 8 * h->num_keys)
			break;
		if (rl_take(h->t, h->keys[k], now, h->T, h->T * h->burst, 0, &wait) == RL_ALLOW)
			h->admitted[k]++;
		h->calls++;
	}
	return NULL;
}

/* run_hammer runs THREADS hammers on `keys` (for about run_us of real time,
 * or over a fixed clock when run_us is 0), sums their admissions per key
 * and returns how long they ran: from the first now any of them passed to
 * the end. */
static uint64_t run_hammer(struct rl_table *t, const uint64_t *keys, uint64_t num_keys, uint64_t T,
                           uint64_t burst, uint64_t run_us, uint64_t *admitted)
{
	static struct hammer h[THREADS];
	pthread_t th[THREADS];
	pthread_barrier_t go;
	uint64_t end_us = run_us ? rlb_now_us() + run_us : 0, first_us = UINT64_MAX;

	assert_true(num_keys <= RLB_ARRAY_LEN(h[0].admitted));
	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		h[i] = (struct hammer){t,      &go, keys, num_keys, T, burst, (uint64_t)i * 37,
		                       end_us, 0,   {0},  0};
		assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
	}
	memset(admitted, 0, num_keys * sizeof(*admitted));
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		for (uint64_t k = 0; k < num_keys; k++)
			admitted[k] += h[i].admitted[k];
		if (h[i].first_us < first_us)
			first_us = h[i].first_us;
	}
	pthread_barrier_destroy(&go);
	return end_us - first_us;
}

/* Four threads, one key, about 1 s of real time at 50,000/s with a burst of
 * 5,000 (100 ms: a thread descheduled on a busy machine loses nothing):
 * never more than elapsed / T + burst + 1, and within 1% of it. */
static void test_threads_one_key(void **state)
{
	struct rl_table *t = table(1024);
	const uint64_t key = 0xabc, T = 20, burst = 5000;
	uint64_t admitted, elapsed, bound;

	(void)state;
	elapsed = run_hammer(t, &key, 1, T, burst, 1000000, &admitted);
	bound = elapsed / T + burst + 1;
	print_message("one key, %d threads, %llu us: %llu admitted of %llu allowed\n", THREADS,
	              (unsigned long long)elapsed, (unsigned long long)admitted,
	              (unsigned long long)bound);
	assert_true(admitted <= bound);
	assert_true(admitted * 100 >= bound * 99);
	assert_int_equal(rl_overflows(t), 0);
	rl_table_free(t);
}

/* Four threads over 200 keys with a fixed clock: each key admits exactly
 * 1 + burst in all, so racing claims never made a key a second word. */
static void test_threads_many_keys_fixed_clock(void **state)
{
	struct rl_table *t = table(4096);
	uint64_t keys[200], admitted[200];

	(void)state;
	for (uint64_t k = 0; k < 200; k++)
		keys[k] = k * 7919;
	run_hammer(t, keys, 200, 1000, 3, 0, admitted);
	for (uint64_t k = 0; k < 200; k++) {
		assert_int_equal(admitted[k], 4);
		assert_true(word_of(&t->s, keys[k], RL_RFP_BITS) >= 0);
	}
	assert_int_equal(rl_overflows(t), 0);
	rl_table_free(t);
}

/* Four threads over 64 keys, 0.5 s of real time at 1000/s each with a
 * burst of 100: each key under its bound, all within 1% of theirs. */
static void test_threads_many_keys_real_time(void **state)
{
	struct rl_table *t = table(4096);
	const uint64_t T = 1000, burst = 100;
	uint64_t keys[64], admitted[64], elapsed, total = 0;

	(void)state;
	for (uint64_t k = 0; k < 64; k++)
		keys[k] = ~k;
	elapsed = run_hammer(t, keys, 64, T, burst, 500000, admitted);
	for (uint64_t k = 0; k < 64; k++) {
		assert_true(admitted[k] <= elapsed / T + burst + 1);
		total += admitted[k];
	}
	print_message("64 keys, %d threads, %llu us: %llu admitted of %llu allowed\n", THREADS,
	              (unsigned long long)elapsed, (unsigned long long)total,
	              (unsigned long long)(64 * (elapsed / T + burst + 1)));
	assert_true(total * 100 >= 64 * (elapsed / T + burst + 1) * 99);
	assert_int_equal(rl_overflows(t), 0);
	rl_table_free(t);
}

struct racer {
	struct rl_table *t;
	struct rl_conns *c;
	pthread_barrier_t *go;
	uint64_t key;
	int admitted;
};

static void *claim_racer(void *arg)
{
	struct racer *r = arg;
	uint64_t wait;

	pthread_barrier_wait(r->go);
	for (int i = 0; i < 3; i++) {
		if (r->t != NULL)
			r->admitted += rl_take(r->t, r->key, 1000, 100, 1000, 0, &wait) == RL_ALLOW;
		else
			r->admitted += rl_conn_acquire(r->c, r->key, 100) == RL_CONN_OK;
	}
	return NULL;
}

/* race_claims starts four threads at once on one fresh key and returns
 * their admissions in all (word_of checks there is one word). */
static int race_claims(struct rl_table *t, struct rl_conns *c, uint64_t key)
{
	pthread_t th[THREADS];
	struct racer r[THREADS];
	pthread_barrier_t go;
	int admitted = 0;

	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct racer){t, c, &go, key, 0};
		assert_int_equal(pthread_create(&th[i], NULL, claim_racer, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		admitted += r[i].admitted;
	}
	pthread_barrier_destroy(&go);
	return admitted;
}

/* Racing first requests of one key: one word, exact budget (burst 10:
 * 11 of 12). Racing first connections: one word, all counted. */
static void test_racing_claims(void **state)
{
	struct rl_table *t = table(4096);
	struct rl_conns *c = rl_conns_new(4096);

	(void)state;
	assert_non_null(c);
	for (uint64_t key = 1; key <= 60; key++) {
		assert_int_equal(race_claims(t, NULL, key), 11);
		assert_true(word_of(&t->s, key, RL_RFP_BITS) >= 0);
		assert_int_equal(race_claims(NULL, c, key), 12);
		assert_int_equal(rl_conn_count(c, key), 12);
		assert_true(word_of(&c->s, key, RL_CFP_BITS) >= 0);
		for (int i = 0; i < 12; i++)
			rl_conn_release(c, key);
	}
	assert_int_equal(rl_overflows(t), 0);
	rl_table_free(t);
	rl_conns_free(c);
}

/* ---- 6. connections ------------------------------------------------------- */

static struct rl_conns *conns(uint32_t slots)
{
	struct rl_conns *c = rl_conns_new(slots);

	assert_non_null(c);
	return c;
}

static void test_conn_limit(void **state)
{
	struct rl_conns *c = conns(1024);

	(void)state;
	for (uint32_t i = 1; i <= 3; i++) {
		assert_int_equal(rl_conn_acquire(c, 0, 3), RL_CONN_OK);
		assert_int_equal(rl_conn_count(c, 0), i);
	}
	assert_int_equal(rl_conn_acquire(c, 0, 3), RL_CONN_LIMIT);
	assert_int_equal(rl_conn_count(c, 0), 3);
	/* Another key has its own count; a higher limit lets more in. */
	assert_int_equal(rl_conn_acquire(c, 1, 3), RL_CONN_OK);
	assert_int_equal(rl_conn_acquire(c, 0, 4), RL_CONN_OK);
	assert_int_equal(rl_conn_acquire(c, 0, 4), RL_CONN_LIMIT);
	rl_conn_release(c, 0);
	assert_int_equal(rl_conn_count(c, 0), 3);
	assert_int_equal(rl_conn_acquire(c, 0, 4), RL_CONN_OK);
	for (int i = 0; i < 4; i++)
		rl_conn_release(c, 0);
	assert_int_equal(rl_conn_count(c, 0), 0);
	assert_int_equal(word_of(&c->s, 0, RL_CFP_BITS), -1); /* the word is free */
	assert_int_equal(rl_conn_count(c, 1), 1);
	/* Limit 0 refuses everything. */
	assert_int_equal(rl_conn_acquire(c, 2, 0), RL_CONN_LIMIT);
	assert_int_equal(rl_conn_count(c, 2), 0);
	assert_int_equal(rl_conn_overflows(c), 0);
	rl_conns_free(c);
	rl_conns_free(NULL);
	rl_table_free(NULL);
}

/* Eight keys with connections fill a bucket: a ninth is untracked (and
 * counted) until one of them closes its last connection. */
static void test_conn_bucket_full(void **state)
{
	struct rl_conns *c = conns(64);
	uint64_t keys[9];

	(void)state;
	keys_sharing(&c->s, keys, 9);
	for (int i = 0; i < 8; i++)
		assert_int_equal(rl_conn_acquire(c, keys[i], 2), RL_CONN_OK);
	assert_int_equal(rl_conn_acquire(c, keys[0], 2), RL_CONN_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rl_conn_acquire(c, keys[8], 2), RL_CONN_UNTRACKED);
	assert_int_equal(rl_conn_overflows(c), 3);
	assert_int_equal(rl_conn_count(c, keys[8]), 0);
	/* Key 0 still holds one of its two: its word stays. */
	rl_conn_release(c, keys[0]);
	assert_int_equal(rl_conn_acquire(c, keys[8], 2), RL_CONN_UNTRACKED);
	/* Key 5 closes its only one: the ninth takes that word. */
	rl_conn_release(c, keys[5]);
	assert_int_equal(rl_conn_acquire(c, keys[8], 2), RL_CONN_OK);
	assert_int_equal(word_of(&c->s, keys[8], RL_CFP_BITS), 5);
	assert_int_equal(rl_conn_acquire(c, keys[8], 2), RL_CONN_OK);
	assert_int_equal(rl_conn_acquire(c, keys[8], 2), RL_CONN_LIMIT);
	assert_int_equal(rl_conn_overflows(c), 4);
	rl_conns_free(c);
}

/* A key left in two words by a race: its count is their sum, the limit
 * applies to the sum, acquires go to the first word and releases drain the
 * last, so the second word goes away first. */
static void test_conn_two_words(void **state)
{
	struct rl_conns *c = conns(64);
	uint64_t h, fp;
	struct rl_bucket *b;

	(void)state;
	h = rl_mix(c->s.seed, 99);
	fp = rl_fingerprint(h, RL_CFP_BITS);
	b = rl_bucket_of(&c->s, h);
	atomic_store(&b->w[2], conn_word(fp, 0, 1));
	atomic_store(&b->w[5], conn_word(fp, 0, 2));
	assert_int_equal(rl_conn_count(c, 99), 3);
	assert_int_equal(rl_conn_acquire(c, 99, 3), RL_CONN_LIMIT);
	assert_int_equal(rl_conn_acquire(c, 99, 4), RL_CONN_OK);
	assert_int_equal(atomic_load(&b->w[2]) & RL_CNT_MASK, 2);
	for (int i = 0; i < 2; i++)
		rl_conn_release(c, 99);
	assert_int_equal(atomic_load(&b->w[5]) >> RL_CFP_SHIFT, 0);
	assert_int_equal(rl_conn_count(c, 99), 2);
	assert_int_equal(word_of(&c->s, 99, RL_CFP_BITS), 2);
	rl_conn_release(c, 99);
	rl_conn_release(c, 99);
	assert_int_equal(word_of(&c->s, 99, RL_CFP_BITS), -1);
	rl_conns_free(c);
}

#define CONN_KEYS  3
#define CONN_LIMIT 2
#define CONN_HOLD  2 /* connections a thread keeps open at once */
#define CONN_OPS   200000

struct conn_run {
	struct rl_conns *c;
	pthread_barrier_t *go;
	_Atomic uint32_t *held; /* per key: OKs not yet released */
	atomic_uint *over;      /* times held exceeded the limit */
	uint64_t seed, oks, limits, untracked;
};

static uint64_t conn_key(uint64_t k)
{
	return k * 1000003;
}

/* conn_close releases a connection of key k that acquire counted: held
 * goes down before the table's count, so held never exceeds it. */
static void conn_close(struct conn_run *r, uint64_t k)
{
	atomic_fetch_sub(&r->held[k], 1);
	rl_conn_release(r->c, conn_key(k));
}

static void *conn_worker(void *arg)
{
	struct conn_run *r = arg;
	uint64_t rng = r->seed, open[CONN_HOLD];
	int num_open = 0;

	pthread_barrier_wait(r->go);
	for (int i = 0; i < CONN_OPS; i++) {
		uint64_t k = splitmix64(&rng) % CONN_KEYS;
		enum rl_conn_result res;

		if (num_open == CONN_HOLD) { /* close the oldest */
			conn_close(r, open[0]);
			memmove(open, open + 1, sizeof(open) - sizeof(open[0]));
			num_open--;
		}
		res = rl_conn_acquire(r->c, conn_key(k), CONN_LIMIT);
		r->limits += res == RL_CONN_LIMIT;
		r->untracked += res == RL_CONN_UNTRACKED;
		if (res != RL_CONN_OK)
			continue;
		r->oks++;
		open[num_open++] = k;
		/* The table's count may briefly include other threads' acquires
		 * that are about to back off, one per thread at most. */
		if (atomic_fetch_add(&r->held[k], 1) + 1 > CONN_LIMIT ||
		    rl_conn_count(r->c, conn_key(k)) > CONN_LIMIT + THREADS - 1)
			atomic_fetch_add(r->over, 1);
	}
	while (num_open > 0)
		conn_close(r, open[--num_open]);
	return NULL;
}

/* Four threads acquire and release three keys with limit 2: never more
 * than 2 held, both outcomes seen, everything back to 0. */
static void test_conn_threads(void **state)
{
	struct rl_conns *c = conns(8); /* one bucket: the keys share a line */
	_Atomic uint32_t held[CONN_KEYS] = {0};
	atomic_uint over = 0;
	struct conn_run r[THREADS];
	pthread_t th[THREADS];
	pthread_barrier_t go;
	uint64_t oks = 0, limits = 0;

	(void)state;
	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct conn_run){c, &go, held, &over, (uint64_t)i + 1, 0, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, conn_worker, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].untracked, 0);
		oks += r[i].oks;
		limits += r[i].limits;
	}
	pthread_barrier_destroy(&go);
	print_message("connections: %llu counted, %llu refused at the limit\n",
	              (unsigned long long)oks, (unsigned long long)limits);
	assert_int_equal(atomic_load(&over), 0);
	assert_true(oks > 0);
	assert_true(limits > 0);
	for (uint64_t k = 0; k < CONN_KEYS; k++)
		assert_int_equal(rl_conn_count(c, conn_key(k)), 0);
	for (int i = 0; i < RL_WAYS; i++)
		assert_int_equal(atomic_load(&c->s.buckets[0].w[i]) >> RL_CFP_SHIFT, 0);
	rl_conns_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table_new),
	        cmocka_unit_test(test_burst_then_rate),
	        cmocka_unit_test(test_burst_zero),
	        cmocka_unit_test(test_delay_mode),
	        cmocka_unit_test(test_keys_independent),
	        cmocka_unit_test(test_wrap_matches_model),
	        cmocka_unit_test(test_no_false_reject_at_wrap),
	        cmocka_unit_test(test_long_idle),
	        cmocka_unit_test(test_sweep),
	        cmocka_unit_test(test_parse_rate),
	        cmocka_unit_test(test_bucket_full_fails_open),
	        cmocka_unit_test(test_bucket_reuse_order),
	        cmocka_unit_test(test_threads_one_key),
	        cmocka_unit_test(test_threads_many_keys_fixed_clock),
	        cmocka_unit_test(test_threads_many_keys_real_time),
	        cmocka_unit_test(test_racing_claims),
	        cmocka_unit_test(test_conn_limit),
	        cmocka_unit_test(test_conn_bucket_full),
	        cmocka_unit_test(test_conn_two_words),
	        cmocka_unit_test(test_conn_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
