/* tests/unit/core/cidr_test.c — unit tests for core/cidr.c.
 *
 * Goal: cidr_parse and cidr_parse_ip accept the documented forms and refuse
 * the rest, clear host bits and turn IPv4-mapped IPv6 into IPv4; a table
 * answers with the longest matching prefix (nested allow/deny lists, /0 per
 * family, /32 and /128 hosts, adjacent and overlapping prefixes, duplicates
 * where the later wins, an empty table, the first and last addresses of both
 * spaces, mapped addresses through cidr_lookup_sa); lists and files parse
 * with the documented error messages and leave the array as it was on an
 * error; and on large random tables every lookup agrees with a reference.
 *
 * Method: the module is #included, so check_table() can verify each built
 * table's invariants (intervals cover the space in strictly ascending order,
 * neighbours differ in value, the index is monotone and brackets every
 * bucket). The random cross-check builds 100,000 prefixes (mixed families,
 * random lengths, fixed-seed splitmix64) and looks up 200,000 addresses,
 * half of them drawn inside some prefix. A linear scan over 100,000
 * prefixes for each of 200,000 addresses would take minutes, so the
 * reference for all of them is a second, independent longest-match: for
 * each length from the longest down, an exact-match hash of the masked
 * address. That reference is itself checked against a true linear scan on
 * the first 2,000 addresses, and small tables are checked against the
 * linear scan alone. Files live under a mkdtemp directory in /tmp, removed
 * at the end of each test.
 */
#include "core/cidr.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct cidr_entry pe(const char *text, uint32_t value)
{
	struct cidr_entry e;

	assert_true(cidr_parse(text, strlen(text), &e));
	e.value = value;
	return e;
}

static uint32_t ip4(const char *text)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, text, &a), 1);
	return ntohl(a.s_addr);
}

/* look looks up a textual address through cidr_parse_ip and cidr_lookup_ip. */
static uint32_t look(const struct cidr_table *t, const char *text)
{
	uint8_t a[16];
	int family;

	assert_true(cidr_parse_ip(text, strlen(text), a, &family));
	return cidr_lookup_ip(t, a, family);
}

/* check_table verifies the invariants struct cidr_v4 and cidr_v6 promise. */
static void check_table(const struct cidr_table *t)
{
	const struct cidr_v4 *f4 = &t->v4;
	const struct cidr_v6 *f6 = &t->v6;

	assert_true(f4->num_iv >= 1 && f4->iv[0].start == 0);
	for (uint32_t i = 1; i < f4->num_iv; i++) {
		assert_true(f4->iv[i - 1].start < f4->iv[i].start);
		assert_true(f4->iv[i - 1].value != f4->iv[i].value);
	}
	for (uint32_t b = 0; b < f4->num_buckets; b++) {
		uint32_t first = f4->base + (uint32_t)((uint64_t)b << f4->shift);

		assert_true(f4->idx[b] <= f4->idx[b + 1]);
		assert_true(f4->iv[f4->idx[b]].start <= first);
	}
	assert_int_equal(f4->idx[f4->num_buckets], f4->num_iv - 1);
	assert_true(f6->num_iv >= 1 && f6->iv[0].hi == 0 && f6->iv[0].lo == 0);
	for (uint32_t i = 1; i < f6->num_iv; i++) {
		u128 a = ((u128)f6->iv[i - 1].hi << 64) | f6->iv[i - 1].lo;
		u128 b = ((u128)f6->iv[i].hi << 64) | f6->iv[i].lo;

		assert_true(a < b);
		assert_true(f6->iv[i - 1].value != f6->iv[i].value);
	}
	for (uint32_t b = 1; b <= f6->num_buckets; b++)
		assert_true(f6->idx[b - 1] <= f6->idx[b]);
	assert_int_equal(f6->idx[f6->num_buckets], f6->num_iv - 1);
}

static struct cidr_table *build(const struct cidr_entry *e, size_t n)
{
	char err[256] = "";
	struct cidr_table *t = cidr_table_build(e, n, err, sizeof(err));

	assert_non_null(t);
	check_table(t);
	return t;
}

/* ---- parsing ---- */

static void expect_parse(const char *text, int family, unsigned len, const char *addr)
{
	struct cidr_entry e;
	uint8_t want[16] = {0};

	assert_int_equal(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, want), 1);
	if (!cidr_parse(text, strlen(text), &e))
		fail_msg("cidr_parse refused \"%s\"", text);
	assert_int_equal(e.family, family);
	assert_int_equal(e.len, len);
	assert_memory_equal(e.addr, want, 16);
	assert_int_equal(e.value, 0);
}

