#!/usr/bin/env bash
# `make valgrind`: the C suite (tests/c/) under memcheck, which must report zero errors and zero
# definitely lost bytes: ci/test-c.sh valgrind runs each test binary as
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite BINARY
# so an error or a definite leak fails the binary. The library registers every coroutine stack
# with valgrind (VALGRIND_STACK_REGISTER, coro/src/tools.rs), so switches are not taken for wild
# stack-pointer changes. Fork-based tests and RSS checks are skipped under valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/deps.sh valgrind
exec ci/test-c.sh valgrind
