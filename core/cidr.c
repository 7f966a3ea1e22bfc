/* core/cidr.c — CIDR prefixes: parsing them one by one, from lists and from
 * files, and the interval tables that answer longest-prefix-match lookups.
 * cidr.h explains the table's design.
 *
 * Threads: everything but the lookups runs on the control thread and may
 * allocate; the lookups read an immutable table from any thread.
 */
#include "core/cidr.h"

#include "core/common.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* While a table is built, addresses of both families are unsigned 128-bit
 * integers (an IPv4 address is its 32-bit value), so one sweep and one
 * index builder serve both. GCC and clang have the type on every 64-bit
 * target; IPv6 lookups use it too, since comparing two of them compiles to a
 * compare and a subtract-with-borrow. */
typedef unsigned __int128 u128;

/* At most 2^20 buckets per family: 4 MiB of index, reached only with more
 * than two million intervals, beyond which buckets just grow. */
#define INDEX_BITS_MAX 20

/* Interval start addresses, each with the value of the longest prefix
 * covering it; the interval runs to the next one's start. */
struct iv4 {
	uint32_t start;
	uint32_t value;
};

struct iv6 {
	uint64_t hi, lo; /* start, most significant half first */
	uint32_t value;
};

/* One family's half of a table. iv[0 .. num_iv) cover the whole address
 * space (iv[0].start == 0). The window is base .. base + span; an address
 * in it falls in bucket (address - base) >> shift, and idx[b] is the last
 * interval that starts at or before bucket b's first address, so the
 * address's interval is one of iv[idx[b] .. idx[b + 1]]. idx[num_buckets] is
 * the last interval. */
struct cidr_v4 {
	struct iv4 *iv;
	uint32_t *idx;
	uint32_t num_iv, num_buckets;
	uint32_t base, span, shift;
};

struct cidr_v6 {
	struct iv6 *iv;
	uint32_t *idx;
	uint32_t num_iv, num_buckets;
	uint32_t shift;
	u128 base, span;
};

struct cidr_table {
	struct cidr_v4 v4;
	struct cidr_v6 v6;
	size_t num_prefixes; /* distinct prefixes, both families */
};

/* ---- small helpers ---- */

static u128 mask128(unsigned bits) /* the low `bits` bits set */
{
	return bits >= 128 ? ~(u128)0 : ((u128)1 << bits) - 1;
}

static u128 shr128(u128 x, unsigned s)
{
	return s >= 128 ? 0 : x >> s;
}

static u128 shl128(u128 x, unsigned s)
{
	return s >= 128 ? 0 : x << s;
}

static unsigned bit_len128(u128 x) /* bits needed to write x: 0 for 0 */
{
	uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;

	if (hi != 0)
		return 128 - (unsigned)__builtin_clzll(hi);
	return lo != 0 ? 64 - (unsigned)__builtin_clzll(lo) : 0;
}

static inline u128 load_be128(const uint8_t a[16])
{
	uint64_t hi, lo;

	memcpy(&hi, a, 8);
	memcpy(&lo, a + 8, 8);
	return ((u128)be64toh(hi) << 64) | be64toh(lo);
}

static inline uint32_t load_be32(const uint8_t a[4])
{
	uint32_t v;

	memcpy(&v, a, 4);
	return be32toh(v);
}

/* is_mapped: a[] is in ::ffff:0:0/96, the IPv4-mapped IPv6 addresses. */
static int is_mapped(const uint8_t a[16])
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/* unmap turns an IPv4-mapped address into the IPv4 form (a[0..3], rest 0). */
static void unmap(uint8_t a[16])
{
	memmove(a, a + 12, 4);
	memset(a + 4, 0, 12);
}

/* ---- parsing ---- */

static int is_addr_char(char c)
{
	char lower = (char)(c | 0x20);

	return (c >= '0' && c <= '9') || (lower >= 'a' && lower <= 'f') || c == ':' || c == '.';
}

/* parse_addr parses text[0..len) as a bare address, leaving an IPv4-mapped
 * one in IPv6 form. inet_pton wants a C string, so the text is copied; the
 * character check first keeps out what inet_pton might read past or accept
 * (a NUL ending the copy early, a "%zone"). */
