/* Argument checking, status strings, version, options, names, userdata, ids (include/coro.h). */
#include <stddef.h>

#include "util.h"

static int g_ran;

static void *e_ret(coro_t *self, void *value) {
  (void)self;
  g_ran++;
  return value;
}

/* ---- NULL arguments ----------------------------------------------------------------------------- */

TEST(null_arguments_are_einval_and_outputs_untouched) {
  coro_t *c, *out = SENTINEL_CORO;
  void *r = SENTINEL_PTR, *ud = SENTINEL_PTR;
  coro_state_t s = SENTINEL_STATE;
  const char *nm = SENTINEL_STR;
  uint64_t id = SENTINEL_ID;
  coro_options_t o;
  uint64_t cid;

  g_ran = 0;
  c = mk_full(e_ret, 0, "keep", V(0x1234));
  if (!c) return;
  cid = id_of(c);

  CHECK_ST(coro_options_init(NULL), CORO_EINVAL);

  CHECK_ST(coro_new(NULL, NULL, &out), CORO_EINVAL);
  CHECK_PTR_EQ(out, SENTINEL_CORO);
  CHECK_ST(coro_options_init(&o), CORO_OK);
  CHECK_ST(coro_new(NULL, &o, &out), CORO_EINVAL);
  CHECK_PTR_EQ(out, SENTINEL_CORO);
  CHECK_ST(coro_new(e_ret, NULL, NULL), CORO_EINVAL);
  CHECK_ST(coro_new(e_ret, &o, NULL), CORO_EINVAL);

  CHECK_ST(coro_switch(NULL, V(1), &r), CORO_EINVAL);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_switch(NULL, V(1), NULL), CORO_EINVAL);
  CHECK_ST(coro_kill(NULL, V(1), &r), CORO_EINVAL);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_destroy(NULL), CORO_EINVAL);

  CHECK_ST(coro_current(NULL), CORO_EINVAL);
  CHECK_ST(coro_main(NULL), CORO_EINVAL);

  CHECK_ST(coro_state(NULL, &s), CORO_EINVAL);
  CHECK_EQ(s, SENTINEL_STATE);
  CHECK_ST(coro_state(c, NULL), CORO_EINVAL);

  CHECK_ST(coro_parent(NULL, &out), CORO_EINVAL);
  CHECK_PTR_EQ(out, SENTINEL_CORO);
  CHECK_ST(coro_parent(c, NULL), CORO_EINVAL);

  CHECK_ST(coro_set_parent(NULL, c), CORO_EINVAL);
  CHECK_ST(coro_set_parent(c, NULL), CORO_EINVAL);

  CHECK_ST(coro_set_userdata(NULL, V(9)), CORO_EINVAL);
  CHECK_ST(coro_userdata(NULL, &ud), CORO_EINVAL);
  CHECK_PTR_EQ(ud, SENTINEL_PTR);
  CHECK_ST(coro_userdata(c, NULL), CORO_EINVAL);

  CHECK_ST(coro_set_name(NULL, "x"), CORO_EINVAL);
  CHECK_ST(coro_set_name(NULL, NULL), CORO_EINVAL);
  CHECK_ST(coro_name(NULL, &nm), CORO_EINVAL);
  CHECK_PTR_EQ(nm, SENTINEL_STR);
  CHECK_ST(coro_name(c, NULL), CORO_EINVAL);

  CHECK_ST(coro_id(NULL, &id), CORO_EINVAL);
  CHECK_EQ(id, SENTINEL_ID);
  CHECK_ST(coro_id(c, NULL), CORO_EINVAL);

  /* c is unchanged by all of that */
  CHECK_STATE(c, CORO_NEW);
  CHECK_EQ(id_of(c), cid);
  CHECK_PARENT(c, main_coro());
  CHECK_ST(coro_userdata(c, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, V(0x1234));
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "keep");
  CHECK_EQ(g_ran, 0);
  CHECK_SAME(cur(), main_coro());
  destroy_ok(c);
}

/* ---- strerror, version ------------------------------------------------------------------------------ */

