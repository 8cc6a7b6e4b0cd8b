# uthread: one command builds and runs each thing. See README.md.
#   make demo     build what the demo needs and run it
#   make test     every test: Rust, C, C++, Lua, the engine's Rust tests and C suite on aarch64
#                 under qemu, examples, gdb, the CPython state shim, Python 3.10-3.13 (ours, and
#                 greenlet's own suite against the drop-in greenlet), the switch's instruction
#                 budgets, scale, soak, install and packaging; the C suite runs plain here (ASan,
#                 TSan and memcheck are `make sanitize` and `make valgrind`)
#   make bench    benchmarks against the peers, measured in the same run
#   make header   regenerate include/coro.h (pinned cbindgen)
#   make lint     rustfmt + clippy, warnings are errors
# Every target installs what it needs first: it depends on a deps-* step below, which runs
# ci/deps.sh for the system tools it names (Debian packages, Rust toolchain parts). Python tools
# come from PyPI into venvs under target/, made by the scripts that use them; cbindgen is built
# into .tools/ by ci/header.sh.

CARGO ?= cargo
export CORO_LIB_DIR ?= $(CURDIR)/target/debug

.PHONY: all build release demo test test-rust test-scale test-c test-arch test-aarch64 test-budget \
	test-examples test-gdb \
	test-python test-pystate test-compat test-gevent wheel bench header check-header lint clean \
	install test-install test-cpp test-rust-package test-lua wheels \
	sanitize valgrind fuzz fuzz-ci soak test-soak \
	deps deps-build deps-test deps-bench deps-sanitize deps-valgrind deps-lint

all: build

# ---- what each target installs first (ci/deps.sh --list shows every tool and its package) ------
deps-build:
	ci/deps.sh cc
# Everything `make test` uses.
deps-test deps:
	ci/deps.sh cc c++ valgrind gdb pkg-config libclang aarch64-cc qemu-aarch64 rust-aarch64 lua5.4
deps-bench:
	ci/deps.sh cc boost-context valgrind
deps-sanitize:
	ci/deps.sh cc libclang rust-nightly rust-src
deps-valgrind:
	ci/deps.sh cc valgrind
# clippy --all-targets builds coro-sys, whose build script runs bindgen.
deps-lint:
	ci/deps.sh cc libclang rustfmt clippy

build: deps-build
	$(CARGO) build -p coro

release: deps-build
	$(CARGO) build -p coro --release

header:
	ci/header.sh

check-header:
	ci/header.sh --check

# The flags of every C program here are defined once, in ci/lib/cflags.sh.
EXAMPLE_CFLAGS := $(shell . ci/lib/cflags.sh && echo "$$CORO_CFLAGS") -O2 -Iinclude

demo: release
	@mkdir -p target/examples
	$(CC) $(EXAMPLE_CFLAGS) examples/c/echo_server.c -Ltarget/release -lcoro \
		-Wl,-rpath,$(CURDIR)/target/release -o target/examples/echo_server-release
	target/examples/echo_server-release --demo
	examples/python/run.sh

test: deps-test build
	$(MAKE) --no-print-directory test-rust test-c test-arch test-aarch64 test-examples test-gdb test-pystate test-python test-compat
	$(MAKE) --no-print-directory test-budget
	$(MAKE) --no-print-directory test-scale
	$(MAKE) --no-print-directory test-soak
	$(MAKE) --no-print-directory test-install test-cpp test-rust-package test-lua
	@echo "make test: all suites passed"

test-rust: deps-test build
	$(CARGO) test --workspace

# Plain only: the ASan/UBSan and TSan runs are `make sanitize`, memcheck is `make valgrind`.
test-c: build
	ci/test-c.sh plain

test-arch: deps-test
	ci/test-arch.sh

# The engine's Rust tests and the C suite, cross-built for aarch64 and run under qemu-aarch64.
test-aarch64: deps-test build
	ci/test-aarch64.sh

# Instructions per switch round trip (callgrind) against tests/budget/budgets.txt: C ABI through
# libcoro.a and libcoro.so, the Rust API, and Python 3.11's ping-pong (in test-python's venv).
test-budget: deps-test
	ci/budget.sh