static int parse_addr(const char *text, size_t len, uint8_t out[16], int *family)
{
	char buf[INET6_ADDRSTRLEN];

	memset(out, 0, 16);
	if (len == 0 || len >= sizeof(buf))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_addr_char(text[i]))
			return 0;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (memchr(buf, ':', len) == NULL) {
		*family = 4;
		return inet_pton(AF_INET, buf, out) == 1;
	}
	*family = 6;
	return inet_pton(AF_INET6, buf, out) == 1;
}

/* parse_len parses a prefix length: decimal digits only, at most `max`. */
static int parse_len(const char *text, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(text[i] - '0');
		if (v > max) /* also stops overflow on a long run of digits */
			return 0;
	}
	*out = v;
	return 1;
}

static void clear_host_bits(uint8_t a[16], unsigned len)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bit = i * 8;

		if (bit >= len)
			a[i] = 0;
		else if (len - bit < 8)
			a[i] &= (uint8_t)(0xffu << (8 - (len - bit)));
	}
}

int cidr_parse(const char *text, size_t len, struct cidr_entry *out)
{
	const char *slash;
	size_t addr_len;
	unsigned plen;
	int family;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return 0;
	slash = memchr(text, '/', len);
	addr_len = slash != NULL ? (size_t)(slash - text) : len;
	if (!parse_addr(text, addr_len, out->addr, &family))
		return 0;
	plen = family == 4 ? 32 : 128;
	if (slash != NULL && !parse_len(slash + 1, len - addr_len - 1, plen, &plen))
		return 0;
	/* A mapped prefix shorter than /96 also covers addresses that are not
	 * IPv4; it stays an IPv6 prefix. */
	if (family == 6 && plen >= 96 && is_mapped(out->addr)) {
		unmap(out->addr);
		family = 4;
		plen -= 96;
	}
	clear_host_bits(out->addr, plen);
	out->family = (uint8_t)family;
	out->len = (uint8_t)plen;
	return 1;
}

int cidr_parse_ip(const char *text, size_t len, uint8_t out[16], int *family)
{
	int fam;

	if (!parse_addr(text, len, out, &fam))
		return 0;
	if (fam == 6 && is_mapped(out)) {
		unmap(out);
		fam = 4;
	}
	*family = fam;
	return 1;
}

/* ---- building ---- */

/* A prefix being resolved: start .. end inclusive; `order` is its place in
 * the caller's array, so that of two equal prefixes the later one wins. */
struct pfx {
	u128 start, end;
	uint32_t value, order;
	unsigned len;
};

/* One family's intervals before they are packed into their final form. */
struct resolved {
	u128 *start;     /* [num], ascending, start[0] == 0 */
	uint32_t *value; /* [num] */
	uint32_t num;    /* intervals */
	size_t prefixes; /* distinct prefixes */
	u128 base;       /* the window: base .. base + 2^window_bits - 1 */
	unsigned window_bits;
};

/* entry_prefix reads an entry as a prefix of `family` (an IPv6 entry inside
 * ::ffff:0:0/96 counts as IPv4), host bits cleared. Returns 0 if the entry
 * belongs to the other family. */
static int entry_prefix(const struct cidr_entry *e, int family, struct pfx *out)
{
	uint8_t a[16];
	unsigned len = e->len, width;
	int fam = e->family;

	memcpy(a, e->addr, sizeof(a));
	if (fam == 6 && len >= 96 && is_mapped(a)) {
		unmap(a);
		fam = 4;
		len -= 96;
	}
	if (fam != family)
		return 0;
	width = fam == 4 ? 32 : 128;
	out->start = fam == 4 ? load_be32(a) : load_be128(a);
	out->start &= ~mask128(width - len);
	out->end = out->start | mask128(width - len);
	out->value = e->value;
	out->len = len;
	return 1;
}

static int cmp_pfx(const void *a, const void *b)
{
	const struct pfx *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1; /* the enclosing prefix first */
	return x->order < y->order ? -1 : x->order > y->order;
}

/* dedup keeps one of each run of equal prefixes in sorted p[], with the
 * value of the last in the caller's order; returns the new count. */
static size_t dedup(struct pfx *p, size_t num)
{
	size_t w = 0;

	for (size_t i = 0; i < num; i++) {
		if (w > 0 && p[w - 1].start == p[i].start && p[w - 1].len == p[i].len)
			p[w - 1] = p[i];
		else
			p[w++] = p[i];
	}
	return w;
}

