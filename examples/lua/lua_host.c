/*
 * A C host embedding Lua 5.4 where every Lua session runs on its own libcoro coroutine.
 *
 *   lua_host [--sessions N] [--stack BYTES] [--copying] SCRIPT.lua
 *
 * One Lua state (one global state, one GC) is shared by all sessions; each session gets a Lua
 * thread (lua_newthread) and a coroutine, and runs SCRIPT with its id as argument. Lua code calls
 * two host functions:
 *
 *   host.wait(v)      suspends the session (coro_switch to the scheduler) and returns the value
 *                     the scheduler resumes it with (v + id). Works from any depth, including from
 *                     Lua functions called by C (lua_call, table.sort, string.gsub), because the
 *                     session's C stack is suspended with it: the case where Lua's own
 *                     coroutine.yield raises "attempt to yield across a C-call boundary".
 *   host.call(f, ...) calls f with lua_call from C (one more C level, no continuation).
 *   host.session()    the id of the session running now (checked against the script's own).
 *
 * The scheduler (the main coroutine) resumes the live sessions in a shuffled order each round until
 * all are finished; some sessions are killed on purpose (coro_kill: their host.wait raises a Lua
 * error) and some fail on purpose (error() deep in C calls): both must end in their own lua_pcall.
 * Each session's results are compared with values computed here, in C, so a session that saw
 * another session's data fails the check. Exit status 0 when every session is right.
 * --copying runs the sessions in the library's copying mode (one shared stack; each suspended
 * session's used stack is saved to the heap): nothing changes for Lua, since a Lua thread's own
 * pointers into its C stack (its error handler chain) are only used while it runs.
 *
 * What the host saves and restores around coro_switch, and why so little: docs/embedding.md.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coro.h"

typedef struct session {
    lua_Integer id;
    lua_State *thread; /* this session's Lua thread; anchored in the registry by thread_ref */
    int thread_ref;
    coro_t *coro;
    void *resume_with; /* the value of the next switch into it */
    int finished;
    int killed;        /* the scheduler killed it */
    int status;        /* lua_pcall's result */
    long waits;        /* host.wait calls it made */
    lua_Integer total; /* results, copied out of Lua */
    char sorted[32];
    char replaced[64];
    char error[128];
} session;