TEST(strerror_is_distinct_and_nonempty_for_every_status) {
  static const coro_status_t all[] = {CORO_OK,      CORO_KILLED, CORO_EINVAL, CORO_ESTALE,
                                      CORO_EDEAD,   CORO_ETHREAD, CORO_EBUSY, CORO_ECYCLE,
                                      CORO_ENOMEM,  CORO_EMAIN,  CORO_EPANIC};
  const size_t n = sizeof all / sizeof all[0];
  size_t i, j;
  for (i = 0; i < n; i++) {
    const char *s = coro_strerror(all[i]);
    if (!CHECK(s != NULL)) continue;
    CHECK(s[0] != '\0');
    for (j = 0; j < i; j++) {
      const char *t = coro_strerror(all[j]);
      if (t != NULL && strcmp(s, t) == 0) {
        CHECK(!"two statuses share a message");
        printf("    statuses %u and %u: \"%s\"\n", (unsigned)all[i], (unsigned)all[j], s);
      }
    }
  }
}

TEST(status_numbers_are_fixed) {
  CHECK_EQ(CORO_OK, 0);
  CHECK_EQ(CORO_KILLED, 1);
  CHECK_EQ(CORO_EINVAL, 2);
  CHECK_EQ(CORO_ESTALE, 3);
  CHECK_EQ(CORO_EDEAD, 4);
  CHECK_EQ(CORO_ETHREAD, 5);
  CHECK_EQ(CORO_EBUSY, 6);
  CHECK_EQ(CORO_ECYCLE, 7);
  CHECK_EQ(CORO_ENOMEM, 8);
  CHECK_EQ(CORO_EMAIN, 9);
  CHECK_EQ(CORO_EPANIC, 10);
  CHECK_EQ(CORO_NEW, 0);
  CHECK_EQ(CORO_RUNNING, 1);
  CHECK_EQ(CORO_SUSPENDED, 2);
  CHECK_EQ(CORO_DEAD, 3);
  CHECK_EQ(sizeof(coro_status_t), 4);
  CHECK_EQ(sizeof(coro_state_t), 4);
}

TEST(strerror_of_unknown_status_is_not_null) {
  static const coro_status_t unknown[] = {11, 12, 100, 0x7fffffffu, 0xffffffffu};
  size_t i;
  for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) CHECK(coro_strerror(unknown[i]) != NULL);
}

TEST(version_matches_macros) {
  char want[64];
  const char *v = coro_version();
  snprintf(want, sizeof want, "%d.%d.%d", (int)CORO_VERSION_MAJOR, (int)CORO_VERSION_MINOR,
           (int)CORO_VERSION_PATCH);
  CHECK_STR_EQ(v, want);
  CHECK_STR_EQ(v, "0.1.0");
  CHECK_PTR_EQ(coro_version(), v); /* a static string */
}

/* ---- options ------------------------------------------------------------------------------------- */

TEST(options_init_fills_defaults) {
  coro_options_t o;
  memset(&o, 0xa5, sizeof o);
  CHECK_ST(coro_options_init(&o), CORO_OK);
  CHECK_EQ(o.struct_size, sizeof(coro_options_t));
  CHECK(o.stack_size == 0 || o.stack_size == CORO_DEFAULT_STACK_SIZE);
  CHECK_PTR_EQ(o.name, NULL);
  CHECK_PTR_EQ(o.userdata, NULL);
  CHECK_EQ(o.flags, 0);
}

TEST(stack_size_macros_are_sane) {
  CHECK_EQ((size_t)CORO_DEFAULT_STACK_SIZE, (size_t)256 * 1024);
  CHECK_EQ((size_t)CORO_MIN_STACK_SIZE, (size_t)16 * 1024);
  CHECK_EQ((size_t)CORO_MAX_STACK_SIZE, (size_t)1024 * 1024 * 1024);
}

static void check_new_refused(const coro_options_t *o, const char *what) {
  coro_t *out = SENTINEL_CORO;
  int before = g_ran;
  if (!CHECK_ST(coro_new(e_ret, o, &out), CORO_EINVAL)) printf("    (options: %s)\n", what);
  CHECK_PTR_EQ(out, SENTINEL_CORO);
  CHECK_EQ(g_ran, before);
}

