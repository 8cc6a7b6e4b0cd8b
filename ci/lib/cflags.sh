# The C and C++ flags every C/C++ program of the repository is compiled with (tests, examples,
# benchmarks), defined once. Sourced by the scripts that compile (ci/test-c.sh, test-cpp.sh,
# test-lua.sh, test-arch.sh, test-examples.sh, test-install.sh, ci/scale.sh, ci/pystate.sh,
# ci/soak.sh, ci/budget.sh, tests/gdb/test-backtrace.sh, bench/run.sh); the Makefile's
# EXAMPLE_CFLAGS reads CORO_CFLAGS from here too. Each script adds its own -O/-g/-I/-f options. Strings, not arrays (the
# Makefile reads them): scripts split them with `read -ra` or use them unquoted.

# Warnings are errors everywhere.
CORO_WARNINGS="-Wall -Wextra -Wpedantic -Werror"
# ISO C11 and nothing else: what a user's program that includes coro.h may be built with
# (ci/test-install.sh, ci/test-arch.sh, tests/gdb).
CORO_STRICT_CFLAGS="-std=c11 $CORO_WARNINGS"
# The tests, examples and benchmarks also use POSIX/GNU interfaces (pthreads, mmap, rlimits, ...).
CORO_CFLAGS="-std=c11 -D_GNU_SOURCE $CORO_WARNINGS"
# bindings/cpp/coro.hpp is C++17.
CORO_CXXFLAGS="-std=c++17 $CORO_WARNINGS"
# C that includes Python.h (ci/pystate.sh): CPython's headers are not -Wpedantic-clean, and
# CPython itself is built with -fno-strict-aliasing.
CORO_PYEXT_CFLAGS="-std=c11 -Wall -Wextra -Werror -fno-strict-aliasing"
export CORO_WARNINGS CORO_STRICT_CFLAGS CORO_CFLAGS CORO_CXXFLAGS CORO_PYEXT_CFLAGS
