/* tests/fuzz/config_fuzz.c — libFuzzer harness for core/config.c.
 *
 * Goal: no YAML document makes the configuration loader or its value parsers
 * crash, read or write out of bounds, leak, or report an error that breaks
 * the documented "FILE:LINE: KEY: what was expected" one-line form; and a
 * configuration the loader accepts is one config_validate keeps accepting.
 *
 * Method: the input is the YAML document. config_load_string reads it into
 * one struct with a full-size error buffer; config_parse_string followed by
 * config_validate reads it into a second struct with an exactly sized heap
 * error buffer (full size, or a short one chosen from the input length, so
 * ASan sees any write past it and truncation gets exercised). Both must agree
 * on the result, and the second message must be a prefix of the first. A
 * failure must leave a non-empty, NUL-terminated, single-line message that
 * starts with the name given and ':'. A success must validate again with the
 * same route resolution, and every listener and backend must hold a
 * non-empty address that parses back to the same socket address. Both
 * structs are freed every time, so LeakSanitizer sees any leak. Finally the
 * whole input, NUL-terminated, goes through config_parse_size,
 * config_parse_duration_ms and config_parse_addr, with checks on what they
 * accept.
 */
#include "core/cidr.c"
#include "core/common.c"
#include "core/config.c"
#include "core/filter.c"
#include "core/h1.c"
#include "core/ratelimit.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "config_fuzz: check failed: %s (line %d)\n", #cond,        \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FUZZ_NAME      "fuzz.yaml"
#define FUZZ_ERR_FILL  0xA5
#define FUZZ_SHORT_MIN (sizeof(FUZZ_NAME) + 1) /* room for "fuzz.yaml:" and the NUL */

/* Two configurations are about 40KiB each: keep them off the stack. */
static struct config cfg_load, cfg_parse;

/* check_error checks a failure message in err[0..err_len). */
static void check_error(const char *err, size_t err_len)
{
	const char *nul = memchr(err, '\0', err_len);

	CHECK(nul != NULL);
	size_t len = (size_t)(nul - err);
	CHECK(len > 0);
	CHECK(memchr(err, '\n', len) == NULL);
	CHECK(memchr(err, '\r', len) == NULL);
	size_t want = strlen(FUZZ_NAME ":");
	if (want > err_len - 1)
		want = err_len - 1;
	CHECK(strncmp(err, FUZZ_NAME ":", want) == 0);
}

/* check_addr checks an accepted address and that its text parses back to it. */
static void check_addr(const struct config_addr *a)
{
	struct config_addr again;

	CHECK(memchr(a->text, '\0', sizeof(a->text)) != NULL);
	CHECK(a->text[0] != '\0');
	CHECK(a->len == sizeof(struct sockaddr_in) || a->len == sizeof(struct sockaddr_in6));
	CHECK(a->ss.ss_family == (a->len == sizeof(struct sockaddr_in) ? AF_INET : AF_INET6));
	CHECK(config_parse_addr(a->text, &again));
	CHECK(again.len == a->len);
	CHECK(memcmp(&again.ss, &a->ss, a->len) == 0);
}

/* check_accepted checks a configuration that passed config_validate. */
static void check_accepted(struct config *cfg)
{
	char err[CONFIG_ERR_MAX];
	uint32_t idx[CONFIG_ROUTES_MAX];

	CHECK(strcmp(cfg->source, FUZZ_NAME) == 0);
	CHECK(cfg->num_listeners >= 1 && cfg->num_listeners <= CONFIG_LISTENERS_MAX);
	CHECK(cfg->num_pools >= 1 && cfg->num_pools <= CONFIG_POOLS_MAX);
	CHECK(cfg->num_routes <= CONFIG_ROUTES_MAX);
	for (size_t i = 0; i < cfg->num_listeners; i++)
		check_addr(&cfg->listeners[i].addr);
	for (size_t i = 0; i < cfg->num_pools; i++) {
		const struct config_pool *pool = &cfg->pools[i];
		CHECK(pool->name[0] != '\0');
		CHECK(pool->backends != NULL);
		CHECK(pool->num_backends >= 1 && pool->num_backends <= CONFIG_BACKENDS_MAX);
		for (size_t b = 0; b < pool->num_backends; b++) {
			CHECK(pool->backends[b].weight >= 1 && pool->backends[b].weight <= 1000);
			check_addr(&pool->backends[b].addr);
		}
	}
	CHECK(cfg->num_routes == 0 || cfg->routes != NULL);
	for (size_t i = 0; i < cfg->num_routes; i++) {
		const struct config_route *r = &cfg->routes[i];
		CHECK(r->pool_index < cfg->num_pools);
		CHECK(strcmp(cfg->pools[r->pool_index].name, r->pool) == 0);
		idx[i] = r->pool_index;
	}
	CHECK(cfg->limits.header_bytes_max <= cfg->buffers.size);
	CHECK(cfg->limits.response_header_bytes_max <= cfg->buffers.size);

	/* Validation is idempotent: it passes again and resolves the same way. */
	memset(err, FUZZ_ERR_FILL, sizeof(err));
	CHECK(config_validate(cfg, err, sizeof(err)));
	for (size_t i = 0; i < cfg->num_routes; i++)
		CHECK(cfg->routes[i].pool_index == idx[i]);
}

