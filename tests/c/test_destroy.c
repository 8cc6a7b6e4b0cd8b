/* coro_destroy and stale handles (docs/semantics.md: Destroy). */
#include "util.h"

static coro_t *g_a, *g_b, *g_c;
static int g_ran;

static void reset(void) {
  g_a = g_b = g_c = NULL;
  g_ran = 0;
}

static void *e_ret(coro_t *self, void *value) {
  (void)self;
  g_ran++;
  return value;
}

static void *e_yield_once(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_ST(coro_switch(main_coro(), value, &r), CORO_OK);
  return r;
}

/* ---- what can be destroyed ------------------------------------------------------------------------ */

TEST(destroy_new_ok_and_never_runs) {
  reset();
  g_a = mk(e_ret);
  if (!g_a) return;
  CHECK_STATE(g_a, CORO_NEW);
  CHECK_ST(coro_destroy(g_a), CORO_OK);
  CHECK_EQ(g_ran, 0);
  CHECK_EQ(check_handle_refused(g_a, main_coro(), CORO_ESTALE), 0);
  CHECK_EQ(g_ran, 0);
}

TEST(destroy_dead_ok) {
  reset();
  g_a = mk(e_ret);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, V(1), NULL), CORO_OK);
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_ST(coro_destroy(g_a), CORO_OK);
  CHECK_EQ(check_handle_refused(g_a, main_coro(), CORO_ESTALE), 0);
}

TEST(destroy_killed_new_ok) {
  reset();
  g_a = mk(e_ret);
  if (!g_a) return;
  CHECK_ST(coro_kill(g_a, V(1), NULL), CORO_OK);
  CHECK_ST(coro_destroy(g_a), CORO_OK);
  CHECK_EQ(g_ran, 0);
}

TEST(destroy_suspended_is_ebusy) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_yield_once);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, V(1), &r), CORO_OK);
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_ST(coro_destroy(g_a), CORO_EBUSY);
  /* nothing changed: still usable */
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_ST(coro_switch(g_a, V(2), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2));
  CHECK_STATE(g_a, CORO_DEAD);
  destroy_ok(g_a);
}

static void *e_destroy_self(coro_t *self, void *value) {
  CHECK_ST(coro_destroy(self), CORO_EBUSY);
  CHECK_EQ(state_of(self), CORO_RUNNING);
  /* main is suspended: still EMAIN, not EBUSY */
  CHECK_ST(coro_destroy(main_coro()), CORO_EMAIN);
  /* a NEW sibling can be destroyed from inside a coroutine */
  CHECK_ST(coro_destroy(g_b), CORO_OK);
  return value;
}

TEST(destroy_running_is_ebusy_and_main_is_emain_from_inside) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_destroy_self);
  g_b = mk(e_ret);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, V(4), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4));
  CHECK_EQ(g_ran, 0);
  CHECK_EQ(check_handle_refused(g_b, g_a, CORO_ESTALE), 0);
  destroy_ok(g_a);
}

TEST(destroy_main_is_emain) {
  coro_t *m = main_coro();
  CHECK_ST(coro_destroy(m), CORO_EMAIN);
  CHECK_STATE(m, CORO_RUNNING);
  CHECK_SAME(cur(), m);
}

TEST(destroy_null_is_einval) { CHECK_ST(coro_destroy(NULL), CORO_EINVAL); }

TEST(double_destroy_is_estale) {
  reset();
  g_a = mk(e_ret);
  if (!g_a) return;
  CHECK_ST(coro_destroy(g_a), CORO_OK);
  CHECK_ST(coro_destroy(g_a), CORO_ESTALE);
  CHECK_ST(coro_destroy(g_a), CORO_ESTALE);
}

/* ---- stale handles stay stale while memory is reused ------------------------------------------- */

#define N_ALIVE 1000

