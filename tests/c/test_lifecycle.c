/* States, lazy start, switching, finishing and the parent walk (docs/semantics.md: States,
 * Switching, Finishing and the parent rule). */
#include "util.h"

/* ---- shared scratch ---------------------------------------------------------------------- */

static int g_ran;             /* entry ran */
static uint64_t g_self_id;    /* id(self) seen inside */
static uint64_t g_cur_id;     /* id(coro_current) seen inside */
static uint64_t g_main_id;    /* id(coro_main) seen inside */
static void *g_first;         /* first value seen by an entry */
static coro_state_t g_self_state, g_main_state;
static coro_t *g_a, *g_b, *g_c, *g_p;

static void reset(void) {
  g_ran = 0;
  g_self_id = g_cur_id = g_main_id = ID_ERR;
  g_first = SENTINEL_PTR;
  g_self_state = g_main_state = STATE_ERR;
  g_a = g_b = g_c = g_p = NULL;
}

/* ---- the main coroutine ------------------------------------------------------------------ */

TEST(main_exists_lazily_and_is_running) {
  coro_t *c = NULL, *m = NULL, *p = SENTINEL_CORO;
  CHECK_ST(coro_current(&c), CORO_OK);
  CHECK_ST(coro_main(&m), CORO_OK);
  if (!CHECK(c != NULL) || !CHECK(m != NULL)) return;
  CHECK_SAME(c, m);
  CHECK_STATE(m, CORO_RUNNING);
  CHECK_ST(coro_parent(m, &p), CORO_OK);
  CHECK_PTR_EQ(p, NULL);
  /* asking again gives the same coroutine */
  CHECK_SAME(main_coro(), m);
  CHECK_SAME(cur(), m);
}

/* ---- lazy start --------------------------------------------------------------------------- */

static void *e_mark(coro_t *self, void *value) {
  (void)self;
  g_ran++;
  return value;
}

TEST(new_coroutine_does_not_run_until_switched_to) {
  coro_t *c;
  reset();
  c = mk(e_mark);
  if (!c) return;
  CHECK_STATE(c, CORO_NEW);
  CHECK_EQ(g_ran, 0);
  /* queries do not start it */
  (void)id_of(c);
  (void)parent_of(c);
  CHECK_STATE(c, CORO_NEW);
  CHECK_EQ(g_ran, 0);
  CHECK_SAME(cur(), main_coro());
  destroy_ok(c);
  CHECK_EQ(g_ran, 0);
}

static void *e_first_value(coro_t *self, void *value) {
  coro_t *c = NULL, *m = NULL;
  g_ran++;
  g_first = value;
  g_self_id = id_of(self);
  if (CHECK_ST(coro_current(&c), CORO_OK)) g_cur_id = id_of(c);
  if (CHECK_ST(coro_main(&m), CORO_OK)) g_main_id = id_of(m);
  g_self_state = state_of(self);
  g_main_state = state_of(m);
  return V(U(value) + 1);
}

TEST(first_switch_starts_entry_with_its_value) {
  coro_t *c;
  void *r = SENTINEL_PTR;
  uint64_t mid = id_of(main_coro());
  reset();
  c = mk(e_first_value);
  if (!c) return;
  CHECK_ST(coro_switch(c, V(42), &r), CORO_OK);
  CHECK_EQ(g_ran, 1);
  CHECK_PTR_EQ(g_first, V(42));
  CHECK_PTR_EQ(r, V(43));
  /* inside: self is the created coroutine and is current and RUNNING; main is SUSPENDED */
  CHECK_EQ(g_self_id, id_of(c));
  CHECK_EQ(g_cur_id, id_of(c));
  CHECK_EQ(g_main_id, mid);
  CHECK_EQ(g_self_state, CORO_RUNNING);
  CHECK_EQ(g_main_state, CORO_SUSPENDED);
  /* finished */
  CHECK_STATE(c, CORO_DEAD);
  CHECK_STATE(main_coro(), CORO_RUNNING);
  CHECK_SAME(cur(), main_coro());
  destroy_ok(c);
}

