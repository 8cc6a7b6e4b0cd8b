/* OS threads (docs/semantics.md: Threads; States: one main per thread). */
#include <semaphore.h>

#include "util.h"

/* ---- stress: 8 threads x 1000 coroutines alive at once ------------------------------------------ */

#define N_THREADS 8
#define N_PER_THREAD 1000
#define N_ROUNDS 5

struct worker {
  int index;
  uint64_t main_id;
  uint64_t ids[N_PER_THREAD];
  int ok;
};

static _Thread_local coro_t *tl_main;

static uintptr_t stress_value(uintptr_t t, uintptr_t i, uintptr_t round) {
  return (t << 40) | (i << 16) | (round << 4) | 1;
}

static void *e_stress(coro_t *self, void *value) {
  uintptr_t v = U(value), t = v >> 40, i = (v >> 16) & 0xffffff, round;
  uintptr_t local_sum = 0;
  coro_t *c = NULL;
  CHECK_ST(coro_current(&c), CORO_OK);
  CHECK_EQ(id_of(c), id_of(self));
  CHECK_EQ(id_of(main_coro()), id_of(tl_main));
  for (round = 0; round < N_ROUNDS; round++) {
    CHECK_EQ(U(value), stress_value(t, i, round));
    local_sum += U(value);
    /* answer with a value derived from what we got */
    CHECK_ST(coro_switch(tl_main, V(U(value) ^ 0xff0), &value), CORO_OK);
  }
  CHECK_EQ(U(value), stress_value(t, i, N_ROUNDS));
  return V(local_sum);
}

