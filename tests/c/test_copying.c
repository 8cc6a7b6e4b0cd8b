/* Copying (shared-stack) mode: CORO_FLAG_COPYING, coro_set_copying_default (docs/stacks.md). */
#include "util.h"

static coro_t *mk_copying(coro_entry_t entry, size_t stack_size) {
  coro_options_t o;
  CHECK_ST(coro_options_init(&o), CORO_OK);
  o.flags = CORO_FLAG_COPYING;
  o.stack_size = stack_size;
  return mk_opts(entry, &o);
}

/* ---- values and locals survive being saved and restored --------------------------------------- */

static void *e_counter(coro_t *self, void *value) {
  long local[16];
  long *p = local; /* a pointer into our own stack: valid whenever we run */
  (void)self;
  for (int i = 0; i < 16; i++) local[i] = (long)U(value) + i;
  for (int round = 0; round < 50; round++) {
    void *r = NULL;
    CHECK_ST(coro_switch(main_coro(), V(p[round % 16]), &r), CORO_OK);
    for (int i = 0; i < 16; i++) p[i] += (long)U(r);
  }
  return V(p[15]);
}

TEST(copying_coroutine_keeps_its_locals_across_switches) {
  coro_t *a = mk_copying(e_counter, 0), *b = mk_copying(e_counter, 0);
  void *ra = NULL, *rb = NULL;
  if (!a || !b) return;
  CHECK_ST(coro_switch(a, V(100), &ra), CORO_OK);
  CHECK_ST(coro_switch(b, V(1000), &rb), CORO_OK); /* b takes the shared stack: a is saved */
  CHECK_PTR_EQ(ra, V(100));
  CHECK_PTR_EQ(rb, V(1000));
  for (int round = 1; round < 50; round++) {
    CHECK_ST(coro_switch(a, V(1), &ra), CORO_OK);
    CHECK_ST(coro_switch(b, V(2), &rb), CORO_OK);
    CHECK_PTR_EQ(ra, V(100 + round % 16 + round));
    CHECK_PTR_EQ(rb, V(1000 + round % 16 + 2 * round));
  }
  CHECK_ST(coro_switch(a, V(1), &ra), CORO_OK);
  CHECK_ST(coro_switch(b, V(2), &rb), CORO_OK);
  CHECK_PTR_EQ(ra, V(100 + 15 + 50));
  CHECK_PTR_EQ(rb, V(1000 + 15 + 100));
  CHECK_STATE(a, CORO_DEAD);
  CHECK_STATE(b, CORO_DEAD);
  destroy_ok(a);
  destroy_ok(b);
}

/* ---- deep stacks, switching directly between copying coroutines ------------------------------- */

static coro_t *g_peer[2];
static int g_killed;

/* Recurses `depth` levels with a 512-byte array per level, switches to `to` at the bottom and
 * checks every level on the way back. */
static long deep(int depth, long seed, coro_t *to) {
  unsigned char buf[512];
  long got = 0;
  for (int i = 0; i < 512; i++) buf[i] = (unsigned char)(seed * 13 + depth * 7 + i);
  if (depth == 0) {
    void *r = NULL;
    coro_status_t st = coro_switch(to, V(seed), &r);
    if (st == CORO_KILLED) g_killed++;
    else CHECK_ST(st, CORO_OK);
    got = (long)U(r);
  } else {
    got = deep(depth - 1, seed, to);
  }
  for (int i = 0; i < 512; i++)
    if (buf[i] != (unsigned char)(seed * 13 + depth * 7 + i)) {
      CHECK(!"a frame was damaged by the copy");
      break;
    }
  return got + (buf[depth % 512] & 0);
}

/* Peer 0 goes deep while peer 1 is shallow, and then the other way round. */
static void *e_deep_peer(coro_t *self, void *value) {
  int me = g_peer[0] == self ? 0 : 1;
  long v = (long)U(value);
  (void)self;
  for (int round = 0; round < 10; round++) {
    if ((round + me) % 2 == 0) {
      v = deep(100 + 10 * round, v, g_peer[1 - me]) + 1;
    } else {
      void *r = NULL;
      CHECK_ST(coro_switch(g_peer[1 - me], V(v), &r), CORO_OK);
      v = (long)U(r) + 1;
    }
  }
  return V(v);
}

