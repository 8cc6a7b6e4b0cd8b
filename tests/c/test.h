/* A tiny test framework for the C test suite of libcoro.
 *
 *   TEST(name) { ... }          defines and registers a test (runs in definition order)
 *   CHECK(cond)                 non-fatal; evaluates to 1 if it held, 0 otherwise
 *   CHECK_EQ(a, b)              integers (compared as unsigned long long), prints both values
 *   CHECK_NE(a, b)
 *   CHECK_PTR_EQ(a, b) / CHECK_PTR_NE(a, b)
 *   CHECK_STR_EQ(a, b)          NULL-aware strcmp
 *   CHECK_ST(expr, status)      a coro_status_t result, printed by name
 *   test_skip("why")            marks the current test as skipped (call, then return)
 *
 * Failures print `file:line: ...` and the values, and the test keeps running (so that coroutines
 * can be driven to completion and released); use `if (!CHECK(...)) return;` where continuing
 * makes no sense. Checks may fail on any thread.
 *
 * The runner prints one line per test (PASS/FAIL/SKIP name) and ends with the exact line
 * `N passed, M failed`; the exit status is 1 if any test failed. Arguments: substrings; when
 * given, only tests whose name contains one of them run. CORO_TEST_VERBOSE=1 prints a `RUN name`
 * line on stderr before each test (handy to locate a crash).
 *
 * run_in_child() forks, captures the child's stdout/stderr through pipes and reports how it ended;
 * used by tests that must observe an abort.
 */
#ifndef CORO_TEST_H
#define CORO_TEST_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coro.h"

typedef void (*test_fn_t)(void);

struct test_case_ {
  const char *name;
  test_fn_t fn;
  int line;
};

#define TEST_MAX_CASES_ 256
static struct test_case_ test_cases_[TEST_MAX_CASES_];
static int test_ncases_;
static atomic_int test_failures_; /* failed checks in the current test */
static int test_skipped_;
static pthread_mutex_t test_print_lock_ = PTHREAD_MUTEX_INITIALIZER;

static inline void test_register_(const char *name, test_fn_t fn, int line) {
  if (test_ncases_ >= TEST_MAX_CASES_) {
    fprintf(stderr, "test.h: too many tests\n");
    abort();
  }
  test_cases_[test_ncases_].name = name;
  test_cases_[test_ncases_].fn = fn;
  test_cases_[test_ncases_].line = line;
  test_ncases_++;
}

#define TEST(name)                                                                                 \
  static void test_##name(void);                                                                   \
  __attribute__((constructor)) static void test_register_##name(void) {                           \
    test_register_(#name, test_##name, __LINE__);                                                  \
  }                                                                                                \
  static void test_##name(void)

static inline const char *test_status_name(unsigned long long st) {
  switch (st) {
  case CORO_OK: return "CORO_OK";
  case CORO_KILLED: return "CORO_KILLED";
  case CORO_EINVAL: return "CORO_EINVAL";
  case CORO_ESTALE: return "CORO_ESTALE";
  case CORO_EDEAD: return "CORO_EDEAD";
  case CORO_ETHREAD: return "CORO_ETHREAD";
  case CORO_EBUSY: return "CORO_EBUSY";
  case CORO_ECYCLE: return "CORO_ECYCLE";
  case CORO_ENOMEM: return "CORO_ENOMEM";
  case CORO_EMAIN: return "CORO_EMAIN";
  case CORO_EPANIC: return "CORO_EPANIC";
  default: return "(unknown status)";
  }
}

