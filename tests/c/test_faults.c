/* Faults not covered elsewhere (docs/reliability.md has the full table): running out of address
 * space for stacks, then carrying on. */
#include "util.h"

#define HELD_MAX 256

static void *e_park(coro_t *self, void *value) {
  coro_t *m = NULL;
  void *back = NULL;
  (void)self;
  if (coro_main(&m) != CORO_OK) return NULL;
  if (coro_switch(m, value, &back) != CORO_OK) return NULL; /* suspended: its stack is in use */
  return (void *)((uintptr_t)back + 1);
}

/* Child: with the address space limited, start 8 MiB coroutines until a stack cannot be had
 * (CORO_ENOMEM, from coro_new or from the first switch), then check that nothing broke: every
 * started coroutine finishes, as many new ones run again, and a small one runs. Exit codes name
 * the step that failed. */
static void child_enomem_then_recover(void *arg) {
  static coro_t *held[HELD_MAX];
  struct rlimit lim;
  coro_options_t o;
  long long vm;
  int n = 0, i, hit = 0;
  (void)arg;
  (void)main_coro();
  vm = vm_bytes();
  if (vm < 0) _exit(20);
  lim.rlim_cur = lim.rlim_max = (rlim_t)vm + 128 * 1024 * 1024;
  if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(21);
  coro_options_init(&o);
  o.stack_size = 8 * 1024 * 1024;
  while (n < HELD_MAX) {
    coro_t *c = SENTINEL_CORO;
    void *got = NULL;
    coro_status_t st = coro_new(e_park, &o, &c);
    if (st == CORO_ENOMEM) {
      if (c != SENTINEL_CORO) _exit(22); /* out-param untouched on failure */
      hit = 1;
      break;
    }
    if (st != CORO_OK) _exit(23);
    st = coro_switch(c, V(n), &got);
    if (st == CORO_ENOMEM) {
      coro_state_t s = SENTINEL_STATE;
      if (coro_state(c, &s) != CORO_OK || s != CORO_NEW) _exit(24); /* nothing changed */
      if (coro_destroy(c) != CORO_OK) _exit(25);
      hit = 1;
      break;
    }
    if (st != CORO_OK || got != V(n)) _exit(26);
    held[n++] = c;
  }
  if (!hit) _exit(27);
  if (n == 0) _exit(28);
  for (i = 0; i < n; i++) { /* every started coroutine still finishes */
    void *got = NULL;
    if (coro_switch(held[i], V(i), &got) != CORO_OK || got != V(i + 1)) _exit(29);
    if (coro_destroy(held[i]) != CORO_OK) _exit(30);
  }
  for (i = 0; i < n; i++) { /* as many again: their stacks came back */
    void *got = NULL;
    if (coro_new(e_park, &o, &held[i]) != CORO_OK) _exit(31);
    if (coro_switch(held[i], V(i), &got) != CORO_OK || got != V(i)) _exit(32);
  }
  for (i = 0; i < n; i++) {
    if (coro_switch(held[i], V(i), NULL) != CORO_OK) _exit(33);
    if (coro_destroy(held[i]) != CORO_OK) _exit(34);
  }
  {
    coro_t *small = NULL;
    void *got = NULL;
    if (coro_new(e_park, NULL, &small) != CORO_OK) _exit(35);
    if (coro_switch(small, V(7), &got) != CORO_OK || got != V(7)) _exit(36);
    if (coro_switch(small, V(1), &got) != CORO_OK || got != V(2)) _exit(37);
    if (coro_destroy(small) != CORO_OK) _exit(38);
  }
  printf("%d stacks of 8 MiB, then CORO_ENOMEM; all recovered", n);
}

TEST(enomem_under_an_address_space_limit_then_the_process_keeps_working) {
  struct child_result *r;
  if (under_qemu()) {
    test_skip(QEMU_SKIP_REASON);
    return;
  }
  if (fork_tests_disabled() || TEST_ASAN || test_env_flag("CORO_TEST_TSAN")) {
    test_skip("needs fork and a plain (non-sanitizer) address space");
    return;
  }
  r = malloc(sizeof *r);
  if (!CHECK(r != NULL)) return;
  if (CHECK(run_in_child(child_enomem_then_recover, NULL, r) == 0)) {
    if (!CHECK(r->exited && r->exit_code == 0))
      printf("    child: exited=%d code=%d signal=%d stderr=%s\n", r->exited, r->exit_code, r->signo,
             r->err);
    else
      printf("    (child: %s)\n", r->out);
  }
  free(r);
}
