# uthread: one command builds and runs each thing. See README.md.
#   make demo     build what the demo needs and run it
#   make test     every test: Rust, C (plain, ASan, valgrind), aarch64 under qemu, examples, gdb,
#                 Python 3.10-3.13 (ours, and greenlet's own suite against the drop-in greenlet)
#   make bench    benchmarks against the peers, measured in the same run
#   make header   regenerate include/coro.h (pinned cbindgen)
#   make lint     rustfmt + clippy, warnings are errors

CARGO ?= cargo
export CORO_LIB_DIR ?= $(CURDIR)/target/debug

.PHONY: all build release demo test test-rust test-scale test-c test-arch test-examples test-gdb test-python test-pystate test-compat wheel bench header check-header lint clean deps

all: build

deps:
	ci/deps.sh

build:
	$(CARGO) build -p coro

release:
	$(CARGO) build -p coro --release

header:
	ci/header.sh

check-header:
	ci/header.sh --check

EXAMPLE_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -O2 -Iinclude

demo: release
	@mkdir -p target/examples
	$(CC) $(EXAMPLE_CFLAGS) examples/c/echo_server.c -Ltarget/release -lcoro \
		-Wl,-rpath,$(CURDIR)/target/release -o target/examples/echo_server-release
	target/examples/echo_server-release --demo
	examples/python/run.sh

test: deps build
	$(MAKE) --no-print-directory test-rust test-c test-arch test-examples test-gdb test-pystate test-python test-compat
	$(MAKE) --no-print-directory test-scale
	$(MAKE) --no-print-directory test-soak
	$(MAKE) --no-print-directory test-install test-cpp test-rust-package test-lua
	@echo "make test: all suites passed"

test-rust: build
	$(CARGO) test --workspace

# Plain only: the ASan/UBSan and TSan runs are `make sanitize`, memcheck is `make valgrind`.
test-c: build
	ci/test-c.sh plain

test-arch:
	ci/test-arch.sh

test-examples: build
	ci/test-examples.sh

test-gdb: build
	tests/gdb/test-backtrace.sh

# The C scale program (examples/c/scale.c) at 100,000 coroutines per mode (1,000,000 in make bench).
test-scale: build
	tests/scale/run.sh

# The CPython state shim (python/src/pystate.c) driven from C on every CPython 3.10-3.13 found.
test-pystate: build
	tests/pystate/run.sh

# The Python extension on every CPython 3.10-3.13 found (CI requires all four).
test-python:
	ci/python.sh

# greenlet 3.5.6's own test suite (downloaded at test time) against the drop-in greenlet, on every
# CPython 3.10-3.13 found (CI requires all four); skips: tests/compat/SKIPPED.md. About 4 minutes.
test-compat:
	tests/compat/run.sh

# gevent's published wheel (compiled Cython modules, built against greenlet 3's greenlet.h) on the
# drop-in greenlet, and 50 of gevent's own test modules from its sdist (downloaded at test time),
# for the default Python. About 2 minutes; CI runs it (.ci/run). See docs/greenlet-compat.md.
.PHONY: test-gevent
test-gevent:
	tests/gevent/run.sh

# The uthread wheel and the drop-in greenlet wheel for the default Python, into dist/.
wheel:
	ci/python-wheel.sh dist

# Every benchmark (C/Rust vs corosensei and Boost.Context, Python vs greenlet, 1M coroutines and
# uthreads) printed as one table: bench/run.sh, docs/performance.md.
bench: deps
	ci/deps.sh boost-context
	bench/run.sh

lint: deps build
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# ---- installation and packaging -------------------------------------------------------------
.PHONY: install test-install test-cpp test-rust-package test-lua wheels
PREFIX ?= /usr/local

# include/coro.h, libcoro.so.X.Y.Z (+ soname and dev symlinks), libcoro.a, lib/pkgconfig/coro.pc.
# Also honours LIBDIR, INCLUDEDIR and DESTDIR (see ci/install.sh).
install:
	PREFIX="$(PREFIX)" ci/install.sh

# make install into a temporary prefix; a C program built with pkg-config only (shared, --static).
test-install:
	ci/test-install.sh

# bindings/cpp/coro.hpp: C++17 tests, -Wall -Wextra -Werror, plain, under ASan/UBSan and valgrind.
test-cpp: build
	ci/test-cpp.sh

# `cargo package` of bindings/rust/coro-sys and bindings/rust/libcoro (the safe wrapper).
test-rust-package:
	ci/test-rust-package.sh

# Release wheels (auditwheel: manylinux) of uthread + the greenlet drop-in for every CPython
# 3.10-3.13 found, into dist/release/; each tested installed in a fresh venv. WHEELS_PYTHONS=3.12
# for one version (what CI does).
WHEELS_PYTHONS ?=
wheels:
	ci/wheels.sh $(WHEELS_PYTHONS)

# examples/lua: Lua 5.4 sessions on coroutines, 10,000 interleaved (own stacks, then copying mode),
# and 1,000 under ASan/UBSan.
test-lua: build
	ci/deps.sh lua5.4
	ci/test-lua.sh

clean:
	$(CARGO) clean
	rm -rf .tools

# ---- reliability (docs/reliability.md) --------------------------------------------------------
.PHONY: sanitize valgrind fuzz fuzz-ci soak test-soak

# C suite under ASan+UBSan and under TSan, Rust tests (nightly) under ASan: zero reports.
sanitize: build
	ci/sanitize.sh

# C suite under memcheck: zero errors, zero definitely lost bytes.
valgrind: build
	ci/valgrind.sh

# Differential fuzzing against greenlet 3.5.6: 100,000 generated programs (CI: fuzz-ci, 2,000).
fuzz:
	ci/fuzz.sh 100000

fuzz-ci:
	ci/fuzz.sh 2000

# 1,000,000 create -> switch -> finish cycles in C and in Python, RSS printed every 100,000.
soak: release
	ci/soak.sh 1000000

# The 200,000-cycle C soak (the Python one runs in test-python: tests/python/test_faults.py).
test-soak: build
	ci/soak.sh 200000 c