__attribute__((format(printf, 3, 4))) static inline void test_fail_(const char *file, int line,
                                                                     const char *fmt, ...) {
  va_list ap;
  atomic_fetch_add(&test_failures_, 1);
  pthread_mutex_lock(&test_print_lock_);
  fprintf(stdout, "    %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&test_print_lock_);
}

static inline int test_check_(int ok, const char *file, int line, const char *expr) {
  if (!ok) test_fail_(file, line, "CHECK(%s) failed", expr);
  return ok;
}

static inline int test_check_eq_(int want_eq, unsigned long long a, unsigned long long b,
                                 const char *file, int line, const char *ea, const char *eb) {
  int ok = want_eq ? a == b : a != b;
  if (!ok)
    test_fail_(file, line, "CHECK_%s(%s, %s) failed: %llu (0x%llx) vs %llu (0x%llx)",
               want_eq ? "EQ" : "NE", ea, eb, a, a, b, b);
  return ok;
}

static inline int test_check_ptr_(int want_eq, const void *a, const void *b, const char *file,
                                  int line, const char *ea, const char *eb) {
  int ok = want_eq ? a == b : a != b;
  if (!ok)
    test_fail_(file, line, "CHECK_PTR_%s(%s, %s) failed: %p vs %p", want_eq ? "EQ" : "NE", ea, eb,
               a, b);
  return ok;
}

static inline int test_check_str_(const char *a, const char *b, const char *file, int line,
                                  const char *ea, const char *eb) {
  int ok = (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
  if (!ok)
    test_fail_(file, line, "CHECK_STR_EQ(%s, %s) failed: %s%s%s vs %s%s%s", ea, eb,
               a ? "\"" : "", a ? a : "NULL", a ? "\"" : "", b ? "\"" : "", b ? b : "NULL",
               b ? "\"" : "");
  return ok;
}

static inline int test_check_st_(unsigned long long got, unsigned long long want,
                                 const char *file, int line, const char *expr) {
  int ok = got == want;
  if (!ok)
    test_fail_(file, line, "%s returned %s (%llu), expected %s (%llu)", expr,
               test_status_name(got), got, test_status_name(want), want);
  return ok;
}

#define CHECK(cond) test_check_((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b)                                                                             \
  test_check_eq_(1, (unsigned long long)(a), (unsigned long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_NE(a, b)                                                                             \
  test_check_eq_(0, (unsigned long long)(a), (unsigned long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_PTR_EQ(a, b)                                                                         \
  test_check_ptr_(1, (const void *)(a), (const void *)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_PTR_NE(a, b)                                                                         \
  test_check_ptr_(0, (const void *)(a), (const void *)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR_EQ(a, b) test_check_str_((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_ST(expr, status)                                                                     \
  test_check_st_((unsigned long long)(expr), (unsigned long long)(status), __FILE__, __LINE__, #expr)

static inline void test_skip(const char *why) {
  test_skipped_ = 1;
  printf("    skipped: %s\n", why);
}

static inline int test_env_flag(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* Set by ci/test-c.sh's aarch64 mode: qemu-user emulates the process, so a fault in a kernel guard
 * page ends it with SIGSEGV before the library's handler can report the overflow, and an address
 * space limit applies to qemu's own mappings as well. The tests that need a real kernel skip. */
static inline int under_qemu(void) { return test_env_flag("CORO_TEST_QEMU"); }
#define QEMU_SKIP_REASON "needs a real kernel's guard-page faults and address-space limits (qemu-user)"

/* ---- fork helper ------------------------------------------------------------------------- */

#define TEST_CHILD_BUF 16384
struct child_result {
  int status;          /* as from waitpid */
  int exited, exit_code;
  int signaled, signo;
  char out[TEST_CHILD_BUF]; /* child's stdout, NUL-terminated (truncated if longer) */
  char err[TEST_CHILD_BUF]; /* child's stderr */
};

/* Runs fn(arg) in a forked child (no core dumps, 60 s alarm) and waits for it. The child exits
 * with status 0 if fn returns. Returns 0 on success, -1 if fork/pipe failed. */
static inline int run_in_child(void (*fn)(void *), void *arg, struct child_result *r) {
  int outp[2], errp[2];
  size_t nout = 0, nerr = 0;
  pid_t pid;
  memset(r, 0, sizeof *r);
  if (pipe(outp) != 0) return -1;
  if (pipe(errp) != 0) {
    close(outp[0]);
    close(outp[1]);
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    close(outp[0]);
    close(errp[0]);
    dup2(outp[1], 1);
    dup2(errp[1], 2);
    close(outp[1]);
    close(errp[1]);
    alarm(60);
    fn(arg);
    fflush(stdout);
    fflush(stderr);
    _exit(0);
  }
  close(outp[1]);
  close(errp[1]);
  {
    struct pollfd fds[2];
    int open_fds = 2;
    fds[0].fd = outp[0];
    fds[0].events = POLLIN;
    fds[1].fd = errp[0];
    fds[1].events = POLLIN;
    while (open_fds > 0) {
      int i;
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (i = 0; i < 2; i++) {
        char tmp[4096];
        ssize_t n;
        char *buf = i == 0 ? r->out : r->err;
        size_t *len = i == 0 ? &nout : &nerr;
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        n = read(fds[i].fd, tmp, sizeof tmp);
        if (n <= 0) {
          close(fds[i].fd);
          fds[i].fd = -1;
          open_fds--;
          continue;
        }
        if (*len < TEST_CHILD_BUF - 1) {
          size_t take = (size_t)n;
          if (take > TEST_CHILD_BUF - 1 - *len) take = TEST_CHILD_BUF - 1 - *len;
          memcpy(buf + *len, tmp, take);
          *len += take;
        }
      }
    }
  }
  r->out[nout] = '\0';
  r->err[nerr] = '\0';
  while (waitpid(pid, &r->status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  r->exited = WIFEXITED(r->status);
  r->exit_code = r->exited ? WEXITSTATUS(r->status) : -1;
  r->signaled = WIFSIGNALED(r->status);
  r->signo = r->signaled ? WTERMSIG(r->status) : 0;
  return 0;
}

/* ---- runner ------------------------------------------------------------------------------ */

static inline int test_cmp_cases_(const void *a, const void *b) {
  const struct test_case_ *x = a, *y = b;
  return (x->line > y->line) - (x->line < y->line);
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0, skipped = 0, i, j;
  int verbose = test_env_flag("CORO_TEST_VERBOSE");
  setvbuf(stdout, NULL, _IOLBF, 0);
  qsort(test_cases_, (size_t)test_ncases_, sizeof test_cases_[0], test_cmp_cases_);
  for (i = 0; i < test_ncases_; i++) {
    const struct test_case_ *t = &test_cases_[i];
    int selected = argc <= 1, nfail;
    for (j = 1; j < argc; j++)
      if (strstr(t->name, argv[j]) != NULL) selected = 1;
    if (!selected) continue;
    if (verbose) {
      fprintf(stderr, "RUN  %s\n", t->name);
      fflush(stderr);
    }
    atomic_store(&test_failures_, 0);
    test_skipped_ = 0;
    t->fn();
    nfail = atomic_load(&test_failures_);
    if (nfail > 0) {
      printf("FAIL %s (%d failed checks)\n", t->name, nfail);
      failed++;
    } else if (test_skipped_) {
      printf("SKIP %s\n", t->name);
      skipped++;
    } else {
      printf("PASS %s\n", t->name);
      passed++;
    }
  }
  if (skipped > 0) printf("(%d skipped)\n", skipped);
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed > 0 ? 1 : 0;
}

#endif
