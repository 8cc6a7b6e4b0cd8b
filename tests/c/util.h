/* Helpers shared by the C tests (header-only; include after test.h). */
#ifndef CORO_TEST_UTIL_H
#define CORO_TEST_UTIL_H

#include "test.h"

#define V(n) ((void *)(uintptr_t)(n))
#define U(p) ((uintptr_t)(p))

/* Sentinels used to verify that out-parameters are left untouched on errors. */
#define SENTINEL_PTR ((void *)(uintptr_t)0x5e5e5e5e5e5eULL)
#define SENTINEL_CORO ((coro_t *)(uintptr_t)0x5e5e5e5e5e50ULL)
#define SENTINEL_STR ((const char *)(uintptr_t)0x5e5e5e5e5e58ULL)
#define SENTINEL_ID 0xfeedfacecafebeefULL
#define SENTINEL_STATE ((coro_state_t)0x5e5e5e5e)

#define ID_ERR UINT64_MAX
#define STATE_ERR ((coro_state_t)0xffffffffu)

/* Under AddressSanitizer/valgrind memory numbers (RSS) are meaningless. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif

static inline int under_valgrind(void) { return test_env_flag("CORO_TEST_VALGRIND"); }
static inline int fork_tests_disabled(void) {
  return test_env_flag("CORO_TEST_NO_FORK") || under_valgrind();
}
static inline int rss_checks_disabled(void) {
  return TEST_ASAN || test_env_flag("CORO_TEST_NO_RSS") || under_valgrind();
}

static inline coro_t *mk_opts(coro_entry_t entry, const coro_options_t *opts) {
  coro_t *c = NULL;
  CHECK_ST(coro_new(entry, opts, &c), CORO_OK);
  CHECK(c != NULL);
  return c;
}

static inline coro_t *mk(coro_entry_t entry) { return mk_opts(entry, NULL); }

static inline coro_t *mk_full(coro_entry_t entry, size_t stack_size, const char *name,
                              void *userdata) {
  coro_options_t o;
  CHECK_ST(coro_options_init(&o), CORO_OK);
  o.stack_size = stack_size;
  o.name = name;
  o.userdata = userdata;
  return mk_opts(entry, &o);
}

static inline coro_t *main_coro(void) {
  coro_t *m = NULL;
  CHECK_ST(coro_main(&m), CORO_OK);
  CHECK(m != NULL);
  return m;
}

static inline coro_t *cur(void) {
  coro_t *c = NULL;
  CHECK_ST(coro_current(&c), CORO_OK);
  CHECK(c != NULL);
  return c;
}

static inline uint64_t id_of(const coro_t *c) {
  uint64_t id = ID_ERR;
  if (!CHECK_ST(coro_id(c, &id), CORO_OK)) return ID_ERR;
  return id;
}

static inline coro_state_t state_of(const coro_t *c) {
  coro_state_t s = STATE_ERR;
  if (!CHECK_ST(coro_state(c, &s), CORO_OK)) return STATE_ERR;
  return s;
}

static inline coro_t *parent_of(const coro_t *c) {
  coro_t *p = SENTINEL_CORO;
  if (!CHECK_ST(coro_parent(c, &p), CORO_OK)) return SENTINEL_CORO;
  return p;
}

/* Identity of coroutines is compared by id (the contract does not promise that two handles of
 * one coroutine are the same pointer). */
static inline int same(const coro_t *a, const coro_t *b) {
  if (a == NULL || b == NULL) return a == b;
  return id_of(a) == id_of(b);
}

#define CHECK_SAME(a, b) CHECK_EQ(id_of(a), id_of(b))
#define CHECK_STATE(c, s) CHECK_EQ(state_of(c), (s))
#define CHECK_PARENT(c, p) CHECK_EQ(id_of(parent_of(c)), id_of(p))

static inline void destroy_ok(coro_t *c) { CHECK_ST(coro_destroy(c), CORO_OK); }

/* Every call that takes a handle must return `want` (CORO_ESTALE for a destroyed handle,
 * CORO_ETHREAD for another thread's coroutine) and leave out-parameters untouched. `other` is a
 * valid coroutine of the calling thread (used for set_parent in both roles). Returns the number of
 * failed checks (0 = all good). Does not call coro_destroy (callers decide). */
static inline int check_handle_refused(coro_t *h, coro_t *other, coro_status_t want) {
  int before = atomic_load(&test_failures_);
  void *r = SENTINEL_PTR;
  coro_state_t s = SENTINEL_STATE;
  coro_t *p = SENTINEL_CORO;
  void *ud = SENTINEL_PTR;
  const char *nm = SENTINEL_STR;
  uint64_t id = SENTINEL_ID;

  CHECK_ST(coro_switch(h, V(1), &r), want);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_switch(h, V(1), NULL), want);
  CHECK_ST(coro_kill(h, V(2), &r), want);
  CHECK_PTR_EQ(r, SENTINEL_PTR);
  CHECK_ST(coro_kill(h, V(2), NULL), want);
  CHECK_ST(coro_state(h, &s), want);
  CHECK_EQ(s, SENTINEL_STATE);
  CHECK_ST(coro_parent(h, &p), want);
  CHECK_PTR_EQ(p, SENTINEL_CORO);
  if (other != NULL) {
    CHECK_ST(coro_set_parent(h, other), want);
    CHECK_ST(coro_set_parent(other, h), want);
  }
  CHECK_ST(coro_set_userdata(h, V(3)), want);
  CHECK_ST(coro_userdata(h, &ud), want);
  CHECK_PTR_EQ(ud, SENTINEL_PTR);
  CHECK_ST(coro_set_name(h, "refused"), want);
  CHECK_ST(coro_set_name(h, NULL), want);
  CHECK_ST(coro_name(h, &nm), want);
  CHECK_PTR_EQ(nm, SENTINEL_STR);
  CHECK_ST(coro_id(h, &id), want);
  CHECK_EQ(id, SENTINEL_ID);
  return atomic_load(&test_failures_) - before;
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline long long rss_bytes(void) {
  long long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  if (fscanf(f, "%lld %lld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (long long)sysconf(_SC_PAGESIZE);
}

static inline long long vm_bytes(void) {
  long long size = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  if (fscanf(f, "%lld", &size) != 1) size = -1;
  fclose(f);
  return size < 0 ? -1 : size * (long long)sysconf(_SC_PAGESIZE);
}

#endif