static void test_parse_good(void **state)
{
	(void)state;
	expect_parse("10.0.0.0/8", 4, 8, "10.0.0.0");
	expect_parse("10.1.2.3", 4, 32, "10.1.2.3");
	expect_parse("0.0.0.0/0", 4, 0, "0.0.0.0");
	expect_parse("255.255.255.255/32", 4, 32, "255.255.255.255");
	expect_parse("192.168.0.0/016", 4, 16, "192.168.0.0"); /* leading zeros */
	expect_parse("2001:db8::/32", 6, 32, "2001:db8::");
	expect_parse("2001:DB8::/32", 6, 32, "2001:db8::");
	expect_parse("::1", 6, 128, "::1");
	expect_parse("::/0", 6, 0, "::");
	expect_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 6, 128,
	             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_parse("::1.2.3.4/128", 6, 128, "::1.2.3.4"); /* IPv4-compatible stays IPv6 */
	/* The text need not end at len. */
	{
		struct cidr_entry e;

		assert_true(cidr_parse("10.0.0.0/8junk", 10, &e));
		assert_int_equal(e.len, 8);
		assert_true(cidr_parse("10.0.0.1,10.0.0.2", 8, &e));
		assert_int_equal(e.len, 32);
	}
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
	        "",
	        "/",
	        "/8",
	        "10.0.0.0/",
	        "10.0.0.0/33",
	        "10.0.0.0/-1",
	        "10.0.0.0/+8",
	        "10.0.0.0/ 8",
	        "10.0.0.0 /8",
	        " 10.0.0.0/8",
	        "10.0.0.0/8 ",
	        "10.0.0.0/8/8",
	        "10.0.0.0/0x8",
	        "10.0.0.0/99999999999999999999",
	        "10.0.0",
	        "10.0.0.0.0",
	        "256.0.0.0",
	        "010.0.0.1",
	        "1.2.3.04",
	        "10.0.0.1a",
	        "2001:db8::/129",
	        "2001:db8::/",
	        "1::2::3",
	        ":::",
	        "fe80::1%eth0",
	        "2001:db8:::/32",
	        "::ffff:10.0.0.0/129",
	        "localhost",
	        "0x0a000000",
	        "10.0.0.0\n",
	        "1.2.3.4:80",
	        "[::1]",
	};
	struct cidr_entry e;
	uint8_t a[16];
	int family;

	(void)state;
	for (size_t i = 0; i < RLB_ARRAY_LEN(bad); i++) {
		if (cidr_parse(bad[i], strlen(bad[i]), &e))
			fail_msg("cidr_parse accepted \"%s\"", bad[i]);
	}
	/* A NUL inside the text must not end it early for inet_pton. */
	assert_false(cidr_parse("10.0.0.1\0zz", 11, &e));
	assert_false(cidr_parse_ip("10.0.0.1\0", 9, a, &family));
	/* Too long for any address. */
	assert_false(
	        cidr_parse_ip("0000:0000:0000:0000:0000:ffff:255.255.255.2555", 46, a, &family));
	assert_false(cidr_parse_ip("10.0.0.0/8", 10, a, &family));
	assert_false(cidr_parse_ip("", 0, a, &family));
}

static void test_parse_host_bits(void **state)
{
	(void)state;
	expect_parse("10.1.2.3/8", 4, 8, "10.0.0.0");
	expect_parse("10.1.2.3/0", 4, 0, "0.0.0.0");
	expect_parse("192.168.255.255/23", 4, 23, "192.168.254.0");
	expect_parse("10.1.2.3/31", 4, 31, "10.1.2.2");
	expect_parse("2001:db8:ffff::1/33", 6, 33, "2001:db8:8000::");
	expect_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127", 6, 127,
	             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	expect_parse("ffff::1/1", 6, 1, "8000::");
}

static void test_parse_mapped(void **state)
{
	uint8_t a[16], want[16] = {10, 1, 2, 3};
	int family = 0;

	(void)state;
	expect_parse("::ffff:10.0.0.0/104", 4, 8, "10.0.0.0");
	expect_parse("::ffff:10.1.2.3", 4, 32, "10.1.2.3");
	expect_parse("::ffff:a01:203/120", 4, 24, "10.1.2.0"); /* hex form */
	expect_parse("::ffff:0:0/96", 4, 0, "0.0.0.0");
	/* Shorter than /96 also covers non-IPv4 addresses: stays IPv6. */
	expect_parse("::ffff:10.0.0.0/95", 6, 95, "::fffe:0:0");
	assert_true(cidr_parse_ip("::ffff:10.1.2.3", 15, a, &family));
	assert_int_equal(family, 4);
	assert_memory_equal(a, want, 16);
	assert_true(cidr_parse_ip("10.1.2.3", 8, a, &family));
	assert_int_equal(family, 4);
	assert_memory_equal(a, want, 16);
	assert_true(cidr_parse_ip("2001:db8::1", 11, a, &family));
	assert_int_equal(family, 6);
	assert_int_equal(a[0], 0x20);
	assert_int_equal(a[15], 1);
}