TEST(deep_copying_coroutines_switch_to_each_other) {
  void *r = NULL;
  g_peer[0] = mk_copying(e_deep_peer, 1 << 20);
  g_peer[1] = mk_copying(e_deep_peer, 1 << 20);
  if (!g_peer[0] || !g_peer[1]) return;
  CHECK_ST(coro_switch(g_peer[0], V(0), &r), CORO_OK);
  /* 20 hand-overs each add one; peer 0 finishes first and returns to main */
  CHECK_PTR_EQ(r, V(19));
  CHECK_STATE(g_peer[0], CORO_DEAD);
  CHECK_STATE(g_peer[1], CORO_SUSPENDED);
  /* peer 1 waits at the bottom of its deep recursion: the kill unwinds it from there, its last
   * round adds one and it returns to main */
  g_killed = 0;
  CHECK_ST(coro_kill(g_peer[1], V(7), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(8));
  CHECK_EQ(g_killed, 1);
  destroy_ok(g_peer[0]);
  destroy_ok(g_peer[1]);
}

/* ---- many coroutines ------------------------------------------------------------------------ */

static void *e_echo_twice(coro_t *self, void *value) {
  uintptr_t mine[4] = {U(value), U(value) + 1, U(value) + 2, U(value) + 3};
  void *r = NULL;
  (void)self;
  CHECK_ST(coro_switch(main_coro(), V(mine[3]), &r), CORO_OK);
  return V(mine[0] + mine[1] + mine[2] + U(r));
}

TEST(many_copying_coroutines_suspended_at_once) {
  enum { N = 5000 };
  static coro_t *cs[N];
  int bad = 0;
  for (int i = 0; i < N; i++) {
    void *r = NULL;
    cs[i] = mk_copying(e_echo_twice, 0);
    if (!cs[i]) return;
    CHECK_ST(coro_switch(cs[i], V(i * 4), &r), CORO_OK);
    bad += r != V(i * 4 + 3);
  }
  for (int i = N - 1; i >= 0; i--) {
    void *r = NULL;
    CHECK_ST(coro_switch(cs[i], V(1), &r), CORO_OK);
    bad += r != V(3 * (i * 4) + 3 + 1);
    destroy_ok(cs[i]);
  }
  CHECK_EQ(bad, 0);
}

/* ---- kill, destroy, mixing modes, the thread default --------------------------------------------- */

static int g_cleaned;

static void *e_cleans_up_on_kill(coro_t *self, void *value) {
  char buf[2048];
  void *r = NULL;
  (void)self;
  memset(buf, (int)U(value), sizeof buf);
  if (coro_switch(main_coro(), NULL, &r) == CORO_KILLED) {
    for (size_t i = 0; i < sizeof buf; i++)
      if (buf[i] != (char)U(value)) return V(0);
    g_cleaned++;
    return V(U(r) + (unsigned char)buf[100]);
  }
  return V(0);
}

TEST(kill_a_saved_copying_coroutine_while_another_occupies_the_stack) {
  coro_t *a = mk_copying(e_cleans_up_on_kill, 0), *b = mk_copying(e_cleans_up_on_kill, 0);
  void *r = NULL;
  if (!a || !b) return;
  g_cleaned = 0;
  CHECK_ST(coro_switch(a, V(5), NULL), CORO_OK);
  CHECK_ST(coro_switch(b, V(9), NULL), CORO_OK); /* b occupies the stack, a is saved */
  CHECK_ST(coro_kill(a, V(1000), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(1005));
  CHECK_ST(coro_kill(b, V(2000), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2009));
  CHECK_EQ(g_cleaned, 2);
  destroy_ok(a);
  destroy_ok(b);
  /* NEW copying coroutines are killed or destroyed unrun */
  a = mk_copying(e_cleans_up_on_kill, 0);
  b = mk_copying(e_cleans_up_on_kill, 0);
  if (!a || !b) return;
  CHECK_ST(coro_kill(a, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(3));
  destroy_ok(a);
  destroy_ok(b);
}

static coro_t *g_c;

/* An own-stack coroutine that starts a copying child; the child suspends into main, main
 * finishes it, and it returns into its parent (this coroutine). */
static void *e_own_calls_copying(coro_t *self, void *value) {
  void *r = NULL;
  (void)self;
  g_c = mk_copying(e_echo_twice, 0);
  if (!g_c) return NULL;
  CHECK_ST(coro_switch(g_c, value, &r), CORO_OK);
  CHECK_PTR_EQ(r, V(3 * U(value) + 3 + 1));
  destroy_ok(g_c);
  return V(42);
}

TEST(own_stack_and_copying_coroutines_mix) {
  coro_options_t o;
  coro_t *own;
  void *r = NULL;
  CHECK_ST(coro_options_init(&o), CORO_OK);
  o.flags = CORO_FLAG_OWN_STACK;
  own = mk_opts(e_own_calls_copying, &o);
  if (!own) return;
  CHECK_ST(coro_switch(own, V(8), &r), CORO_OK); /* the child's switch to main lands here */
  CHECK_PTR_EQ(r, V(11));
  CHECK_ST(coro_switch(g_c, V(1), &r), CORO_OK); /* child finishes into own, own into main */
  CHECK_PTR_EQ(r, V(42));
  CHECK_STATE(own, CORO_DEAD);
  destroy_ok(own);
}

static void *e_plus_one(coro_t *self, void *value) {
  (void)self;
  return V(U(value) + 1);
}

static void *thread_default(void *arg) {
  int on = -1;
  coro_t *c;
  void *r = NULL;
  (void)arg;
  CHECK_ST(coro_copying_default(&on), CORO_OK);
  CHECK_EQ(on, 0);
  CHECK_ST(coro_set_copying_default(1), CORO_OK);
  CHECK_ST(coro_copying_default(&on), CORO_OK);
  CHECK_EQ(on, 1);
  c = mk(e_plus_one);
  if (c) {
    CHECK_ST(coro_switch(c, V(1), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(2));
    destroy_ok(c);
  }
  CHECK_ST(coro_set_copying_default(0), CORO_OK);
  CHECK_ST(coro_copying_default(&on), CORO_OK);
  CHECK_EQ(on, 0);
  CHECK_ST(coro_copying_default(NULL), CORO_EINVAL);
  return NULL;
}

TEST(thread_default_mode) {
  pthread_t t;
  int on = -1;
  if (!CHECK_EQ(pthread_create(&t, NULL, thread_default, NULL), 0)) return;
  pthread_join(t, NULL);
  CHECK_ST(coro_copying_default(&on), CORO_OK);
  CHECK_EQ(on, 0); /* per thread: this one is unchanged */
}

/* ---- a thread exits with a copying coroutine suspended: the orphan can be destroyed ----------- */

static void *e_suspend_forever(coro_t *self, void *value) {
  char buf[300];
  (void)self;
  memset(buf, 1, sizeof buf);
  coro_switch(main_coro(), value, NULL);
  return V(buf[0]);
}

static void *leave_suspended(void *out) {
  coro_t *c = mk_copying(e_suspend_forever, 0);
  if (c) CHECK_ST(coro_switch(c, V(1), NULL), CORO_OK);
  *(coro_t **)out = c;
  return NULL;
}

TEST(orphaned_copying_coroutine_can_be_destroyed) {
  pthread_t t;
  coro_t *c = NULL;
  if (!CHECK_EQ(pthread_create(&t, NULL, leave_suspended, &c), 0)) return;
  pthread_join(t, NULL);
  if (!CHECK(c != NULL)) return;
  CHECK_ST(coro_destroy(c), CORO_OK);
}

/* ---- overflow of the shared stack is reported by name ------------------------------------------ */

static long recurse(long n) {
  volatile char buf[1024];
  buf[0] = (char)n;
  return n == 0 ? buf[0] : recurse(n - 1) + buf[0];
}

static void *e_overflow(coro_t *self, void *value) {
  (void)self;
  return V(recurse((long)U(value)));
}

static void overflow_child(void *arg) {
  coro_options_t o;
  coro_t *c = NULL;
  (void)arg;
  coro_options_init(&o);
  o.flags = CORO_FLAG_COPYING;
  o.stack_size = 64 * 1024;
  o.name = "copier";
  if (coro_new(e_overflow, &o, &c) != CORO_OK) exit(3);
  coro_switch(c, V(1000), NULL);
  exit(4);
}

TEST(overflow_in_copying_mode_names_the_coroutine) {
  struct child_result r;
  if (fork_tests_disabled() || TEST_ASAN) {
    test_skip("fork-based test (valgrind/ASan)");
    return;
  }
  if (!CHECK(run_in_child(overflow_child, NULL, &r) == 0)) return;
  CHECK(strstr(r.err, "stack overflow in coroutine 'copier'") != NULL);
}