/* emit says the address space from `start` on has `value`, until the next
 * emit. A second emit at the same start replaces the first (a longer prefix
 * starting where its parent does), and an interval that would repeat its
 * predecessor's value is not made. */
static void emit(struct resolved *r, u128 start, uint32_t value)
{
	uint32_t n = r->num;

	if (r->start[n - 1] == start) {
		r->value[n - 1] = value;
		if (n > 1 && r->value[n - 2] == value)
			r->num--;
		return;
	}
	if (r->value[n - 1] == value)
		return;
	r->start[n] = start;
	r->value[n] = value;
	r->num++;
}

/* sweep turns sorted, distinct prefixes into intervals. Two prefixes are
 * nested or disjoint, so the prefixes still open when p[i] starts form a
 * chain of nested ones, innermost on top of the stack: p[i] takes over at
 * its start, and when a prefix ends the one below it on the stack (or no
 * prefix) takes over again. Lengths on the stack differ, so it holds at most
 * 129. Each prefix emits twice at most: 2 * num + 1 intervals. */
static void sweep(const struct pfx *p, size_t num, u128 addr_max, struct resolved *r)
{
	const struct pfx *stack[129];
	size_t depth = 0;

	r->start[0] = 0;
	r->value[0] = 0;
	r->num = 1;
	for (size_t i = 0; i <= num; i++) {
		while (depth > 0 && (i == num || stack[depth - 1]->end < p[i].start)) {
			const struct pfx *top = stack[--depth];

			/* A prefix ending at the top of the space: the ones
			 * below end there too, and nothing follows. */
			if (top->end == addr_max)
				break;
			emit(r, top->end + 1, depth > 0 ? stack[depth - 1]->value : 0);
		}
		if (i == num)
			break;
		RLB_ASSERT(depth < RLB_ARRAY_LEN(stack));
		emit(r, p[i].start, p[i].value);
		stack[depth++] = &p[i];
	}
	RLB_ASSERT(r->num <= 2 * num + 1);
}

/* set_window finds the smallest CIDR block holding every prefix: the bits
 * above the highest bit in which the lowest start and the highest end
 * differ are common to every address in between. */
static void set_window(struct resolved *r, const struct pfx *p, size_t num)
{
	u128 hi = 0;

	if (num == 0) {
		r->base = 0;
		r->window_bits = 0;
		return;
	}
	for (size_t i = 0; i < num; i++)
		hi = p[i].end > hi ? p[i].end : hi;
	r->window_bits = bit_len128(p[0].start ^ hi);
	r->base = p[0].start & ~mask128(r->window_bits);
}

/* resolve turns the entries of one family into intervals. Returns 0 on
 * out-of-memory. */
static int resolve(const struct cidr_entry *e, size_t n, int family, struct resolved *r)
{
	struct pfx *p = malloc((n > 0 ? n : 1) * sizeof(*p));
	size_t num = 0;

	memset(r, 0, sizeof(*r));
	if (p == NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (entry_prefix(&e[i], family, &p[num])) {
			p[num].order = (uint32_t)i;
			num++;
		}
	}
	qsort(p, num, sizeof(*p), cmp_pfx);
	num = dedup(p, num);
	r->start = malloc((2 * num + 1) * sizeof(*r->start));
	r->value = malloc((2 * num + 1) * sizeof(*r->value));
	if (r->start == NULL || r->value == NULL) {
		free(p);
		return 0;
	}
	sweep(p, num, mask128(family == 4 ? 32 : 128), r);
	set_window(r, p, num);
	r->prefixes = num;
	free(p);
	return 1;
}

static void resolved_free(struct resolved *r)
{
	free(r->start);
	r->start = NULL;
	free(r->value);
	r->value = NULL;
}

/* index_bits picks k for 2^k buckets: about one bucket per two intervals,
 * no finer than single addresses of the window. */
static unsigned index_bits(uint32_t num_iv, unsigned window_bits)
{
	unsigned k = num_iv >= 4 ? 31 - (unsigned)__builtin_clz(num_iv) - 1 : 0;

	k = k < window_bits ? k : window_bits;
	return k < INDEX_BITS_MAX ? k : INDEX_BITS_MAX;
}