static void check_new_runs(const coro_options_t *o, const char *what) {
  coro_t *c = NULL;
  void *r = SENTINEL_PTR;
  if (!CHECK_ST(coro_new(e_ret, o, &c), CORO_OK)) {
    printf("    (options: %s)\n", what);
    return;
  }
  CHECK_ST(coro_switch(c, V(0x51), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(0x51));
  destroy_ok(c);
}

TEST(stack_size_limits) {
  coro_options_t o;
  coro_t *c = SENTINEL_CORO;
  coro_status_t st;
  CHECK_ST(coro_options_init(&o), CORO_OK);
  g_ran = 0;
  o.stack_size = 1;
  check_new_refused(&o, "stack_size 1");
  o.stack_size = (size_t)CORO_MIN_STACK_SIZE - 1;
  check_new_refused(&o, "stack_size MIN-1");
  o.stack_size = (size_t)CORO_MIN_STACK_SIZE / 2;
  check_new_refused(&o, "stack_size MIN/2");
  o.stack_size = (size_t)CORO_MAX_STACK_SIZE + 1;
  check_new_refused(&o, "stack_size MAX+1");
  o.stack_size = (size_t)CORO_MAX_STACK_SIZE * 2;
  check_new_refused(&o, "stack_size 2*MAX");
  o.stack_size = SIZE_MAX;
  check_new_refused(&o, "stack_size SIZE_MAX");
  o.stack_size = SIZE_MAX - 4095;
  check_new_refused(&o, "stack_size SIZE_MAX-4095");

  o.stack_size = 0;
  check_new_runs(&o, "stack_size 0");
  o.stack_size = CORO_MIN_STACK_SIZE;
  check_new_runs(&o, "stack_size MIN");
  o.stack_size = (size_t)CORO_MIN_STACK_SIZE + 1; /* rounded up to whole pages */
  check_new_runs(&o, "stack_size MIN+1");
  o.stack_size = (size_t)CORO_MIN_STACK_SIZE + 100;
  check_new_runs(&o, "stack_size MIN+100");
  o.stack_size = CORO_DEFAULT_STACK_SIZE;
  check_new_runs(&o, "stack_size DEFAULT");

  /* MAX is accepted (the machine may still lack the memory: ENOMEM is acceptable, EINVAL is not) */
  o.stack_size = CORO_MAX_STACK_SIZE;
  st = coro_new(e_ret, &o, &c);
  CHECK(st == CORO_OK || st == CORO_ENOMEM);
  if (st == CORO_OK) {
    destroy_ok(c);
  } else {
    CHECK_PTR_EQ(c, SENTINEL_CORO);
  }
}

TEST(unknown_flags_are_einval) {
  coro_options_t o;
  CHECK_ST(coro_options_init(&o), CORO_OK);
  o.flags = CORO_FLAG_COPYING | CORO_FLAG_OWN_STACK; /* both modes at once */
  check_new_refused(&o, "flags 3");
  o.flags = 4; /* the first unknown bit */
  check_new_refused(&o, "flags 4");
  o.flags = 0x80000000u;
  check_new_refused(&o, "flags 0x80000000");
  o.flags = 0xffffffffu;
  check_new_refused(&o, "flags ~0");
}

TEST(struct_size_smaller_than_v1_is_einval) {
  coro_options_t o;
  CHECK_ST(coro_options_init(&o), CORO_OK);
  o.struct_size = 0;
  check_new_refused(&o, "struct_size 0");
  o.struct_size = 8;
  check_new_refused(&o, "struct_size 8");
  o.struct_size = offsetof(coro_options_t, flags);
  check_new_refused(&o, "struct_size offsetof(flags)");
  o.struct_size = sizeof(coro_options_t);
  check_new_runs(&o, "struct_size sizeof");
}

TEST(null_options_mean_defaults) {
  coro_t *c = mk(e_ret);
  const char *nm = SENTINEL_STR;
  void *ud = SENTINEL_PTR;
  if (!c) return;
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_PTR_EQ(nm, NULL);
  CHECK_ST(coro_userdata(c, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, NULL);
  CHECK_STATE(c, CORO_NEW);
  destroy_ok(c);
}

TEST(options_name_and_userdata_are_applied) {
  coro_t *c = mk_full(e_ret, 0, "from-options", V(0xabc));
  const char *nm = SENTINEL_STR;
  void *ud = SENTINEL_PTR;
  if (!c) return;
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "from-options");
  CHECK_ST(coro_userdata(c, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, V(0xabc));
  destroy_ok(c);
}

/* ---- names ----------------------------------------------------------------------------------------- */

TEST(name_from_options_is_copied) {
  char buf[32];
  coro_t *c;
  const char *nm = SENTINEL_STR;
  strcpy(buf, "original");
  c = mk_full(e_ret, 0, buf, NULL);
  if (!c) return;
  memset(buf, 'X', sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "original");
  CHECK(nm != buf);
  destroy_ok(c);
}

TEST(set_name_copies_and_null_clears) {
  char buf[32];
  coro_t *c = mk(e_ret);
  const char *nm = SENTINEL_STR;
  if (!c) return;
  strcpy(buf, "first");
  CHECK_ST(coro_set_name(c, buf), CORO_OK);
  strcpy(buf, "mutated");
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "first");
  CHECK_ST(coro_set_name(c, "second"), CORO_OK);
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "second");
  CHECK_ST(coro_set_name(c, NULL), CORO_OK);
  nm = SENTINEL_STR;
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_PTR_EQ(nm, NULL);
  /* names survive running and dying */
  CHECK_ST(coro_set_name(c, "third"), CORO_OK);
  CHECK_ST(coro_switch(c, NULL, NULL), CORO_OK);
  CHECK_STATE(c, CORO_DEAD);
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "third");
  CHECK_ST(coro_set_name(c, "fourth"), CORO_OK);
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "fourth");
  destroy_ok(c);
}

