/* bench/cache_sim.c — hit ratios of the cache's S3-FIFO eviction
 * (cache/evict.c) against a plain LRU, on Zipf-distributed requests.
 *
 *   build/bench_cache_sim [requests [keys]]   (defaults 10000000 and 1000000)
 *
 * A universe of `keys` objects, each requested with Zipf probability
 * (alpha 0.8, 1.0, 1.2) of its popularity rank; ranks are shuffled relative
 * to key ids (a fixed-seed Fisher-Yates), so key hashes carry no hint of
 * popularity. Two size tables: every object 1 KiB; and sizes from 256 B to
 * 256 KiB, log-normal (log2 of the size normal with mean 12 and deviation 2,
 * clamped), drawn from a fixed seed. Cache sizes are 0.1%, 1% and 10% of the
 * universe's total bytes. Each alpha's request stream (a precomputed CDF,
 * binary search per request) is drawn once from a fixed seed and replayed
 * against every size table, cache size and policy, so every run of the
 * program prints the same numbers; hits are counted from the first request
 * (the cold start is in the figures, the same for both policies). A miss
 * admits the object (evicting as needed); a hit is evict_touch() for
 * S3-FIFO and a move to the head for LRU.
 *
 * The LRU is the textbook one: a doubly linked list in bytes and a map from
 * key to node. Key ids are dense, so both policies' maps are plain arrays
 * indexed by key id (all preallocated), which costs neither anything. The
 * S3-FIFO ghost holds as many fingerprints as the main queue holds objects
 * on average (90% of the capacity / the mean object size), as in the paper.
 * LRU and S3-FIFO run in two threads side by side; the output is a Markdown
 * table ready for bench/RESULTS.md.
 */
#include "cache/evict.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEF_REQUESTS 10000000ull
#define DEF_KEYS     1000000u
#define NIL          UINT32_MAX
#define SEED_PERM    0x5eed0001ull
#define SEED_SIZES   0x5eed0002ull
#define SEED_STREAM  0x5eed0003ull

static const double alphas[] = {0.8, 1.0, 1.2};
static const double pcts[] = {0.1, 1.0, 10.0};

/* What a policy run reads (shared, read-only) and what it counts. */
struct run {
	const uint32_t *stream;
	uint64_t nreq;
	const uint32_t *size;
	const uint64_t *hash;
	uint32_t nkeys;
	uint64_t capacity;
	uint32_t ghost;
	uint64_t hits, hit_bytes, req_bytes;
};

