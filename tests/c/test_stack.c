/* Stacks: sizes, guard region / overflow report, release and reuse (docs/semantics.md: Stacks;
 * Finishing: "its stack is released"). */
#include "util.h"

static volatile int g_never; /* always 0; keeps the compiler from proving recursion infinite */

/* Recurses until `target` bytes of stack below `top` are in use, touching every frame. Returns
 * a value that depends on every frame so that nothing is optimised away. */
__attribute__((noinline)) static unsigned recurse_to(const char *top, size_t target, unsigned depth) {
  volatile char buf[256];
  const char *here = __builtin_frame_address(0);
  size_t i;
  for (i = 0; i < sizeof buf; i++) buf[i] = (char)(depth + i);
  if (g_never || (size_t)(top - here) >= target) return buf[depth % sizeof buf];
  return recurse_to(top, target, depth + 1) + buf[(depth * 7) % sizeof buf];
}

/* Entry: value = number of bytes of stack to use; returns the bytes actually reached. */
static void *e_use_stack(coro_t *self, void *value) {
  const char *top = __builtin_frame_address(0);
  (void)self;
  (void)recurse_to(top, U(value), 0);
  return value;
}

static void use_stack_in(size_t stack_size, size_t bytes) {
  coro_t *c = mk_full(e_use_stack, stack_size, NULL, NULL);
  void *r = SENTINEL_PTR;
  if (!c) return;
  CHECK_ST(coro_switch(c, V(bytes), &r), CORO_OK);
  CHECK_PTR_EQ(r, V(bytes));
  CHECK_STATE(c, CORO_DEAD);
  destroy_ok(c);
}

TEST(custom_1mib_stack_holds_80_percent_in_frames) {
  use_stack_in(1024 * 1024, 1024 * 1024 * 8 / 10);
}

TEST(default_stack_holds_100kib_of_frames) { use_stack_in(0, 100 * 1024); }

TEST(minimum_stack_is_usable) { use_stack_in(CORO_MIN_STACK_SIZE, 4 * 1024); }

TEST(large_custom_stack_is_usable) { use_stack_in(16 * 1024 * 1024, 8 * 1024 * 1024); }

/* ---- overflow: a forked child must die of SIGABRT with one line on stderr -------------------- */

static char g_name_buf[64];

__attribute__((noinline)) static unsigned overflow(unsigned depth) {
  volatile char buf[512];
  size_t i;
  for (i = 0; i < sizeof buf; i += 64) buf[i] = (char)depth;
  if (g_never) return buf[0];
  return overflow(depth + 1) + buf[depth % sizeof buf];
}

static void *e_overflow(coro_t *self, void *value) {
  uint64_t id = id_of(self);
  const char *rename = value;
  if (rename != NULL) CHECK_ST(coro_set_name(self, rename), CORO_OK);
  printf("id=%llu\n", (unsigned long long)id);
  fflush(stdout);
  (void)overflow(0);
  return NULL;
}

struct overflow_case {
  const char *name;     /* via options (buffer overwritten after coro_new); NULL = unnamed */
  const char *rename;   /* via coro_set_name inside the coroutine; NULL = none */
  size_t stack_size;
  int in_thread;        /* run in a second OS thread */
};

static void overflow_body(const struct overflow_case *oc) {
  coro_t *c;
  if (oc->name != NULL) strcpy(g_name_buf, oc->name);
  c = mk_full(e_overflow, oc->stack_size, oc->name ? g_name_buf : NULL, NULL);
  if (c == NULL) _exit(40);
  memset(g_name_buf, 'Z', sizeof g_name_buf - 1); /* the name must have been copied */
  coro_switch(c, (void *)(uintptr_t)oc->rename, NULL);
  _exit(41); /* not reached */
}

static void *overflow_thread(void *arg) {
  overflow_body(arg);
  return NULL;
}

static void child_overflow(void *arg) {
  const struct overflow_case *oc = arg;
  if (oc->in_thread) {
    pthread_t th;
    if (pthread_create(&th, NULL, overflow_thread, arg) != 0) _exit(42);
    pthread_join(th, NULL);
    _exit(43); /* not reached */
  }
  overflow_body(oc);
}

/* `s` contains `n` in decimal as a whole number (not part of a longer run of digits). */
static int contains_number(const char *s, unsigned long long n) {
  char num[32];
  const char *p;
  size_t len = (size_t)snprintf(num, sizeof num, "%llu", n);
  for (p = s; (p = strstr(p, num)) != NULL; p++) {
    int before = p > s && p[-1] >= '0' && p[-1] <= '9';
    int after = p[len] >= '0' && p[len] <= '9';
    if (!before && !after) return 1;
  }
  return 0;
}