static coro_t *scheduler;    /* the main coroutine: where host.wait switches to */
static session *running;     /* the session whose coroutine runs now (NULL: the scheduler) */
static int chunk_ref;        /* the compiled script, in the registry */
static long failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    va_list ap;
    if (failures++ < 10) {
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

/* The session that owns a Lua thread: stored in the thread's extra space when it is created. */
static session *session_of(lua_State *L) {
    session *s;
    memcpy(&s, lua_getextraspace(L), sizeof s);
    return s;
}

/* host.wait(v): switch to the scheduler with v; return what it resumes us with. */
static int host_wait(lua_State *L) {
    lua_Integer v = luaL_checkinteger(L, 1);
    session *s = session_of(L);
    void *reply;
    coro_status_t st;
    if (s == NULL || s != running)
        return luaL_error(L, "host.wait: not called from a session's own coroutine");
    s->waits++;
    running = NULL;
    st = coro_switch(scheduler, (void *)(intptr_t)v, &reply);
    running = s; /* whoever resumed us, we run again: restore the host's own "current" */
    if (st == CORO_KILLED)
        return luaL_error(L, "session %I killed by the host", s->id);
    if (st != CORO_OK)
        return luaL_error(L, "host.wait: coro_switch: %s", coro_strerror(st));
    lua_pushinteger(L, (lua_Integer)(intptr_t)reply);
    return 1;
}

/* host.call(f, ...): f(...) through lua_call, i.e. from C without a continuation. */
static int host_call(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int host_session(lua_State *L) {
    session *s = session_of(L);
    if (s == NULL) return luaL_error(L, "host.session: not in a session");
    lua_pushinteger(L, s->id);
    return 1;
}

static void copy_string(char *dst, size_t n, const char *src) {
    snprintf(dst, n, "%s", src ? src : "(not a string)");
}

/* The body of every session coroutine: run the chunk on the session's Lua thread, protected, so a
 * Lua error (a longjmp) always ends here, on this coroutine's stack. */
static void *session_main(coro_t *self, void *arg) {
    session *s = arg;
    lua_State *L = s->thread;
    (void)self;
    running = s;
    lua_rawgeti(L, LUA_REGISTRYINDEX, chunk_ref);
    lua_pushinteger(L, s->id);
    s->status = lua_pcall(L, 1, 3, 0);
    if (s->status == LUA_OK) {
        s->total = lua_tointeger(L, -3);
        copy_string(s->sorted, sizeof s->sorted, lua_tostring(L, -2));
        copy_string(s->replaced, sizeof s->replaced, lua_tostring(L, -1));
    } else {
        copy_string(s->error, sizeof s->error, lua_tostring(L, -1));
    }
    lua_settop(L, 0);
    running = NULL;
    return NULL; /* finished: back to the parent, the scheduler */
}

/* What session `id` must have computed (examples/lua/session.lua, redone in C). */
static void check_session(const session *s) {
    lua_Integer id = s->id, total = 0;
    char want[64];
    if (s->killed) {
        if (s->status != LUA_ERRRUN || strstr(s->error, "killed by the host") == NULL)
            fail("session %" PRId64 ": killed, but ended with status %d '%s'", (int64_t)id, s->status, s->error);
        return;
    }
    if (id % 1000 == 999) {
        snprintf(want, sizeof want, "session %" PRId64 " failed on purpose", (int64_t)id);
        if (s->status != LUA_ERRRUN || strstr(s->error, want) == NULL)
            fail("session %" PRId64 ": expected its own error, got status %d '%s'", (int64_t)id, s->status, s->error);
        return;
    }
    if (s->status != LUA_OK) {
        fail("session %" PRId64 ": Lua error: %s", (int64_t)id, s->error);
        return;
    }
    for (lua_Integer round = 1; round <= 3; round++) {
        lua_Integer m = round + id % 5;
        total += 2 * id + m * (m + 1) / 2;
    }
    if (id % 100 == 50) total += 2 * id + 150 * 151 / 2;
    if (s->total != total)
        fail("session %" PRId64 ": total %" PRId64 ", expected %" PRId64, (int64_t)id, (int64_t)s->total, (int64_t)total);
    if (strcmp(s->sorted, "1,3,5,9") != 0)
        fail("session %" PRId64 ": sorted '%s'", (int64_t)id, s->sorted);
    snprintf(want, sizeof want, "%" PRId64 "-%" PRId64 "-%" PRId64, (int64_t)(id + 1), (int64_t)(id + 1), (int64_t)(id + 1));
    if (strcmp(s->replaced, want) != 0)
        fail("session %" PRId64 ": replaced '%s', expected '%s'", (int64_t)id, s->replaced, want);
}

/* Lua's own coroutines in the same spot: a yield from a table.sort comparator is refused. */
static int show_lua_refusal(lua_State *L) {
    const char *probe =
        "local co = coroutine.wrap(function()\n"
        "  table.sort({3, 2, 1}, function(a, b) coroutine.yield() return a < b end)\n"
        "end)\n"
        "local ok, err = pcall(co)\n"
        "return err\n";
    const char *msg;
    if (luaL_dostring(L, probe) != LUA_OK) {
        fprintf(stderr, "probe failed: %s\n", lua_tostring(L, -1));
        return 0;
    }
    msg = lua_tostring(L, -1);
    printf("Lua's coroutine.yield inside table.sort: %s\n", msg ? msg : "(no error)");
    lua_pop(L, 1);
    return msg != NULL && strstr(msg, "attempt to yield across a C-call boundary") != NULL;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t next_random(void) { /* xorshift64: a fixed, reproducible shuffle */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

int main(int argc, char **argv) {
    long n = 10000;
    size_t stack = 0;
    uint32_t flags = 0;
    const char *script = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc) n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--stack") == 0 && i + 1 < argc) stack = (size_t)strtoull(argv[++i], NULL, 10);
#ifdef CORO_FLAG_COPYING
        else if (strcmp(argv[i], "--copying") == 0) flags = CORO_FLAG_COPYING;
#endif
        else if (argv[i][0] != '-' && script == NULL) script = argv[i];
        else {
            fprintf(stderr, "usage: %s [--sessions N] [--stack BYTES] [--copying] SCRIPT.lua\n", argv[0]);
            return 2;
        }
    }
    if (script == NULL || n <= 0) {
        fprintf(stderr, "usage: %s [--sessions N] [--stack BYTES] [--copying] SCRIPT.lua\n", argv[0]);
        return 2;
    }

    lua_State *L = luaL_newstate();
    if (L == NULL) return 1;
    luaL_openlibs(L);
    static const luaL_Reg host_lib[] = {
        {"wait", host_wait}, {"call", host_call}, {"session", host_session}, {NULL, NULL}};
    luaL_newlib(L, host_lib);
    lua_setglobal(L, "host");
    memset(lua_getextraspace(L), 0, LUA_EXTRASPACE); /* the main thread is no session */
    int refused = show_lua_refusal(L);
    if (luaL_loadfile(L, script) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    coro_status_t st = coro_main(&scheduler);
    if (st != CORO_OK) {
        fprintf(stderr, "coro_main: %s\n", coro_strerror(st));
        return 1;
    }
    session *sessions = calloc((size_t)n, sizeof *sessions);
    size_t *order = malloc((size_t)n * sizeof *order);
    if (sessions == NULL || order == NULL) return 1;
    coro_options_t opts;
    coro_options_init(&opts);
    if (stack) opts.stack_size = stack;
    opts.flags = flags;
    for (long i = 0; i < n; i++) {
        session *s = &sessions[i];
        s->id = i;
        s->thread = lua_newthread(L);
        s->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* keep it from the GC while suspended */
        memcpy(lua_getextraspace(s->thread), &s, sizeof s);
        opts.userdata = s;
        if ((st = coro_new(session_main, &opts, &s->coro)) != CORO_OK) {
            fprintf(stderr, "coro_new (session %ld): %s\n", i, coro_strerror(st));
            return 1;
        }
        s->resume_with = s; /* the first switch starts session_main(s) */
    }

    /* Round-robin in a shuffled order until every session is finished. */
    long alive = n, rounds = 0, switches = 0, max_waits = 0;
    while (alive > 0) {
        size_t m = 0;
        for (long i = 0; i < n; i++)
            if (!sessions[i].finished) order[m++] = (size_t)i;
        for (size_t i = m; i > 1; i--) { /* Fisher-Yates */
            size_t j = (size_t)(next_random() % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        for (size_t k = 0; k < m; k++) {
            session *s = &sessions[order[k]];
            void *got;
            /* Sessions 0, 997, 1994, ... are killed at their second turn. */
            if (rounds == 1 && s->id % 997 == 0) {
                s->killed = 1;
                st = coro_kill(s->coro, NULL, &got);
            } else {
                st = coro_switch(s->coro, s->resume_with, &got);
            }
            switches++;
            if (st != CORO_OK) {
                fail("switch to session %" PRId64 ": %s", (int64_t)s->id, coro_strerror(st));
                return 1;
            }
            if (running != NULL) fail("host: 'running' not cleared after a switch back");
            coro_state_t state;
            coro_state(s->coro, &state);
            if (state == CORO_DEAD) {
                s->finished = 1;
                alive--;
                if (s->waits > max_waits) max_waits = s->waits;
                check_session(s);
                coro_destroy(s->coro);
                luaL_unref(L, LUA_REGISTRYINDEX, s->thread_ref); /* the GC may take the thread */
            } else {
                s->resume_with = (void *)((intptr_t)got + (intptr_t)s->id); /* the reply to host.wait */
            }
        }
        rounds++;
    }

    long killed = 0, errored = 0;
    for (long i = 0; i < n; i++) {
        killed += sessions[i].killed;
        errored += !sessions[i].killed && sessions[i].status != LUA_OK;
    }
    lua_close(L);
    free(order);
    free(sessions);
    printf("%ld Lua sessions on %ld coroutines: %ld switches in %ld rounds, up to %ld waits per session, "
           "%ld killed, %ld failed on purpose\n",
           n, n, switches, rounds, max_waits, killed, errored);
    if (!refused) {
        fprintf(stderr, "expected Lua's own coroutine.yield to be refused inside table.sort\n");
        return 1;
    }
    if (failures) {
        fprintf(stderr, "%ld session checks FAILED\n", failures);
        return 1;
    }
    printf("all %ld sessions ok\n", n);
    return 0;
}
