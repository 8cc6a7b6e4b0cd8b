/* The parent rule: default parent, coro_set_parent, cycles, mains (docs/semantics.md: Finishing
 * and the parent rule; States: main has no parent). */
#include "util.h"

static coro_t *g_a, *g_b, *g_c;
static uint64_t g_seen;
static int g_ran;

static void *e_ret(coro_t *self, void *value) {
  (void)self;
  g_ran++;
  return value;
}

TEST(parent_of_main_is_null) {
  coro_t *p = SENTINEL_CORO;
  CHECK_ST(coro_parent(main_coro(), &p), CORO_OK);
  CHECK_PTR_EQ(p, NULL);
}

TEST(default_parent_is_creator_main) {
  coro_t *a = mk(e_ret);
  if (!a) return;
  CHECK_PARENT(a, main_coro());
  destroy_ok(a);
}

/* A creates B; B's parent is A even though main (not A) starts B later. */
static void *e_creator(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)value;
  g_b = mk(e_ret);
  if (g_b) {
    CHECK_PARENT(g_b, self);
    CHECK_PARENT(self, main_coro());
  }
  CHECK_ST(coro_switch(main_coro(), V(1), &r), CORO_OK);
  /* B returned: its value comes here because A is B's parent */
  CHECK_PTR_EQ(r, V(55));
  CHECK_STATE(g_b, CORO_DEAD);
  return V(2);
}

TEST(default_parent_is_creator_coroutine_and_receives_return) {
  void *r = SENTINEL_PTR;
  g_b = NULL;
  g_a = mk(e_creator);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(1));
  if (!g_b) return;
  CHECK_PARENT(g_b, g_a);
  CHECK_STATE(g_a, CORO_SUSPENDED);
  /* main starts B; B returns 55 to its parent A; A returns 2 to main */
  CHECK_ST(coro_switch(g_b, V(55), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2));
  CHECK_STATE(g_a, CORO_DEAD);
  destroy_ok(g_b);
  destroy_ok(g_a);
}

/* ---- set_parent redirects the return ---------------------------------------------------------- */

static void *e_waiter(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_PTR_EQ(value, V(1));
  CHECK_ST(coro_switch(main_coro(), V(2), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(66)); /* B's return value */
  return V(67);
}

TEST(set_parent_changes_where_the_return_goes) {
  void *r = SENTINEL_PTR;
  g_a = mk(e_waiter);
  g_b = mk(e_ret);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_set_parent(g_b, g_a), CORO_OK);
  CHECK_PARENT(g_b, g_a);
  CHECK_ST(coro_switch(g_a, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2));
  CHECK_ST(coro_switch(g_b, V(66), &r), CORO_OK); /* B -> A -> main */
  CHECK_PTR_EQ(r, V(67));
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_STATE(g_b, CORO_DEAD);
  destroy_ok(g_a);
  destroy_ok(g_b);
}

