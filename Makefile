# latbench — build, test and run the linear-attention benchmark suite.
#
#   make run-all        build → test gate → roofline → sweeps → plots → tables → claims
#   make test           correctness gate (every method and form vs its fp64 reference)
#   make deps           install the Debian packages (as root) or print the command
#
# Variables: SUITE=quick|full (run-all), RUN=results/<run> (resume a run-all), CC=gcc|clang, NO_OMP=1,
#            NO_XSMM=1 / NO_SLEEF=1 (build without the optional libxsmm / SLEEF paths).

SUITE   ?= quick
CC      ?= gcc
BUILD   := build
BIN     := $(BUILD)/latbench

DEB_PKGS := build-essential pkg-config libopenblas-dev libhwloc-dev hwloc gnuplot-nox python3-numpy
# Optional: used where they measure faster (issue 6), never required. `make deps`
# installs them when the distribution has them; the build works without.
OPT_PKGS := libxsmm-dev libsleef-dev

# ---- dependency probe ---------------------------------------------------------
# Each probe prints nothing when satisfied; `check-deps` stops with the one
# apt-get line that installs what is missing.
HAVE_CC       := $(shell command -v $(CC) >/dev/null 2>&1 && echo y)
HAVE_PKGCONF  := $(shell command -v pkg-config >/dev/null 2>&1 && echo y)
HAVE_OPENBLAS := $(shell pkg-config --exists openblas 2>/dev/null && echo y)
HAVE_HWLOC    := $(shell pkg-config --exists hwloc 2>/dev/null && echo y)
HAVE_GNUPLOT  := $(shell command -v gnuplot >/dev/null 2>&1 && echo y)
# Optional libraries: LAT_HAVE_LIBXSMM / LAT_HAVE_SLEEF are defined when found.
HAVE_XSMM     := $(if $(filter 1,$(NO_XSMM)),,$(shell pkg-config --exists libxsmm 2>/dev/null && echo y))
HAVE_SLEEF    := $(if $(filter 1,$(NO_SLEEF)),,$(shell pkg-config --exists sleef 2>/dev/null && echo y))

MISSING :=
ifneq ($(HAVE_CC),y)
MISSING += build-essential
endif
ifneq ($(HAVE_PKGCONF),y)
MISSING += pkg-config
endif
ifneq ($(HAVE_OPENBLAS),y)
MISSING += libopenblas-dev
endif
ifneq ($(HAVE_HWLOC),y)
MISSING += libhwloc-dev hwloc
endif

# ---- flags ----------------------------------------------------------------------
BLAS_CFLAGS  := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS    := $(shell pkg-config --libs openblas 2>/dev/null)
HWLOC_CFLAGS := $(shell pkg-config --cflags hwloc 2>/dev/null)
HWLOC_LIBS   := $(shell pkg-config --libs hwloc 2>/dev/null)
OPT_CFLAGS   :=
OPT_LIBS     :=
OPT_USED     :=
ifeq ($(HAVE_XSMM),y)
OPT_CFLAGS += -DLAT_HAVE_LIBXSMM=1 $(shell pkg-config --cflags libxsmm 2>/dev/null)
OPT_LIBS   += $(shell pkg-config --libs libxsmm 2>/dev/null)
OPT_USED   += libxsmm
endif
ifeq ($(HAVE_SLEEF),y)
OPT_CFLAGS += -DLAT_HAVE_SLEEF=1 $(shell pkg-config --cflags sleef 2>/dev/null)
OPT_LIBS   += $(shell pkg-config --libs sleef 2>/dev/null)
OPT_USED   += sleef
endif

ifeq ($(NO_OMP),1)
OMP_FLAGS :=
else
OMP_FLAGS := -fopenmp
endif

WARN       := -Wall -Wextra -Wshadow -Wno-unused-parameter
BASE       := -std=c11 -D_GNU_SOURCE -g $(WARN) $(OMP_FLAGS) $(BLAS_CFLAGS) $(HWLOC_CFLAGS) $(OPT_CFLAGS)
# Optimized kernels: -O3 -march=native, never -ffast-math (exp/log gates).
MARCH       ?= native
CFLAGS_IMPL := -O3 -march=$(MARCH) $(BASE) $(CFLAGS_EXTRA)
# fp64 references: literal arithmetic, no contraction into FMAs.
CFLAGS_REF  := -O2 -fno-fast-math -ffp-contract=off $(BASE) $(CFLAGS_EXTRA)
# Harness: portable, no -march (its numbers are not timed).
CFLAGS_HARN := -O2 $(BASE) $(CFLAGS_EXTRA)
LDLIBS      := $(OPT_LIBS) $(BLAS_LIBS) $(HWLOC_LIBS) $(OMP_FLAGS) -lm $(LDFLAGS_EXTRA)