TEST(long_name_is_copied_whole) {
  char buf[1001];
  coro_t *c = mk(e_ret);
  const char *nm = SENTINEL_STR;
  size_t i;
  if (!c) return;
  for (i = 0; i < sizeof buf - 1; i++) buf[i] = (char)('a' + (char)(i % 26));
  buf[sizeof buf - 1] = '\0';
  CHECK_ST(coro_set_name(c, buf), CORO_OK);
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  CHECK_STR_EQ(nm, buf);
  destroy_ok(c);
}

static void *e_name_inside(coro_t *self, void *value) {
  const char *nm = SENTINEL_STR;
  CHECK_ST(coro_name(self, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "outer");
  CHECK_ST(coro_set_name(self, "inner"), CORO_OK);
  CHECK_ST(coro_switch(main_coro(), NULL, NULL), CORO_OK);
  return value;
}

TEST(name_pointer_stays_valid_until_set_name) {
  coro_t *c = mk_full(e_ret, 0, "stable", NULL), *d = mk_full(e_name_inside, 0, "outer", NULL);
  const char *nm = SENTINEL_STR, *nm2 = SENTINEL_STR;
  int i;
  if (!c || !d) return;
  CHECK_ST(coro_name(c, &nm), CORO_OK);
  /* other activity: creating, running and destroying coroutines, renaming another one */
  CHECK_ST(coro_switch(d, NULL, NULL), CORO_OK);
  CHECK_ST(coro_name(d, &nm2), CORO_OK);
  CHECK_STR_EQ(nm2, "inner");
  for (i = 0; i < 50; i++) {
    coro_t *t = mk_full(e_ret, 0, "temporary", NULL);
    if (!t) break;
    CHECK_ST(coro_switch(t, NULL, NULL), CORO_OK);
    destroy_ok(t);
  }
  CHECK_ST(coro_switch(c, NULL, NULL), CORO_OK); /* c runs and dies */
  CHECK_STR_EQ(nm, "stable");
  CHECK_STR_EQ(nm2, "inner");
  CHECK_ST(coro_switch(d, NULL, NULL), CORO_OK);
  destroy_ok(c);
  destroy_ok(d);
}

TEST(main_can_be_named) {
  coro_t *m = main_coro();
  const char *nm = SENTINEL_STR;
  CHECK_ST(coro_set_name(m, "the-main"), CORO_OK);
  CHECK_ST(coro_name(m, &nm), CORO_OK);
  CHECK_STR_EQ(nm, "the-main");
  CHECK_ST(coro_set_name(m, NULL), CORO_OK);
  CHECK_ST(coro_name(m, &nm), CORO_OK);
  CHECK_PTR_EQ(nm, NULL);
}

/* ---- userdata ------------------------------------------------------------------------------------- */

static void *e_userdata_inside(coro_t *self, void *value) {
  void *ud = SENTINEL_PTR;
  CHECK_ST(coro_userdata(self, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, V(0x10));
  CHECK_ST(coro_set_userdata(self, V(0x20)), CORO_OK);
  return value;
}

TEST(userdata_set_and_get) {
  coro_t *c = mk(e_userdata_inside), *m = main_coro();
  void *ud = SENTINEL_PTR, *old = SENTINEL_PTR;
  if (!c) return;
  CHECK_ST(coro_set_userdata(c, V(0x10)), CORO_OK);
  CHECK_ST(coro_userdata(c, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, V(0x10));
  CHECK_ST(coro_switch(c, NULL, NULL), CORO_OK);
  CHECK_ST(coro_userdata(c, &ud), CORO_OK); /* readable on a DEAD coroutine */
  CHECK_PTR_EQ(ud, V(0x20));
  CHECK_ST(coro_set_userdata(c, NULL), CORO_OK);
  CHECK_ST(coro_userdata(c, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, NULL);
  destroy_ok(c);
  /* main has userdata too */
  CHECK_ST(coro_userdata(m, &old), CORO_OK);
  CHECK_ST(coro_set_userdata(m, V(0x30)), CORO_OK);
  CHECK_ST(coro_userdata(m, &ud), CORO_OK);
  CHECK_PTR_EQ(ud, V(0x30));
  CHECK_ST(coro_set_userdata(m, old), CORO_OK);
}

/* ---- ids ------------------------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

#define N_IDS 2000

TEST(ids_are_unique_stable_and_never_reused) {
  static uint64_t ids[N_IDS + 1];
  int i;
  ids[0] = id_of(main_coro());
  CHECK_EQ(id_of(main_coro()), ids[0]);
  for (i = 1; i <= N_IDS; i++) {
    coro_t *c = mk(e_ret);
    if (!c) return;
    ids[i] = id_of(c);
    if (i % 2) {
      CHECK_ST(coro_switch(c, NULL, NULL), CORO_OK);
      CHECK_EQ(id_of(c), ids[i]); /* same when DEAD */
    }
    destroy_ok(c);
  }
  qsort(ids, N_IDS + 1, sizeof ids[0], cmp_u64);
  for (i = 1; i <= N_IDS; i++) {
    if (!CHECK_NE(ids[i], ids[i - 1])) break;
  }
}

/* ---- ENOMEM (forked child with an address-space limit) -------------------------------------------- */

static void *e_hold(coro_t *self, void *value) {
  (void)self;
  coro_switch(main_coro(), value, NULL); /* keeps its stack while suspended */
  return NULL;
}

/* Child: limit the address space, then create MAX-sized coroutines and keep each one suspended
 * (so its stack is in use) until a stack cannot be mapped. A free stack kept by the per-thread
 * pool may satisfy the first requests, so a few attempts are made. */
static void child_enomem(void *arg) {
  struct rlimit lim;
  coro_options_t o;
  long long vm = vm_bytes();
  int i;
  (void)arg;
  (void)main_coro(); /* the per-thread machinery exists before memory is limited */
  if (vm < 0) _exit(20);
  lim.rlim_cur = lim.rlim_max = (rlim_t)vm + 64 * 1024 * 1024;
  if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(21);
  coro_options_init(&o);
  o.stack_size = CORO_MAX_STACK_SIZE;
  for (i = 0; i < 8; i++) {
    coro_t *c = SENTINEL_CORO;
    coro_state_t s = SENTINEL_STATE;
    coro_status_t st = coro_new(e_hold, &o, &c);
    if (st == CORO_ENOMEM) _exit(c == SENTINEL_CORO ? 0 : 22);
    if (st != CORO_OK) _exit(23);
    /* the stack may be allocated lazily at the first switch */
    st = coro_switch(c, V(1), NULL);
    if (st == CORO_ENOMEM) {
      if (coro_state(c, &s) != CORO_OK || s != CORO_NEW) _exit(25);
      if (coro_destroy(c) != CORO_OK) _exit(26);
      _exit(0);
    }
    if (st != CORO_OK) _exit(24);
  }
  _exit(27); /* never ran out of memory */
}

TEST(enomem_when_the_stack_cannot_be_mapped) {
  struct child_result *r;
  if (under_qemu()) {
    test_skip(QEMU_SKIP_REASON);
    return;
  }
  if (fork_tests_disabled() || TEST_ASAN) {
    test_skip("needs fork and a plain (non-sanitizer) address space");
    return;
  }
  r = malloc(sizeof *r);
  if (!CHECK(r != NULL)) return;
  if (CHECK(run_in_child(child_enomem, NULL, r) == 0)) {
    if (!CHECK(r->exited && r->exit_code == 0))
      printf("    child: exited=%d code=%d signal=%d stderr=%s\n", r->exited, r->exit_code,
             r->signo, r->err);
  }
  free(r);
}
