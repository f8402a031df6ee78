# tunetop — the whole build.
#
#   make            build build/tunetop (and the test programs)
#   make deps       install the missing Debian packages (apt-get; idempotent)
#   make run        deps, build, run the main job: the explorer on
#                   examples/fmnist-resnet.ini (headless without a terminal)
#   make test       deps, build, run the whole test suite (well under 10 min)
#   make test-long  make test, then the whole suite again built with SAN=1
#   make bench      deps (+ python3-torch, OpenBLAS pthread), build, the
#                   engine against PyTorch at its best
#   make bench-ladder  the frozen-depth ladder against random search
#   make bench-fcache  a low rung's cost with and without the feature cache
#   make bench-optuna  the ladder against Optuna (TPE + Hyperband) at equal
#                   compute (QUICK=1: a minute or two)
#   make bench-gates   gated training: accuracy against FLOPs kept
#   make bench-gates-speed  what gates cost a step (nothing pruned), and the
#                   speedup of compacted networks against FLOPs kept (minutes)
#   make bench-evograd EvoGrad: noisy labels, rotation, learned weight decay
#   make bench-fms  FMS, DyHPO, flattened weights and random search replayed
#                   on a Fashion-MNIST table (FMS_FULL=1: the paper's sizes)
#   make install    install the binary, man pages, themes and example studies
#                   under $(PREFIX)
#   make clean      remove every build directory
#
# Flags (each 0 or 1; anything else is an error):
#   SAN=1    AddressSanitizer + UndefinedBehaviorSanitizer, -O1 -g
#   DEBUG=1  -O0 -g, assertions as always
#   CUDA=1   add the CUDA backend (nvcc, CUDA runtime, cuBLAS)
#
# Each flag combination builds in its own directory (build, build-san, ...),
# so objects made with different flags never mix, and every object also
# depends on a settings file that changes when CC or CFLAGS change.

SAN   ?= 0
DEBUG ?= 0
CUDA  ?= 0
PREFIX ?= /usr/local

$(foreach f,SAN DEBUG CUDA,$(if $(filter 0 1,$($(f))),,$(error $(f) must be 0 or 1, got '$($(f))')))

CC      ?= cc
NVCC    ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) nvcc)
CUDA_HOME ?= /usr/local/cuda

BUILD := build$(if $(filter 1,$(SAN)),-san)$(if $(filter 1,$(DEBUG)),-debug)$(if $(filter 1,$(CUDA)),-cuda)

SANFLAGS := -fsanitize=address,undefined
OPT := -O3 -march=native
ifeq ($(DEBUG),1)
OPT := -O0 -g
endif
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer $(SANFLAGS) -fno-sanitize-recover=undefined
endif

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra $(OPT) -fopenmp -MMD -MP \
           -Ibase -Iengine -Idb -Itui -I$(BLAS_INC) $(CURSES_CFLAGS)
# The explorer draws braille and box characters: the wide-character
# ncurses (ncursesw).  _GNU_SOURCE already implies what <curses.h> wants
# for its wide functions; NCURSES_WIDECHAR says so outright.
CURSES_CFLAGS := -DNCURSES_WIDECHAR=1
CURSES_LIBS   := -lncursesw -ltinfo
# OpenBLAS built on OpenMP, so its threads and the engine's loops share one
# pool: the pthread build spins its own threads beside OpenMP's and a 2-core
# run becomes several times slower than a 1-core one.  The rpath makes sure
# that build is the one loaded, whatever the alternatives system points to.
BLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
LDLIBS  := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lsqlite3 -lz -lm -lpthread \
           $(CURSES_LIBS)
LDFLAGS += -fopenmp $(if $(filter 1,$(SAN)),$(SANFLAGS))

ifeq ($(CUDA),1)
ifeq ($(wildcard engine/backend_cuda.cu),)
$(error CUDA=1: the CUDA backend (engine/backend_cuda.cu) is not written yet; the CPU build needs no flag)
endif
CFLAGS  += -DTT_CUDA=1 -I$(CUDA_HOME)/include
LDLIBS  += -L$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
NVFLAGS := -O3 -std=c++17 -Ibase -Iengine -Xcompiler -fPIC
endif