/* build_index fills idx[0 .. 2^k] for r's intervals (see struct cidr_v4). */
static uint32_t *build_index(const struct resolved *r, unsigned k)
{
	uint32_t buckets = (uint32_t)1 << k, j = 0;
	unsigned shift = r->window_bits - k;
	uint32_t *idx = malloc(((size_t)buckets + 1) * sizeof(*idx));

	if (idx == NULL)
		return NULL;
	for (uint32_t b = 0; b < buckets; b++) {
		u128 first = r->base + shl128(b, shift);

		while (j + 1 < r->num && r->start[j + 1] <= first)
			j++;
		idx[b] = j;
	}
	idx[buckets] = r->num - 1;
	return idx;
}

static int pack_v4(struct cidr_v4 *f, const struct resolved *r)
{
	unsigned k = index_bits(r->num, r->window_bits);

	f->iv = malloc(r->num * sizeof(*f->iv));
	f->idx = build_index(r, k);
	if (f->iv == NULL || f->idx == NULL)
		return 0;
	for (uint32_t i = 0; i < r->num; i++) {
		f->iv[i].start = (uint32_t)r->start[i];
		f->iv[i].value = r->value[i];
	}
	f->num_iv = r->num;
	f->num_buckets = (uint32_t)1 << k;
	f->base = (uint32_t)r->base;
	f->span = (uint32_t)mask128(r->window_bits);
	f->shift = r->window_bits - k;
	return 1;
}

static int pack_v6(struct cidr_v6 *f, const struct resolved *r)
{
	unsigned k = index_bits(r->num, r->window_bits);

	f->iv = malloc(r->num * sizeof(*f->iv));
	f->idx = build_index(r, k);
	if (f->iv == NULL || f->idx == NULL)
		return 0;
	for (uint32_t i = 0; i < r->num; i++) {
		f->iv[i].hi = (uint64_t)(r->start[i] >> 64);
		f->iv[i].lo = (uint64_t)r->start[i];
		f->iv[i].value = r->value[i];
	}
	f->num_iv = r->num;
	f->num_buckets = (uint32_t)1 << k;
	f->base = r->base;
	f->span = mask128(r->window_bits);
	f->shift = r->window_bits - k;
	return 1;
}

static void check_entries(const struct cidr_entry *e, size_t n)
{
	/* Intervals and their indexes are uint32_t: 2n + 1 must fit. */
	RLB_ASSERT(n < UINT32_MAX / 4);
	for (size_t i = 0; i < n; i++) {
		RLB_ASSERT(e[i].family == 4 || e[i].family == 6);
		RLB_ASSERT(e[i].len <= (e[i].family == 4 ? 32 : 128));
		RLB_ASSERT(e[i].value != 0);
	}
}

struct cidr_table *cidr_table_build(const struct cidr_entry *e, size_t n, char *err, size_t err_len)
{
	struct cidr_table *t = calloc(1, sizeof(*t));
	struct resolved r;
	int ok;

	check_entries(e, n);
	if (t == NULL)
		goto oom;
	/* One family at a time, so the working arrays of both never coexist. */
	ok = resolve(e, n, 4, &r) && pack_v4(&t->v4, &r);
	t->num_prefixes = r.prefixes;
	resolved_free(&r);
	if (!ok)
		goto oom;
	ok = resolve(e, n, 6, &r) && pack_v6(&t->v6, &r);
	t->num_prefixes += r.prefixes;
	resolved_free(&r);
	if (!ok)
		goto oom;
	return t;
oom:
	cidr_table_free(t);
	snprintf(err, err_len, "out of memory building an address table of %zu prefixes", n);
	return NULL;
}

void cidr_table_free(struct cidr_table *t)
{
	if (t == NULL)
		return;
	free(t->v4.iv);
	free(t->v4.idx);
	free(t->v6.iv);
	free(t->v6.idx);
	free(t);
}

size_t cidr_table_size(const struct cidr_table *t)
{
	return t->num_prefixes;
}

size_t cidr_table_bytes(const struct cidr_table *t)
{
	return sizeof(*t) + t->v4.num_iv * sizeof(*t->v4.iv) +
	       ((size_t)t->v4.num_buckets + 1) * sizeof(*t->v4.idx) +
	       t->v6.num_iv * sizeof(*t->v6.iv) +
	       ((size_t)t->v6.num_buckets + 1) * sizeof(*t->v6.idx);
}

/* ---- lookups ---- */