TEST(first_value_may_be_null_and_received_may_be_null) {
  coro_t *c;
  reset();
  c = mk(e_first_value);
  if (!c) return;
  CHECK_ST(coro_switch(c, NULL, NULL), CORO_OK);
  CHECK_EQ(g_ran, 1);
  CHECK_PTR_EQ(g_first, NULL);
  CHECK_STATE(c, CORO_DEAD);
  destroy_ok(c);
}

/* ---- values both ways, state transitions -------------------------------------------------- */

#define PINGS 200

static void *e_pingpong(coro_t *self, void *value) {
  coro_t *m = main_coro();
  uintptr_t expect = 1, i;
  /* locals that live across switches (callee-saved registers at -O2) */
  uintptr_t acc = 0, mul = 3;
  for (i = 0; i < PINGS; i++) {
    CHECK_EQ(U(value), expect);
    CHECK_EQ(state_of(self), CORO_RUNNING);
    CHECK_EQ(state_of(m), CORO_SUSPENDED);
    acc += U(value) * mul;
    CHECK_ST(coro_switch(m, V(U(value) * 2), &value), CORO_OK);
    expect = expect * 2 + 1;
    expect &= 0xffffff;
  }
  return V(acc);
}

TEST(values_travel_both_ways_and_states_follow) {
  coro_t *c;
  void *r = SENTINEL_PTR;
  uintptr_t v = 1, acc = 0, i;
  c = mk(e_pingpong);
  if (!c) return;
  for (i = 0; i < PINGS; i++) {
    CHECK_STATE(c, i == 0 ? CORO_NEW : CORO_SUSPENDED);
    CHECK_STATE(main_coro(), CORO_RUNNING);
    acc += v * 3;
    CHECK_ST(coro_switch(c, V(v), &r), CORO_OK);
    CHECK_EQ(U(r), v * 2);
    CHECK_STATE(c, CORO_SUSPENDED);
    v = (U(r) + 1) & 0xffffff;
  }
  /* the last switch lets the loop end: the entry returns its accumulator */
  CHECK_ST(coro_switch(c, V(v), &r), CORO_OK);
  CHECK_EQ(U(r), acc);
  CHECK_STATE(c, CORO_DEAD);
  destroy_ok(c);
}

/* ---- switching to self ---------------------------------------------------------------------- */

