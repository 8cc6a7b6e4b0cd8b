/* A coroutine three calls deep, for tests/gdb/test-backtrace.sh: gdb stops in level3() and its
 * backtrace must show level3 <- level2 <- level1 <- entry <- coro_arch_trampoline and then walk
 * on into the coroutine that resumed it (resumer <- main). */
#include <stdio.h>
#include "coro.h"

volatile int sink;

__attribute__((noinline)) void level3(int n) { sink = n; } /* gdb breaks here */
__attribute__((noinline)) void level2(int n) { level3(n + 1); sink++; }
__attribute__((noinline)) void level1(int n) { level2(n + 1); sink++; }

static void *entry(coro_t *self, void *value) {
    (void)self;
    level1((int)(long)value);
    return NULL;
}

__attribute__((noinline)) int resumer(coro_t *c) {
    void *received = NULL;
    int status = (int)coro_switch(c, (void *)1L, &received);
    sink++;
    return status;
}

int main(void) {
    coro_t *c;
    if (coro_new(entry, NULL, &c) != CORO_OK) return 1;
    if (resumer(c) != CORO_OK) return 1;
    if (coro_destroy(c) != CORO_OK) return 1;
    printf("done %d\n", sink);
    return 0;
}