static void *stress_thread(void *arg) {
  struct worker *w = arg;
  static _Thread_local coro_t *coros[N_PER_THREAD];
  uintptr_t t = (uintptr_t)w->index, i, round;
  int before = atomic_load(&test_failures_);
  tl_main = main_coro();
  w->main_id = id_of(tl_main);
  CHECK_EQ(state_of(tl_main), CORO_RUNNING);
  CHECK_EQ(id_of(cur()), w->main_id);
  for (i = 0; i < N_PER_THREAD; i++) {
    coros[i] = mk_full(e_stress, 64 * 1024, NULL, V(i));
    if (!coros[i]) return NULL;
    w->ids[i] = id_of(coros[i]);
    CHECK_EQ(id_of(parent_of(coros[i])), w->main_id);
  }
  for (round = 0; round < N_ROUNDS; round++) {
    for (i = 0; i < N_PER_THREAD; i++) {
      void *r = SENTINEL_PTR;
      CHECK_ST(coro_switch(coros[i], V(stress_value(t, i, round)), &r), CORO_OK);
      CHECK_EQ(U(r), stress_value(t, i, round) ^ 0xff0);
      if (round == 0) CHECK_EQ(state_of(coros[i]), CORO_SUSPENDED);
    }
  }
  for (i = 0; i < N_PER_THREAD; i++) {
    void *r = SENTINEL_PTR, *ud = SENTINEL_PTR;
    uintptr_t sum = 0;
    for (round = 0; round < N_ROUNDS; round++) sum += stress_value(t, i, round);
    CHECK_ST(coro_switch(coros[i], V(stress_value(t, i, N_ROUNDS)), &r), CORO_OK);
    CHECK_EQ(U(r), sum);
    CHECK_EQ(state_of(coros[i]), CORO_DEAD);
    CHECK_ST(coro_userdata(coros[i], &ud), CORO_OK);
    CHECK_PTR_EQ(ud, V(i));
    destroy_ok(coros[i]);
  }
  CHECK_EQ(id_of(cur()), w->main_id);
  w->ok = atomic_load(&test_failures_) == before;
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

TEST(eight_threads_each_with_1000_live_coroutines) {
  static struct worker w[N_THREADS];
  static uint64_t all[N_THREADS * (N_PER_THREAD + 1) + 1];
  pthread_t th[N_THREADS];
  size_t n = 0, k;
  int t, i;
  for (t = 0; t < N_THREADS; t++) {
    memset(&w[t], 0, sizeof w[t]);
    w[t].index = t + 1;
    w[t].main_id = ID_ERR;
    if (!CHECK_EQ(pthread_create(&th[t], NULL, stress_thread, &w[t]), 0)) return;
  }
  for (t = 0; t < N_THREADS; t++) CHECK_EQ(pthread_join(th[t], NULL), 0);
  for (t = 0; t < N_THREADS; t++) CHECK(w[t].ok);
  /* every thread's main is distinct from the others and from this thread's main; all ids differ */
  all[n++] = id_of(main_coro());
  for (t = 0; t < N_THREADS; t++) {
    all[n++] = w[t].main_id;
    for (i = 0; i < N_PER_THREAD; i++) all[n++] = w[t].ids[i];
  }
  qsort(all, n, sizeof all[0], cmp_u64);
  for (k = 1; k < n; k++)
    if (!CHECK_NE(all[k], all[k - 1])) break;
}

/* ---- each thread has its own main ------------------------------------------------------------------ */

struct main_info {
  uint64_t main_id, cur_id, parent_main_id;
  coro_state_t main_state;
  int parent_is_null;
};

static void *e_ret(coro_t *self, void *value) {
  (void)self;
  return value;
}

static void *main_info_thread(void *arg) {
  struct main_info *mi = arg;
  coro_t *m = main_coro(), *p = SENTINEL_CORO, *c;
  mi->main_id = id_of(m);
  mi->cur_id = id_of(cur());
  mi->main_state = state_of(m);
  CHECK_ST(coro_parent(m, &p), CORO_OK);
  mi->parent_is_null = p == NULL;
  c = mk(e_ret);
  if (c) {
    mi->parent_main_id = id_of(parent_of(c));
    CHECK_ST(coro_switch(c, V(1), NULL), CORO_OK);
    destroy_ok(c);
  }
  return NULL;
}

TEST(every_thread_has_its_own_main) {
  struct main_info mi[4];
  pthread_t th[4];
  uint64_t mine = id_of(main_coro());
  int t, u;
  memset(mi, 0, sizeof mi);
  for (t = 0; t < 4; t++)
    if (!CHECK_EQ(pthread_create(&th[t], NULL, main_info_thread, &mi[t]), 0)) return;
  for (t = 0; t < 4; t++) CHECK_EQ(pthread_join(th[t], NULL), 0);
  for (t = 0; t < 4; t++) {
    CHECK_NE(mi[t].main_id, mine);
    CHECK_EQ(mi[t].cur_id, mi[t].main_id);
    CHECK_EQ(mi[t].main_state, CORO_RUNNING);
    CHECK(mi[t].parent_is_null);
    CHECK_EQ(mi[t].parent_main_id, mi[t].main_id); /* default parent: that thread's main */
    for (u = 0; u < t; u++) CHECK_NE(mi[t].main_id, mi[u].main_id);
  }
}

/* The first library call of a fresh thread is coro_new: the thread's main is created lazily and
 * becomes the parent. */
struct lazy_info {
  uint64_t parent_id, main_id;
  void *ret;
  int ok;
};

static void *lazy_main_thread(void *arg) {
  struct lazy_info *li = arg;
  coro_t *c = NULL;
  li->ok = coro_new(e_ret, NULL, &c) == CORO_OK && c != NULL;
  if (!li->ok) return NULL;
  li->parent_id = id_of(parent_of(c));
  li->main_id = id_of(main_coro());
  CHECK_ST(coro_switch(c, V(11), &li->ret), CORO_OK);
  destroy_ok(c);
  return NULL;
}

TEST(main_is_created_lazily_by_coro_new_in_a_fresh_thread) {
  struct lazy_info li;
  pthread_t th;
  memset(&li, 0, sizeof li);
  if (!CHECK_EQ(pthread_create(&th, NULL, lazy_main_thread, &li), 0)) return;
  CHECK_EQ(pthread_join(th, NULL), 0);
  CHECK(li.ok);
  CHECK_EQ(li.parent_id, li.main_id);
  CHECK_NE(li.main_id, id_of(main_coro()));
  CHECK_PTR_EQ(li.ret, V(11));
}

/* ---- cross-thread calls are refused with ETHREAD and change nothing ----------------------------- */

static sem_t s_ready, s_go, s_done;
static coro_t *x_susp, *x_new, *x_dead, *x_main;
static int x_ok;

static void *e_x(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  CHECK_PTR_EQ(value, V(1));
  CHECK_ST(coro_switch(main_coro(), V(2), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(3));
  return V(4);
}

static void *owner_thread(void *arg) {
  void *r = SENTINEL_PTR, *ud = SENTINEL_PTR;
  const char *nm = SENTINEL_STR;
  coro_t *m = main_coro();
  int before = atomic_load(&test_failures_);
  (void)arg;
  x_main = m;
  x_susp = mk_full(e_x, 0, "x-susp", V(0x55));
  x_new = mk_full(e_x, 0, "x-new", V(0x66));
  x_dead = mk(e_ret);
  if (!x_susp || !x_new || !x_dead) {
    sem_post(&s_ready);
    return NULL;
  }
  CHECK_ST(coro_switch(x_susp, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2));
  CHECK_ST(coro_switch(x_dead, V(1), NULL), CORO_OK);
  sem_post(&s_ready);
  while (sem_wait(&s_go) != 0) {
  }
  /* nothing changed; everything still works here */
  CHECK_EQ(state_of(x_susp), CORO_SUSPENDED);
  CHECK_EQ(state_of(x_new), CORO_NEW);
  CHECK_EQ(state_of(x_dead), CORO_DEAD);
  CHECK_EQ(state_of(m), CORO_RUNNING);
  CHECK_EQ(id_of(parent_of(x_susp)), id_of(m));
  CHECK_EQ(id_of(parent_of(x_new)), id_of(m));
  CHECK_ST(coro_name(x_susp, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "x-susp");
  CHECK_ST(coro_userdata(x_susp, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, V(0x55));
  CHECK_ST(coro_name(x_new, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "x-new");
  CHECK_ST(coro_switch(x_susp, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4));
  CHECK_ST(coro_switch(x_new, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2));
  CHECK_ST(coro_switch(x_new, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4));
  destroy_ok(x_susp);
  destroy_ok(x_new);
  destroy_ok(x_dead);
  x_ok = atomic_load(&test_failures_) == before;
  sem_post(&s_done);
  return NULL;
}

static void *e_cross_inside(coro_t *self, void *value) {
  /* cross-thread calls made from inside a coroutine are refused the same way */
  (void)self;
  CHECK_ST(coro_switch(x_susp, V(1), NULL), CORO_ETHREAD);
  CHECK_ST(coro_kill(x_susp, V(1), NULL), CORO_ETHREAD);
  CHECK_ST(coro_destroy(x_new), CORO_ETHREAD);
  return value;
}

TEST(cross_thread_calls_are_ethread_and_change_nothing) {
  pthread_t th;
  coro_t *mine, *inner;
  coro_state_t s = SENTINEL_STATE;
  void *r = SENTINEL_PTR;
  x_ok = 0;
  x_susp = x_new = x_dead = x_main = NULL;
  sem_init(&s_ready, 0, 0);
  sem_init(&s_go, 0, 0);
  sem_init(&s_done, 0, 0);
  if (!CHECK_EQ(pthread_create(&th, NULL, owner_thread, NULL), 0)) return;
  while (sem_wait(&s_ready) != 0) {
  }
  mine = mk(e_ret);
  inner = mk(e_cross_inside);
  if (x_susp && x_new && x_dead && mine && inner) {
    CHECK_EQ(check_handle_refused(x_susp, mine, CORO_ETHREAD), 0);
    CHECK_EQ(check_handle_refused(x_new, mine, CORO_ETHREAD), 0);
    CHECK_EQ(check_handle_refused(x_dead, mine, CORO_ETHREAD), 0);
    CHECK_ST(coro_destroy(x_new), CORO_ETHREAD);
    CHECK_ST(coro_destroy(x_dead), CORO_ETHREAD);
    CHECK_ST(coro_destroy(x_susp), CORO_ETHREAD);
    /* the other thread's main */
    CHECK_ST(coro_switch(x_main, V(1), &r), CORO_ETHREAD);
    CHECK_PTR_EQ(r, SENTINEL_PTR);
    CHECK_ST(coro_state(x_main, &s), CORO_ETHREAD);
    CHECK_EQ(s, SENTINEL_STATE);
    CHECK_ST(coro_set_parent(mine, x_main), CORO_ETHREAD);
    {
      /* another thread's main: which refusal wins (ETHREAD or EMAIN) is not specified */
      coro_status_t st = coro_destroy(x_main);
      CHECK(st == CORO_ETHREAD || st == CORO_EMAIN);
    }
    /* our own coroutine is unaffected */
    CHECK_PARENT(mine, main_coro());
    CHECK_STATE(mine, CORO_NEW);
    CHECK_ST(coro_switch(inner, V(8), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(8));
    CHECK_ST(coro_switch(mine, V(9), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(9));
  }
  sem_post(&s_go);
  while (sem_wait(&s_done) != 0) {
  }
  CHECK_EQ(pthread_join(th, NULL), 0);
  CHECK(x_ok);
  if (mine) destroy_ok(mine);
  if (inner) destroy_ok(inner);
  sem_destroy(&s_ready);
  sem_destroy(&s_go);
  sem_destroy(&s_done);
}

/* ---- orphans: a thread exits leaving NEW, DEAD and SUSPENDED coroutines ----------------------- */

static coro_t *o_new, *o_dead, *o_susp, *o_susp2;
static int o_cleanup_ran, o_entry_ran;

static void *e_orphan(coro_t *self, void *value) {
  void *r = SENTINEL_PTR;
  (void)self;
  (void)value;
  o_entry_ran++;
  coro_switch(main_coro(), V(1), &r);
  o_cleanup_ran++; /* must never run */
  return NULL;
}

static void *e_orphan_new(coro_t *self, void *value) {
  (void)self;
  o_entry_ran += 100;
  return value;
}

static void *orphan_maker(void *arg) {
  (void)arg;
  o_new = mk(e_orphan_new);
  o_dead = mk(e_ret);
  o_susp = mk(e_orphan);
  o_susp2 = mk_full(e_orphan, CORO_MIN_STACK_SIZE, "orphan2", NULL);
  if (o_dead) CHECK_ST(coro_switch(o_dead, V(1), NULL), CORO_OK);
  if (o_susp) CHECK_ST(coro_switch(o_susp, NULL, NULL), CORO_OK);
  if (o_susp2) CHECK_ST(coro_switch(o_susp2, NULL, NULL), CORO_OK);
  return NULL; /* exits with them alive */
}

static void *destroy_from_third_thread(void *arg) {
  coro_t *c = arg;
  CHECK_ST(coro_destroy(c), CORO_OK);
  CHECK_ST(coro_destroy(c), CORO_ESTALE);
  return NULL;
}

TEST(orphans_of_an_exited_thread_can_be_destroyed_from_any_thread) {
  pthread_t th, th2;
  void *r = SENTINEL_PTR;
  coro_t *mine;
  o_new = o_dead = o_susp = o_susp2 = NULL;
  o_cleanup_ran = o_entry_ran = 0;
  if (!CHECK_EQ(pthread_create(&th, NULL, orphan_maker, NULL), 0)) return;
  CHECK_EQ(pthread_join(th, NULL), 0);
  if (!o_new || !o_dead || !o_susp || !o_susp2) return;
  CHECK_EQ(o_entry_ran, 2);
  /* they still belong to the exited thread: nothing can run them */
  mine = mk(e_ret);
  CHECK_ST(coro_switch(o_susp, V(1), &r), CORO_ETHREAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_kill(o_susp, V(1), &r), CORO_ETHREAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_switch(o_new, V(1), &r), CORO_ETHREAD);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  if (mine) {
    CHECK_ST(coro_set_parent(mine, o_susp), CORO_ETHREAD);
    CHECK_ST(coro_set_parent(o_susp, mine), CORO_ETHREAD);
  }
  /* destroy: SUSPENDED orphans release their stack without running */
  CHECK_ST(coro_destroy(o_susp), CORO_OK);
  CHECK_EQ(o_cleanup_ran, 0);
  CHECK_EQ(check_handle_refused(o_susp, mine, CORO_ESTALE), 0);
  CHECK_ST(coro_destroy(o_susp), CORO_ESTALE);
  CHECK_ST(coro_destroy(o_new), CORO_OK);
  CHECK_ST(coro_destroy(o_dead), CORO_OK);
  CHECK_ST(coro_destroy(o_new), CORO_ESTALE);
  CHECK_ST(coro_destroy(o_dead), CORO_ESTALE);
  /* ... from any thread */
  if (CHECK_EQ(pthread_create(&th2, NULL, destroy_from_third_thread, o_susp2), 0))
    CHECK_EQ(pthread_join(th2, NULL), 0);
  CHECK_EQ(o_cleanup_ran, 0);
  CHECK_EQ(o_entry_ran, 2);
  /* this thread is fine afterwards */
  if (mine) {
    CHECK_ST(coro_switch(mine, V(5), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(5));
    destroy_ok(mine);
  }
}

/* A thread that exits with nothing left behind, many times: per-thread state is released. */
static void *short_lived(void *arg) {
  coro_t *c = mk(e_x);
  void *r = SENTINEL_PTR;
  (void)arg;
  if (!c) return NULL;
  CHECK_ST(coro_switch(c, V(1), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(2));
  CHECK_ST(coro_switch(c, V(3), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(4));
  destroy_ok(c);
  return NULL;
}

TEST(many_short_lived_threads) {
  int i;
  for (i = 0; i < 200; i++) {
    pthread_t th;
    if (!CHECK_EQ(pthread_create(&th, NULL, short_lived, NULL), 0)) return;
    CHECK_EQ(pthread_join(th, NULL), 0);
  }
}