TEST(set_parent_back_to_main_and_to_same_parent) {
  void *r = SENTINEL_PTR;
  g_a = mk(e_ret);
  g_b = mk(e_ret);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_set_parent(g_b, g_a), CORO_OK);
  CHECK_ST(coro_set_parent(g_b, g_a), CORO_OK); /* idempotent */
  CHECK_PARENT(g_b, g_a);
  CHECK_ST(coro_set_parent(g_b, main_coro()), CORO_OK);
  CHECK_PARENT(g_b, main_coro());
  g_ran = 0;
  CHECK_ST(coro_switch(g_b, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(3));
  CHECK_EQ(g_ran, 1); /* A was not started */
  CHECK_STATE(g_a, CORO_NEW);
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* A running coroutine re-parents itself onto a NEW one, which is started by its return. */
static void *e_reparent_self(coro_t *self, void *value) {
  CHECK_ST(coro_set_parent(self, g_b), CORO_OK);
  CHECK_PARENT(self, g_b);
  return V(U(value) + 1);
}

static void *e_record(coro_t *self, void *value) {
  (void)self;
  g_seen = U(value);
  return V(U(value) * 2);
}

TEST(set_parent_on_running_coroutine) {
  void *r = SENTINEL_PTR;
  g_a = mk(e_reparent_self);
  g_b = mk(e_record);
  if (!g_a || !g_b) return;
  g_seen = 0;
  CHECK_ST(coro_switch(g_a, V(20), &r), CORO_OK);
  CHECK_EQ(g_seen, 21);
  CHECK_PTR_EQ(r, V(42));
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* The contract only lists ECYCLE/ETHREAD/EMAIN as refusals, so a DEAD parent is accepted and the
 * walk passes over it. */
TEST(set_parent_to_dead_coroutine_walk_skips_it) {
  void *r = SENTINEL_PTR;
  g_a = mk(e_ret);
  g_b = mk(e_ret);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, V(1), NULL), CORO_OK);
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_ST(coro_set_parent(g_b, g_a), CORO_OK);
  CHECK_ST(coro_switch(g_b, V(5), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(5)); /* main (A's parent) got it */
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- cycles ------------------------------------------------------------------------------------- */

TEST(set_parent_to_self_is_a_cycle) {
  g_a = mk(e_ret);
  if (!g_a) return;
  CHECK_ST(coro_set_parent(g_a, g_a), CORO_ECYCLE);
  CHECK_PARENT(g_a, main_coro());
  destroy_ok(g_a);
}

TEST(set_parent_indirect_cycles_are_refused) {
  g_a = mk(e_ret);
  g_b = mk(e_ret);
  g_c = mk(e_ret);
  if (!g_a || !g_b || !g_c) return;
  /* main <- A <- B <- C */
  CHECK_ST(coro_set_parent(g_b, g_a), CORO_OK);
  CHECK_ST(coro_set_parent(g_c, g_b), CORO_OK);
  CHECK_ST(coro_set_parent(g_a, g_b), CORO_ECYCLE);
  CHECK_ST(coro_set_parent(g_a, g_c), CORO_ECYCLE);
  CHECK_ST(coro_set_parent(g_b, g_c), CORO_ECYCLE);
  /* nothing changed */
  CHECK_PARENT(g_a, main_coro());
  CHECK_PARENT(g_b, g_a);
  CHECK_PARENT(g_c, g_b);
  /* a non-cycle re-parent still works afterwards */
  CHECK_ST(coro_set_parent(g_c, g_a), CORO_OK);
  CHECK_PARENT(g_c, g_a);
  destroy_ok(g_c);
  destroy_ok(g_b);
  destroy_ok(g_a);
}

static void *e_cycle_inside(coro_t *self, void *value) {
  (void)value;
  /* B's parent is self (created here); self becoming B's child would be a cycle */
  g_b = mk(e_ret);
  if (!g_b) return NULL;
  CHECK_ST(coro_set_parent(self, g_b), CORO_ECYCLE);
  CHECK_ST(coro_set_parent(self, self), CORO_ECYCLE);
  CHECK_PARENT(self, main_coro());
  return V(1);
}

TEST(set_parent_cycle_from_inside_running_coroutine) {
  void *r = SENTINEL_PTR;
  g_b = NULL;
  g_a = mk(e_cycle_inside);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(1));
  if (g_b) destroy_ok(g_b);
  destroy_ok(g_a);
}

/* ---- mains have no parent ------------------------------------------------------------------------ */

TEST(main_cannot_get_a_parent) {
  coro_t *m = main_coro();
  coro_t *p = SENTINEL_CORO;
  g_a = mk(e_ret);
  if (!g_a) return;
  CHECK_ST(coro_set_parent(m, g_a), CORO_EMAIN);
  CHECK_ST(coro_parent(m, &p), CORO_OK);
  CHECK_PTR_EQ(p, NULL);
  destroy_ok(g_a);
}

static void *e_set_parent_of_main_inside(coro_t *self, void *value) {
  coro_t *p = SENTINEL_CORO;
  (void)value;
  CHECK_ST(coro_set_parent(main_coro(), self), CORO_EMAIN);
  CHECK_ST(coro_parent(main_coro(), &p), CORO_OK);
  CHECK_PTR_EQ(p, NULL);
  return V(3);
}

TEST(main_cannot_get_a_parent_while_suspended) {
  void *r = SENTINEL_PTR;
  g_a = mk(e_set_parent_of_main_inside);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(3));
  destroy_ok(g_a);
}

TEST(set_parent_null_arguments_are_einval) {
  g_a = mk(e_ret);
  if (!g_a) return;
  CHECK_ST(coro_set_parent(g_a, NULL), CORO_EINVAL);
  CHECK_ST(coro_set_parent(NULL, g_a), CORO_EINVAL);
  CHECK_ST(coro_set_parent(NULL, NULL), CORO_EINVAL);
  CHECK_PARENT(g_a, main_coro());
  destroy_ok(g_a);
}
