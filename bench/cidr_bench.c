/* bench/cidr_bench.c — cost of the address-list tables of core/cidr.c:
 * build time, memory and nanoseconds per lookup for 1,000, 10,000 and
 * 100,000 random prefixes, IPv4 only and mixed IPv4/IPv6.
 *
 * Prefixes come from a fixed seed: one in eight has a length uniform over
 * the whole range, the others are IPv4 /16../32 or IPv6 /32../128, as real
 * lists are mostly narrow. Addresses (2^20 of them, drawn before timing) are
 * half inside a random prefix and half uniform; in the mixed runs half are
 * IPv6, looked up through cidr_lookup_ip as a request's address would be.
 * Each run does LOOKUPS lookups twice: "indep" lookups whose addresses are
 * known in advance, so the CPU overlaps several (throughput), and "chain"
 * where the next address depends on the last result (latency, the cost one
 * request sees). One core, warm caches for whatever fits in them; the
 * figures are noisy on a shared VM, so compare runs on the same machine.
 * Build with `make build/bench_cidr`. */
#include "core/cidr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOOKUPS    10000000u
#define ADDRS_BITS 20

struct addr {
	uint8_t a[16];
	int family;
};

static uint64_t rng = 0x5eed;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void random_bytes(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = rnd();

		memcpy(b + i, &r, n - i < 8 ? n - i : 8);
	}
}

static void random_prefix(struct cidr_entry *e, int family)
{
	unsigned width = family == 4 ? 32 : 128, lo = family == 4 ? 16 : 32;

	memset(e, 0, sizeof(*e));
	e->family = (uint8_t)family;
	if ((rnd() & 7) == 0)
		e->len = (uint8_t)(rnd() % (width + 1));
	else
		e->len = (uint8_t)(lo + rnd() % (width - lo + 1));
	random_bytes(e->addr, family == 4 ? 4 : 16); /* the table ignores host bits */
	e->value = 1 + (uint32_t)(rnd() % 3);
}

/* random_addr: half inside a random prefix of e[], half uniform. */
static void random_addr(struct addr *q, const struct cidr_entry *e, size_t n, int mixed)
{
	memset(q, 0, sizeof(*q));
	if (rnd() & 1) {
		const struct cidr_entry *p = &e[rnd() % n];
		unsigned bytes = p->family == 4 ? 4 : 16;

		random_bytes(q->a, bytes);
		for (unsigned i = 0; i < bytes; i++) {
			unsigned bit = i * 8;

			if (bit + 8 <= p->len)
				q->a[i] = p->addr[i];
			else if (bit < p->len) {
				uint8_t m = (uint8_t)(0xffu << (8 - (p->len - bit)));

				q->a[i] = (uint8_t)((p->addr[i] & m) | (q->a[i] & ~m));
			}
		}
		q->family = p->family;
		return;
	}
	q->family = mixed && (rnd() & 1) ? 6 : 4;
	random_bytes(q->a, q->family == 4 ? 4 : 16);
}

static void run(const char *name, size_t n, int mixed)
{
	struct cidr_entry *e = malloc(n * sizeof(*e));
	struct addr *own = malloc(((size_t)1 << ADDRS_BITS) * sizeof(*own));
	struct cidr_table *t;
	char err[128];
	uint64_t t0, t1, t2, t3, sink = 0;
	size_t mask = ((size_t)1 << ADDRS_BITS) - 1, j = 0;

	if (e == NULL || own == NULL) {
		fprintf(stderr, "cidr_bench: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		random_prefix(&e[i], mixed && (rnd() & 1) ? 6 : 4);
	for (size_t i = 0; i <= mask; i++)
		random_addr(&own[i], e, n, mixed);
	t0 = now_ns();
	t = cidr_table_build(e, n, err, sizeof(err));
	t1 = now_ns();
	if (t == NULL) {
		fprintf(stderr, "cidr_bench: %s\n", err);
		exit(1);
	}
	for (uint32_t k = 0; k < LOOKUPS; k++)
		sink += cidr_lookup_ip(t, own[k & mask].a, own[k & mask].family);
	t2 = now_ns();
	for (uint32_t k = 0; k < LOOKUPS; k++) {
		j = (j + 1 + (sink & 1)) & mask; /* the next address waits for this result */
		sink += cidr_lookup_ip(t, own[j].a, own[j].family);
	}
	t3 = now_ns();
	printf("%-6s %8zu %9zu %9.2f %10.1f %8.1f %8.1f   (%llu)\n", name, n, cidr_table_size(t),
	       (double)(t1 - t0) / 1e6, (double)cidr_table_bytes(t) / 1024.0,
	       (double)(t2 - t1) / LOOKUPS, (double)(t3 - t2) / LOOKUPS, (unsigned long long)sink);
	cidr_table_free(t);
	free(own);
	free(e);
}

int main(void)
{
	static const size_t sizes[] = {1000, 10000, 100000};

	printf("%u lookups per run; addresses half inside a prefix, half uniform\n", LOOKUPS);
	printf("%-6s %8s %9s %9s %10s %8s %8s   %s\n", "table", "prefixes", "distinct", "build ms",
	       "memory KiB", "ns indep", "ns chain", "(checksum)");
	for (int mixed = 0; mixed < 2; mixed++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			run(mixed ? "mixed" : "v4", sizes[i], mixed);
	return 0;
}