/* The searches below find the last interval starting at or before `addr`
 * among iv[0 .. n), knowing iv[0] does. Each step halves n without a branch
 * the predictor could miss (the compiler makes the choice a cmov): if
 * iv[half] starts too late, the answer is below it and the n - half kept
 * still include it. */
uint32_t cidr_lookup_v4(const struct cidr_table *t, uint32_t addr_host_order)
{
	const struct cidr_v4 *f = &t->v4;
	uint32_t off = addr_host_order - f->base, b, n;
	const struct iv4 *iv;

	if (off > f->span)
		return 0;
	b = (uint32_t)((uint64_t)off >> f->shift); /* shift may be 32 */
	RLB_ASSERT_HOT(b < f->num_buckets);
	iv = f->iv + f->idx[b];
	n = f->idx[b + 1] - f->idx[b] + 1;
	while (n > 1) {
		uint32_t half = n / 2;

		iv = iv[half].start <= addr_host_order ? iv + half : iv;
		n -= half;
	}
	return iv->value;
}

uint32_t cidr_lookup_v6(const struct cidr_table *t, const uint8_t addr[16])
{
	const struct cidr_v6 *f = &t->v6;
	u128 a = load_be128(addr), off;
	const struct iv6 *iv;
	uint32_t b, n;

	if ((a >> 32) == 0xffff) /* ::ffff:a.b.c.d */
		return cidr_lookup_v4(t, (uint32_t)a);
	off = a - f->base;
	if (off > f->span)
		return 0;
	b = (uint32_t)shr128(off, f->shift);
	RLB_ASSERT_HOT(b < f->num_buckets);
	iv = f->iv + f->idx[b];
	n = f->idx[b + 1] - f->idx[b] + 1;
	while (n > 1) {
		uint32_t half = n / 2;
		u128 start = ((u128)iv[half].hi << 64) | iv[half].lo;

		iv = start <= a ? iv + half : iv;
		n -= half;
	}
	return iv->value;
}

/* cidr_lookup_sa reads the sockaddr with memcpy, never through the struct
 * types: the caller's object is a sockaddr_in, sockaddr_in6 or
 * sockaddr_storage, and reading it as `struct sockaddr` is, for the
 * compiler, an access of another type. Inlined next to a caller's local
 * sockaddr_in, GCC 12 -O2 then gave wrong answers (type-based alias
 * analysis; right with -fno-strict-aliasing) and warned of an overread in
 * the IPv6 branch it could not tell was dead. */
uint32_t cidr_lookup_sa(const struct cidr_table *t, const struct sockaddr *sa)
{
	const char *p = (const char *)sa;
	sa_family_t family;
	uint8_t a[16];

	memcpy(&family, p + offsetof(struct sockaddr, sa_family), sizeof(family));
	if (family == AF_INET) {
		memcpy(a, p + offsetof(struct sockaddr_in, sin_addr), 4);
		return cidr_lookup_v4(t, load_be32(a));
	}
	if (family == AF_INET6) {
		memcpy(a, p + offsetof(struct sockaddr_in6, sin6_addr), sizeof(a));
		return cidr_lookup_v6(t, a);
	}
	return 0;
}

uint32_t cidr_lookup_ip(const struct cidr_table *t, const uint8_t addr[16], int family)
{
	if (family == 4)
		return cidr_lookup_v4(t, load_be32(addr));
	if (family == 6)
		return cidr_lookup_v6(t, addr);
	return 0;
}

/* ---- lists and files ---- */

/* bad_element writes the error for an element that is not a prefix, with
 * "PATH:LINE: " before it when it comes from a file. The element is shown
 * as it was written, cut at 64 bytes, with bytes that would garble a log
 * line shown as '?'. */
static void bad_element(char *err, size_t err_len, const char *path, unsigned line,
                        const char *text, size_t len)
{
	char shown[64 + 4];
	size_t n = len < 64 ? len : 64;

	for (size_t i = 0; i < n; i++)
		shown[i] = text[i] >= 0x20 && text[i] < 0x7f && text[i] != '"' ? text[i] : '?';
	if (n < len)
		memcpy(shown + n, "...", 4);
	else
		shown[n] = '\0';
	if (path != NULL)
		snprintf(err, err_len,
		         "%s:%u: expected an IPv4 or IPv6 address or CIDR prefix, got \"%s\"", path,
		         line, shown);
	else
		snprintf(err, err_len,
		         "expected an IPv4 or IPv6 address or CIDR prefix, got \"%s\"", shown);
}

