/* Floating-point control state across switches (docs/semantics.md: Floating-point control state):
 * the rounding mode is per coroutine, in both switch paths (the fast path and the checked one),
 * in both stack modes; the exception flags are per thread. Memcheck runs SSE arithmetic in the
 * default rounding mode and does not model its exception flags, so under valgrind only the
 * control words themselves (fegetround) are checked. */
#include <fenv.h>

#include "util.h"

/* 1/d rounded by the current mode of the arithmetic unit itself (SSE's MXCSR on x86_64, FPCR on
 * aarch64), next to fegetround (which glibc reads from the x87 control word on x86_64). To
 * nearest, 1/3 rounds down and 1/10 rounds up, so rounding upward changes the first and rounding
 * downward the second. */
static double inverse(double d) {
  volatile double one = 1.0, x = d;
  return one / x;
}
static double nearest_third, nearest_tenth;

static void *e_round_up(coro_t *self, void *value) {
  (void)self;
  coro_t *m = value;
  void *got = NULL;
  CHECK_EQ(fesetround(FE_UPWARD), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_ST(coro_switch(m, V(i), &got), CORO_OK);
    /* main changed its own mode meanwhile; ours is still upward */
    CHECK_EQ(fegetround(), FE_UPWARD);
    if (!under_valgrind()) CHECK(inverse(3.0) > nearest_third);
  }
  return NULL;
}

static void check_rounding_is_per_coroutine(int copying) {
  coro_options_t o;
  coro_t *c = NULL, *m = main_coro();
  void *got = NULL;
  CHECK_ST(coro_options_init(&o), CORO_OK);
  if (copying) o.flags = CORO_FLAG_COPYING;
  CHECK_ST(coro_new(e_round_up, &o, &c), CORO_OK);
  CHECK_EQ(fesetround(FE_TONEAREST), 0);
  nearest_third = inverse(3.0);
  nearest_tenth = inverse(10.0);
  CHECK_ST(coro_switch(c, m, &got), CORO_OK); /* starts it (the checked path) */
  CHECK_EQ(fegetround(), FE_TONEAREST);
  CHECK_EQ(fesetround(FE_DOWNWARD), 0);
  CHECK_ST(coro_switch(c, NULL, &got), CORO_OK); /* a resident SUSPENDED target: the fast path */
  CHECK_EQ(fegetround(), FE_DOWNWARD);
  if (!under_valgrind()) CHECK(inverse(10.0) < nearest_tenth);
  CHECK_EQ(fesetround(FE_TOWARDZERO), 0);
  CHECK_ST(coro_switch(c, NULL, &got), CORO_OK);
  CHECK_EQ(fegetround(), FE_TOWARDZERO);
  CHECK_ST(coro_switch(c, NULL, &got), CORO_OK); /* it finishes */
  CHECK_EQ(fegetround(), FE_TOWARDZERO);
  CHECK_ST(coro_destroy(c), CORO_OK);
  CHECK_EQ(fesetround(FE_TONEAREST), 0);
}

TEST(rounding_mode_is_per_coroutine) { check_rounding_is_per_coroutine(0); }

TEST(rounding_mode_is_per_coroutine_in_copying_mode) { check_rounding_is_per_coroutine(1); }

static void *e_raise_inexact(coro_t *self, void *value) {
  (void)self;
  volatile double one = 1.0, three = 3.0;
  volatile double third = one / three; /* inexact */
  (void)third;
  CHECK(fetestexcept(FE_INEXACT) != 0);
  void *got = NULL;
  CHECK_ST(coro_switch((coro_t *)value, NULL, &got), CORO_OK);
  return NULL;
}

TEST(exception_flags_are_per_thread) {
  if (under_valgrind()) {
    test_skip("valgrind does not model the SSE exception flags");
    return;
  }
  coro_t *c = mk(e_raise_inexact), *m = main_coro();
  void *got = NULL;
  feclearexcept(FE_ALL_EXCEPT);
  CHECK_ST(coro_switch(c, m, &got), CORO_OK);
  /* the flag the coroutine raised is the thread's, seen here after the switch back */
  CHECK(fetestexcept(FE_INEXACT) != 0);
  feclearexcept(FE_ALL_EXCEPT);
  CHECK_ST(coro_switch(c, NULL, &got), CORO_OK);
  CHECK_EQ(fetestexcept(FE_INEXACT), 0);
  CHECK_ST(coro_destroy(c), CORO_OK);
}