BASE_SRC   := $(wildcard base/*.c)
ENGINE_SRC := $(wildcard engine/*.c)
DB_SRC     := $(wildcard db/*.c)
TUI_SRC    := $(filter-out tui/main.c,$(wildcard tui/*.c))
CUDA_SRC   := $(if $(filter 1,$(CUDA)),$(wildcard engine/*.cu))
THEME_FILES := $(sort $(wildcard themes/*.theme))
EXAMPLE_FILES := $(sort $(wildcard examples/*.ini))
LIB_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(BASE_SRC) $(ENGINE_SRC) $(DB_SRC) $(TUI_SRC)) \
              $(BUILD)/tui/themes_builtin.o \
              $(patsubst %.cu,$(BUILD)/%.cu.o,$(CUDA_SRC))
TEST_SRC   := $(wildcard tests/test_*.c)
TEST_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BIN  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

SETTINGS := $(BUILD)/.settings
SETTINGS_NOW := $(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS) $(NVCC)

DEPS_PKGS := gcc make python3 libopenblas-openmp-dev libsqlite3-dev libncurses-dev zlib1g-dev \
             dataset-fashion-mnist tmux sqlite3
# The bench runs PyTorch on every OpenBLAS build installed and keeps its
# fastest, so it wants the pthread build beside the OpenMP one.  Installing
# it makes it the alternatives' libblas.so.3; tunetop does not care (its
# rpath names the OpenMP build) and the bench picks a build per run.
# bench-optuna drives tunetop train from Debian's Optuna.
BENCH_PKGS := python3-torch python3-numpy time libopenblas0-pthread python3-optuna

.PHONY: all deps deps-bench run test test-long bench bench-ladder bench-fcache bench-optuna bench-gates bench-gates-speed bench-evograd bench-fms install clean
# objects of test and bench programs are not throw-away intermediates
.SECONDARY:
all: $(BUILD)/tunetop $(TEST_BIN) $(BENCH_BIN)

$(SETTINGS): FORCE
	@mkdir -p $(@D)
	@echo '$(SETTINGS_NOW)' | cmp -s - $@ || echo '$(SETTINGS_NOW)' > $@
FORCE:

$(BUILD)/libtt.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c $(SETTINGS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

# The shipped themes are compiled in (tui/theme.c reads these arrays), so
# the binary needs no data directory: one NUL-terminated byte array per
# themes/NAME.theme, a table of them, and their names; a NULL sentinel
# keeps the arrays valid C when there are none.
$(BUILD)/tui/themes_builtin.c: $(THEME_FILES) $(SETTINGS)
	@mkdir -p $(@D)
	@{ echo '/* generated by the Makefile from themes/NAME.theme: do not edit */'; \
	  echo '#include <stddef.h>'; \
	  i=0; for f in $(THEME_FILES); do \
	    echo "static const char theme_$$i[] = {"; \
	    od -An -v -tx1 "$$f" | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    echo '0 };'; i=$$((i + 1)); done; \
	  echo 'struct ui_theme_blob { const char *name; const char *text; unsigned long len; };'; \
	  echo 'const struct ui_theme_blob ui_theme_blobs[] = {'; \
	  i=0; for f in $(THEME_FILES); do \
	    echo "{ \"$$(basename "$$f" .theme)\", theme_$$i, sizeof theme_$$i - 1 },"; \
	    i=$$((i + 1)); done; \
	  echo '{ NULL, NULL, 0 } };'; \
	  echo "const int ui_theme_nblobs = $$(echo $(THEME_FILES) | wc -w);"; \
	  echo 'const char *const ui_theme_builtin_list[] = {'; \
	  for f in $(THEME_FILES); do echo "\"$$(basename "$$f" .theme)\","; done; \
	  echo 'NULL };'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/tui/themes_builtin.o: $(BUILD)/tui/themes_builtin.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu $(SETTINGS)
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(BUILD)/tunetop: $(BUILD)/tui/main.o $(BUILD)/libtt.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libtt.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libtt.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Installs only what is missing; apt-get update runs only when needed.
deps:
	@missing=$$(for p in $(DEPS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

deps-bench: deps
	@missing=$$(for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: deps
	$(MAKE) $(BUILD)/tunetop
	$(BUILD)/tunetop examples/fmnist-resnet.ini

test: deps
	$(MAKE) all
	BUILD=$(BUILD) sh tests/run.sh

# The whole suite, then the whole suite again on the SAN=1 build: every
# memory error or undefined behaviour any test reaches is a failure there
# (the programs abort; t_explorer.sh and the scripts read their stderr).
# About three times as long as make test.  Under SAN=1 make test already is
# that second run.
SAN_BUILD := build-san$(if $(filter 1,$(DEBUG)),-debug)$(if $(filter 1,$(CUDA)),-cuda)
test-long: test
ifneq ($(SAN),1)
	$(MAKE) SAN=1 all
	BUILD=$(SAN_BUILD) sh tests/run.sh
endif

bench: deps-bench
	$(MAKE) all
	BUILD=$(BUILD) sh bench/run.sh

# complexity-aware training: accuracy against FLOPs kept (about 20 minutes)
bench-gates: deps-bench
	$(MAKE) all
	BUILD=$(BUILD) /usr/bin/python3 bench/gates.py

# gates' cost per step and compacted networks' speed against their FLOPs
# (bench/gates_speed.c; GATES_SPEED_ARGS=... adds options, e.g. --clock cpu
# on a busy machine)
bench-gates-speed: $(BUILD)/bench/gates_speed
	for m in mlp:512,512,512 resnet:2,2,2:w16; do \
	  GOMP_SPINCOUNT=1000 $(BUILD)/bench/gates_speed --model $$m $(GATES_SPEED_ARGS) || exit 1; done

# EvoGrad: noisy labels, rotation, weight decay against random search
# (about 40 minutes on 2 cores)
bench-evograd: deps
	$(MAKE) all
	BUILD=$(BUILD) /usr/bin/python3 bench/evograd.py

bench-fms: deps
	$(MAKE) all
	BUILD=$(BUILD) /usr/bin/python3 bench/fms.py

# the frozen-depth ladder against random search (about half an hour)
bench-ladder: deps
	$(MAKE) all
	BUILD=$(BUILD) sh bench/ladder.sh

# a low rung's cost with and without the frozen-prefix feature cache (minutes)
bench-fcache: deps
	$(MAKE) all
	BUILD=$(BUILD) sh bench/fcache.sh

# the ladder against Optuna, TPE with the Hyperband pruner, at equal compute
# (about 4 hours on 2 cores; QUICK=1 make bench-optuna: a minute or two)
bench-optuna: deps-bench
	$(MAKE) $(BUILD)/tunetop
	BUILD=$(BUILD) sh bench/vs_optuna.sh

# The themes are compiled in; the installed copies are to read and to copy
# into ~/.config/tunetop/themes as the start of one's own.  The example
# studies are the ones the man pages name (tests/t_man.sh checks that the
# pages name nothing that is not installed).
install: $(BUILD)/tunetop
	install -D -m 755 $(BUILD)/tunetop $(DESTDIR)$(PREFIX)/bin/tunetop
	install -D -m 644 man/tunetop.1 $(DESTDIR)$(PREFIX)/share/man/man1/tunetop.1
	install -D -m 644 man/tunetop-study.5 $(DESTDIR)$(PREFIX)/share/man/man5/tunetop-study.5
	for f in $(THEME_FILES); do \
	  install -D -m 644 $$f $(DESTDIR)$(PREFIX)/share/tunetop/themes/$${f#themes/} || exit 1; done
	for f in $(EXAMPLE_FILES); do \
	  install -D -m 644 $$f $(DESTDIR)$(PREFIX)/share/tunetop/examples/$${f#examples/} || exit 1; done

clean:
	rm -rf build build-*

-include $(shell find build* -name '*.d' 2>/dev/null)