struct row {
	double alpha, pct;
	struct run lru, s3;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform01 returns a double in [0, 1) with 53 random bits. */
static double uniform01(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * 0x1.0p-53;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL) {
		fprintf(stderr, "cache_sim: out of memory\n");
		exit(1);
	}
	return p;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- LRU -------------------------------------------------------------- */

struct lru {
	uint32_t *prev, *next;
	uint8_t *in;
	uint32_t head, tail;
	uint64_t bytes, capacity;
};

static void lru_unlink(struct lru *l, uint32_t k)
{
	if (l->prev[k] != NIL)
		l->next[l->prev[k]] = l->next[k];
	else
		l->head = l->next[k];
	if (l->next[k] != NIL)
		l->prev[l->next[k]] = l->prev[k];
	else
		l->tail = l->prev[k];
}

static void lru_push(struct lru *l, uint32_t k)
{
	l->prev[k] = NIL;
	l->next[k] = l->head;
	if (l->head != NIL)
		l->prev[l->head] = k;
	else
		l->tail = k;
	l->head = k;
}

static void *run_lru(void *arg)
{
	struct run *r = arg;
	struct lru l = {.head = NIL, .tail = NIL, .capacity = r->capacity};

	l.prev = xcalloc(r->nkeys, sizeof(*l.prev));
	l.next = xcalloc(r->nkeys, sizeof(*l.next));
	l.in = xcalloc(r->nkeys, sizeof(*l.in));
	for (uint64_t q = 0; q < r->nreq; q++) {
		uint32_t k = r->stream[q], size = r->size[k];

		r->req_bytes += size;
		if (l.in[k]) {
			r->hits++;
			r->hit_bytes += size;
			lru_unlink(&l, k);
			lru_push(&l, k);
			continue;
		}
		if (size > l.capacity)
			continue;
		while (l.bytes + size > l.capacity) {
			uint32_t t = l.tail;

			lru_unlink(&l, t);
			l.in[t] = 0;
			l.bytes -= r->size[t];
		}
		lru_push(&l, k);
		l.in[k] = 1;
		l.bytes += size;
	}
	free(l.prev);
	free(l.next);
	free(l.in);
	return NULL;
}

/* ---- S3-FIFO ---------------------------------------------------------- */

struct s3 {
	struct evict_node *node; /* one per key id */
	uint8_t *in;
};

static void s3_evicted(struct evict_node *n, void *arg)
{
	struct s3 *s = arg;

	s->in[n - s->node] = 0;
}

static void *run_s3(void *arg)
{
	struct run *r = arg;
	struct evict_policy p;
	struct s3 s;

	if (evict_init(&p, r->capacity, r->ghost) != 0) {
		fprintf(stderr, "cache_sim: out of memory\n");
		exit(1);
	}
	s.node = xcalloc(r->nkeys, sizeof(*s.node));
	s.in = xcalloc(r->nkeys, sizeof(*s.in));
	for (uint32_t k = 0; k < r->nkeys; k++) {
		s.node[k].hash = r->hash[k];
		s.node[k].size = r->size[k];
	}
	for (uint64_t q = 0; q < r->nreq; q++) {
		uint32_t k = r->stream[q], size = r->size[k];

		r->req_bytes += size;
		if (s.in[k]) {
			r->hits++;
			r->hit_bytes += size;
			evict_touch(&s.node[k]);
		} else if (evict_insert(&p, &s.node[k], s3_evicted, &s)) {
			s.in[k] = 1;
		}
	}
	evict_destroy(&p);
	free(s.node);
	free(s.in);
	return NULL;
}

/* ---- workload --------------------------------------------------------- */

/* zipf_stream draws nreq requests: rank by Zipf(alpha) over nkeys ranks
 * (CDF table, binary search), then key = perm[rank]. */
static void zipf_stream(uint32_t *stream, uint64_t nreq, const uint32_t *perm, uint32_t nkeys,
                        double alpha, double *cdf)
{
	uint64_t seed = SEED_STREAM + (uint64_t)(alpha * 1000);
	double sum = 0;

	for (uint32_t i = 0; i < nkeys; i++) {
		sum += pow((double)i + 1, -alpha);
		cdf[i] = sum;
	}
	for (uint64_t q = 0; q < nreq; q++) {
		double u = uniform01(&seed) * sum;
		uint32_t lo = 0, hi = nkeys - 1;

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		stream[q] = perm[lo];
	}
}

/* make_sizes fills the variable size table; returns the total bytes. */
static uint64_t make_sizes(uint32_t *size, uint32_t nkeys)
{
	uint64_t seed = SEED_SIZES, total = 0;

	for (uint32_t k = 0; k < nkeys; k++) {
		double u1 = 1.0 - uniform01(&seed), u2 = uniform01(&seed);
		double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
		double lg = 12.0 + 2.0 * z;

		lg = lg < 8.0 ? 8.0 : lg > 18.0 ? 18.0 : lg;
		size[k] = (uint32_t)llround(exp2(lg));
		total += size[k];
	}
	return total;
}

/* run_pair replays the stream against LRU and S3-FIFO, one thread each. */
static void run_pair(struct row *row, const struct run *base, uint64_t total)
{
	pthread_t th;
	double mean = (double)total / base->nkeys;
	double ghost = 0.9 * (double)base->capacity / mean;

	row->lru = *base;
	row->s3 = *base;
	row->s3.ghost = ghost < 1 ? 1 : ghost > 1e9 ? 1000000000u : (uint32_t)ghost;
	if (pthread_create(&th, NULL, run_lru, &row->lru) != 0) {
		run_lru(&row->lru);
		run_s3(&row->s3);
		return;
	}
	run_s3(&row->s3);
	pthread_join(th, NULL);
}

/* ---- output ----------------------------------------------------------- */

static double pct_of(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

static void print_table(const struct row *rows, size_t n, bool bytes)
{
	printf("| alpha | cache size %% | LRU hit %% | S3-FIFO hit %% | difference (points) |");
	if (bytes)
		printf(" LRU byte hit %% | S3-FIFO byte hit %% | byte difference (points) |");
	printf("\n|---:|---:|---:|---:|---:|%s\n", bytes ? "---:|---:|---:|" : "");
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		double l = pct_of(r->lru.hits, r->lru.nreq), s = pct_of(r->s3.hits, r->s3.nreq);

		printf("| %.1f | %g | %.2f | %.2f | %+.2f |", r->alpha, r->pct, l, s, s - l);
		if (bytes) {
			l = pct_of(r->lru.hit_bytes, r->lru.req_bytes);
			s = pct_of(r->s3.hit_bytes, r->s3.req_bytes);
			printf(" %.2f | %.2f | %+.2f |", l, s, s - l);
		}
		printf("\n");
	}
}

static void print_header(int argc, char **argv, uint64_t nreq, uint32_t nkeys)
{
	printf("Command: `");
	for (int i = 0; i < argc; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	printf("` (%llu requests per run, %u keys)\n\n", (unsigned long long)nreq, nkeys);
}

int main(int argc, char **argv)
{
	uint64_t nreq = argc > 1 ? strtoull(argv[1], NULL, 10) : DEF_REQUESTS;
	uint32_t nkeys = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : DEF_KEYS;
	uint32_t *perm, *fixed, *varsz, *stream;
	uint64_t *hash, seed = SEED_PERM, var_total;
	struct row fixed_rows[9], var_rows[9];
	double *cdf, t0 = now_s();

	if (nreq == 0 || nkeys < 2) {
		fprintf(stderr, "usage: %s [requests [keys]]\n", argv[0]);
		return 2;
	}
	perm = xcalloc(nkeys, sizeof(*perm));
	fixed = xcalloc(nkeys, sizeof(*fixed));
	varsz = xcalloc(nkeys, sizeof(*varsz));
	hash = xcalloc(nkeys, sizeof(*hash));
	cdf = xcalloc(nkeys, sizeof(*cdf));
	stream = xcalloc(nreq, sizeof(*stream));
	for (uint32_t k = 0; k < nkeys; k++) {
		perm[k] = k;
		fixed[k] = 1024;
		hash[k] = splitmix64(&seed);
	}
	for (uint32_t k = nkeys - 1; k > 0; k--) {
		uint32_t j = (uint32_t)(splitmix64(&seed) % (k + 1)), t = perm[k];

		perm[k] = perm[j];
		perm[j] = t;
	}
	var_total = make_sizes(varsz, nkeys);
	for (size_t a = 0; a < 3; a++) {
		zipf_stream(stream, nreq, perm, nkeys, alphas[a], cdf);
		for (size_t c = 0; c < 3; c++) {
			struct run base = {
			        .stream = stream, .nreq = nreq, .hash = hash, .nkeys = nkeys};
			struct row *f = &fixed_rows[a * 3 + c], *v = &var_rows[a * 3 + c];

			f->alpha = v->alpha = alphas[a];
			f->pct = v->pct = pcts[c];
			base.size = fixed;
			base.capacity = (uint64_t)((double)nkeys * 1024 * pcts[c] / 100);
			run_pair(f, &base, (uint64_t)nkeys * 1024);
			base.size = varsz;
			base.capacity = (uint64_t)((double)var_total * pcts[c] / 100);
			run_pair(v, &base, var_total);
		}
	}
	print_header(argc, argv, nreq, nkeys);
	printf("Fixed 1 KiB objects (object hit ratio = byte hit ratio):\n\n");
	print_table(fixed_rows, 9, false);
	printf("\nSizes 256 B to 256 KiB, log-normal (mean %.1f KiB, %.2f GiB in all):\n\n",
	       (double)var_total / nkeys / 1024, (double)var_total / (1u << 30));
	print_table(var_rows, 9, true);
	printf("\nRun time: %.1f s.\n", now_s() - t0);
	free(perm);
	free(fixed);
	free(varsz);
	free(hash);
	free(cdf);
	free(stream);
	return 0;
}