TEST(switch_to_self_on_main_returns_value_at_once) {
  coro_t *m = main_coro();
  void *r = SENTINEL_PTR;
  CHECK_ST(coro_switch(m, V(7), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(7));
  CHECK_ST(coro_switch(m, V(8), NULL), CORO_OK);
  CHECK_STATE(m, CORO_RUNNING);
  CHECK_SAME(cur(), m);
}

static int g_main_resumed;

static void *e_switch_self(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  int before = g_main_resumed;
  CHECK_ST(coro_switch(self, V(9), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(9));
  CHECK_ST(coro_switch(self, V(10), NULL), CORO_OK);
  /* no switch happened: main did not run, we are still current and RUNNING */
  CHECK_EQ(g_main_resumed, before);
  CHECK_SAME(cur(), self);
  CHECK_EQ(state_of(self), CORO_RUNNING);
  CHECK_EQ(state_of(main_coro()), CORO_SUSPENDED);
  return value;
}

TEST(switch_to_self_inside_coroutine_returns_value_at_once) {
  coro_t *c = mk(e_switch_self);
  void *r = SENTINEL_PTR;
  if (!c) return;
  g_main_resumed = 0;
  CHECK_ST(coro_switch(c, V(5), &r), CORO_OK);
  g_main_resumed++;
  CHECK_PTR_EQ(r, V(5));
  CHECK_STATE(c, CORO_DEAD);
  destroy_ok(c);
}

/* ---- switching to a DEAD coroutine ----------------------------------------------------------- */

TEST(switch_to_dead_fails_with_edead_and_changes_nothing) {
  coro_t *c = mk(e_mark);
  void *r = SENTINEL_PTR;
  if (!c) return;
  reset();
  CHECK_ST(coro_switch(c, V(1), NULL), CORO_OK);
  CHECK_EQ(g_ran, 1);
  CHECK_STATE(c, CORO_DEAD);
  CHECK_ST(coro_switch(c, V(2), &r), CORO_EDEAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_switch(c, V(2), NULL), CORO_EDEAD);
  CHECK_EQ(g_ran, 1);
  CHECK_STATE(c, CORO_DEAD);
  CHECK_STATE(main_coro(), CORO_RUNNING);
  CHECK_SAME(cur(), main_coro());
  destroy_ok(c);
}

static void *e_switch_to_dead_inside(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)value;
  CHECK_ST(coro_switch(g_b, V(1), &r), CORO_EDEAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_SAME(cur(), self);
  CHECK_EQ(state_of(self), CORO_RUNNING);
  return V(77);
}

TEST(switch_to_dead_inside_coroutine_fails_and_stays_running) {
  void *r = SENTINEL_PTR;
  reset();
  g_b = mk(e_mark);
  g_a = mk(e_switch_to_dead_inside);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_b, NULL, NULL), CORO_OK);
  CHECK_STATE(g_b, CORO_DEAD);
  CHECK_ST(coro_switch(g_a, NULL, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(77));
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- return goes to the parent, not to the last switcher ----------------------------------- */

static void *e_a_switches_to_b(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_PTR_EQ(value, V(1));
  /* B's parent is main: when B returns, control goes to main, not back here */
  CHECK_ST(coro_switch(g_b, V(2), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(8));
  return V(9);
}

static void *e_b_returns(coro_t *self, void *value) {
  (void)self;
  CHECK_PTR_EQ(value, V(2));
  return V(7);
}

TEST(return_goes_to_parent_not_to_last_switcher) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_a_switches_to_b);
  g_b = mk(e_b_returns);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(7)); /* B's return value, delivered to main */
  CHECK_STATE(g_b, CORO_DEAD);
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_ST(coro_switch(g_a, V(8), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(9));
  CHECK_STATE(g_a, CORO_DEAD);
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- symmetric transfer between siblings ----------------------------------------------------- */

static void *e_sym_a(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_PTR_EQ(value, V(1));
  CHECK_ST(coro_switch(g_b, V(2), &r), CORO_OK); /* starts B */
  CHECK_PTR_EQ(r, V(3));
  CHECK_ST(coro_switch(g_b, V(4), &r), CORO_OK); /* B returns to main from there */
  CHECK_PTR_EQ(r, V(6));
  return V(7);
}

static void *e_sym_b(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_PTR_EQ(value, V(2));
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_ST(coro_switch(g_a, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4));
  return V(5);
}

TEST(symmetric_transfer_between_siblings) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_sym_a);
  g_b = mk(e_sym_b);
  if (!g_a || !g_b) return;
  CHECK_ST(coro_switch(g_a, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(5));
  CHECK_STATE(g_b, CORO_DEAD);
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_ST(coro_switch(g_a, V(6), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(7));
  CHECK_STATE(g_a, CORO_DEAD);
  destroy_ok(g_a);
  destroy_ok(g_b);
}

/* ---- DEAD parent: the value goes to the grandparent ----------------------------------------- */

static void *e_chain_c(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  CHECK_PTR_EQ(value, V(3));
  CHECK_PARENT(self, g_b);
  CHECK_ST(coro_switch(main_coro(), V(4), &r), CORO_OK); /* suspend with A, B alive */
  CHECK_PTR_EQ(r, V(30));
  CHECK_STATE(g_b, CORO_DEAD);
  CHECK_STATE(g_a, CORO_DEAD);
  return V(31); /* B and A are DEAD: goes to main */
}

static void *e_chain_b(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  CHECK_PTR_EQ(value, V(2));
  CHECK_PARENT(self, g_a);
  g_c = mk(e_chain_c);
  if (g_c) CHECK_PARENT(g_c, self);
  CHECK_ST(coro_switch(g_c, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(20));
  return V(21); /* to A */
}

static void *e_chain_a(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  CHECK_PTR_EQ(value, V(1));
  g_b = mk(e_chain_b);
  if (g_b) CHECK_PARENT(g_b, self);
  CHECK_ST(coro_switch(g_b, V(2), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(21)); /* B's return value */
  return V(22);          /* to main */
}

TEST(dead_parent_passes_value_to_grandparent) {
  void *r = SENTINEL_PTR;
  reset();
  g_a = mk(e_chain_a);
  if (!g_a) return;
  CHECK_ST(coro_switch(g_a, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4)); /* C suspended itself into main */
  if (!g_b || !g_c) return;
  CHECK_STATE(g_a, CORO_SUSPENDED);
  CHECK_STATE(g_b, CORO_SUSPENDED);
  CHECK_STATE(g_c, CORO_SUSPENDED);
  /* resume B: B returns to A, A returns to main */
  CHECK_ST(coro_switch(g_b, V(20), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(22));
  CHECK_STATE(g_a, CORO_DEAD);
  CHECK_STATE(g_b, CORO_DEAD);
  CHECK_STATE(g_c, CORO_SUSPENDED);
  /* C finishes: parent B DEAD, grandparent A DEAD, so main receives the value */
  CHECK_ST(coro_switch(g_c, V(30), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(31));
  CHECK_STATE(g_c, CORO_DEAD);
  destroy_ok(g_c);
  destroy_ok(g_b);
  destroy_ok(g_a);
}

/* ---- NEW ancestor: started with the value ---------------------------------------------------- */

static void *e_new_parent(coro_t *self, void *value) {
  g_ran++;
  g_first = value;
  CHECK_SAME(cur(), self);
  CHECK_EQ(state_of(self), CORO_RUNNING);
  return V(U(value) + 100);
}

static void *e_child_returns_10(coro_t *self, void *value) {
  (void)self;
  CHECK_PTR_EQ(value, V(1));
  CHECK_STATE(g_p, CORO_NEW);
  return V(10);
}

TEST(new_parent_is_started_with_the_return_value) {
  void *r = SENTINEL_PTR;
  reset();
  g_p = mk(e_new_parent);
  g_c = mk(e_child_returns_10);
  if (!g_p || !g_c) return;
  CHECK_ST(coro_set_parent(g_c, g_p), CORO_OK);
  CHECK_ST(coro_switch(g_c, V(1), &r), CORO_OK);
  CHECK_EQ(g_ran, 1);
  CHECK_PTR_EQ(g_first, V(10));
  CHECK_PTR_EQ(r, V(110)); /* P returned to its parent, main */
  CHECK_STATE(g_c, CORO_DEAD);
  CHECK_STATE(g_p, CORO_DEAD);
  destroy_ok(g_c);
  destroy_ok(g_p);
}

TEST(walk_skips_dead_parent_and_starts_new_grandparent) {
  coro_t *d;
  void *r = SENTINEL_PTR;
  reset();
  g_p = mk(e_new_parent);
  d = mk(e_mark);
  g_c = mk(e_child_returns_10);
  if (!g_p || !d || !g_c) return;
  CHECK_ST(coro_set_parent(d, g_p), CORO_OK);
  CHECK_ST(coro_set_parent(g_c, d), CORO_OK);
  /* D becomes DEAD without running */
  CHECK_ST(coro_kill(d, V(0), NULL), CORO_OK);
  CHECK_STATE(d, CORO_DEAD);
  CHECK_ST(coro_switch(g_c, V(1), &r), CORO_OK);
  CHECK_EQ(g_ran, 1); /* only P ran (D never ran) */
  CHECK_PTR_EQ(g_first, V(10));
  CHECK_PTR_EQ(r, V(110));
  CHECK_STATE(g_p, CORO_DEAD);
  destroy_ok(g_c);
  destroy_ok(d);
  destroy_ok(g_p);
}

/* ---- deep nesting: each level its own coroutine --------------------------------------------- */

#define DEPTH 100

static void *e_nest(coro_t *self, void *value) {
  uintptr_t depth = U(value);
  void *r = SENTINEL_PTR;
  coro_t *child;
  CHECK_EQ(state_of(self), CORO_RUNNING);
  if (depth == DEPTH) return V(depth * 10);
  child = mk(e_nest);
  if (!child) return NULL;
  CHECK_PARENT(child, self);
  CHECK_ST(coro_switch(child, V(depth + 1), &r), CORO_OK);
  CHECK_EQ(U(r), (uintptr_t)DEPTH * 10 + (DEPTH - depth - 1));
  CHECK_EQ(state_of(child), CORO_DEAD);
  destroy_ok(child);
  return V(U(r) + 1);
}

TEST(nested_coroutines_return_through_their_parents) {
  coro_t *c = mk(e_nest);
  void *r = SENTINEL_PTR;
  if (!c) return;
  CHECK_ST(coro_switch(c, V(1), &r), CORO_OK);
  CHECK_EQ(U(r), (uintptr_t)DEPTH * 10 + DEPTH - 1);
  CHECK_STATE(c, CORO_DEAD);
  destroy_ok(c);
}

/* ---- many short-lived coroutines --------------------------------------------------------------- */

static void *e_add1(coro_t *self, void *value) {
  (void)self;
  return V(U(value) + 1);
}

TEST(many_sequential_coroutines) {
  uintptr_t i;
  for (i = 0; i < 5000; i++) {
    coro_t *c = mk(e_add1);
    void *r = SENTINEL_PTR;
    if (!c) return;
    if (!CHECK_ST(coro_switch(c, V(i), &r), CORO_OK)) return;
    if (!CHECK_PTR_EQ(r, V(i + 1))) return;
    destroy_ok(c);
  }
}

/* ---- exactly one RUNNING coroutine per thread: the current one -------------------------------- */

#define N_RING 4
static coro_t *g_ring[N_RING];
static coro_t *g_fresh; /* stays NEW throughout */

/* Checks, from wherever we are, that the current coroutine is the only RUNNING one, that every
 * other started-and-alive one is SUSPENDED and the never-started one is NEW. */
static void check_one_running(void) {
  coro_t *c = cur(), *m = main_coro();
  uint64_t cid = id_of(c);
  int i, running = 0;
  for (i = 0; i < N_RING; i++) {
    coro_state_t s = state_of(g_ring[i]);
    if (id_of(g_ring[i]) == cid) {
      CHECK_EQ(s, CORO_RUNNING);
    } else {
      CHECK(s == CORO_SUSPENDED || s == CORO_NEW || s == CORO_DEAD);
    }
    running += s == CORO_RUNNING;
  }
  running += state_of(m) == CORO_RUNNING;
  CHECK_EQ(state_of(m), id_of(m) == cid ? CORO_RUNNING : CORO_SUSPENDED);
  CHECK_STATE(g_fresh, CORO_NEW);
  CHECK_EQ(running, 1);
}

static void *e_ring(coro_t *self, void *value) {
  uintptr_t me = U(value) & 0xff, laps = 0;
  (void)self;
  while (laps < 3) {
    check_one_running();
    /* pass the token to the next ring member; the last one hands back to main each lap */
    if (me + 1 < N_RING)
      CHECK_ST(coro_switch(g_ring[me + 1], V(me + 1), &value), CORO_OK);
    else
      CHECK_ST(coro_switch(main_coro(), V(laps), &value), CORO_OK);
    laps++;
  }
  check_one_running();
  return V(me);
}

TEST(exactly_one_coroutine_is_running_the_current_one) {
  int i, lap;
  void *r = SENTINEL_PTR;
  g_fresh = mk(e_add1);
  for (i = 0; i < N_RING; i++) g_ring[i] = mk(e_ring);
  for (i = 0; i < N_RING; i++)
    if (!g_ring[i]) return;
  if (!g_fresh) return;
  check_one_running();
  for (lap = 0; lap < 3; lap++) {
    CHECK_ST(coro_switch(g_ring[0], V(0), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(lap));
    check_one_running();
    for (i = 0; i < N_RING; i++) CHECK_STATE(g_ring[i], CORO_SUSPENDED);
  }
  /* fourth lap: each member finishes; the returns go to main (every member's parent) */
  for (i = 0; i < N_RING; i++) {
    CHECK_ST(coro_switch(g_ring[i], V(i), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(i));
    CHECK_STATE(g_ring[i], CORO_DEAD);
    check_one_running();
  }
  for (i = 0; i < N_RING; i++) destroy_ok(g_ring[i]);
  destroy_ok(g_fresh);
}