static int append(struct cidr_entry **arr, size_t *n, size_t *cap, const struct cidr_entry *e)
{
	RLB_ASSERT(*n <= *cap);
	if (*n == *cap) {
		size_t c = *cap > 0 ? *cap * 2 : 16;
		struct cidr_entry *a =
		        c < SIZE_MAX / sizeof(*a) ? realloc(*arr, c * sizeof(*a)) : NULL;

		if (a == NULL)
			return 0;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = *e;
	return 1;
}

/* add_one parses one element and appends it; path is NULL for a list. */
static int add_one(const char *text, size_t len, uint32_t value, struct cidr_entry **arr, size_t *n,
                   size_t *cap, const char *path, unsigned line, char *err, size_t err_len)
{
	struct cidr_entry e;

	if (!cidr_parse(text, len, &e)) {
		bad_element(err, err_len, path, line, text, len);
		return 0;
	}
	e.value = value;
	if (!append(arr, n, cap, &e)) {
		if (path != NULL)
			snprintf(err, err_len, "%s:%u: out of memory", path, line);
		else
			snprintf(err, err_len, "out of memory");
		return 0;
	}
	return 1;
}

static int is_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

int cidr_list_add(const char *list, uint32_t value, struct cidr_entry **arr, size_t *n, size_t *cap,
                  char *err, size_t err_len)
{
	size_t n_before = *n;
	const char *p = list;

	while (*p != '\0') {
		const char *q;

		while (is_list_sep(*p))
			p++;
		if (*p == '\0')
			break;
		for (q = p; *q != '\0' && !is_list_sep(*q); q++)
			;
		if (!add_one(p, (size_t)(q - p), value, arr, n, cap, NULL, 0, err, err_len)) {
			*n = n_before;
			return 0;
		}
		p = q;
	}
	return 1;
}

enum line_result { LINE_OK, LINE_EOF, LINE_LONG, LINE_ERROR };

/* read_line reads one line into buf (without its "\n" or "\r\n"). The
 * buffer holds one byte more than a line may have, for the '\r' of a
 * CRLF end; anything longer is LINE_LONG. A last line without '\n' counts. */
static enum line_result read_line(FILE *f, char buf[CIDR_LINE_MAX + 1], size_t *len)
{
	size_t n = 0;
	int c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (n == CIDR_LINE_MAX + 1)
			return LINE_LONG;
		buf[n++] = (char)c;
	}
	if (ferror(f))
		return LINE_ERROR;
	if (c == EOF && n == 0)
		return LINE_EOF;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > CIDR_LINE_MAX)
		return LINE_LONG;
	*len = n;
	return LINE_OK;
}

/* file_line handles one line: the comment cut off, spaces trimmed, the rest
 * (if any) must be one prefix. */
static int file_line(const char *buf, size_t len, uint32_t value, struct cidr_entry **arr,
                     size_t *n, size_t *cap, const char *path, unsigned line, char *err,
                     size_t err_len)
{
	const char *hash = memchr(buf, '#', len);
	size_t from = 0;

	if (hash != NULL)
		len = (size_t)(hash - buf);
	while (from < len && (buf[from] == ' ' || buf[from] == '\t'))
		from++;
	while (len > from && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (from == len)
		return 1;
	return add_one(buf + from, len - from, value, arr, n, cap, path, line, err, err_len);
}

int cidr_file_add(const char *path, uint32_t value, struct cidr_entry **arr, size_t *n, size_t *cap,
                  char *err, size_t err_len)
{
	char buf[CIDR_LINE_MAX + 1];
	size_t n_before = *n, len = 0;
	unsigned line = 0;
	enum line_result r;
	int ok = 1;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return 0;
	}
	while (ok && (r = read_line(f, buf, &len)) != LINE_EOF) {
		line++;
		if (r == LINE_LONG) {
			snprintf(err, err_len, "%s:%u: line longer than %d bytes", path, line,
			         CIDR_LINE_MAX);
			ok = 0;
		} else if (r == LINE_ERROR) {
			snprintf(err, err_len, "%s: %s", path, strerror(errno));
			ok = 0;
		} else {
			ok = file_line(buf, len, value, arr, n, cap, path, line, err, err_len);
		}
	}
	fclose(f);
	if (!ok)
		*n = n_before;
	return ok;
}
