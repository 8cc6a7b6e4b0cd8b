/* Stack overflow protection in each tier (see coro/src/stack.rs and docs/stacks.md), and a
 * hundred thousand coroutines alive at once. Every scenario runs in a forked child that picks its
 * tier with CORO_STACK_GUARD before it creates its first coroutine (this parent never does). */
#include <stdlib.h>

#include "test.h"

static coro_t *main_coro;

/* Recurses far deeper than any stack here: only a guard can stop it. */
static volatile int dive_limit = 1 << 30;

static __attribute__((noinline)) int dive(volatile char *prev, int depth) {
  volatile char frame[512];
  frame[0] = (char)depth;
  frame[511] = prev ? prev[0] : 0;
  if (depth >= dive_limit) return frame[0];
  return dive(frame, depth + 1) + frame[7];
}

static void *diver(coro_t *self, void *arg) {
  (void)self;
  (void)arg;
  return (void *)(long)dive(NULL, 0);
}

/* One frame that reaches a few KiB below a 16 KiB stack, then returns normally. */
static __attribute__((noinline)) int wide_frame(void) {
  volatile char big[20 * 1024];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)i;
  return big[4096];
}

static void *overflows_then_switches(coro_t *self, void *arg) {
  (void)self;
  (void)arg;
  int v = wide_frame();
  coro_switch(main_coro, (void *)(long)v, NULL); /* the canary is checked here */
  return NULL;
}

struct scenario {
  const char *tier;       /* CORO_STACK_GUARD value */
  coro_entry_t entry;
  size_t stack_size;
  const char *name;
};

static void run_scenario(void *arg) {
  const struct scenario *s = arg;
  coro_options_t o;
  coro_t *c;
  setenv("CORO_STACK_GUARD", s->tier, 1);
  coro_main(&main_coro);
  coro_options_init(&o);
  o.stack_size = s->stack_size;
  o.name = s->name;
  if (coro_new(s->entry, &o, &c) != CORO_OK) _exit(3);
  coro_switch(c, NULL, NULL);
  _exit(4); /* not reached: the overflow aborts the process */
}

static void expect_named_abort(const struct scenario *s, const char *how) {
  struct child_result r;
  if (!CHECK(run_in_child(run_scenario, (void *)s, &r) == 0)) return;
  CHECK(r.signaled);
  CHECK_EQ(r.signo, SIGABRT);
  char want[128];
  snprintf(want, sizeof want, "stack overflow in coroutine '%s'", s->name);
  if (!CHECK(strstr(r.err, want) != NULL) || (how && !CHECK(strstr(r.err, how) != NULL)))
    fprintf(stderr, "child stderr: %s\n", r.err);
}

TEST(kernel_guard_tier_faults_at_once_and_names_the_coroutine) {
  if (under_qemu()) {
    test_skip(QEMU_SKIP_REASON);
    return;
  }
  struct scenario s = {"kernel", diver, 64 * 1024, "kernel-diver"};
  expect_named_abort(&s, "stack is exhausted (raise");
}

TEST(page_guard_tier_faults_at_once_and_names_the_coroutine) {
  struct scenario s = {"page", diver, 64 * 1024, "page-diver"};
  expect_named_abort(&s, "stack is exhausted (raise");
}

TEST(canary_tier_reports_an_overflow_at_the_next_switch) {
  struct scenario s = {"canary", overflows_then_switches, 16 * 1024, "canary-victim"};
  expect_named_abort(&s, "found by its canary");
}

/* ---- a hundred thousand coroutines --------------------------------------------------------- */

#define MANY 100000

static void *sleeper(coro_t *self, void *arg) {
  void *v;
  (void)self;
  coro_switch(main_coro, arg, &v); /* suspended until resumed once */
  return (void *)((long)v + 1);
}

static long maps_count(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  long n = 0;
  int ch;
  if (!f) return -1;
  while ((ch = fgetc(f)) != EOF) n += ch == '\n';
  fclose(f);
  return n;
}

static void many_alive(void *arg) {
  (void)arg;
  coro_t **cs = calloc(MANY, sizeof *cs);
  long sum = 0;
  if (!cs || coro_main(&main_coro) != CORO_OK) _exit(10);
  for (long i = 0; i < MANY; i++) {
    void *got;
    if (coro_new(sleeper, NULL, &cs[i]) != CORO_OK) _exit(11);
    if (coro_switch(cs[i], (void *)i, &got) != CORO_OK || (long)got != i) _exit(12);
  }
  long maps = maps_count();
  for (long i = 0; i < MANY; i++) {
    void *got;
    if (coro_switch(cs[i], (void *)i, &got) != CORO_OK) _exit(13);
    sum += (long)got;
    if (coro_destroy(cs[i]) != CORO_OK) _exit(14);
  }
  free(cs);
  printf("maps=%ld sum=%ld\n", maps, sum);
}

TEST(a_hundred_thousand_suspended_coroutines_fit_in_a_few_mappings) {
  struct child_result r;
  if (test_env_flag("CORO_TEST_VALGRIND")) {
    test_skip("too slow under valgrind");
    return;
  }
  if (test_env_flag("CORO_TEST_TSAN")) {
    test_skip("ThreadSanitizer allows at most 8128 live fibers (one per started coroutine)");
    return;
  }
  if (!CHECK(run_in_child(many_alive, NULL, &r) == 0)) return;
  if (!CHECK(r.exited && r.exit_code == 0)) {
    fprintf(stderr, "child exit %d signal %d: %s\n", r.exit_code, r.signo, r.err);
    return;
  }
  long maps = -1, sum = -1;
  CHECK(sscanf(r.out, "maps=%ld sum=%ld", &maps, &sum) == 2);
  CHECK_EQ(sum, (long)MANY * (MANY - 1) / 2 + MANY);
  /* Each coroutine has its own guarded stack, but they share arenas: far below the kernel's
   * default limit of 65,530 mappings (and far below one or two per coroutine). */
  CHECK(maps > 0 && maps < 5000);
}