/* ---- longest-prefix semantics ---- */

static void test_nested(void **state)
{
	struct cidr_entry e[] = {pe("10.0.0.0/8", 2), pe("10.1.0.0/16", 1), pe("10.1.2.0/24", 2)};
	struct cidr_table *t = build(e, RLB_ARRAY_LEN(e));

	(void)state;
	assert_int_equal(cidr_table_size(t), 3);
	assert_int_equal(look(t, "9.255.255.255"), 0);
	assert_int_equal(look(t, "10.0.0.0"), 2);
	assert_int_equal(look(t, "10.0.255.255"), 2);
	assert_int_equal(look(t, "10.1.0.0"), 1);
	assert_int_equal(look(t, "10.1.1.255"), 1);
	assert_int_equal(look(t, "10.1.2.0"), 2);
	assert_int_equal(look(t, "10.1.2.255"), 2);
	assert_int_equal(look(t, "10.1.3.0"), 1);
	assert_int_equal(look(t, "10.1.255.255"), 1);
	assert_int_equal(look(t, "10.2.0.0"), 2);
	assert_int_equal(look(t, "10.255.255.255"), 2);
	assert_int_equal(look(t, "11.0.0.0"), 0);
	assert_int_equal(look(t, "2001:db8::1"), 0);
	assert_int_equal(look(t, "::ffff:10.1.2.3"), 2);
	cidr_table_free(t);
}

