# SPDX-License-Identifier: Apache-2.0
# kafka-redis-bridge - plain GNU make; every library through pkg-config.
#
#   make            build build/kafka-redis-bridge, build/libk2r_shim.so (the
#                   producer shim: a librdkafka plugin and a C API) and
#                   build/shim-producer (its C example)
#   make test       install what is missing, build, unit tests, integration
#                   tests against a real Kafka broker and redis-server
#   make check      unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make lint       clang-format check, clang-tidy, cppcheck, layers
#   make dist-check SPDX headers, the version, the config schema, make install
#                   (part of `make test`)
#   make layers     no include cycle, no I/O header in the core (see `layers:`)
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (fuzz-smoke: 10 s)
#   make demo       the whole pipeline, live, on a local stack
#   make demo-browser  the same to a browser: the bridge with history, the
#                   SSE gateway (examples/sse-gateway), a page's URL; until Ctrl-C
#   make bench      benchmarks on a local stack (bench/): backlog throughput, memory
#                   through a Redis outage
#   make readme-settings  rewrite the README's settings table from the binary's
#                   (`check --list-settings=markdown`; a unit test compares them)
#   make config-schema  rewrite config/bridge.schema.json from the binary's
#                   (`check --json-schema`; a unit test compares them)
#   make install    PREFIX=/usr/local DESTDIR= (also bindir, sysconfdir, mandir,
#                   systemdunitdir, ...): binary, man page, systemd unit, config
#   make image      the container image, labelled with the version
#   make clean

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

# Where `make install` puts things (each can be set on its own). The config
# goes to $(sysconfdir)/kafka-redis-bridge/bridge.yaml: /etc for PREFIX=/usr,
# else under the prefix (/usr/local/etc); the systemd unit names that file.
bindir     ?= $(PREFIX)/bin
libdir     ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
datadir    ?= $(PREFIX)/share
mandir     ?= $(datadir)/man
docdir     ?= $(datadir)/doc/kafka-redis-bridge
ifeq ($(PREFIX),/usr)
sysconfdir ?= /etc
else
sysconfdir ?= $(PREFIX)/etc
endif
systemdunitdir ?= $(PREFIX)/lib/systemd/system

