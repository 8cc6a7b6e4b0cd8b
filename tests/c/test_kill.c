/* coro_kill (docs/semantics.md: Kill). */
#include "util.h"

#define REASON V(0xdead01)

static coro_t *g_a, *g_b;
static int g_ran, g_cleaned;
static void *g_got;

static void reset(void) {
  g_a = g_b = NULL;
  g_ran = g_cleaned = 0;
  g_got = SENTINEL_PTR;
}

/* ---- SUSPENDED target: clean up and return ----------------------------------------------------- */

static void *e_dies_cleanly(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)value;
  g_ran++;
  CHECK_ST(coro_switch(main_coro(), V(1), &r), CORO_KILLED);
  CHECK_PTR_EQ(r, REASON);
  /* still alive and running after the kill */
  CHECK_EQ(state_of(self), CORO_RUNNING);
  CHECK_SAME(cur(), self);
  g_cleaned++;
  return V(0xc1ea);
}

TEST(kill_suspended_pending_switch_returns_killed_then_cleans_up) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_dies_cleanly);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(1));
  CHECK_STATE(g_a, CORO_SUSPENDED);
  /* main is A's parent: A's return value is what main's kill receives */
  CHECK_ST(coro_kill(g_a, REASON, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(0xc1ea));
  CHECK_EQ(g_cleaned, 1);
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_SAME(cur(), main_coro());
  destroy_ok(g_a);
}

TEST(kill_suspended_with_null_received) {
  reset();
  g_a = mk(e_dies_cleanly);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, NULL), CORO_OK);
  CHECK_ST(coro_kill(g_a, REASON, NULL), CORO_OK);
  CHECK_EQ(g_cleaned, 1);
  CHECK_STATE(g_a, CORO_DEAD);
  destroy_ok(g_a);
}

/* ---- SUSPENDED target: switches elsewhere ---------------------------------------------------------- */

static void *e_killed_goes_to_b(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  CHECK_ST(coro_switch(main_coro(), V(1), &r), CORO_KILLED);
  CHECK_PTR_EQ(r, REASON);
  CHECK_ST(coro_switch(g_b, V(2), &r), CORO_OK); /* starts B */
  CHECK_PTR_EQ(r, V(5));
  return V(6);
}

static void *e_b_to_main(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_PTR_EQ(value, V(2));
  CHECK_ST(coro_switch(main_coro(), V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4));
  return V(40);
}

TEST(kill_suspended_target_switches_elsewhere) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_killed_goes_to_b);
  g_b = mk(e_b_to_main);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, NULL, NULL), CORO_OK);
  /* A goes to B, B comes back to main: the killer receives what B carried */
  CHECK_ST(coro_kill(g_a, REASON, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(3));
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_STATE(g_b, CORO_SUSPENDED);
  CHECK_ST(coro_switch(g_b, V(4), &r), CORO_OK); /* B returns 40 to main */
  CHECK_PTR_EQ(r, V(40));
  CHECK_ST(coro_switch(g_a, V(5), &r), CORO_OK); /* A's switch(B) returns 5; A returns 6 */
  CHECK_PTR_EQ(r, V(6));
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_STATE(g_b, CORO_DEAD);
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- SUSPENDED target: refuses to die ---------------------------------------------------------------- */

static void *e_refuses(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  coro_status_t st;
  (void)self;
  (void)value;
  g_ran++;
  st = coro_switch(main_coro(), V(1), &r);
  CHECK_ST(st, CORO_KILLED);
  CHECK_PTR_EQ(r, REASON);
  /* refuse: go back to the killer as if nothing happened */
  st = coro_switch(main_coro(), V(0x2ef), &r);
  CHECK_ST(st, CORO_OK);
  CHECK_PTR_EQ(r, V(7));
  /* a second kill also just interrupts the switch */
  st = coro_switch(main_coro(), V(8), &r);
  CHECK_ST(st, CORO_KILLED);
  CHECK_PTR_EQ(r, V(0xdead02));
  g_cleaned++;
  return V(9);
}

TEST(kill_suspended_target_may_refuse_to_die) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_refuses);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, NULL), CORO_OK);
  CHECK_ST(coro_kill(g_a, REASON, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(0x2ef));
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_EQ(g_cleaned, 0);
  /* it keeps working normally */
  CHECK_ST(coro_switch(g_a, V(7), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(8));
  CHECK_ST(coro_kill(g_a, V(0xdead02), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(9));
  CHECK_EQ(g_cleaned, 1);
  CHECK_EQ(g_ran, 1);
  CHECK_STATE(g_a, CORO_DEAD);
  destroy_ok(g_a);
}

/* ---- the killer is not the parent: the return goes to the parent ------------------------------- */

static void *e_parked(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  CHECK_ST(coro_switch(main_coro(), V(1), &r), CORO_KILLED);
  CHECK_PTR_EQ(r, REASON);
  return V(0xa0); /* to main, A's parent */
}

static void *e_killer(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  CHECK_ST(coro_kill(g_a, REASON, &r), CORO_OK);
  /* resumed by main's switch, not by A (A went to its parent, main) */
  CHECK_PTR_EQ(r, V(0xb1));
  CHECK_STATE(g_a, CORO_DEAD);
  return V(0xb2);
}

TEST(killed_coroutine_returns_to_its_parent_not_to_the_killer) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_parked);
  g_b = mk(e_killer);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, NULL, NULL), CORO_OK);
  CHECK_ST(coro_switch(g_b, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(0xa0)); /* A's return value, delivered to main */
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_STATE(g_b, CORO_SUSPENDED); /* B is suspended in its kill */
  CHECK_ST(coro_switch(g_b, V(0xb1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(0xb2));
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- a pending coro_kill is interrupted by a kill too ----------------------------------------- */

static void *e_kk_a(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  CHECK_ST(coro_switch(main_coro(), V(1), &r), CORO_KILLED);
  CHECK_PTR_EQ(r, V(0x111));
  /* B is suspended inside coro_kill(A): kill it back */
  CHECK_STATE(g_b, CORO_SUSPENDED);
  CHECK_ST(coro_kill(g_b, V(0x222), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(30));
  return V(40);
}

static void *e_kk_b(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  CHECK_ST(coro_kill(g_a, V(0x111), &r), CORO_KILLED);
  CHECK_PTR_EQ(r, V(0x222));
  return V(20); /* to main */
}

TEST(pending_kill_is_interrupted_by_a_kill) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_kk_a);
  g_b = mk(e_kk_b);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, NULL, NULL), CORO_OK);
  CHECK_ST(coro_switch(g_b, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(20));
  CHECK_STATE(g_b, CORO_DEAD);
  CHECK_STATE(g_a, CORO_SUSPENDED); /* in its kill of B */
  CHECK_ST(coro_switch(g_a, V(30), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(40));
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- NEW target ------------------------------------------------------------------------------------- */

static void *e_never(coro_t *self, void *value) {
  (void)self;
  g_ran++;
  return value;
}

TEST(kill_new_makes_it_dead_unrun_and_returns_ok_with_reason) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_never);
  if (!g_a) return;
  CHECK_ST(coro_kill(g_a, REASON, &r), CORO_OK);
  CHECK_PTR_EQ(r, REASON);
  CHECK_EQ(g_ran, 0);
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_STATE(main_coro(), CORO_RUNNING);
  CHECK_SAME(cur(), main_coro());
  /* DEAD from now on */
  r = SENTINEL_PTR;
  CHECK_ST(coro_switch(g_a, V(1), &r), CORO_EDEAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_kill(g_a, V(1), &r), CORO_EDEAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_EQ(g_ran, 0);
  destroy_ok(g_a);
  CHECK_EQ(g_ran, 0);
}

TEST(kill_new_with_null_received) {
  reset();
  g_a = mk(e_never);
  if (!g_a) return;
  CHECK_ST(coro_kill(g_a, REASON, NULL), CORO_OK);
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_EQ(g_ran, 0);
  destroy_ok(g_a);
}

static void *e_kills_new(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)value;
  CHECK_ST(coro_kill(g_b, REASON, &r), CORO_OK);
  CHECK_PTR_EQ(r, REASON);
  CHECK_STATE(g_b, CORO_DEAD);
  CHECK_SAME(cur(), self); /* no switch happened */
  return V(1);
}

TEST(kill_new_from_inside_a_coroutine_does_not_switch) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_kills_new);
  g_b = mk(e_never);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(1));
  CHECK_EQ(g_ran, 0);
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- killing yourself -------------------------------------------------------------------------------- */