IMPL_SRC := $(wildcard impls/*.c) $(wildcard impls/common/*.c)
REF_SRC  := $(wildcard reference/*.c)
HARN_SRC := $(wildcard suites/harness/*.c)
TASK_SRC := $(wildcard suites/tasks/*.c) $(wildcard suites/tasks/mixers/*.c)
MAIN_SRC := suites/latbench.c
HDRS     := $(wildcard impls/*.h impls/common/*.h impls/methods.def reference/*.h suites/harness/*.h \
              suites/tasks/*.h suites/tasks/mixers/*.h suites/tasks/mixers.def)

IMPL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(IMPL_SRC))
REF_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(REF_SRC))
HARN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(HARN_SRC))
TASK_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(TASK_SRC))
MAIN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(MAIN_SRC))
LIB_OBJ  := $(IMPL_OBJ) $(REF_OBJ) $(HARN_OBJ) $(TASK_OBJ)

GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
GIT_DIRTY  := $(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo 1 || echo 0)

.PHONY: all deps check-deps test run-all perf clean sanitize memcheck fuzz fuzz-build fuzz-regress

all: check-deps $(BIN)

deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "installing: $(DEB_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS); \
	  echo "optional (faster small GEMM tiles / vector exp): $(OPT_PKGS)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(OPT_PKGS) || echo "optional packages not installed; building without them"; \
	else \
	  echo "run as root, or:  sudo apt-get install -y $(DEB_PKGS)   (optional: $(OPT_PKGS))"; exit 1; \
	fi

check-deps:
	@if [ -n "$(strip $(MISSING))" ]; then \
	  echo "latbench: missing Debian packages: $(strip $(MISSING))" >&2; \
	  echo "install them with:  sudo apt-get install -y $(DEB_PKGS)   (or: sudo make deps)" >&2; \
	  exit 2; \
	fi

$(BUILD)/build_info.h: FORCE
	@mkdir -p $(BUILD)
	@printf '#define LAT_GIT_COMMIT "%s"\n#define LAT_GIT_DIRTY %s\n#define LAT_CC "%s"\n#define LAT_CC_VERSION "%s"\n#define LAT_CFLAGS_IMPL "%s"\n#define LAT_CFLAGS_REF "%s"\n#define LAT_OPTIONAL_LIBS "%s"\n' \
	  "$(GIT_COMMIT)" "$(GIT_DIRTY)" "$(CC)" "$$($(CC) --version | head -1)" \
	  "-O3 -march=$(MARCH) $(OMP_FLAGS)" "-O2 -fno-fast-math -ffp-contract=off $(OMP_FLAGS)" "$(strip $(OPT_USED))" > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
FORCE:

$(BUILD)/impls/%.o: impls/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_IMPL) -c $< -o $@

$(BUILD)/reference/%.o: reference/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REF) -c $< -o $@

# Task models (MQAR training, fp64): optimized like the kernels.
$(BUILD)/suites/tasks/%.o: suites/tasks/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_IMPL) -c $< -o $@

$(BUILD)/suites/%.o: suites/%.c $(HDRS) $(BUILD)/build_info.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_HARN) -I$(BUILD) -c $< -o $@

$(BIN): $(LIB_OBJ) $(MAIN_OBJ)
	$(CC) -o $@ $^ $(LDLIBS)

# make run-all [SUITE=quick|full] [RUN=results/<existing run> to resume]
run-all: check-deps $(BIN)
	@command -v gnuplot >/dev/null 2>&1 || { echo "latbench: gnuplot is missing: sudo apt-get install -y gnuplot-nox (or sudo make deps)" >&2; exit 2; }
	@sh scripts/run_all.sh $(BIN) $(SUITE) $(RUN)

# make perf [RUN=results/<run>]: the performance benchmark (issue 6) — same-run
# FMA peak and sgemm, every method and form (suites/perf.suite), perf.csv.
perf: check-deps $(BIN)
	@$(BIN) perf $(RUN)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(MC_BUILD) $(FUZZ_BUILD)

# ---- tests ------------------------------------------------------------------------
UNIT_BIN   := $(BUILD)/unit
BROKEN_BIN := $(BUILD)/latbench-broken

MQGRAD_BIN := $(BUILD)/mq_grad
$(MQGRAD_BIN): tests/mq_grad.c $(LIB_OBJ) $(HDRS)
	$(CC) $(CFLAGS_HARN) -o $@ tests/mq_grad.c $(LIB_OBJ) $(LDLIBS)

# Fuzz-corpus replay without libFuzzer (gcc): the regression half of make fuzz.
REPLAY_BINS := $(BUILD)/fuzz_replay_suite $(BUILD)/fuzz_replay_cli $(BUILD)/fuzz_replay_claims
$(BUILD)/fuzz_replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/claims_fuzz.c $(LIB_OBJ) $(HDRS)
	$(CC) $(CFLAGS_HARN) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c $(LIB_OBJ) $(LDLIBS)

$(UNIT_BIN): tests/unit.c $(LIB_OBJ) $(HDRS)
	$(CC) $(CFLAGS_HARN) -I$(BUILD) -o $@ tests/unit.c $(LIB_OBJ) $(LDLIBS)

# The negative-test build: the registry plus one deliberately wrong method.
$(BUILD)/tests/lat_common_broken.o: impls/common/lat_common.c $(HDRS) tests/broken.def
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_IMPL) -DLAT_EXTRA_METHODS='"../../tests/broken.def"' -c $< -o $@
$(BUILD)/tests/broken_method.o: tests/broken_method.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_IMPL) -DLAT_EXTRA_METHODS='"../../tests/broken.def"' -c $< -o $@
$(BROKEN_BIN): $(filter-out $(BUILD)/impls/common/lat_common.o,$(LIB_OBJ)) $(MAIN_OBJ) \
               $(BUILD)/tests/lat_common_broken.o $(BUILD)/tests/broken_method.o
	$(CC) -o $@ $^ $(LDLIBS)

# make test: unit tests, CLI error cases, the correctness gate over every
# method (incl. T = 65536 robustness), and the negative tests. One summary
# line "N passed, N failed" at the end; non-zero exit on any failure.
test: check-deps $(BIN) $(UNIT_BIN) $(BROKEN_BIN) $(MQGRAD_BIN) $(REPLAY_BINS)
	@sh tests/run_all.sh $(BIN) $(UNIT_BIN) $(BROKEN_BIN)

# ---- sanitizers and memcheck (issue: hardening) -------------------------------------
# make sanitize: the whole program built with AddressSanitizer and
# UndefinedBehaviorSanitizer, then the correctness gate and a short sweep.
ASAN_BUILD := build-asan
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
sanitize: check-deps
	$(MAKE) BUILD=$(ASAN_BUILD) CFLAGS_EXTRA="$(SAN_FLAGS)" LDFLAGS_EXTRA="$(SAN_FLAGS)" $(ASAN_BUILD)/latbench \
	  $(ASAN_BUILD)/fuzz_replay_suite $(ASAN_BUILD)/fuzz_replay_cli $(ASAN_BUILD)/fuzz_replay_claims
	@for f in suite cli claims; do ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  $(ASAN_BUILD)/fuzz_replay_$$f tests/fuzz/corpus_$$f >$(ASAN_BUILD)/replay_$$f.log 2>&1 \
	  || { cat $(ASAN_BUILD)/replay_$$f.log; echo "sanitize: the $$f fuzz corpus crashes" >&2; exit 1; }; \
	  head -1 $(ASAN_BUILD)/replay_$$f.log; done
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(ASAN_BUILD)/latbench check --quiet
	rm -rf $(ASAN_BUILD)/sweep-run
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(ASAN_BUILD)/latbench sweep tests/suites/tiny.suite --out $(ASAN_BUILD)/sweep-run
	@! grep -E ',(failed|crashed),' $(ASAN_BUILD)/sweep-run/*.csv || { echo "sanitize: a cell failed or crashed" >&2; exit 1; }

# make memcheck: valgrind on one small run of every method's every form.
# Valgrind 3.19 cannot execute AVX-512, so this build targets AVX2 (x86-64-v3).
MC_BUILD := build-memcheck
memcheck: check-deps
	@command -v valgrind >/dev/null || { echo "memcheck: sudo apt-get install -y valgrind" >&2; exit 2; }
	$(MAKE) BUILD=$(MC_BUILD) MARCH=x86-64-v3 $(MC_BUILD)/latbench
	@set -e; for m in $$($(MC_BUILD)/latbench list --names); do \
	  for f in $$($(MC_BUILD)/latbench list | awk -v m=$$m '/^[^ ]/ && $$1 == m { for (i = 4; i <= NF && $$i !~ /^decode:/; i++) print $$i }'); do \
	    echo "memcheck $$m.$$f"; \
	    extra=; $(MC_BUILD)/latbench run --method $$m --form $$f --B 1 --T 2 --H 1 --D 8 --reps 1 --min-time 0 \
	      --accuracy off --out $(MC_BUILD)/probe 2>&1 >/dev/null | grep -q unsupported && extra="--causal 0"; \
	    LATBENCH_ENV_SET=1 OMP_NUM_THREADS=2 valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
	      $(MC_BUILD)/latbench run --method $$m --form $$f --B 1 --T 33 --H 2 --D 16 --threads 2 --reps 1 --min-time 0 \
	      $$extra --out $(MC_BUILD)/run >/dev/null || { echo "memcheck: $$m.$$f has memory errors" >&2; exit 1; }; \
	  done; done; echo "memcheck: clean"

# ---- fuzzing (libFuzzer, clang) -------------------------------------------------------
# make fuzz [FUZZ_TIME=seconds per harness]: the suite parser, the `run`
# command-line parser and the claims-table parser; crashes land in
# tests/fuzz/crash-*; add each to the corpus: it then runs in make test.
FUZZ_BUILD := build-fuzz
FUZZ_TIME  ?= 60
FUZZERS    := suite cli claims
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
fuzz-build: check-deps
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) CFLAGS_EXTRA="$(FUZZ_FLAGS)" LDFLAGS_EXTRA="-fsanitize=address,undefined" \
	  $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(IMPL_SRC) $(REF_SRC) $(HARN_SRC) $(TASK_SRC))
	@for f in $(FUZZERS); do \
	  clang -O1 -g $(BASE) $(FUZZ_FLAGS) -fsanitize=fuzzer -I$(FUZZ_BUILD) -o $(FUZZ_BUILD)/fuzz_$$f tests/fuzz/fuzz_$$f.c \
	    $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(IMPL_SRC) $(REF_SRC) $(HARN_SRC) $(TASK_SRC)) $(LDLIBS) -fsanitize=address,undefined || exit 1; \
	done
fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus_$$f; \
	  echo "fuzz_$$f: $(FUZZ_TIME) s"; \
	  ASAN_OPTIONS=detect_leaks=0 $(FUZZ_BUILD)/fuzz_$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -artifact_prefix=tests/fuzz/crash-$$f- $(FUZZ_BUILD)/corpus_$$f tests/fuzz/corpus_$$f \
	    >$(FUZZ_BUILD)/fuzz_$$f.log 2>&1; rc=$$?; \
	  grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|crash-' $(FUZZ_BUILD)/fuzz_$$f.log; \
	  [ $$rc -eq 0 ] || { echo "fuzz_$$f found a crash (see $(FUZZ_BUILD)/fuzz_$$f.log)" >&2; exit 1; }; \
	done
# Regression run of the committed corpora (no fuzzing): part of make test when clang exists.
fuzz-regress: fuzz-build
	@for f in $(FUZZERS); do ASAN_OPTIONS=detect_leaks=0 $(FUZZ_BUILD)/fuzz_$$f -runs=0 tests/fuzz/corpus_$$f 2>&1 | tail -1; done

# ---- independent numpy cross-check (issue 8) ---------------------------------------------
# make crosscheck: every method, form and knob case recomputed in numpy fp64 from the spec's
# equations (scripts/crosscheck.py) and compared with the fp32 form and the C fp64 reference.
PYTHON ?= /usr/bin/python3
.PHONY: crosscheck
crosscheck: $(BIN)
	$(PYTHON) scripts/crosscheck.py --latbench $(BIN)

# ---- task accuracy (issue 7): MQAR and selective copying, trained in C (fp64) -------------------
# make mqar [RUN=results/<run>]: the full tier (core + tradeoff + selcopy; ≈ 6 h on 2 cores),
#   resumable: give the same RUN again after an interruption. Then the figures.
# make mqar-smoke [RUN=…]: the few-minute pipeline check (tier smoke; softmax must reach ≥ 0.95).
.PHONY: mqar mqar-smoke
MQAR_RUN = $(if $(RUN),$(RUN),results/$(shell date -u +%Y%m%dT%H%M%SZ)_$(GIT_COMMIT))
mqar: check-deps $(BIN)
	@run="$(MQAR_RUN)"; $(BIN) mqar --tier full --out "$$run" --resume && \
	  { ! command -v gnuplot >/dev/null 2>&1 || $(BIN) plots "$$run"; }
mqar-smoke: check-deps $(BIN)
	@run="$(MQAR_RUN)"; $(BIN) mqar --tier smoke --out "$$run" --resume && \
	  { ! command -v gnuplot >/dev/null 2>&1 || $(BIN) plots "$$run"; }
