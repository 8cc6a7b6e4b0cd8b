/* How a switch's cost grows with stack depth, per mode: two coroutines switch to each other
 * directly, each suspended DEPTH bytes deep (recursion of 256-byte frames); the round trip is
 * timed in interleaved rounds (median, min, max). In copying mode every switch between the two
 * saves one used part and restores the other, so the cost grows with the depth; with stacks of
 * their own it does not.
 *
 *   depth [--rounds R] [--iters N] [--json]        (docs/performance.md; run by bench/run.sh)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coro.h"

static coro_t *g_peer[2];
static coro_t *g_main;
static size_t g_depth;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Recurses until `bytes` of 256-byte frames are on the stack, then passes a countdown back and
 * forth with the peer; whoever receives 1 reports to main. Returns when killed. */
static void *bounce(int me, size_t bytes, uintptr_t v) {
  volatile char frame[256];
  void *got = NULL;
  frame[0] = (char)me;
  if (bytes >= 256) return bounce(me, bytes - 256, v);
  for (;;) {
    coro_t *to = v == 1 ? g_main : g_peer[1 - me];
    if (coro_switch(to, (void *)(v - 1), &got) != CORO_OK) return (void *)(uintptr_t)frame[0];
    v = (uintptr_t)got;
  }
}

static void *entry(coro_t *self, void *v) { return bounce(self == g_peer[0] ? 0 : 1, g_depth, (uintptr_t)v); }

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  static const size_t depths[] = {0, 1024, 4096, 16384, 65536};
  int rounds = 9, json = 0;
  long iters = 200000;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = atol(argv[++i]);
    else if (strcmp(argv[i], "--json") == 0) json = 1;
    else {
      fprintf(stderr, "usage: depth [--rounds R] [--iters N] [--json]\n");
      return 2;
    }
  }
  if (rounds < 1 || rounds > 99 || iters < 1) return 2;
  if (coro_main(&g_main) != CORO_OK) return 2;
  if (!json) printf("%-8s %-10s %12s  %s\n", "mode", "depth", "round trip", "[min - max] ns");
  for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
    double samples[2][100];
    for (int r = 0; r < rounds; r++) {
      for (int copying = 0; copying < 2; copying++) { /* interleaved: own, copying, own, ... */
        coro_options_t o;
        coro_options_init(&o);
        o.flags = copying ? CORO_FLAG_COPYING : CORO_FLAG_OWN_STACK;
        g_depth = depths[d];
        if (coro_new(entry, &o, &g_peer[0]) != CORO_OK || coro_new(entry, &o, &g_peer[1]) != CORO_OK)
          return 2;
        /* 2n switches between the peers (n round trips), then one to main. */
        double t0 = now_ns();
        if (coro_switch(g_peer[0], (void *)(uintptr_t)(2 * iters + 1), NULL) != CORO_OK) return 2;
        double t1 = now_ns();
        samples[copying][r] = (t1 - t0) / (double)iters;
        coro_kill(g_peer[0], NULL, NULL);
        coro_kill(g_peer[1], NULL, NULL);
        coro_destroy(g_peer[0]);
        coro_destroy(g_peer[1]);
      }
    }
    for (int copying = 0; copying < 2; copying++) {
      qsort(samples[copying], (size_t)rounds, sizeof(double), cmp);
      double med = samples[copying][rounds / 2], lo = samples[copying][0], hi = samples[copying][rounds - 1];
      if (json)
        printf("{\"mode\": \"%s\", \"depth\": %zu, \"median\": %.2f, \"min\": %.2f, \"max\": %.2f}\n",
               copying ? "copying" : "default", depths[d], med, lo, hi);
      else
        printf("%-8s %-10zu %9.1f ns  [%.1f - %.1f]\n", copying ? "copying" : "default", depths[d], med, lo, hi);
    }
  }
  return 0;
}