CC      ?= cc
CXX     ?= c++
# librdkafka 2.6.1 or newer: the system's when pkg-config finds one that new
# (Debian 13), else the one scripts/librdkafka.sh built from Debian 13's source
# package into the cache (`make deps` does that once), linked statically so
# that nothing built here needs the cache at run time.
RDKAFKA_PCDIR := $(shell scripts/librdkafka.sh pkgconfig-dir 2>/dev/null)
ifneq ($(RDKAFKA_PCDIR),)
PKG_CONFIG := PKG_CONFIG_PATH='$(RDKAFKA_PCDIR)$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))' pkg-config
RDKAFKA_PKG := rdkafka-static
else
PKG_CONFIG := pkg-config
RDKAFKA_PKG := rdkafka
endif
PKGS    := $(RDKAFKA_PKG) hiredis simdjson jansson yaml-0.1 libmicrohttpd openssl
# Libraries' headers are system headers (-isystem): the warnings below are for
# this project's code (librdkafka 2.8's rdkafka.h trips -Wignored-qualifiers).
PKG_CFLAGS := $(patsubst -I%,-isystem%,$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CUNIT_CFLAGS := $(shell $(PKG_CONFIG) --cflags cunit 2>/dev/null)
CUNIT_LIBS   := $(shell $(PKG_CONFIG) --libs cunit 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings \
           -Wformat=2 -Wno-format-truncation -Wundef -Wvla -Wnull-dereference
CWARN   := $(WARN) -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
ifneq ($(CI),)
WARN    += -Werror
CWARN   += -Werror
endif
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT     ?= -O2 -g
CPPFLAGS += -Iinclude -D_GNU_SOURCE $(PKG_CFLAGS) -DK2R_VERSION='"$(VERSION)"'
CFLAGS  += -std=c11 $(OPT) $(CWARN) $(HARDEN) -MMD -MP
CXXFLAGS += -std=c++17 $(OPT) $(WARN) $(HARDEN) -MMD -MP -fno-exceptions
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS  += $(PKG_LIBS) -lstdc++ -lm -lpthread

# The version, from one place: a git tag when one is reachable, else the
# VERSION file plus the commit, else (no .git) the VERSION file alone
# (scripts/version.sh). `make VERSION=...` overrides it (the image build).
VERSION := $(shell scripts/version.sh)

LIB_C   := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_CXX := $(wildcard src/*.cpp)
LIB_OBJ := $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cpp=$(BUILD)/%.o)
UNIT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/*.c))
ITEST_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/integration/*.c))

BIN     := $(BUILD)/kafka-redis-bridge
LIBK2R  := $(BUILD)/libk2r.a
# The core (the CORE list of scripts/check-layers.sh, the one place it is
# written, plus log.c, which only writes lines to stderr) builds as its own
# static library, usable without the daemon: no sockets, no librdkafka
# consumer, no HTTP. libk2r.a holds the edges and the loop on top of it.
CORE    := $(shell sed -n 's/^CORE="\(.*\)"$$/\1/p' scripts/check-layers.sh) log
CORE_OBJ := $(filter $(foreach m,$(CORE),$(BUILD)/src/$(m).o),$(LIB_OBJ))
EDGE_OBJ := $(filter-out $(CORE_OBJ),$(LIB_OBJ))
LIBCORE := $(BUILD)/libk2r_core.a
# The producer shim and its C example (see "The producer shim" below).
SHIM         := $(BUILD)/libk2r_shim.so
SHIM_EXAMPLE := $(BUILD)/shim-producer

.PHONY: FORCE readme-settings config-schema dist-check print-pkgs all test unit integration check lint layers demo demo-browser bench install install-bin man image clean deps fuzz fuzz-smoke fuzz-build examples
all: $(BIN) $(SHIM) $(SHIM_EXAMPLE)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

# The version (scripts/version.sh) is compiled into main.o; this stamp changes
# with it, so that it is rebuilt after a commit or an edit instead of naming
# an older version than the rest of the build.
VERSION_STAMP := $(BUILD)/version.stamp
$(VERSION_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' >$@
$(BUILD)/src/main.o: $(VERSION_STAMP)
FORCE:

$(LIBCORE): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(LIBK2R): $(EDGE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/src/main.o $(LIBK2R) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%.o: CPPFLAGS += $(CUNIT_CFLAGS) -DK2R_SOURCE_DIR='"$(CURDIR)"'
$(BUILD)/test-unit: $(UNIT_OBJ) $(LIBK2R) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(LDLIBS)

$(BUILD)/tests/integration/%.o: CPPFLAGS += $(CUNIT_CFLAGS) -DK2R_SOURCE_DIR='"$(CURDIR)"'
# test_shim.c calls the shim's C API (the library is found beside the
# binary) and loads the plugin into this program, which links librdkafka
# statically: -rdynamic exports its rd_kafka_* for the plugin to find.
$(BUILD)/test-integration: $(ITEST_OBJ) $(LIBK2R) $(LIBCORE) $(SHIM) $(SHIM_EXAMPLE)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $(ITEST_OBJ) $(LIBK2R) $(LIBCORE) $(SHIM) -Wl,-rpath,'$$ORIGIN' \
	    $(CUNIT_LIBS) $(LDLIBS)

# The producer shim (include/k2r/shim.h, src/shim/): a shared library that is
# a librdkafka interceptor plugin and a C API at once. It is built from its
# own tree of position-independent objects ($(BUILD)/pic/): the core, the
# Redis sink and src/shim/*.c, with -fvisibility=hidden and a version script
# that exports only conf_init and k2r_shim_*. It links no librdkafka: the
# plugin calls the librdkafka that loaded it through a table it fills at
# conf_init (src/shim/plugin.c), and `nm -D --undefined-only` shows no
# rd_kafka_ symbol (checked below). src/shim/ is outside LIB_C on purpose:
# rdkconf.c defines rd_kafka_conf_* stand-ins that must never reach an
# archive the bridge links.
SHIM_PKGS    := hiredis simdjson jansson yaml-0.1 openssl
SHIM_LIBS    := $(shell $(PKG_CONFIG) --libs $(SHIM_PKGS) 2>/dev/null) -lstdc++ -lm -lpthread -ldl
SHIM_SRC     := $(wildcard src/shim/*.c)
PIC_OBJ      := $(patsubst $(BUILD)/%,$(BUILD)/pic/%,$(CORE_OBJ)) \
                $(BUILD)/pic/src/redis.o $(BUILD)/pic/src/cluster.o \
                $(SHIM_SRC:%.c=$(BUILD)/pic/%.o)
PIC_FLAGS    := -fPIC -fvisibility=hidden

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(filter-out -fPIE,$(CFLAGS)) $(PIC_FLAGS) -c -o $@ $<

$(BUILD)/pic/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(filter-out -fPIE,$(CXXFLAGS)) $(PIC_FLAGS) -fvisibility-inlines-hidden -c -o $@ $<

$(SHIM): $(PIC_OBJ) src/shim/shim.map
	$(CC) -shared -Wl,-soname,libk2r_shim.so -Wl,--version-script=src/shim/shim.map \
	    -Wl,-z,defs -Wl,-z,relro,-z,now -o $@ $(PIC_OBJ) $(SHIM_LIBS)
	@if nm -D --undefined-only $@ | grep -q ' rd_kafka_'; then \
	    echo "$@: links against rd_kafka_ symbols:"; nm -D --undefined-only $@ | grep ' rd_kafka_'; \
	    rm -f $@; exit 1; fi

# The C example: a plain librdkafka producer that publishes through the C
# API from its delivery report callback; it finds the library beside itself.
$(SHIM_EXAMPLE): examples/shim/producer.c $(SHIM)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -lk2r_shim -Wl,-rpath,'$$ORIGIN' $(LDLIBS)

examples: $(SHIM_EXAMPLE)

# The README's settings reference is the settings table (src/config.c) as the
# binary prints it: this replaces what lies between its two markers.
readme-settings: $(BIN)
	$(BIN) check --list-settings=markdown >$(BUILD)/settings.md
	awk -v f=$(BUILD)/settings.md \
	    '/<!-- settings:end -->/ { skip = 0 } !skip { print } \
	     /<!-- settings:begin -->/ { while ((getline l < f) > 0) print l; skip = 1 }' \
	    README.md >$(BUILD)/README.md.new
	cat $(BUILD)/README.md.new >README.md
	rm -f $(BUILD)/settings.md $(BUILD)/README.md.new

# config/bridge.schema.json is the config's JSON Schema as the binary renders
# it from the settings table (`check --json-schema`; a unit test compares them).
config-schema: $(BIN)
	$(BIN) check --json-schema >config/bridge.schema.json

# Installs the Debian packages the build and the tests need (idempotent).
deps:
	@scripts/deps.sh build test
	@scripts/librdkafka.sh ensure

unit: $(BUILD)/test-unit
	$(BUILD)/test-unit

# The integration suite runs against a real Kafka broker and redis-server
# that scripts/with-stack.sh starts on free loopback ports and always stops.
integration: $(BIN) $(SHIM) $(BUILD)/test-integration
	scripts/with-stack.sh $(BUILD)/test-integration

test: deps
	$(MAKE) --no-print-directory all $(BUILD)/test-unit $(BUILD)/test-integration
	$(MAKE) --no-print-directory check
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory dist-check
	scripts/chart-check.sh
	$(MAKE) --no-print-directory lint
	scripts/run-tests.sh $(BUILD)

# What a packager and an operator meet, without servers (part of test):
# SPDX headers, one version, the config's JSON Schema against the repo's
# configs, make install (DESTDIR trees, the kept config, the unit, the man
# page, systemd-analyze verify). A sub-make builds after deps.
dist-check:
	@scripts/deps.sh build dist
	$(MAKE) --no-print-directory all
	scripts/check-spdx.sh
	scripts/check-version.sh $(BIN)
	scripts/check-schema.sh $(BIN)
	scripts/check-install.sh $(BIN)

# Unit tests under ASan + UBSan, in their own build directory.
check:
	$(MAKE) --no-print-directory BUILD=build/asan \
	    OPT='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
	    LDFLAGS='-fsanitize=address,undefined' build/asan/test-unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/test-unit

# libFuzzer targets (fuzz/): the rule mapper on arbitrary records, the config
# loader and rule compiler on arbitrary YAML. The library is rebuilt with clang
# under build/fuzz/obj (libFuzzer needs clang's coverage instrumentation, so
# the gcc objects elsewhere in build/ cannot be reused). New inputs go to
# build/fuzz/corpus/, never into the repository; a crash is saved under
# build/fuzz/crashes/ and fuzz/run.sh prints the failing command, the input
# and how to run it again. A crash, once understood, is copied into
# fuzz/regressions/NAME/, which every later run replays first.
#   make fuzz [FUZZ_SECONDS=60]   each target for FUZZ_SECONDS
#   make fuzz-smoke               each target for 10 s (part of `make test`)
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_CC      ?= clang
FUZZ_CXX     ?= clang++
FUZZ_NAMES   := map config
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -g -O1
FUZZ_CPPFLAGS := -Iinclude -D_GNU_SOURCE $(PKG_CFLAGS) -DK2R_VERSION='"$(VERSION)"'
# clang does not know gcc's -Wno-format-truncation; that must not fail a -Werror build.
FUZZ_CFLAGS  := -std=c11 $(FUZZ_SAN) $(CWARN) -Wno-unknown-warning-option -MMD -MP
FUZZ_CXXFLAGS := -std=c++17 $(FUZZ_SAN) $(WARN) -Wno-unknown-warning-option -MMD -MP -fno-exceptions
FUZZ_LIB_OBJ := $(LIB_C:%.c=$(FUZZ_DIR)/obj/%.o) $(LIB_CXX:%.cpp=$(FUZZ_DIR)/obj/%.o)
# gcc's build is the one that holds src/ to -Werror; clang's extra warnings
# (-Wcast-align on every platform, for one) are shown here but fail nothing.
# The fuzz targets' own code keeps -Werror in CI.
$(FUZZ_LIB_OBJ): FUZZ_CFLAGS += -Wno-error
$(FUZZ_LIB_OBJ): FUZZ_CXXFLAGS += -Wno-error

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/obj/%.o: %.cpp
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -c -o $@ $<

# Linked by clang++ so that UBSan's C++ runtime (json.cpp) comes along.
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz/fuzz_%.o $(FUZZ_DIR)/obj/fuzz/check.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CXX) $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS) -lstdc++ -lm -lpthread

# Keep the objects: make would delete them as intermediates of the pattern rule.
.PRECIOUS: $(FUZZ_DIR)/obj/%.o

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)

# A sub-make builds after deps, as for demo. Every target runs even when an
# earlier one crashed; the run fails if any did.
fuzz:
	@scripts/deps.sh build fuzz
	@scripts/librdkafka.sh ensure
	$(MAKE) --no-print-directory fuzz-build
	@rc=0; for n in $(FUZZ_NAMES); do \
	    fuzz/run.sh $$n $(FUZZ_SECONDS) $(FUZZ_DIR) || rc=1; \
	done; exit $$rc

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

lint:
	@scripts/deps.sh lint
	clang-format --dry-run --Werror src/*.c src/*.cpp src/shim/*.c src/shim/*.h examples/shim/*.c include/k2r/*.h tests/unit/*.c tests/integration/*.c tests/integration/*.h
	clang-tidy --quiet src/*.c src/shim/*.c -- $(CPPFLAGS) -std=c11
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --suppressions-list=.cppcheck-suppressions --inline-suppr -Iinclude src
	$(MAKE) --no-print-directory $(LIBCORE)
	scripts/check-layers.sh $(LIBCORE)

# The layers (scripts/check-layers.sh, also part of lint and test): (a) no
# include cycle, where module M uses N when include/k2r/M.h or src/M.c includes
# "k2r/N.h"; (b) no core file (its CORE list: config, rules, map, json,
# envelope, metrics, utf8, buf, errors, clock, redis_url, addr, ...) includes librdkafka,
# hiredis, microhttpd, socket/netinet/arpa/netdb/poll or OpenSSL headers, or
# k2r/kafka.h, k2r/redis.h, k2r/http.h, k2r/bridge.h; (c) libk2r_core.a uses
# no k2r_ symbol it does not define. Needs sh, awk and nm.
layers: $(LIBCORE)
	scripts/check-layers.sh $(LIBCORE)

# A sub-make builds after deps: the pkg-config flags above were computed
# before deps.sh could install the libraries on a fresh machine.
demo: deps
	$(MAKE) --no-print-directory all
	scripts/demo.sh $(BIN)

# The bridge with a history beside each channel, the reference SSE gateway
# (node, its locked dependencies from npm) and a producer, until Ctrl-C.
demo-browser: deps
	$(MAKE) --no-print-directory all
	scripts/demo-browser.sh $(BIN)

# Benchmarks against a real broker and redis-server (scripts/with-stack.sh),
# each on its own stack: backlog throughput (plaintext, TLS, cluster), memory
# through a Redis outage and with records of large headers, then the bridge
# side by side with the Go and Python
# peers and the Kafka and Redis ceilings (bench/compare.sh), which prints the
# README's table and fails when the bridge's median on small events falls
# below the Go peer's. About 5 minutes on 2 cores. BENCH_ONLY=compare runs the
# comparison alone; its knobs (BENCH_ROUNDS, BENCH_PY_ROUNDS, BENCH_SMALL,
# BENCH_WEBHOOKS, BENCH_LAT_RATE, BENCH_LAT_SECS, BENCH_LAT_ROUNDS,
# BENCH_RESULTS, BENCH_WARMUP) are in bench/README.md. The broker runs with
# the JVM options of Kafka's operations guide (K2R_KAFKA_JVM=kafka: 6 GiB
# heap, G1, full JIT), not the tests' quick-starting ones (scripts/stack.sh).
bench: deps
	$(MAKE) --no-print-directory all $(BUILD)/bench/shim-latency
	[ "$(BENCH_ONLY)" = compare ] || K2R_KAFKA_JVM=kafka scripts/with-stack.sh bench/throughput.sh $(BUILD)
	[ "$(BENCH_ONLY)" = compare ] || K2R_KAFKA_JVM=kafka scripts/with-stack.sh bench/outage-memory.sh $(BUILD)
	[ "$(BENCH_ONLY)" = compare ] || K2R_KAFKA_JVM=kafka scripts/with-stack.sh bench/headers-memory.sh $(BUILD)
	K2R_KAFKA_JVM=kafka scripts/with-stack.sh bench/compare.sh $(BUILD)

# The man page, from the binary's --help (scripts/manpage.sh), and the
# systemd unit with the install paths written in. Both name install
# directories, so they are remade when those change (as main.o with the version).
MANPAGE := $(BUILD)/kafka-redis-bridge.1
UNIT    := $(BUILD)/kafka-redis-bridge.service
DIRS_STAMP := $(BUILD)/dirs.stamp
$(DIRS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(bindir) $(sysconfdir) $(docdir)' | cmp -s - $@ || echo '$(bindir) $(sysconfdir) $(docdir)' >$@

$(MANPAGE): $(BIN) scripts/manpage.sh $(DIRS_STAMP)
	scripts/manpage.sh $(BIN) '$(docdir)' >$@.tmp
	mv $@.tmp $@

$(UNIT): dist/systemd/kafka-redis-bridge.service.in $(DIRS_STAMP)
	sed -e 's|@bindir@|$(bindir)|g' -e 's|@sysconfdir@|$(sysconfdir)|g' $< >$@.tmp
	mv $@.tmp $@

man: $(MANPAGE)

# The producer shim (include/k2r/shim.h, and $(SHIM), which `make` builds),
# installed when there: the library with its symlinks as they are
# (scripts/check-install.sh points SHIM_LIB elsewhere to install without it).
SHIM_LIB    ?= $(BUILD)/libk2r_shim.so
SHIM_HEADER ?= include/k2r/shim.h

# The shim's latency tool (bench/shim-latency.c): a librdkafka producer that
# loads the plugin, librdkafka linked in as the bridge links it and exported.
$(BUILD)/bench/shim-latency: bench/shim-latency.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -rdynamic -o $@ $< $(LDLIBS)

# The binary and its licence alone (what the container image takes), and,
# when librdkafka is linked in statically (the one scripts/librdkafka.sh
# built), the licences of librdkafka and the code it bundles, whose notices
# a binary distribution must carry (a system librdkafka's package has them).
RDKAFKA_NOTICE := $(if $(RDKAFKA_PCDIR),$(RDKAFKA_PCDIR)/../../share/doc/librdkafka/LICENSES.txt)
install-bin: $(BIN)
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(docdir)
	install -m 0755 $(BIN) $(DESTDIR)$(bindir)/kafka-redis-bridge
	install -m 0644 LICENSE $(DESTDIR)$(docdir)/
	$(if $(RDKAFKA_NOTICE),install -m 0644 $(RDKAFKA_NOTICE) $(DESTDIR)$(docdir)/LICENSES.librdkafka.txt)

# Everything: the binary; the shim when built; the man page; the systemd
# unit; the documentation; the example config and its JSON Schema under
# $(datadir)/kafka-redis-bridge; and the example as
# $(sysconfdir)/kafka-redis-bridge/bridge.yaml unless a config is there
# already (it is the operator's from then on), its schema line pointing at
# the installed schema. scripts/check-install.sh tests it.
install: install-bin $(MANPAGE) $(UNIT)
	install -d $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(systemdunitdir) \
	    $(DESTDIR)$(datadir)/kafka-redis-bridge $(DESTDIR)$(sysconfdir)/kafka-redis-bridge
	install -m 0644 $(MANPAGE) $(DESTDIR)$(mandir)/man1/
	install -m 0644 $(UNIT) $(DESTDIR)$(systemdunitdir)/
	install -m 0644 README.md $(wildcard docs/*.md) $(DESTDIR)$(docdir)/
	install -m 0644 config/bridge.example.yaml config/bridge.schema.json \
	    $(DESTDIR)$(datadir)/kafka-redis-bridge/
	@conf='$(DESTDIR)$(sysconfdir)/kafka-redis-bridge/bridge.yaml'; \
	if [ -e "$$conf" ]; then \
	    echo "install: kept $$conf (the example is $(datadir)/kafka-redis-bridge/bridge.example.yaml)"; \
	else \
	    sed '1s|^# yaml-language-server: $$schema=bridge.schema.json$$|# yaml-language-server: $$schema=$(datadir)/kafka-redis-bridge/bridge.schema.json|' \
	        config/bridge.example.yaml >"$$conf.tmp" && chmod 0644 "$$conf.tmp" && mv "$$conf.tmp" "$$conf" && \
	    echo "install: $$conf (from config/bridge.example.yaml)"; \
	fi
	@set -e; \
	for f in '$(SHIM_LIB)' '$(SHIM_LIB)'.*; do \
	    [ -e "$$f" ] || [ -L "$$f" ] || continue; \
	    install -d '$(DESTDIR)$(libdir)'; \
	    if [ -L "$$f" ]; then \
	        ln -sfn "$$(readlink "$$f")" '$(DESTDIR)$(libdir)'/"$${f##*/}"; \
	    else \
	        install -m 0755 "$$f" '$(DESTDIR)$(libdir)'/; \
	    fi; \
	    echo "install: $(libdir)/$${f##*/}"; \
	done; \
	if [ -f '$(SHIM_HEADER)' ]; then \
	    install -d '$(DESTDIR)$(includedir)/k2r'; \
	    install -m 0644 '$(SHIM_HEADER)' '$(DESTDIR)$(includedir)/k2r/shim.h'; \
	    echo "install: $(includedir)/k2r/shim.h"; \
	fi

# The container image (Dockerfile); the build context has no .git, so the
# version goes in as a build argument. A '+' (VERSION+gHASH) is not allowed
# in an image tag: it becomes '-' there, the label keeps it.
IMAGE ?= kafka-redis-bridge
image:
	docker build --build-arg VERSION='$(VERSION)' -t '$(IMAGE):$(subst +,-,$(VERSION))' .

clean:
	rm -rf $(BUILD) build

# The pkg-config names of the libraries the bridge links (chart-check.sh).
print-pkgs:
	@echo $(PKGS)

-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(ITEST_OBJ:.o=.d) $(BUILD)/src/main.d $(PIC_OBJ:.o=.d)
-include $(wildcard $(FUZZ_DIR)/obj/*/*.d)