/* fuzz_loader runs both entry points on the document and compares them. */
static void fuzz_loader(const char *yaml, size_t len)
{
	char err_load[CONFIG_ERR_MAX];
	/* One input in four gets a short message buffer, 11..74 bytes. */
	size_t err_len = (len & 3) == 0 ? FUZZ_SHORT_MIN + (len >> 2) % 64 : CONFIG_ERR_MAX;
	char *err_parse = malloc(err_len);
	int ok_load, ok_parse;

	CHECK(err_parse != NULL);
	memset(err_load, FUZZ_ERR_FILL, sizeof(err_load));
	memset(err_parse, FUZZ_ERR_FILL, err_len);

	ok_load = config_load_string(&cfg_load, FUZZ_NAME, yaml, len, err_load, sizeof(err_load));
	ok_parse = config_parse_string(&cfg_parse, FUZZ_NAME, yaml, len, err_parse, err_len) &&
	           config_validate(&cfg_parse, err_parse, err_len);

	CHECK(ok_load == 0 || ok_load == 1);
	CHECK(ok_load == ok_parse);
	if (ok_load) {
		check_accepted(&cfg_load);
		check_accepted(&cfg_parse);
	} else {
		check_error(err_load, sizeof(err_load));
		check_error(err_parse, err_len);
		/* The same error, cut short by the smaller buffer. */
		size_t full = strlen(err_load);
		size_t cut = strlen(err_parse);
		CHECK(cut == (full < err_len - 1 ? full : err_len - 1));
		CHECK(memcmp(err_parse, err_load, cut) == 0);
	}

	config_free(&cfg_load);
	config_free(&cfg_parse);
	/* config_free is safe to repeat. */
	config_free(&cfg_load);
	free(err_parse);
}

/* all_digits reports whether s is one or more decimal digits. */
static int all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* fuzz_values runs the value parsers on the NUL-terminated text. */
static void fuzz_values(const char *text)
{
	uint64_t v, n = 0;
	struct config_addr a;
	int digits = all_digits(text);
	int small = digits && strlen(text) <= 15; /* fits, even in milliseconds */

	if (small)
		n = strtoull(text, NULL, 10);
	if (config_parse_size(text, &v)) {
		CHECK(text[0] >= '0' && text[0] <= '9');
		if (small)
			CHECK(v == n);
	} else {
		CHECK(!small);
	}
	if (config_parse_duration_ms(text, &v)) {
		CHECK(text[0] >= '0' && text[0] <= '9');
		if (small)
			CHECK(v == n * 1000);
		size_t len = strlen(text);
		if (len > 2 && len <= 17 && strcmp(text + len - 2, "ms") == 0)
			CHECK(v == strtoull(text, NULL, 10));
	} else {
		CHECK(!small);
	}
	memset(&a, 0, sizeof(a));
	if (config_parse_addr(text, &a)) {
		CHECK(strcmp(a.text, text) == 0);
		CHECK((text[0] == '[') == (a.ss.ss_family == AF_INET6));
		check_addr(&a);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libFuzzer's data is exactly sized, so a read past it is caught. */
	fuzz_loader((const char *)data, size);

	char *text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_values(text);
	free(text);
	return 0;
}
