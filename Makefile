# ringlb build.
#
#   make              build build/ringlb (release, -O2)
#   make run          install missing packages (as root), build, start `ringlb demo`
#   make test         the above set-up, then unit, integration and fuzz smoke
#                     tests, then the unit and integration tests again under
#                     ASan+UBSan
#   make bench        benchmarks against nginx and HAProxy (bench/README.md)
#   make SANITIZE=1   build into build-asan/ with ASan+UBSan
#   make lint         clang-format check and banned-call check
#
# BoringSSL comes from Debian's android-libboringssl-dev: headers in
# /usr/include/android, libraries in /usr/lib/<triplet>/android. It is only
# on the include path of tls/, so OpenSSL headers never mix with it.

CC ?= cc
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

ifeq ($(SANITIZE),1)
BUILD := build-asan
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDOPT := -fsanitize=address,undefined
else
BUILD := build
OPT := -O2 -g
LDOPT :=
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wvla -Wimplicit-fallthrough -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2
CFLAGS_ALL := -std=gnu11 -D_GNU_SOURCE -pthread $(OPT) $(WARN) -I. $(CFLAGS)

BORINGSSL_CFLAGS := -I/usr/include/android
BORINGSSL_LIBDIR := /usr/lib/$(MULTIARCH)/android
BORINGSSL_LIBS := -L$(BORINGSSL_LIBDIR) -Wl,-rpath,$(BORINGSSL_LIBDIR) -lssl -lcrypto

LIBS := -luring -lyaml -lurcu-qsbr -lurcu-common -lxxhash -lnghttp2 -lz -lbrotlienc -lbrotlidec \
        -lzstd -lpcre2-8 -lseccomp -lm -pthread
LDFLAGS_ALL := $(LDOPT) $(LDFLAGS)

# Engine library: everything but main.c, so unit tests can link it.
LIB_SRCS := $(filter-out core/main.c,$(wildcard core/*.c balancer/*.c cache/*.c)) $(wildcard tls/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/core/main.o

# Unit tests: tests/unit/DIR/NAME_test.c covers DIR/NAME.c and #includes it
# (so statics are reachable); it links the library without that object.
UNIT_SRCS := $(wildcard tests/unit/*/*_test.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%_test.c=$(BUILD)/tests/unit/%_test)

FUZZ_SRCS := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)

.PHONY: all run test unit integration fuzz fuzz-smoke bench clean deps lint format asan-test
all: $(BUILD)/ringlb

$(BUILD)/ringlb: $(MAIN_OBJ) $(LIB_OBJS)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(BORINGSSL_LIBS) $(LIBS)

# The seccomp self-test build: core/sandbox.c compiled with
# -DRLB_SECCOMP_SELFTEST makes one forbidden system call on SIGUSR2, so that
# tests/integration/test_sandbox.py can watch the filter kill it. Never
# install it.
$(BUILD)/ringlb-seccomp-selftest: $(MAIN_OBJ) $(filter-out $(BUILD)/obj/core/sandbox.o,$(LIB_OBJS)) \
		$(BUILD)/obj/core/sandbox-selftest.o
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(BORINGSSL_LIBS) $(LIBS)

$(BUILD)/obj/core/sandbox-selftest.o: core/sandbox.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DRLB_SECCOMP_SELFTEST -MMD -MP -c -o $@ $<

$(BUILD)/obj/tls/%.o: tls/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(BORINGSSL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(BUILD)/tests/unit/tls/%_test: tests/unit/tls/%_test.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(BORINGSSL_CFLAGS) -MMD -MP -o $@ $< \
		$(filter-out $(BUILD)/obj/tls/$*.o,$(LIB_OBJS)) $(LDFLAGS_ALL) $(BORINGSSL_LIBS) $(LIBS) -lcmocka

$(BUILD)/tests/unit/%_test: tests/unit/%_test.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -o $@ $< \
		$(filter-out $(BUILD)/obj/$*.o,$(LIB_OBJS)) $(LDFLAGS_ALL) $(BORINGSSL_LIBS) $(LIBS) -lcmocka

# The eviction simulation (bench/cache_sim.c): hit ratios of S3-FIFO and LRU
# on Zipf-distributed keys.
$(BUILD)/bench_cache_sim: bench/cache_sim.c $(LIB_OBJS)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB_OBJS) $(LDFLAGS_ALL) $(BORINGSSL_LIBS) $(LIBS) -lm

# The address-list micro-benchmark (bench/cidr_bench.c): ns per lookup in
# tables of up to 100,000 CIDR prefixes.
$(BUILD)/bench_cidr: bench/cidr_bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB_OBJS) $(LDFLAGS_ALL) $(BORINGSSL_LIBS) $(LIBS)

# The pick micro-benchmark (bench/pick_bench.c): ns per pick per algorithm.
$(BUILD)/bench_pick: bench/pick_bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB_OBJS) $(LDFLAGS_ALL) $(BORINGSSL_LIBS) $(LIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

deps:
	@sh scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	./$(BUILD)/ringlb demo

unit: $(UNIT_BINS)
	@sh tests/run_unit.sh $(BUILD) $(UNIT_BINS)

# With SANITIZE=1 the runner knows: longer time allowances, smaller "big"
# bodies, no RSS bounds (ASan's quarantine holds freed memory), and any
# sanitizer report in a process's output fails the test.
integration: $(BUILD)/ringlb
	@python3 tests/integration/run.py --binary $(BUILD)/ringlb $(if $(filter 1,$(SANITIZE)),--sanitized)

# libFuzzer harnesses need clang; each runs briefly as a smoke test in `make
# test`, and for as long as you like with `make fuzz FUZZ_SECONDS=600`.
FUZZ_SECONDS ?= 20
build-fuzz/%_fuzz: tests/fuzz/%_fuzz.c $(wildcard core/*.c core/*.h cache/*.c cache/*.h)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -o $@ $< -lyaml \
		-lz -lbrotlienc -lbrotlidec -lzstd -lpcre2-8

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); mkdir -p build-fuzz/corpus/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus/$$n tests/fuzz/corpus/$$n \
			>build-fuzz/$$n.log 2>&1 || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	done; echo "fuzz: all harnesses ran clean"

asan-test:
	@$(MAKE) --no-print-directory SANITIZE=1 unit integration

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory asan-test

bench: deps all $(BUILD)/bench_pick
	@bash bench/run.sh

lint:
	@sh scripts/lint.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