static int g_main_ran;

static void *e_kill_self(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  int before = g_main_ran;
  (void)value;
  CHECK_ST(coro_kill(self, REASON, &r), CORO_KILLED);
  CHECK_PTR_EQ(r, REASON);
  CHECK_ST(coro_kill(self, V(2), NULL), CORO_KILLED);
  CHECK_EQ(g_main_ran, before);
  CHECK_EQ(state_of(self), CORO_RUNNING);
  CHECK_SAME(cur(), self);
  return V(3);
}

TEST(kill_self_inside_coroutine_returns_killed_without_switch) {
  void *r = SENTINEL_PTR;
  reset();
  g_main_ran = 0;
  g_a = mk(e_kill_self);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  g_main_ran++;
  CHECK_PTR_EQ(r, V(3));
  CHECK_STATE(g_a, CORO_DEAD);
  destroy_ok(g_a);
}

TEST(kill_self_on_main_returns_killed) {
  void *r = SENTINEL_PTR;
  coro_t *m = main_coro();
  CHECK_ST(coro_kill(m, REASON, &r), CORO_KILLED);
  CHECK_PTR_EQ(r, REASON);
  CHECK_ST(coro_kill(m, REASON, NULL), CORO_KILLED);
  CHECK_STATE(m, CORO_RUNNING);
}

/* ---- killing a SUSPENDED main (not excluded by the contract: EMAIN is for destroy/set_parent) -- */

static void *e_kills_main(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  CHECK_ST(coro_kill(main_coro(), REASON, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(5));
  return V(6);
}

TEST(kill_suspended_main_interrupts_its_pending_switch) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_kills_main);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_KILLED);
  CHECK_PTR_EQ(r, REASON);
  CHECK_STATE(main_coro(), CORO_RUNNING);
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_ST(coro_switch(g_a, V(5), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(6));
  destroy_ok(g_a);
}

/* ---- errors --------------------------------------------------------------------------------------- */

TEST(kill_dead_is_edead_and_received_untouched) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_never);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, V(1), NULL), CORO_OK);
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_ST(coro_kill(g_a, REASON, &r), CORO_EDEAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_kill(g_a, REASON, NULL), CORO_EDEAD);
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_EQ(g_ran, 1);
  destroy_ok(g_a);
}

TEST(kill_null_is_einval_and_received_untouched) {
  void *r = SENTINEL_PTR;
  CHECK_ST(coro_kill(NULL, REASON, &r), CORO_EINVAL);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_kill(NULL, REASON, NULL), CORO_EINVAL);
  CHECK_SAME(cur(), main_coro());
}

TEST(kill_destroyed_handle_is_estale) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_never);
  if (!g_a) return;
  destroy_ok(g_a);
  CHECK_ST(coro_kill(g_a, REASON, &r), CORO_ESTALE);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_EQ(g_ran, 0);
}
