/* The tools that watch memory see coroutine switches (coro/src/tools.rs).
 *
 * Under ThreadSanitizer (ci/test-c.sh tsan) every started coroutine is a TSan fiber of its own and
 * a race inside a coroutine is reported with the coroutine's own frames; under AddressSanitizer
 * (asan mode) a stack overflow of a local buffer inside a coroutine is reported as such. In the
 * other modes these tests skip; the whole suite running clean under ASan, TSan and valgrind is the
 * rest of the evidence. */
#include "util.h"

#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifndef TEST_TSAN
#define TEST_TSAN 0
#endif

#if TEST_TSAN
void *__tsan_get_current_fiber(void); /* from the TSan runtime (tsan_interface.h) */
static void *current_fiber(void) { return __tsan_get_current_fiber(); }
#else
static void *current_fiber(void) { return NULL; }
#endif

/* ---- TSan: one fiber per coroutine ------------------------------------------------------- */

struct fibers {
  coro_t *main;
  void *seen[4];
};

static void *e_fiber(coro_t *self, void *arg) {
  struct fibers *f = arg;
  (void)self;
  f->seen[0] = current_fiber();
  coro_switch(f->main, NULL, NULL);
  f->seen[1] = current_fiber();
  return NULL;
}

TEST(tsan_runs_each_coroutine_on_a_fiber_of_its_own) {
  struct fibers a = {0}, b = {0};
  coro_t *ca, *cb;
  void *mine;
  if (!TEST_TSAN) {
    test_skip("needs a ThreadSanitizer build (ci/test-c.sh tsan)");
    return;
  }
  mine = current_fiber();
  a.main = b.main = main_coro();
  ca = mk(e_fiber);
  cb = mk(e_fiber);
  CHECK_ST(coro_switch(ca, &a, NULL), CORO_OK);
  CHECK_PTR_EQ(current_fiber(), mine);
  CHECK_ST(coro_switch(cb, &b, NULL), CORO_OK);
  CHECK_PTR_EQ(current_fiber(), mine);
  CHECK_ST(coro_switch(ca, NULL, NULL), CORO_OK);
  CHECK_ST(coro_switch(cb, NULL, NULL), CORO_OK);
  CHECK_PTR_EQ(current_fiber(), mine);
  CHECK(a.seen[0] != NULL && a.seen[0] != mine);
  CHECK(b.seen[0] != NULL && b.seen[0] != mine && b.seen[0] != a.seen[0]);
  CHECK_PTR_EQ(a.seen[1], a.seen[0]); /* the same fiber when resumed */
  CHECK_PTR_EQ(b.seen[1], b.seen[0]);
  CHECK_ST(coro_destroy(ca), CORO_OK);
  CHECK_ST(coro_destroy(cb), CORO_OK);
}

/* ---- TSan: a race inside a coroutine is reported with the coroutine's frames ------------- */

static volatile int racy;

static void *racy_thread(void *arg) {
  racy = 1; /* no synchronisation with the coroutine's write below */
  return arg;
}

__attribute__((noinline)) static void racy_writer_in_coroutine(void) { racy = 2; }

static void *e_racy(coro_t *self, void *arg) {
  (void)self;
  racy_writer_in_coroutine();
  return arg;
}

static void child_race(void *arg) {
  pthread_t t;
  coro_t *c = NULL;
  (void)arg;
  if (pthread_create(&t, NULL, racy_thread, NULL) != 0) _exit(10);
  if (coro_new(e_racy, NULL, &c) != CORO_OK) _exit(11);
  if (coro_switch(c, NULL, NULL) != CORO_OK) _exit(12);
  pthread_join(t, NULL);
  coro_destroy(c);
}

TEST(tsan_reports_a_race_inside_a_coroutine_with_its_frames) {
  struct child_result r;
  if (!TEST_TSAN) {
    test_skip("needs a ThreadSanitizer build (ci/test-c.sh tsan)");
    return;
  }
  if (!CHECK(run_in_child(child_race, NULL, &r) == 0)) return;
  CHECK(strstr(r.err, "ThreadSanitizer: data race") != NULL);
  CHECK(strstr(r.err, "racy_writer_in_coroutine") != NULL);
  CHECK(strstr(r.err, "racy_thread") != NULL);
  if (atomic_load(&test_failures_)) fprintf(stderr, "child stderr:\n%s\n", r.err);
}

/* ---- ASan: a stack-buffer overflow inside a coroutine ------------------------------------ */

static volatile int overflow_index = 8;

/* UBSan would see it first (object size): this test is about ASan. */
__attribute__((noinline, no_sanitize("undefined"))) static int overflow_local_buffer_in_coroutine(void) {
  volatile char buf[8];
  volatile char *p = buf;
  buf[0] = 1;
  p[overflow_index] = 2; /* one past the end */
  return buf[0];
}

static void *e_asan_overflow(coro_t *self, void *arg) {
  (void)self;
  return V(overflow_local_buffer_in_coroutine() + U(arg));
}

static void child_asan_overflow(void *arg) {
  coro_t *c = NULL;
  (void)arg;
  if (coro_new(e_asan_overflow, NULL, &c) != CORO_OK) _exit(11);
  coro_switch(c, NULL, NULL);
  coro_destroy(c);
}

TEST(asan_reports_a_stack_buffer_overflow_inside_a_coroutine) {
  struct child_result r;
  if (!TEST_ASAN) {
    test_skip("needs an AddressSanitizer build (ci/test-c.sh asan)");
    return;
  }
  if (!CHECK(run_in_child(child_asan_overflow, NULL, &r) == 0)) return;
  CHECK(!(r.exited && r.exit_code == 0));
  CHECK(strstr(r.err, "AddressSanitizer: stack-buffer-overflow") != NULL);
  CHECK(strstr(r.err, "overflow_local_buffer_in_coroutine") != NULL);
  if (atomic_load(&test_failures_)) fprintf(stderr, "child stderr:\n%s\n", r.err);
}