static void check_overflow(const struct overflow_case *oc, const char *expect_name) {
  struct child_result *r;
  unsigned long long id = 0;
  char want[256], text[512] = "";
  const char *p, *line = NULL;
  int lines = 0;
  if (under_qemu()) {
    test_skip(QEMU_SKIP_REASON);
    return;
  }
  if (fork_tests_disabled()) {
    test_skip("fork-based test disabled (CORO_TEST_NO_FORK / valgrind)");
    return;
  }
  r = malloc(sizeof *r);
  if (!CHECK(r != NULL)) return;
  if (!CHECK(run_in_child(child_overflow, (void *)oc, r) == 0)) goto out;
  CHECK(r->signaled);
  CHECK_EQ(r->signo, SIGABRT);
  CHECK(sscanf(r->out, "id=%llu", &id) == 1);
  /* exactly one such line, and it is the library's */
  for (p = r->err; (p = strstr(p, "stack overflow in coroutine")) != NULL; p++) {
    const char *bol = p;
    while (bol > r->err && bol[-1] != '\n') bol--;
    if (line == NULL) line = bol;
    lines++;
  }
  CHECK_EQ(lines, 1);
  if (line != NULL) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    snprintf(text, sizeof text, "%.*s", (int)len, line);
  }
  CHECK(strncmp(text, "uthread: stack overflow in coroutine ", 37) == 0);
  if (expect_name != NULL) {
    /* documented format: `uthread: stack overflow in coroutine 'NAME' (id N) ...` */
    snprintf(want, sizeof want, "uthread: stack overflow in coroutine '%s' (id %llu)", expect_name,
             id);
    CHECK(strncmp(text, want, strlen(want)) == 0);
  } else {
    /* no name: the coroutine is named by its id (the exact spelling is not pinned) */
    CHECK(contains_number(text + 37, id));
    CHECK(strstr(text, "''") == NULL);
  }
  if (atomic_load(&test_failures_) > 0)
    printf("    child: exited=%d code=%d signal=%d\n    stdout: %s\n    stderr: %s\n", r->exited,
           r->exit_code, r->signo, r->out, r->err);
  else
    printf("    (%s)\n", text);
out:
  free(r);
}

TEST(overflow_of_named_coroutine_aborts_with_its_name) {
  static const struct overflow_case oc = {"overflow-me", NULL, 0, 0};
  check_overflow(&oc, "overflow-me");
}

TEST(overflow_of_unnamed_coroutine_aborts_with_its_id) {
  static const struct overflow_case oc = {NULL, NULL, CORO_MIN_STACK_SIZE, 0};
  check_overflow(&oc, NULL);
}

TEST(overflow_after_set_name_reports_the_new_name) {
  static const struct overflow_case oc = {"before", "after-rename", 64 * 1024, 0};
  check_overflow(&oc, "after-rename");
}

TEST(overflow_in_a_second_thread_aborts_with_its_name) {
  static const struct overflow_case oc = {"thread-overflow", NULL, 0, 1};
  check_overflow(&oc, "thread-overflow");
}

TEST(overflow_of_large_stack_aborts) {
  static const struct overflow_case oc = {"big", NULL, 4 * 1024 * 1024, 0};
  check_overflow(&oc, "big");
}

/* The requested size is honoured: a 64 KiB stack holds 48 KiB of frames but not 128 KiB. */
TEST(stack_size_is_honoured_below) { use_stack_in(64 * 1024, 48 * 1024); }

static void child_use_too_much(void *arg) {
  coro_t *c = mk_full(e_use_stack, 64 * 1024, "small", NULL);
  (void)arg;
  if (c == NULL) _exit(40);
  coro_switch(c, V(128 * 1024), NULL);
  _exit(41); /* survived: the stack was larger than asked */
}

TEST(stack_size_is_honoured_above) {
  struct child_result *r;
  if (under_qemu()) {
    test_skip(QEMU_SKIP_REASON);
    return;
  }
  if (fork_tests_disabled()) {
    test_skip("fork-based test disabled (CORO_TEST_NO_FORK / valgrind)");
    return;
  }
  r = malloc(sizeof *r);
  if (!CHECK(r != NULL)) return;
  if (CHECK(run_in_child(child_use_too_much, NULL, r) == 0)) {
    CHECK(r->signaled && r->signo == SIGABRT);
    CHECK(strstr(r->err, "uthread: stack overflow in coroutine 'small'") != NULL);
    if (atomic_load(&test_failures_) > 0)
      printf("    child: exited=%d code=%d signal=%d stderr=%s\n", r->exited, r->exit_code,
             r->signo, r->err);
  }
  free(r);
}

/* ---- release and reuse --------------------------------------------------------------------------- */

static const char *g_frame;

static void *e_where(coro_t *self, void *value) {
  (void)self;
  g_frame = __builtin_frame_address(0);
  return value;
}

