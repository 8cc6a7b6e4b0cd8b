# uthread: one command builds and runs each thing. See README.md.
#   make demo     build what the demo needs and run it
#   make test     every test: Rust, C (plain, ASan, valgrind), aarch64 under qemu, examples, gdb,
#                 Python 3.10-3.13 (ours, and greenlet's own suite against the drop-in greenlet)
#   make bench    benchmarks against the peers, measured in the same run
#   make header   regenerate include/coro.h (pinned cbindgen)
#   make lint     rustfmt + clippy, warnings are errors

CARGO ?= cargo
export CORO_LIB_DIR ?= $(CURDIR)/target/debug

.PHONY: all build release demo test test-rust test-c test-arch test-examples test-gdb test-python test-pystate test-compat wheel bench header check-header lint clean deps

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
	@echo "make test: all suites passed"

test-rust: build
	$(CARGO) test --workspace

test-c: build
	ci/test-c.sh

test-arch:
	ci/test-arch.sh

test-examples: build
	ci/test-examples.sh

test-gdb: build
	tests/gdb/test-backtrace.sh

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

# The uthread wheel and the drop-in greenlet wheel for the default Python, into dist/.
wheel:
	ci/python-wheel.sh dist

bench: deps
	ci/deps.sh boost-context
	$(CARGO) run --release -p coro-bench
	bench/python/run.sh

lint: deps build
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf .tools
