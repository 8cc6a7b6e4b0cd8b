/* Soak: create -> switch -> finish -> destroy, CYCLES times, with RSS sampled every 100,000 cycles.
 *
 * Usage: soak [CYCLES]   (default 1000000; at least 200000)
 *
 * Each cycle creates a coroutine, starts it (it touches 8 KiB of its stack and switches back with a
 * value), resumes it so that it finishes (its return value goes to main), and destroys it; every
 * 1000th coroutine is named, and every 100th is killed instead of resumed. After each 100,000
 * cycles the RSS is printed. The first sample is the warm-up (pools, caches and the allocator fill
 * up); the run fails (exit 1) if the RSS at the end exceeds the warm-up sample by more than 1%, or
 * if any call fails. The last line is `soak: N passed, 0 failed` (one per checked sample). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coro.h"

#define SAMPLE_EVERY 100000L

static long rss_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
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
  long warm = -1, last = -1, i;
  int passed = 0, failed = 0;
  if (cycles < 2 * SAMPLE_EVERY) {
    fprintf(stderr, "usage: soak [CYCLES >= %ld]\n", 2 * SAMPLE_EVERY);
    return 2;
  }
  printf("soak (C): %ld create -> switch -> finish cycles, RSS every %ld\n", cycles, SAMPLE_EVERY);
  printf("  start: rss %ld KiB\n", rss_kib());
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
    if (i % 100 == 0) {
      if ((st = coro_kill(c, (void *)v, &got)) != CORO_OK) return fail(i, "coro_kill", st);
    } else {
      if ((st = coro_switch(c, (void *)v, &got)) != CORO_OK) return fail(i, "finish", st);
      if ((uintptr_t)got != v + 1) return fail(i, "return value", CORO_OK);
    }
    if ((st = coro_destroy(c)) != CORO_OK) return fail(i, "coro_destroy", st);
    if (i % SAMPLE_EVERY == 0) {
      last = rss_kib();
      if (warm < 0) {
        warm = last;
        printf("  %8ld cycles: rss %ld KiB (warm-up sample)\n", i, last);
      } else {
        double growth = 100.0 * (double)(last - warm) / (double)warm;
        int ok = last <= warm + warm / 100;
        printf("  %8ld cycles: rss %ld KiB (%+.2f%% since warm-up)%s\n", i, last, growth,
               ok ? "" : "  <-- more than 1%");
        if (ok) passed++;
        else failed++;
      }
      fflush(stdout);
    }
  }
  printf("soak: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