TEST(released_stack_is_reused_warm) {
  const char *first, *second;
  coro_t *a = mk(e_where), *b;
  if (!a) return;
  CHECK_ST(coro_switch(a, NULL, NULL), CORO_OK);
  first = g_frame;
  /* A is DEAD: its stack was released (not destroyed yet, on purpose) */
  b = mk(e_where);
  if (!b) return;
  CHECK_ST(coro_switch(b, NULL, NULL), CORO_OK);
  second = g_frame;
  /* same stack: the frames are at (about) the same place */
  CHECK((first > second ? first - second : second - first) < (ptrdiff_t)CORO_DEFAULT_STACK_SIZE);
  destroy_ok(a);
  destroy_ok(b);
}

static void *e_touch_32k(coro_t *self, void *value) {
  const char *top = __builtin_frame_address(0);
  (void)self;
  (void)recurse_to(top, 32 * 1024, 0);
  return value;
}

#define N_CHURN 10000

TEST(create_destroy_10000_does_not_grow_memory) {
  long long rss0, rss1, vm0, vm1;
  int i;
  for (i = 0; i < 200; i++) { /* warm up pools and allocators */
    coro_t *c = mk(e_touch_32k);
    if (!c) return;
    CHECK_ST(coro_switch(c, NULL, NULL), CORO_OK);
    destroy_ok(c);
  }
  rss0 = rss_bytes();
  vm0 = vm_bytes();
  for (i = 0; i < N_CHURN; i++) {
    void *r = SENTINEL_PTR;
    coro_t *c = mk(e_touch_32k);
    if (!c) return;
    if (!CHECK_ST(coro_switch(c, V(i), &r), CORO_OK)) return;
    CHECK_PTR_EQ(r, V(i));
    destroy_ok(c);
  }
  rss1 = rss_bytes();
  vm1 = vm_bytes();
  printf("    (rss %+lld KiB, vm %+lld KiB over %d coroutines)\n", (rss1 - rss0) / 1024,
         (vm1 - vm0) / 1024, N_CHURN);
  if (rss_checks_disabled()) {
    test_skip("memory numbers are meaningless under ASan/valgrind");
    return;
  }
  CHECK(rss1 - rss0 < 4LL * 1024 * 1024);
  CHECK(vm1 - vm0 < 64LL * 1024 * 1024);
}

#define N_DEAD 2000

static void *e_touch_64k(coro_t *self, void *value) {
  const char *top = __builtin_frame_address(0);
  (void)self;
  (void)recurse_to(top, 64 * 1024, 0);
  return value;
}

TEST(dead_coroutines_do_not_keep_their_stacks) {
  static coro_t *dead[N_DEAD];
  long long rss0, rss1;
  int i, n = 0;
  rss0 = rss_bytes();
  for (i = 0; i < N_DEAD; i++) {
    dead[i] = mk(e_touch_64k);
    if (!dead[i]) break;
    n++;
    CHECK_ST(coro_switch(dead[i], NULL, NULL), CORO_OK);
  }
  rss1 = rss_bytes();
  for (i = 0; i < n; i++) {
    CHECK_STATE(dead[i], CORO_DEAD);
    destroy_ok(dead[i]);
  }
  printf("    (rss %+lld KiB with %d DEAD, undestroyed coroutines that each used 64 KiB)\n",
         (rss1 - rss0) / 1024, n);
  if (rss_checks_disabled()) {
    test_skip("memory numbers are meaningless under ASan/valgrind");
    return;
  }
  /* 2000 kept stacks would be >= 125 MiB */
  CHECK(rss1 - rss0 < 16LL * 1024 * 1024);
}

/* Many live coroutines with default (256 KiB) stacks, each with 32 KiB in use at once. */
static void *e_touch_then_yield(coro_t *self, void *value) {
  const char *top = __builtin_frame_address(0);
  void *r = SENTINEL_PTR;
  (void)self;
  (void)recurse_to(top, 32 * 1024, 0);
  CHECK_ST(coro_switch(main_coro(), value, &r), CORO_OK);
  (void)recurse_to(top, 32 * 1024, 1);
  return r;
}

#define N_LIVE 2000

TEST(many_live_coroutines_with_default_stacks) {
  static coro_t *live[N_LIVE];
  int i, n = 0;
  for (i = 0; i < N_LIVE; i++) {
    void *r = SENTINEL_PTR;
    live[i] = mk_full(e_touch_then_yield, 0, NULL, NULL);
    if (!live[i]) break;
    n++;
    CHECK_ST(coro_switch(live[i], V(i), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(i));
  }
  for (i = 0; i < n; i++) {
    void *r = SENTINEL_PTR;
    CHECK_STATE(live[i], CORO_SUSPENDED);
    CHECK_ST(coro_switch(live[i], V(i + 1), &r), CORO_OK);
    CHECK_PTR_EQ(r, V(i + 1));
    destroy_ok(live[i]);
  }
  CHECK_EQ(n, N_LIVE);
}