static void test_default_routes(void **state)
{
	struct cidr_entry e4[] = {pe("0.0.0.0/0", 7), pe("192.168.0.0/16", 8)};
	struct cidr_entry e6[] = {pe("::/0", 9), pe("2001:db8::/32", 10)};
	struct cidr_table *t4 = build(e4, 2), *t6 = build(e6, 2);

	(void)state;
	assert_int_equal(look(t4, "0.0.0.0"), 7);
	assert_int_equal(look(t4, "1.2.3.4"), 7);
	assert_int_equal(look(t4, "192.168.9.9"), 8);
	assert_int_equal(look(t4, "255.255.255.255"), 7);
	assert_int_equal(look(t4, "::"), 0);
	assert_int_equal(look(t4, "2001:db8::1"), 0);
	assert_int_equal(look(t6, "::"), 9);
	assert_int_equal(look(t6, "2001:db8:1::"), 10);
	assert_int_equal(look(t6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 9);
	/* ::/0 is IPv6 only: IPv4 and IPv4-mapped addresses miss it. */
	assert_int_equal(look(t6, "1.2.3.4"), 0);
	assert_int_equal(look(t6, "::ffff:1.2.3.4"), 0);
	cidr_table_free(t4);
	cidr_table_free(t6);
}

static void test_hosts(void **state)
{
	struct cidr_entry e[] = {pe("192.0.2.7", 3), pe("192.0.2.0/24", 4), pe("2001:db8::7", 5),
	                         pe("2001:db8::/64", 6)};
	struct cidr_table *t = build(e, RLB_ARRAY_LEN(e));

	(void)state;
	assert_int_equal(look(t, "192.0.2.6"), 4);
	assert_int_equal(look(t, "192.0.2.7"), 3);
	assert_int_equal(look(t, "192.0.2.8"), 4);
	assert_int_equal(look(t, "2001:db8::6"), 6);
	assert_int_equal(look(t, "2001:db8::7"), 5);
	assert_int_equal(look(t, "2001:db8::8"), 6);
	assert_int_equal(look(t, "2001:db8:0:1::7"), 0);
	cidr_table_free(t);
}

static void test_adjacent_overlapping(void **state)
{
	/* Two adjacent /25 with one value, a /24 overlapping both with another,
	 * two adjacent blocks of different values, a /32 at a block's edge. */
	struct cidr_entry e[] = {
	        pe("198.51.100.0/25", 1), pe("198.51.100.128/25", 1), pe("198.51.100.0/24", 2),
	        pe("203.0.113.0/25", 3),  pe("203.0.113.128/25", 4),  pe("203.0.113.127", 5),
	        pe("203.0.114.0/24", 6),  pe("2001:db8::/33", 7),     pe("2001:db8:8000::/33", 8)};
	struct cidr_table *t = build(e, RLB_ARRAY_LEN(e));

	(void)state;
	assert_int_equal(look(t, "198.51.99.255"), 0);
	assert_int_equal(look(t, "198.51.100.0"), 1);
	assert_int_equal(look(t, "198.51.100.127"), 1);
	assert_int_equal(look(t, "198.51.100.128"), 1);
	assert_int_equal(look(t, "198.51.100.255"), 1);
	assert_int_equal(look(t, "198.51.101.0"), 0);
	assert_int_equal(look(t, "203.0.113.0"), 3);
	assert_int_equal(look(t, "203.0.113.126"), 3);
	assert_int_equal(look(t, "203.0.113.127"), 5);
	assert_int_equal(look(t, "203.0.113.128"), 4);
	assert_int_equal(look(t, "203.0.113.255"), 4);
	assert_int_equal(look(t, "203.0.114.0"), 6);
	assert_int_equal(look(t, "203.0.115.0"), 0);
	assert_int_equal(look(t, "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff"), 7);
	assert_int_equal(look(t, "2001:db8:8000::"), 8);
	assert_int_equal(look(t, "2001:db9::"), 0);
	cidr_table_free(t);
}

static void test_duplicates_later_wins(void **state)
{
	struct cidr_entry e[] = {pe("10.0.0.0/8", 1), pe("10.9.9.9/8", 2), /* same prefix */
	                         pe("::1", 3),        pe("::ffff:10.0.0.0/104", 4),
	                         pe("0:0::1/128", 5), pe("10.0.0.0/9", 6)};
	struct cidr_table *t = build(e, RLB_ARRAY_LEN(e));

	(void)state;
	/* 10/8 three times (once mapped), ::1 twice, 10/9 once. */
	assert_int_equal(cidr_table_size(t), 3);
	assert_int_equal(look(t, "10.200.0.0"), 4);
	assert_int_equal(look(t, "10.0.0.1"), 6);
	assert_int_equal(look(t, "::1"), 5);
	cidr_table_free(t);
}

static void test_empty_table(void **state)
{
	uint8_t a[16];
	struct cidr_table *t = build(NULL, 0);

	(void)state;
	assert_int_equal(cidr_table_size(t), 0);
	assert_true(cidr_table_bytes(t) > 0);
	assert_int_equal(cidr_lookup_v4(t, 0), 0);
	assert_int_equal(cidr_lookup_v4(t, 0xffffffffu), 0);
	memset(a, 0, sizeof(a));
	assert_int_equal(cidr_lookup_v6(t, a), 0);
	memset(a, 0xff, sizeof(a));
	assert_int_equal(cidr_lookup_v6(t, a), 0);
	assert_int_equal(cidr_lookup_ip(t, a, 5), 0);
	cidr_table_free(t);
	cidr_table_free(NULL);
}

static void test_boundaries(void **state)
{
	struct cidr_entry e[] = {pe("0.0.0.0/32", 1),
	                         pe("0.0.0.0/1", 2),
	                         pe("255.255.255.255", 3),
	                         pe("128.0.0.0/1", 4),
	                         pe("::/128", 5),
	                         pe("::/1", 6),
	                         pe("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 7),
	                         pe("8000::/1", 8)};
	struct cidr_table *t = build(e, RLB_ARRAY_LEN(e));
	struct cidr_table *one = build(e + 2, 1); /* only the last IPv4 address */

	(void)state;
	assert_int_equal(cidr_lookup_v4(t, 0), 1);
	assert_int_equal(cidr_lookup_v4(t, 1), 2);
	assert_int_equal(cidr_lookup_v4(t, 0x7fffffffu), 2);
	assert_int_equal(cidr_lookup_v4(t, 0x80000000u), 4);
	assert_int_equal(cidr_lookup_v4(t, 0xfffffffeu), 4);
	assert_int_equal(cidr_lookup_v4(t, 0xffffffffu), 3);
	assert_int_equal(look(t, "::"), 5);
	assert_int_equal(look(t, "::2"), 6);
	assert_int_equal(look(t, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 6);
	assert_int_equal(look(t, "8000::"), 8);
	assert_int_equal(look(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 8);
	assert_int_equal(look(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 7);
	assert_int_equal(cidr_lookup_v4(one, 0xffffffffu), 3);
	assert_int_equal(cidr_lookup_v4(one, 0xfffffffeu), 0);
	assert_int_equal(cidr_lookup_v4(one, 0), 0);
	assert_int_equal(cidr_lookup_v4(one, ip4("127.0.0.1")), 0);
	cidr_table_free(t);
	cidr_table_free(one);
}

static void test_lookup_sa(void **state)
{
	struct cidr_entry e[] = {pe("10.0.0.0/8", 1), pe("2001:db8::/32", 2), pe("::/0", 3)};
	struct cidr_table *t = build(e, RLB_ARRAY_LEN(e));
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct sockaddr_storage other = {.ss_family = AF_UNIX};

	(void)state;
	in.sin_addr.s_addr = htonl(ip4("10.20.30.40"));
	assert_int_equal(cidr_lookup_sa(t, (struct sockaddr *)&in), 1);
	in.sin_addr.s_addr = htonl(ip4("11.0.0.1"));
	assert_int_equal(cidr_lookup_sa(t, (struct sockaddr *)&in), 0);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:10.20.30.40", &in6.sin6_addr), 1);
	assert_int_equal(cidr_lookup_sa(t, (struct sockaddr *)&in6), 1);
	/* Mapped but outside 10/8: IPv4 rules only, so not ::/0 either. */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:11.0.0.1", &in6.sin6_addr), 1);
	assert_int_equal(cidr_lookup_sa(t, (struct sockaddr *)&in6), 0);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr), 1);
	assert_int_equal(cidr_lookup_sa(t, (struct sockaddr *)&in6), 2);
	assert_int_equal(inet_pton(AF_INET6, "::a14:1e28", &in6.sin6_addr), 1); /* compat */
	assert_int_equal(cidr_lookup_sa(t, (struct sockaddr *)&in6), 3);
	assert_int_equal(cidr_lookup_sa(t, (struct sockaddr *)&other), 0);
	cidr_table_free(t);
}

static void test_build_normalizes(void **state)
{
	/* Entries made by hand rather than by cidr_parse: host bits set, and an
	 * IPv6 prefix inside ::ffff:0:0/96, which must act as 192.0.2.0/24. */
	struct cidr_entry e[2] = {{.family = 4, .len = 8, .addr = {10, 1, 2, 3}, .value = 1},
	                          {.family = 6, .len = 120, .value = 2}};
	struct cidr_table *t;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.77", e[1].addr), 1);
	t = build(e, 2);
	assert_int_equal(look(t, "10.0.0.0"), 1);
	assert_int_equal(look(t, "10.255.255.255"), 1);
	assert_int_equal(look(t, "192.0.2.5"), 2);
	assert_int_equal(look(t, "::ffff:192.0.2.5"), 2);
	assert_int_equal(look(t, "192.0.3.0"), 0);
	cidr_table_free(t);
}

/* ---- lists and files ---- */

static void test_list_add(void **state)
{
	struct cidr_entry *arr = NULL;
	size_t n = 0, cap = 0;
	char err[256] = "";
	struct cidr_table *t;

	(void)state;
	assert_true(cidr_list_add("10.0.0.0/8, 192.168.1.1,2001:db8::/32", 1, &arr, &n, &cap, err,
	                          sizeof(err)));
	assert_int_equal(n, 3);
	assert_true(
	        cidr_list_add("  ,, 10.1.0.0/16 \t ::1 ,", 2, &arr, &n, &cap, err, sizeof(err)));
	assert_true(cidr_list_add("", 3, &arr, &n, &cap, err, sizeof(err)));
	assert_int_equal(n, 5);
	assert_int_equal(arr[3].value, 2);
	assert_int_equal(arr[3].len, 16);
	/* A bad element: the message names it, and n stays as it was. */
	assert_false(cidr_list_add("172.16.0.0/12, 10.0.0.0/33 ,::2", 3, &arr, &n, &cap, err,
	                           sizeof(err)));
	assert_string_equal(err,
	                    "expected an IPv4 or IPv6 address or CIDR prefix, got \"10.0.0.0/33\"");
	assert_int_equal(n, 5);
	assert_false(cidr_list_add("a;b", 3, &arr, &n, &cap, err, sizeof(err)));
	assert_string_equal(err, "expected an IPv4 or IPv6 address or CIDR prefix, got \"a;b\"");
	assert_false(cidr_list_add("x\"\x01y", 3, &arr, &n, &cap, err, sizeof(err)));
	assert_string_equal(err, "expected an IPv4 or IPv6 address or CIDR prefix, got \"x??y\"");
	/* Many elements: the array grows. */
	for (int i = 0; i < 100; i++) {
		char one[48];

		snprintf(one, sizeof(one), "192.0.2.%d 198.51.100.%d", i, i);
		assert_true(cidr_list_add(one, 9, &arr, &n, &cap, err, sizeof(err)));
	}
	assert_int_equal(n, 205);
	assert_true(cap >= n);
	t = build(arr, n);
	assert_int_equal(look(t, "10.1.2.3"), 2);
	assert_int_equal(look(t, "10.2.2.3"), 1);
	assert_int_equal(look(t, "::1"), 2);
	assert_int_equal(look(t, "192.0.2.99"), 9);
	assert_int_equal(look(t, "192.0.2.100"), 0);
	cidr_table_free(t);
	free(arr);
}

static char tmpdir[64];

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_file_add(void **state)
{
	static const char good[] = "# trusted proxies\n"
	                           "\n"
	                           "10.0.0.0/8\r\n"
	                           "  192.168.1.0/24   # office\n"
	                           "\t2001:db8::/32\t\r\n"
	                           "   \r\n"
	                           "#::1\n"
	                           "::ffff:172.16.0.0/108"; /* no final newline */
	struct cidr_entry *arr = NULL;
	size_t n = 0, cap = 0;
	char path[128], err[512] = "", want[512], line[300];
	struct cidr_table *t;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cidr_test.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/good.txt", tmpdir);
	write_file(path, good, sizeof(good) - 1);
	assert_true(cidr_file_add(path, 5, &arr, &n, &cap, err, sizeof(err)));
	assert_int_equal(n, 4);
	t = build(arr, n);
	assert_int_equal(look(t, "10.9.9.9"), 5);
	assert_int_equal(look(t, "192.168.1.200"), 5);
	assert_int_equal(look(t, "2001:db8::1"), 5);
	assert_int_equal(look(t, "172.31.0.1"), 5);
	assert_int_equal(look(t, "::1"), 0);
	cidr_table_free(t);

	/* A bad line: its number, the element, and n unchanged. */
	write_file(path, "10.0.0.0/8\n\n# x\n10.0.0.0/8 10.1.0.0/16\n", 39);
	assert_false(cidr_file_add(path, 6, &arr, &n, &cap, err, sizeof(err)));
	snprintf(want, sizeof(want),
	         "%s:4: expected an IPv4 or IPv6 address or CIDR prefix, got \"10.0.0.0/8 "
	         "10.1.0.0/16\"",
	         path);
	assert_string_equal(err, want);
	assert_int_equal(n, 4);

	/* 255 bytes (then CRLF) are fine; 256 are not. */
	memset(line, ' ', sizeof(line));
	memcpy(line, "10.0.0.1", 8);
	memcpy(line + 255, "\r\n", 2);
	write_file(path, line, 257);
	assert_true(cidr_file_add(path, 6, &arr, &n, &cap, err, sizeof(err)));
	assert_int_equal(n, 5);
	memcpy(line + 255, " \n", 2);
	write_file(path, line, 257);
	assert_false(cidr_file_add(path, 6, &arr, &n, &cap, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:1: line longer than 255 bytes", path);
	assert_string_equal(err, want);
	assert_int_equal(n, 5);

	/* An empty file adds nothing; a missing one says why. */
	write_file(path, "", 0);
	assert_true(cidr_file_add(path, 6, &arr, &n, &cap, err, sizeof(err)));
	assert_int_equal(n, 5);
	assert_int_equal(unlink(path), 0);
	assert_false(cidr_file_add(path, 6, &arr, &n, &cap, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	/* A directory opens but cannot be read. */
	assert_false(cidr_file_add(tmpdir, 6, &arr, &n, &cap, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: Is a directory", tmpdir);
	assert_string_equal(err, want);
	assert_int_equal(n, 5);
	assert_int_equal(rmdir(tmpdir), 0);
	free(arr);
}

/* ---- randomized cross-check ---- */

/* An address to look up, and a prefix as the references see it. */
struct taddr {
	int family;
	u128 a;
};

struct tpfx {
	int family;
	unsigned len;
	u128 net; /* host bits cleared */
	uint32_t value;
};

static u128 netmask(int family, unsigned len)
{
	unsigned width = family == 4 ? 32 : 128;

	return mask128(width) & ~mask128(width - len);
}

/* to_tpfx reads an entry independently of entry_prefix(): IPv6 inside
 * ::ffff:0:0/96 with a length of 96 or more is IPv4. */
static struct tpfx to_tpfx(const struct cidr_entry *e)
{
	struct tpfx p = {.family = e->family, .len = e->len, .value = e->value};
	u128 a = 0;

	for (int i = 0; i < (e->family == 4 ? 4 : 16); i++)
		a = (a << 8) | e->addr[i];
	if (p.family == 6 && p.len >= 96 && (a >> 32) == 0xffff) {
		p.family = 4;
		p.len -= 96;
		a &= 0xffffffffu;
	}
	p.net = a & netmask(p.family, p.len);
	return p;
}

static uint32_t linear_lookup(const struct tpfx *p, size_t n, struct taddr q)
{
	uint32_t best = 0;
	int best_len = -1;

	for (size_t i = 0; i < n; i++) {
		if (p[i].family != q.family || (q.a & netmask(q.family, p[i].len)) != p[i].net)
			continue;
		if ((int)p[i].len >= best_len) { /* equal length: same prefix, later wins */
			best_len = (int)p[i].len;
			best = p[i].value;
		}
	}
	return best;
}

/* The hashed reference: one open-addressing table keyed by (family, length,
 * network); a lookup tries every length from the longest down. */
struct href {
	struct tpfx *slot; /* value 0: empty */
	size_t mask;
};

static size_t href_hash(const struct tpfx *p, size_t mask)
{
	uint64_t h = (uint64_t)(p->net >> 64) * 0x9e3779b97f4a7c15ull;

	h ^= (uint64_t)p->net + ((uint64_t)p->len << 56) + (uint64_t)p->family;
	h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
	return (size_t)(h ^ (h >> 32)) & mask;
}

static struct tpfx *href_find(const struct href *r, const struct tpfx *key)
{
	for (size_t i = href_hash(key, r->mask);; i = (i + 1) & r->mask) {
		struct tpfx *s = &r->slot[i];

		if (s->value == 0 ||
		    (s->family == key->family && s->len == key->len && s->net == key->net))
			return s;
	}
}

static void href_init(struct href *r, const struct tpfx *p, size_t n)
{
	size_t size = 1024;

	while (size < 2 * n)
		size *= 2;
	r->slot = calloc(size, sizeof(*r->slot));
	assert_non_null(r->slot);
	r->mask = size - 1;
	for (size_t i = 0; i < n; i++)
		*href_find(r, &p[i]) = p[i]; /* a later duplicate overwrites */
}

static uint32_t href_lookup(const struct href *r, struct taddr q)
{
	for (int len = q.family == 4 ? 32 : 128; len >= 0; len--) {
		struct tpfx key = {.family = q.family, .len = (unsigned)len};
		const struct tpfx *s;

		key.net = q.a & netmask(q.family, (unsigned)len);
		s = href_find(r, &key);
		if (s->value != 0)
			return s->value;
	}
	return 0;
}

static uint32_t table_lookup(const struct cidr_table *t, struct taddr q)
{
	uint8_t b[16];

	if (q.family == 4)
		return cidr_lookup_v4(t, (uint32_t)q.a);
	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)(q.a >> (120 - 8 * i));
	return cidr_lookup_v6(t, b);
}

/* random_entry makes a prefix of `family` under `net`/`net_len` (the whole
 * space for 0/0); its length is uniform over what remains with probability
 * 1/8, else in the upper half (as real lists are), and a quarter keep host
 * bits set, which the table must ignore. */
static void random_entry(struct cidr_entry *e, int family, u128 net, unsigned net_len)
{
	unsigned width = family == 4 ? 32 : 128, span = width - net_len, len;
	u128 a = ((u128)rnd() << 64) | rnd();

	len = (rnd() & 7) == 0 ? (unsigned)(rnd() % (span + 1))
	                       : span / 2 + (unsigned)(rnd() % (span - span / 2 + 1));
	len += net_len;
	a = (a & mask128(width - net_len)) | net;
	if ((rnd() & 3) != 0)
		a &= netmask(family, len);
	memset(e, 0, sizeof(*e));
	e->family = (uint8_t)family;
	e->len = (uint8_t)len;
	e->value = 1 + (uint32_t)(rnd() % 1000);
	for (int i = 0; i < (family == 4 ? 4 : 16); i++)
		e->addr[i] = (uint8_t)(a >> ((family == 4 ? 24 : 120) - 8 * i));
}

/* random_addr: half inside a random prefix of p[], the rest uniform in
 * `family` (random when 0). */
static struct taddr random_addr(const struct tpfx *p, size_t n, int family)
{
	struct taddr q;
	u128 r = ((u128)rnd() << 64) | rnd();

	if (n > 0 && (rnd() & 1)) {
		const struct tpfx *in = &p[rnd() % n];

		q.family = in->family;
		q.a = in->net |
		      (r & ~netmask(in->family, in->len) & mask128(in->family == 4 ? 32 : 128));
		return q;
	}
	q.family = family != 0 ? family : (rnd() & 1) ? 4 : 6;
	q.a = q.family == 4 ? (r & 0xffffffffu) : r;
	return q;
}

/* cross_check builds a table of e[0..n) and compares num_q random lookups
 * (plus the first and last address of both families) with the hashed
 * reference, and the first num_linear of them with the linear scan too. */
static void cross_check(const struct cidr_entry *e, size_t n, size_t num_q, size_t num_linear,
                        int family)
{
	struct tpfx *p = calloc(n > 0 ? n : 1, sizeof(*p));
	struct cidr_table *t = build(e, n);
	struct href ref;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = to_tpfx(&e[i]);
	href_init(&ref, p, n);
	for (size_t i = 0; i < num_q + 4; i++) {
		struct taddr q = random_addr(p, n, family);
		uint32_t got, want;

		if (i >= num_q) /* 0.0.0.0, 255.255.255.255, ::, ffff:...:ffff */
			q = (struct taddr){.family = i % 2 ? 4 : 6,
			                   .a = i < num_q + 2 ? 0 : ~(u128)0};
		if (q.family == 4)
			q.a &= 0xffffffffu;
		got = table_lookup(t, q);
		want = href_lookup(&ref, q);
		if (got != want)
			fail_msg("lookup %zu (IPv%d %016llx%016llx): table %u, reference %u", i,
			         q.family, (unsigned long long)(q.a >> 64), (unsigned long long)q.a,
			         got, want);
		if (i < num_linear || i >= num_q)
			assert_int_equal(want, linear_lookup(p, n, q));
	}
	cidr_table_free(t);
	free(ref.slot);
	free(p);
}

static void test_random_100k(void **state)
{
	size_t n = 100000;
	struct cidr_entry *e = malloc(n * sizeof(*e));

	(void)state;
	assert_non_null(e);
	rng_state = 20240601;
	for (size_t i = 0; i < n; i++)
		random_entry(&e[i], (rnd() & 1) ? 4 : 6, 0, 0);
	cross_check(e, n, 200000, 1000, 0);
	free(e);
}

/* Prefixes clustered in 10.0.0.0/8 and 2001:db8::/32: the index window is
 * those blocks, and addresses outside them must get 0 at once. */
static void test_random_clustered(void **state)
{
	size_t n = 20000;
	struct cidr_entry *e = malloc(n * sizeof(*e));
	u128 net6 = (u128)0x20010db8u << 96;

	(void)state;
	assert_non_null(e);
	rng_state = 77;
	for (size_t i = 0; i < n; i++) {
		if (rnd() & 1)
			random_entry(&e[i], 4, (u128)10 << 24, 8);
		else
			random_entry(&e[i], 6, net6, 32);
	}
	cross_check(e, n, 50000, 500, 0);
	cross_check(e, n / 2, 20000, 200, 4); /* a mixed half, uniform IPv4 addresses */
	free(e);
}

/* Many small tables against the linear scan alone: the corner cases of
 * tiny indexes (one bucket, one interval) and of deep nesting. */
static void test_random_small(void **state)
{
	struct cidr_entry e[40];

	(void)state;
	rng_state = 5;
	for (int round = 0; round < 3000; round++) {
		size_t n = (size_t)(rnd() % RLB_ARRAY_LEN(e));
		int family = (int)(rnd() % 3); /* 0: mixed */

		for (size_t i = 0; i < n; i++) {
			int f = family == 1 ? 4 : family == 2 ? 6 : (rnd() & 1) ? 4 : 6;

			random_entry(&e[i], f, 0, 0);
		}
		cross_check(e, n, 64, 64, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_good),
	        cmocka_unit_test(test_parse_bad),
	        cmocka_unit_test(test_parse_host_bits),
	        cmocka_unit_test(test_parse_mapped),
	        cmocka_unit_test(test_nested),
	        cmocka_unit_test(test_default_routes),
	        cmocka_unit_test(test_hosts),
	        cmocka_unit_test(test_adjacent_overlapping),
	        cmocka_unit_test(test_duplicates_later_wins),
	        cmocka_unit_test(test_empty_table),
	        cmocka_unit_test(test_boundaries),
	        cmocka_unit_test(test_lookup_sa),
	        cmocka_unit_test(test_build_normalizes),
	        cmocka_unit_test(test_list_add),
	        cmocka_unit_test(test_file_add),
	        cmocka_unit_test(test_random_100k),
	        cmocka_unit_test(test_random_clustered),
	        cmocka_unit_test(test_random_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
