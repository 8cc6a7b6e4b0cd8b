/* Soak: create -> switch -> finish -> destroy, CYCLES times, with memory sampled 20 times.
 *
 * Usage: soak [CYCLES]   (default 1000000; at least 200000)
 *        SOAK_LEAK_EVERY=N soak [CYCLES]   (control: never destroy every Nth coroutine)
 *
 * Each cycle creates a coroutine, starts it (it touches 8 KiB of its stack and switches back with a
 * value), resumes it so that it finishes (its return value goes to main), and destroys it; every
 * 1000th coroutine is named, and every 100th is killed instead of resumed.
 *
 * Every CYCLES/20 cycles it samples two exact figures: the resident set from
 * /proc/self/smaps_rollup (a page-table walk; /proc/self/statm is the kernel's per-CPU
 * approximation and moves in 64 KiB steps on its own) and the bytes the allocator has handed out
 * and not got back (mallinfo2: uordblks + hblkhd; Rust's allocations go through it too). The
 * verdict is judge() below (docs/reliability.md explains it); the last line is
 * `soak: N passed, M failed` (one per check, heap and rss). */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coro.h"

#define SAMPLES 20 /* memory samples over the run */
#define WARMUP 2   /* the first samples, while pools, caches and the allocator fill up */

typedef struct {
  long cycle, rss_kib, heap_bytes;
} sample_t;

/* The verdict over the samples after the warm-up, measured against the last warm-up sample:
 * - heap: the allocator's bytes in use may never exceed the reference. This is
 *   exact, so any per-cycle leak of the library's own objects fails here.
 * - rss: growth means a rise above the reference by more than 1% that is spread over two or more
 *   sample intervals. A rise confined to one interval is a one-time step (a page faulted in late);
 *   it passes and is reported, unless it exceeds 10%.
 * Prints one line per check and `soak: N passed, M failed`; returns the exit status. */
static int judge(const sample_t *s, int n) {
  const sample_t *ref = &s[WARMUP - 1];
  long heap_max = ref->heap_bytes, rss_max = ref->rss_kib, last = s[n - 1].rss_kib;
  int k, rises = 0, passed = 0, failed = 0, heap_ok, rss_ok;
  double growth;
  for (k = WARMUP; k < n; k++) {
    if (s[k].heap_bytes > heap_max) heap_max = s[k].heap_bytes;
    if (s[k].rss_kib > rss_max) rss_max = s[k].rss_kib;
    if (s[k].rss_kib > s[k - 1].rss_kib) rises++;
  }
  heap_ok = heap_max <= ref->heap_bytes;
  printf("  heap: %+ld bytes at most after warm-up (limit +0)%s\n", heap_max - ref->heap_bytes,
         heap_ok ? "" : "  <-- grows");
  growth = 100.0 * (double)(rss_max - ref->rss_kib) / (double)ref->rss_kib;
  rss_ok = growth <= 10.0 && (growth <= 1.0 || rises <= 1);
  printf("  rss: %+.2f%% at most after warm-up, %+ld KiB at the end, rising in %d of %d intervals%s\n",
         growth, last - ref->rss_kib, rises, n - WARMUP,
         !rss_ok ? "  <-- grows" : growth > 1.0 ? " (a one-time step, not growth)" : "");
  passed = heap_ok + rss_ok;
  failed = 2 - passed;
  printf("soak: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

/* Exact resident set in KiB: the `Rss:` line of /proc/self/smaps_rollup. */
static long rss_kib(void) {
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "Rss: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* Bytes the allocator has handed out and not got back (every arena, and its direct mmaps). */
static long heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return (long)(mi.uordblks + mi.hblkhd);
}

static void *entry(coro_t *self, void *value) {
  volatile char buf[8192];
  coro_t *main_coro = NULL;
  void *back = NULL;
  (void)self;
  memset((char *)buf, (int)((uintptr_t)value & 0x7f), sizeof buf);
  if (coro_main(&main_coro) != CORO_OK) return (void *)(uintptr_t)0xbad;
  if (coro_switch(main_coro, (void *)((uintptr_t)value + buf[100]), &back) != CORO_OK) return NULL;
  return (void *)((uintptr_t)back + 1);
}

static int fail(long cycle, const char *what, coro_status_t st) {
  fprintf(stderr, "soak: cycle %ld: %s: %s\n", cycle, what, coro_strerror(st));
  return 1;
}

int main(int argc, char **argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 1000000L;
  const char *leak_env = getenv("SOAK_LEAK_EVERY");
  long leak_every = leak_env != NULL ? atol(leak_env) : 0;
  long every, i;
  int n = 0;
  sample_t samples[SAMPLES];
  if (cycles < 200000L) {
    fprintf(stderr, "usage: soak [CYCLES >= 200000]\n");
    return 2;
  }
  every = cycles / SAMPLES;
  printf("soak (C): %ld create -> switch -> finish cycles, memory every %ld%s\n", cycles, every,
         leak_every > 0 ? " (control: leaking a coroutine per SOAK_LEAK_EVERY)" : "");
  printf("  start: rss %ld KiB, heap %ld bytes\n", rss_kib(), heap_bytes());
  for (i = 1; i <= cycles; i++) {
    coro_t *c = NULL;
    void *got = NULL;
    coro_status_t st;
    coro_options_t o;
    uintptr_t v = (uintptr_t)(i & 0xffff);
    if ((st = coro_options_init(&o)) != CORO_OK) return fail(i, "coro_options_init", st);
    if (i % 1000 == 0) o.name = "soak";
    if ((st = coro_new(entry, &o, &c)) != CORO_OK) return fail(i, "coro_new", st);
    if ((st = coro_switch(c, (void *)v, &got)) != CORO_OK) return fail(i, "start", st);
    if ((uintptr_t)got != v + (v & 0x7f)) return fail(i, "value from the coroutine", CORO_OK);
    if (leak_every > 0 && i % leak_every == 0) {
      /* the control: left suspended and never destroyed */
    } else if (i % 100 == 0) {
      if ((st = coro_kill(c, (void *)v, &got)) != CORO_OK) return fail(i, "coro_kill", st);
      if ((st = coro_destroy(c)) != CORO_OK) return fail(i, "coro_destroy", st);
    } else {
      if ((st = coro_switch(c, (void *)v, &got)) != CORO_OK) return fail(i, "finish", st);
      if ((uintptr_t)got != v + 1) return fail(i, "return value", CORO_OK);
      if ((st = coro_destroy(c)) != CORO_OK) return fail(i, "coro_destroy", st);
    }
    if (i % every == 0 && n < SAMPLES) {
      samples[n].cycle = i;
      samples[n].rss_kib = rss_kib();
      samples[n].heap_bytes = heap_bytes();
      printf("  %8ld cycles: rss %ld KiB, heap %ld bytes%s\n", i, samples[n].rss_kib,
             samples[n].heap_bytes, n < WARMUP ? " (warm-up)" : "");
      fflush(stdout);
      n++;
    }
  }
  if (n < SAMPLES) return fail(i, "too few samples", CORO_OK);
  return judge(samples, n);
}