TEST(stale_handle_stays_stale_while_new_coroutines_are_alive) {
  static coro_t *alive[N_ALIVE];
  coro_t *old;
  int i, bad = 0;
  reset();
  old = mk(e_ret);
  if (!old) return;
  destroy_ok(old);
  for (i = 0; i < N_ALIVE; i++) {
    alive[i] = mk(e_ret);
    if (!alive[i]) return;
    /* all alive at once: no slot is reused twice, so no generation wrap-around is possible */
    CHECK_PTR_NE(alive[i], old);
    if (i % 50 == 0 || i < 10) {
      bad += check_handle_refused(old, alive[i], CORO_ESTALE);
      CHECK_STATE(alive[i], CORO_NEW); /* refusals changed nothing */
      CHECK_PARENT(alive[i], main_coro());
    } else {
      CHECK_ST(coro_state(old, &(coro_state_t){0}), CORO_ESTALE);
    }
    if (bad) break;
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(g_ran, 0);
  /* the new coroutines all work */
  for (i = 0; i < N_ALIVE && alive[i]; i++) {
    void *r = SENTINEL_PTR;
    CHECK_ST(coro_switch(alive[i], V(i), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(i));
    destroy_ok(alive[i]);
  }
  CHECK_ST(coro_destroy(old), CORO_ESTALE);
}

/* Create/destroy churn reuses the same control block again and again. The contract allows a
 * destroyed handle to alias a new coroutine in the 1-in-128 case where the slot's generation has
 * wrapped around; whenever the new handle differs from the old one, the old one must be stale. */
#define N_CHURN 1000

TEST(stale_handle_stays_stale_under_create_destroy_churn) {
  coro_t *old;
  int i, aliases = 0, checked = 0;
  uint64_t old_id;
  reset();
  old = mk(e_ret);
  if (!old) return;
  old_id = id_of(old);
  destroy_ok(old);
  for (i = 0; i < N_CHURN; i++) {
    coro_t *n = mk(e_ret);
    uint64_t nid;
    if (!n) return;
    nid = id_of(n);
    CHECK_NE(nid, old_id); /* ids are never reused */
    if (n == old) {
      aliases++;
    } else {
      checked++;
      if (i % 25 == 0) {
        if (check_handle_refused(old, n, CORO_ESTALE) != 0) {
          destroy_ok(n);
          break;
        }
        /* a refused call through the stale handle must not touch the slot's new occupant */
        CHECK_STATE(n, CORO_NEW);
        CHECK_EQ(id_of(n), nid);
        CHECK_PARENT(n, main_coro());
      }
      CHECK_ST(coro_destroy(old), CORO_ESTALE);
      CHECK_STATE(n, CORO_NEW);
    }
    /* run every other one so that stacks are reused too */
    if (i % 2 == 0) {
      void *r = SENTINEL_PTR;
      CHECK_ST(coro_switch(n, V(i), &r), CORO_OK);
      CHECK_PTR_EQ(r, V(i));
    }
    destroy_ok(n);
  }
  /* with a 1-in-128 wrap-around at most ceil(1000/128) aliases can appear */
  CHECK(aliases <= (N_CHURN + 127) / 128);
  CHECK(checked > 0);
  printf("    (churn: %d checked, %d generation wrap-around aliases)\n", checked, aliases);
}

TEST(stale_handle_of_a_run_coroutine_after_churn) {
  coro_t *old;
  int i;
  reset();
  old = mk(e_yield_once);
  if (!old) return;
  CHECK_ST(coro_switch(old, V(1), NULL), CORO_OK);
  CHECK_ST(coro_switch(old, V(2), NULL), CORO_OK);
  CHECK_STATE(old, CORO_DEAD);
  destroy_ok(old);
  for (i = 0; i < 100; i++) {
    coro_t *n = mk(e_yield_once);
    if (!n) return;
    CHECK_ST(coro_switch(n, V(1), NULL), CORO_OK);
    if (n != old) {
      CHECK_ST(coro_switch(old, V(1), NULL), CORO_ESTALE);
      CHECK_ST(coro_kill(old, V(1), NULL), CORO_ESTALE);
      CHECK_ST(coro_destroy(old), CORO_ESTALE);
    }
    CHECK_STATE(n, CORO_SUSPENDED);
    CHECK_ST(coro_switch(n, V(2), NULL), CORO_OK);
    destroy_ok(n);
  }
}

/* ---- destroyed parent while a child is alive ---------------------------------------------------- */

static void *e_child_of_p(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_PTR_EQ(value, V(1));
  CHECK_ST(coro_switch(main_coro(), V(2), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(5));
  return V(6); /* parent P is DEAD and destroyed: goes to main */
}

static void *e_p(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  g_c = mk(e_child_of_p);
  if (!g_c) return NULL;
  CHECK_ST(coro_switch(g_c, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(3));
  return V(4);
}

TEST(destroyed_dead_parent_with_live_child) {
  void *r = SENTINEL_PTR;
  coro_t *p = SENTINEL_CORO;
  reset();
  g_a = mk(e_p);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2)); /* from C */
  if (!g_c) return;
  CHECK_ST(coro_switch(g_a, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4)); /* P finished */
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_STATE(g_c, CORO_SUSPENDED);
  CHECK_ST(coro_destroy(g_a), CORO_OK);
  /* the handle is invalid at once, although the control block lives on for C */
  CHECK_EQ(check_handle_refused(g_a, g_c, CORO_ESTALE), 0);
  /* C's parent query still works (what it returns for a destroyed parent is not specified) */
  CHECK_ST(coro_parent(g_c, &p), CORO_OK);
  CHECK_STATE(g_c, CORO_SUSPENDED);
  /* churn a little so that a naive implementation would reuse P's block */
  {
    int i;
    for (i = 0; i < 300; i++) {
      coro_t *n = mk(e_ret);
      if (!n) break;
      CHECK_ST(coro_switch(n, V(i), NULL), CORO_OK);
      destroy_ok(n);
    }
  }
  CHECK_ST(coro_switch(g_c, V(5), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(6));
  CHECK_STATE(g_c, CORO_DEAD);
  destroy_ok(g_c);
  CHECK_ST(coro_destroy(g_a), CORO_ESTALE);
}

static void *e_new_p(coro_t *self, void *value) {
  (void)self;
  g_ran += 100;
  return value;
}

TEST(destroyed_new_parent_with_live_child) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_new_p);
  g_c = mk(e_yield_once);
  if (!g_a || !g_c) return;
  CHECK_ST(coro_set_parent(g_c, g_a), CORO_OK);
  CHECK_ST(coro_switch(g_c, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(1));
  CHECK_STATE(g_c, CORO_SUSPENDED);
  /* P is NEW: destroy makes it DEAD unrun; C stays alive */
  CHECK_ST(coro_destroy(g_a), CORO_OK);
  CHECK_EQ(check_handle_refused(g_a, g_c, CORO_ESTALE), 0);
  CHECK_ST(coro_switch(g_c, V(7), &r), CORO_OK);
  /* C returns 7: P is DEAD (never started), so main gets it */
  CHECK_PTR_EQ(r, V(7));
  CHECK_EQ(g_ran, 0);
  CHECK_STATE(g_c, CORO_DEAD);
  destroy_ok(g_c);
}

TEST(destroyed_new_parent_of_new_child) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_new_p);
  g_c = mk(e_ret);
  if (!g_a || !g_c) return;
  CHECK_ST(coro_set_parent(g_c, g_a), CORO_OK);
  CHECK_ST(coro_destroy(g_a), CORO_OK);
  CHECK_ST(coro_switch(g_c, V(8), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(8));
  CHECK_EQ(g_ran, 1); /* only C ran, P was not started */
  destroy_ok(g_c);
}
