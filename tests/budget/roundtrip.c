/* N switch round trips (main -> child -> main) through the C ABI, nothing else: the program
 * ci/budget.sh counts under callgrind at two values of N, so that the difference divided by the
 * difference in N is the exact instruction cost of one round trip, startup excluded.
 * Usage: roundtrip N [copying]   (exit status 0 when every switch returned CORO_OK) */
#include <coro.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *bounce(coro_t *self, void *first) {
    (void)self;
    coro_t *main_coro = first;
    void *v = NULL;
    while (coro_switch(main_coro, v, &v) == CORO_OK) {
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [copying]\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    unsigned long long n = strtoull(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0') {
        fprintf(stderr, "roundtrip: N must be a number, got %s\n", argv[1]);
        return 2;
    }
    coro_options_t opts;
    coro_t *main_coro = NULL, *child = NULL;
    void *got = NULL;
    if (coro_options_init(&opts) != CORO_OK || coro_main(&main_coro) != CORO_OK) return 1;
    if (argc > 2) opts.flags = CORO_FLAG_COPYING;
    if (coro_new(bounce, &opts, &child) != CORO_OK) return 1;
    if (coro_switch(child, main_coro, &got) != CORO_OK) return 1;
    unsigned status = 0;
    uintptr_t sum = 0;
    for (unsigned long long i = 0; i < n; i++) {
        status |= (unsigned)coro_switch(child, (void *)(uintptr_t)i, &got);
        sum += (uintptr_t)got;
    }
    if (coro_kill(child, NULL, &got) != CORO_OK || coro_destroy(child) != CORO_OK) return 1;
    printf("%llu round trips, checksum %lu\n", n, (unsigned long)sum);
    return status == CORO_OK ? 0 : 1;
}
