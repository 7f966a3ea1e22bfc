/* core/cidr.h — IP address lists by CIDR prefix, with longest-prefix match:
 * the allow/deny lists of listeners and routes, and "trusted proxies" lists.
 *
 * A list is parsed into `struct cidr_entry` values (cidr_parse, cidr_list_add,
 * cidr_file_add), each carrying a nonzero `value` chosen by the caller (say
 * 1 = allow, 2 = deny), and frozen into a `struct cidr_table`. A lookup
 * returns the value of the longest prefix that contains the address, or 0.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv4 everywhere: parsed
 * prefixes and addresses in that form become IPv4 ones, and a lookup of such
 * an address consults the IPv4 prefixes only. The IPv4 and IPv6 prefixes are
 * otherwise independent: 0.0.0.0/0 matches every IPv4 address and no IPv6
 * one, ::/0 the reverse.
 *
 * How a table is built (cidr.c): for each family the prefixes are resolved
 * into sorted, disjoint address intervals that cover the whole address space,
 * each carrying the value of its longest covering prefix (0 where none);
 * adjacent intervals with the same value are merged. Any two prefixes are
 * nested or disjoint, so one sweep over the prefixes sorted by start address
 * and then by length, with a stack of the prefixes still open, produces the
 * intervals; there are at most 2n + 1 of them. A lookup is then "the last
 * interval that starts at or before the address". To find it quickly, a
 * direct index splits the smallest CIDR block holding every prefix (the
 * "window": 10.0.0.0/8 when all prefixes are in it; addresses outside get 0
 * at once) into 2^k equal buckets, k about log2(intervals) - 1, and records
 * for each bucket the first interval that can hold its addresses; the lookup
 * reads one index slot and then binary-searches the few intervals of its
 * bucket, usually within one or two cache lines. Skewed lists (a /0 plus
 * thousands of prefixes inside one /16) get large buckets and degrade to a
 * plain binary search, O(log n), never worse. Memory: 8 bytes per IPv4
 * interval, 24 per IPv6 one, plus 4 bytes per bucket.
 *
 * Threads and ownership: parsing and building run on the control thread (at
 * configuration load or reload) and allocate; a built table is immutable, so
 * any number of shard threads may look up in it at once without locks, as
 * long as it is published to them with release semantics (a snapshot does)
 * and freed only once no shard can still read it. Lookups never allocate.
 */
#ifndef RLB_CIDR_H
#define RLB_CIDR_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define CIDR_LINE_MAX 255 /* bytes of one line of a prefix file, its end excluded */

struct cidr_entry {
	uint8_t family;   /* 4 or 6 */
	uint8_t len;      /* prefix length: 0..32 or 0..128 */
	uint8_t addr[16]; /* network address, host bits cleared; IPv4 in addr[0..3] */
	uint32_t value;   /* what a lookup returns when this is the longest match; nonzero */
};

/* cidr_parse parses "10.0.0.0/8", "10.1.2.3" (a /32), "2001:db8::/32", "::1"
 * (a /128) or "::ffff:10.0.0.0/104" (IPv4-mapped IPv6 with a length of at
 * least 96: stored as the IPv4 prefix 10.0.0.0/8). Host bits set below the
 * prefix are cleared, as nginx does. IPv4 is dotted-quad decimal without
 * leading zeros ("010.0.0.1" is refused: some parsers read it as octal). The
 * length is decimal digits only (leading zeros accepted); no signs, spaces
 * or zone ids. Returns 1, or 0 if text[0..len) is not such a prefix; `out`'s
 * value is set to 0. `text` need not be NUL-terminated. */
int cidr_parse(const char *text, size_t len, struct cidr_entry *out);

/* cidr_parse_ip parses one address (no "/len") into `out`: IPv4 in
 * out[0..3] with the rest zero, *family = 4; IPv6 in out[0..15],
 * *family = 6; an IPv4-mapped IPv6 address gives family 4. Returns 1 or 0.
 * (Used on the elements of X-Forwarded-For.) */
int cidr_parse_ip(const char *text, size_t len, uint8_t out[16], int *family);

struct cidr_table;

/* cidr_table_build makes an immutable table of the `n` entries in `e` (which
 * it does not keep). When the same prefix appears twice the later entry's
 * value wins. Host bits in an entry's address are ignored, and an IPv6 entry
 * inside ::ffff:0:0/96 counts as the IPv4 prefix it maps. n == 0 gives a
 * valid empty table. Returns NULL with a message in err on out-of-memory.
 * An entry with a bad family or length or a zero value is a programmer
 * error (assertion). */
struct cidr_table *cidr_table_build(const struct cidr_entry *e, size_t n, char *err,
                                    size_t err_len);

/* cidr_table_free frees `t`; NULL does nothing. */
void cidr_table_free(struct cidr_table *t);

/* cidr_table_size is the number of distinct prefixes `t` holds (entries it
 * was built from, duplicates counted once). */
size_t cidr_table_size(const struct cidr_table *t);

/* cidr_table_bytes is the memory `t` holds (header, intervals, indexes). */
size_t cidr_table_bytes(const struct cidr_table *t);

/* The lookups return the value of the longest prefix containing the address,
 * 0 if none. They allocate nothing and take no lock. */
uint32_t cidr_lookup_v4(const struct cidr_table *t, uint32_t addr_host_order);

/* cidr_lookup_v6 looks up an IPv6 address in network order; an IPv4-mapped
 * one is looked up as IPv4. */
uint32_t cidr_lookup_v6(const struct cidr_table *t, const uint8_t addr[16]);

/* cidr_lookup_sa takes a sockaddr (AF_INET or AF_INET6; IPv4-mapped IPv6
 * addresses are looked up as IPv4); 0 for other families. */
uint32_t cidr_lookup_sa(const struct cidr_table *t, const struct sockaddr *sa);

/* cidr_lookup_ip takes an address as cidr_parse_ip gives it (family 4 or
 * 6); 0 for another family. */
uint32_t cidr_lookup_ip(const struct cidr_table *t, const uint8_t addr[16], int family);

/* cidr_list_add appends the entries of a list written "a, b,c" (elements
 * separated by commas and/or spaces or tabs; empty elements are skipped),
 * each with `value`, to the growing array *arr of *n entries and room for
 * *cap (realloc'd as needed; the caller owns and frees *arr). On a bad
 * element it writes "expected an IPv4 or IPv6 address or CIDR prefix, got
 * \"X\"" to err, leaves *n as it was before the call and returns 0; on
 * out-of-memory likewise with "out of memory". Returns 1 otherwise. */
int cidr_list_add(const char *list, uint32_t value, struct cidr_entry **arr, size_t *n, size_t *cap,
                  char *err, size_t err_len);

/* cidr_file_add does the same for the file at `path`: one prefix per line,
 * '#' starts a comment, blank lines are ignored, spaces around a prefix and
 * CRLF line ends are tolerated. Errors read "PATH:LINE: expected ..." (and
 * "PATH:LINE: line longer than 255 bytes"); a file that cannot be opened or
 * read gives "PATH: <strerror>". Reads the file: control thread only. */
int cidr_file_add(const char *path, uint32_t value, struct cidr_entry **arr, size_t *n, size_t *cap,
                  char *err, size_t err_len);

#endif