test-examples: build
	ci/test-examples.sh

test-gdb: deps-test build
	tests/gdb/test-backtrace.sh

# The C scale program (examples/c/scale.c) at 100,000 coroutines per mode (1,000,000 in make bench).
test-scale: build
	ci/scale.sh

# The CPython state shim (python/src/pystate.c) driven from C on every CPython 3.10-3.13 found.
test-pystate: build
	ci/pystate.sh

# The Python extension on every CPython 3.10-3.13 found (CI requires all four).
test-python: deps-build
	ci/python.sh

# greenlet 3.5.6's own test suite (downloaded at test time) against the drop-in greenlet, on every
# CPython 3.10-3.13 found (CI requires all four); skips: tests/compat/SKIPPED.md. About 4 minutes.
test-compat: deps-build
	ci/compat.sh

# gevent's published wheel (compiled Cython modules, built against greenlet 3's greenlet.h) on the
# drop-in greenlet, and 50 of gevent's own test modules from its sdist (downloaded at test time),
# for the default Python. About 2 minutes; CI runs it (.ci/run). See docs/greenlet-compat.md.
test-gevent: deps-build
	ci/gevent.sh

# The uthread wheel and the drop-in greenlet wheel for the default Python, into dist/.
wheel: deps-build
	ci/python-wheel.sh dist

# Every benchmark (C/Rust vs corosensei and Boost.Context, Python vs greenlet, 1M coroutines and
# uthreads) printed as one table: bench/run.sh, docs/performance.md.
bench: deps-bench
	bench/run.sh

lint: deps-lint build
	ci/lint-version-isolation.sh && ci/lint-version-isolation.sh --self-test
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# ---- installation and packaging -------------------------------------------------------------
PREFIX ?= /usr/local

# include/coro.h, libcoro.so.X.Y.Z (+ soname and dev symlinks), libcoro.a, lib/pkgconfig/coro.pc.
# Also honours LIBDIR, INCLUDEDIR and DESTDIR (see ci/install.sh).
install: deps-build
	PREFIX="$(PREFIX)" ci/install.sh

# make install into a temporary prefix; a C program built with pkg-config only (shared, --static).
test-install: deps-test
	ci/test-install.sh

# bindings/cpp/coro.hpp: C++17 tests, -Wall -Wextra -Werror, plain, under ASan/UBSan and valgrind.
test-cpp: deps-test build
	ci/test-cpp.sh

# `cargo package` of bindings/rust/coro-sys and bindings/rust/libcoro (the safe wrapper).
test-rust-package: deps-test
	ci/test-rust-package.sh

# Release wheels (auditwheel: manylinux) of uthread + the greenlet drop-in for every CPython
# 3.10-3.13 found, into dist/release/; each tested installed in a fresh venv. WHEELS_PYTHONS=3.12
# for one version (what CI does).
WHEELS_PYTHONS ?=
wheels: deps-build
	ci/wheels.sh $(WHEELS_PYTHONS)

# examples/lua: Lua 5.4 sessions on coroutines, 10,000 interleaved (own stacks, then copying mode),
# and 1,000 under ASan/UBSan.
test-lua: deps-test build
	ci/test-lua.sh

clean:
	$(CARGO) clean
	rm -rf .tools

# ---- reliability (docs/reliability.md) --------------------------------------------------------

# C suite under ASan+UBSan and under TSan, Rust tests (nightly) under ASan and under TSan: zero reports.
sanitize: deps-sanitize build
	ci/sanitize.sh

# C suite under memcheck: zero errors, zero definitely lost bytes.
valgrind: deps-valgrind build
	ci/valgrind.sh

# Differential fuzzing against greenlet 3.5.6: 100,000 generated programs (CI: fuzz-ci, 2,000).
fuzz: deps-build
	ci/fuzz.sh 100000

fuzz-ci: deps-build
	ci/fuzz.sh 2000

# 1,000,000 create -> switch -> finish cycles in C and in Python, RSS printed every 100,000.
soak: release
	ci/soak.sh 1000000

# The 200,000-cycle C soak (the Python one runs in test-python: tests/python/test_faults.py).
test-soak: build
	ci/soak.sh 200000 c
