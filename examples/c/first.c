/* The README's first coroutine, kept compiling and running by ci/test-examples.sh. */
#include <stdio.h>
#include "coro.h"

static void *counter(coro_t *self, void *limit) {
    coro_t *main_coro;
    (void)self;
    coro_main(&main_coro);
    for (long i = 0; i < (long)limit; i++)
        coro_switch(main_coro, (void *)i, NULL);   /* hand out i, wait to be resumed */
    return (void *)-1;                             /* finished: goes to the parent */
}

int main(void) {
    coro_t *c;
    void *v;
    if (coro_new(counter, NULL, &c) != CORO_OK) return 1;
    coro_switch(c, (void *)3, &v);                 /* starts it: limit = 3; v = 0 */
    while ((long)v != -1) {
        printf("got %ld\n", (long)v);
        coro_switch(c, NULL, &v);
    }
    coro_destroy(c);                               /* DEAD now: release it */
    return 0;
}
