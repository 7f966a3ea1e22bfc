/* core/filter.h — per-route request filtering: a method allow-list, a
 * longest request target, and named rules of PCRE2 patterns over the method,
 * the request target and header values.
 *
 * Ownership and threads: filter_build runs where the configuration is loaded
 * (the control thread) and compiles every pattern once; the result is
 * immutable and shared by all shards for as long as the snapshot that holds
 * it lives, and filter_free runs once no shard can reach it any more. Each
 * shard makes one filter_scratch at start (PCRE2 match data and limits are
 * per thread; compiled code is not) and passes it to filter_check, which
 * allocates nothing once the scratch is warm. The per-rule hit counters are
 * the only thing filter_check writes in a filter: relaxed atomics.
 *
 * Matching semantics (what an operator writes patterns against):
 *   - Patterns see raw bytes, not UTF-8 text: no UTF mode, and a pattern
 *     that asks for it with (*UTF) is refused at load. Nothing is decoded:
 *     the target is matched as received (path and query, percent-encoding
 *     intact), so "\.\./" does not see "%2e%2e/"; write both if both matter.
 *   - A header rule matches each field line of that name separately (names
 *     compare ignoring ASCII case); a field line carrying a list ("a, b") is
 *     one value. An empty `value` asks only that the field be present.
 *   - Patterns are unanchored (search), as PCRE2 does by default; use ^ and
 *     $ to anchor.
 *   - Fail closed: a match that hits the backtracking limits (match limit
 *     FILTER_MATCH_LIMIT, depth limit FILTER_DEPTH_LIMIT, heap, JIT stack) or
 *     fails in any other way counts as a MATCH, so a pattern that blows up on
 *     a hostile request blocks it instead of letting it through. Such matches
 *     are also counted in filter_limit_hits, to tell a runaway pattern from a
 *     real attack.
 */
#ifndef RLB_FILTER_H
#define RLB_FILTER_H

#include "core/config.h"
#include "core/h1.h"

#include <stddef.h>
#include <stdint.h>

/* The configuration input, struct config_filter and its rules, is in
 * core/config.h. */
#define FILTER_RULES_MAX CONFIG_FILTER_RULES_MAX

/* Backtracking limits for one pattern match (pcre2_set_match_limit,
 * pcre2_set_depth_limit, pcre2_set_heap_limit in KiB). Sane patterns on a
 * request of a few KiB stay far below them. */
#define FILTER_MATCH_LIMIT   100000
#define FILTER_DEPTH_LIMIT   10000
#define FILTER_HEAP_LIMIT_KB 4096

/* --- building (control thread) --- */

struct filter; /* compiled, immutable, shared by all shards */

/* filter_pattern_check compiles `pat` as filter_build would and returns 1 if
 * it compiles; otherwise 0 with "at offset N: PCRE2 message" in err (for
 * configuration validation messages). */
int filter_pattern_check(const char *pat, char *err, size_t err_len);

/* filter_build compiles a route's filter section. It returns NULL with a
 * message naming the field in err ("rules[2].path: at offset 4: missing
 * closing parenthesis", "methods: ...") when the section is invalid, and NULL
 * with err[0] == '\0' when nothing is configured (no filtering: the caller
 * keeps NULL). Besides patterns, it refuses a rule without a name or with no
 * condition, a duplicate rule name, a `value` without a `header`, a header
 * name that is not a token, a method list entry that is not an upper-case
 * token, and more than FILTER_RULES_MAX rules. It does not keep `cf`. */
struct filter *filter_build(const struct config_filter *cf, char *err, size_t err_len);

/* filter_free frees `f`; NULL does nothing. */
void filter_free(struct filter *f);

/* --- matching (shards) --- */

/* Per-thread match state: PCRE2 match data, a match context with the
 * limits above, and a JIT stack. Shard-local; one per thread. */
struct filter_scratch;

/* filter_scratch_new makes a scratch at shard start; NULL when out of
 * memory. filter_scratch_free(NULL) does nothing. */
struct filter_scratch *filter_scratch_new(void);
void filter_scratch_free(struct filter_scratch *fs);

enum filter_verdict {
	FILTER_PASS = 0,     /* forward the request */
	FILTER_METHOD,       /* method not in the allow-list: 403 (protect.c) */
	FILTER_URI_TOO_LONG, /* request target over max_uri: 414 */
	FILTER_RULE,         /* a rule matched: 403 */
};

/* filter_check decides whether a request may pass. The method allow-list and
 * max_uri are checked first (cheap), then the rules in order; the first rule
 * whose every condition matches wins and its hit counter is bumped. *rule_name
 * (when rule_name is not NULL) is set to that rule's name, to "method" or
 * "max_uri", or to NULL for FILTER_PASS; the name lives as long as `f`.
 * `headers` are the parsed request fields. A NULL `f` passes everything.
 * Allocates nothing (after PCRE2 has sized the scratch's match data). */
enum filter_verdict filter_check(const struct filter *f, struct filter_scratch *fs,
                                 struct h1_str method, struct h1_str target,
                                 const struct h1_header *headers, size_t nheaders,
                                 const char **rule_name);

/* --- metrics (any thread) --- */

/* filter_rule_hits returns how many requests rule `i` has blocked. */
uint64_t filter_rule_hits(const struct filter *f, size_t i);
/* filter_limit_hits returns how many pattern matches hit a backtracking limit
 * (or failed otherwise) and so counted as matches (fail closed). */
uint64_t filter_limit_hits(const struct filter *f);
size_t filter_num_rules(const struct filter *f);
/* filter_rule_name returns rule `i`'s name, valid as long as `f`. */
const char *filter_rule_name(const struct filter *f, size_t i);

#endif
