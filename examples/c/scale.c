/* A million coroutines: creates N coroutines, suspends them all, resumes each once, finishes them
 * all, and prints the peak RSS and the bytes each suspended coroutine costs, for coroutines with
 * stacks of their own (the default) and in copying mode (CORO_FLAG_COPYING).
 *
 *   scale [--count N] [--mode default|copying|both] [--json]
 *
 * Each mode runs in a child process of its own, so that one mode's memory does not count
 * against the other. Bytes per coroutine = (RSS with all N suspended - RSS before creating them)
 * / N: the control block, the touched stack pages (default mode) or the saved stack image
 * (copying mode), and allocator overhead. Exit status 0 when every coroutine saw exactly the
 * values it was sent.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coro.h"

static coro_t *g_main;

/* Each coroutine: suspends with its index, is resumed once with a value it adds to its local
 * state, suspends again, and finishes when resumed the second time. */
static void *entry(coro_t *self, void *value) {
  uintptr_t mine = (uintptr_t)value;
  void *got = NULL;
  (void)self;
  if (coro_switch(g_main, (void *)mine, &got) != CORO_OK) return NULL;
  mine += (uintptr_t)got;
  if (coro_switch(g_main, (void *)mine, &got) != CORO_OK) return NULL;
  return (void *)(mine + (uintptr_t)got);
}

static long long rss_kib(const char *field) {
  char line[256];
  long long v = -1;
  size_t n = strlen(field);
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, n) == 0) {
      v = strtoll(line + n, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int run(long count, int copying, int json) {
  coro_options_t opts;
  coro_t **cs = calloc((size_t)count, sizeof *cs);
  long long before, suspended, peak;
  double t0, t_create, t_resume, t_finish;
  long bad = 0;
  if (cs == NULL || coro_main(&g_main) != CORO_OK || coro_options_init(&opts) != CORO_OK) return 2;
  opts.flags = copying ? CORO_FLAG_COPYING : CORO_FLAG_OWN_STACK;
  before = rss_kib("VmRSS:");
  t0 = now_ns();
  for (long i = 0; i < count; i++) {
    void *got = NULL;
    if (coro_new(entry, &opts, &cs[i]) != CORO_OK || coro_switch(cs[i], (void *)(uintptr_t)i, &got) != CORO_OK) {
      fprintf(stderr, "scale: coroutine %ld could not be created or started\n", i);
      return 2;
    }
    bad += got != (void *)(uintptr_t)i;
  }
  t_create = now_ns();
  suspended = rss_kib("VmRSS:");
  for (long i = 0; i < count; i++) {
    void *got = NULL;
    if (coro_switch(cs[i], (void *)(uintptr_t)1, &got) != CORO_OK) return 2;
    bad += got != (void *)(uintptr_t)(i + 1);
  }
  t_resume = now_ns();
  for (long i = 0; i < count; i++) {
    void *got = NULL;
    if (coro_switch(cs[i], (void *)(uintptr_t)2, &got) != CORO_OK || coro_destroy(cs[i]) != CORO_OK) return 2;
    bad += got != (void *)(uintptr_t)(i + 3);
  }
  t_finish = now_ns();
  peak = rss_kib("VmHWM:");
  free(cs);
  if (json) {
    printf("{\"mode\": \"%s\", \"count\": %ld, \"bytes_per_coroutine\": %.1f, \"peak_rss_bytes\": %lld, "
           "\"create_start_ns\": %.1f, \"resume_ns\": %.1f, \"finish_destroy_ns\": %.1f, \"errors\": %ld}\n",
           copying ? "copying" : "default", count, (double)(suspended - before) * 1024.0 / (double)count,
           peak * 1024, (t_create - t0) / (double)count, (t_resume - t_create) / (double)count,
           (t_finish - t_resume) / (double)count, bad);
  } else {
    printf("%-8s %9ld coroutines: %8.1f bytes each suspended, peak RSS %7.1f MiB; "
           "per coroutine: create+start %.0f ns, resume %.0f ns, finish+destroy %.0f ns%s\n",
           copying ? "copying" : "default", count, (double)(suspended - before) * 1024.0 / (double)count,
           (double)peak / 1024.0, (t_create - t0) / (double)count, (t_resume - t_create) / (double)count,
           (t_finish - t_resume) / (double)count, bad ? "  VALUES WRONG" : "");
  }
  fflush(stdout);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  long count = 1000000;
  int modes = 3, json = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      count = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
      const char *m = argv[++i];
      modes = strcmp(m, "default") == 0 ? 1 : strcmp(m, "copying") == 0 ? 2 : strcmp(m, "both") == 0 ? 3 : 0;
    } else if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else {
      modes = 0;
    }
  }
  if (count <= 0 || modes == 0) {
    fprintf(stderr, "usage: scale [--count N] [--mode default|copying|both] [--json]\n");
    return 2;
  }
  for (int copying = 0; copying < 2; copying++) {
    pid_t pid;
    int status = 0;
    if (!(modes & (1 << copying))) continue;
    fflush(stdout);
    pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) _exit(run(count, copying, json));
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "scale: %s mode failed (status %d)\n", copying ? "copying" : "default", status);
      failed = 1;
    }
  }
  return failed;
}
