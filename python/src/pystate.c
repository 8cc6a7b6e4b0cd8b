/*
 * pystate.c: saves and restores the per-uthread part of PyThreadState around switches.
 * Every CPython version difference of the uthread extension is in this file, but for those the
 * Rust side sees in public API (python/src/pyversion.rs); ci/lint-version-isolation.sh keeps
 * version checks out of the rest of python/src. See pystate.h for the model and the calling
 * protocol.
 *
 * Public headers cover nearly everything: the PyThreadState fields touched here are declared in
 * Include/cpython/pystate.h of each version. The exception is uthread_pystate_release_abandoned,
 * which reads three fields of interpreter frames (3.11+, internal/pycore_frame.h). Two more
 * interpreter internals we depend on are reached through public API:
 *   - data-stack chunks (3.11+) are allocated by CPython's _PyObject_VirtualAlloc, a thin wrapper
 *     around the object arena allocator; we free the chunks of a finished uthread through
 *     PyObject_GetArenaAllocator(), which returns that same allocator (3.11, 3.12, 3.13);
 *   - the frame object of a suspended uthread's top frame (3.11+) is made by
 *     PyThreadState_GetFrame() while that frame is briefly made the thread's current one.
 *
 * Layout by version (S = saved per uthread, F = fresh value given by begin):
 *
 *   3.10  tstate->frame (S, F NULL), recursion_depth (S, F 0), trash_delete_nesting (S, F 0),
 *         tstate->cframe (S; F = a bottom CFrame inside the uthread_pystate),
 *         cframe->use_tracing (recomputed on every switch in from the per-thread trace and
 *         profile functions and the `tracing` guard; see ut_update_use_tracing).
 *   3.11  tstate->cframe (S; F = bottom _PyCFrame in the uthread_pystate; the current frame is
 *         cframe->current_frame, which lives in that cframe and so is saved with it),
 *         recursion_limit - recursion_remaining (S as a depth, F 0), trash_delete_nesting,
 *         datastack_chunk/top/limit (S, F a root chunk from a per-thread pool, which end gives
 *         back), use_tracing as for 3.10 (0 or 255 in 3.11).
 *   3.12  as 3.11 without use_tracing (3.12 traces through sys.monitoring instrumentation, with
 *         nothing per call stack), py_recursion_limit - py_recursion_remaining (S as a depth),
 *         c_recursion_remaining (S, F C_RECURSION_LIMIT, or less if uthread_pystate_set_stack_size
 *         says the stack is small), trash.delete_nesting (S, F 0).
 *   3.13  tstate->current_frame (S, F NULL): no cframe any more; py and c recursion as 3.12
 *         (F Py_C_RECURSION_LIMIT or less); data stack as 3.11; the trashcan counts its nesting
 *         in c_recursion_remaining, so there is no separate nesting counter.
 *   all   tstate->exc_info (S; F = the uthread_pystate's own bottom _PyErr_StackItem, so the
 *         chain of a uthread never reaches into another's and sys.exc_info() is per uthread),
 *         tstate->context (S, moved with its reference; F = the context set with
 *         uthread_pystate_set_context or none) with context_ver bumped whenever it changes (the
 *         ContextVar.get cache is keyed on (tstate id, context_ver), and all uthreads of a thread
 *         share the tstate id).
 *
 * Deliberately per thread: the raised exception, c_tracefunc/c_profilefunc and their objects,
 * `tracing` (the guard that keeps a trace function from tracing itself: a tracer that switches
 * uthreads, e.g. a debugger waiting for input on an event loop, must not be re-entered from
 * another uthread), what_event/tracing_what, recursion_headroom (only non-zero while a
 * RecursionError is being built), the trash delete_later list (deposited objects are garbage and
 * any uthread may finish destroying them), async_exc, dict, async-gen hooks,
 * coroutine_origin_tracking_depth, and the 3.13 critical_section (always 0 with the GIL).
 */
#include "pystate.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030A0000 || PY_VERSION_HEX >= 0x030E0000
#error "uthread pystate.c supports CPython 3.10 to 3.13"
#endif
#ifdef Py_GIL_DISABLED
#error "uthread pystate.c does not support the free-threaded build of CPython"
#endif
#ifdef Py_LIMITED_API
#error "uthread pystate.c needs the full C API (it reads PyThreadState fields)"
#endif

#define UT_PY311 (PY_VERSION_HEX >= 0x030B0000)
#define UT_PY312 (PY_VERSION_HEX >= 0x030C0000)
#define UT_PY313 (PY_VERSION_HEX >= 0x030D0000)

#if !UT_PY311
#  include <frameobject.h> /* PyFrameObject's fields (f_gen) */
#endif
#if UT_PY311
/* Only uthread_pystate_release_abandoned reads interpreter frames (owner, frame_obj, previous):
 * their layout is internal. */
#  define Py_BUILD_CORE 1
#  include "internal/pycore_frame.h"
#endif

/* Stack bytes allowed per unit of C recursion (3.12+) when the budget is derived from the stack
 * size (uthread_pystate_set_stack_size). Measured on x86-64 release builds (-O3): the costliest
 * paths found use about 150 (repr/json of nested lists) to 350 (Python -> C -> Python recursion)
 * bytes per unit on 3.12 and 3.13; CPython 3.13 itself assumes 8 MiB / 10000 = 839 for a thread's
 * stack. 800 keeps a margin of more than 2x. A fixed reserve covers the entry path. */
#define UT_C_UNIT_BYTES 800
#define UT_STACK_RESERVE (32 * 1024)
#define UT_MIN_C_BUDGET 16

#if UT_PY312
#  if defined(Py_C_RECURSION_LIMIT)
#    define UT_C_RECURSION_LIMIT Py_C_RECURSION_LIMIT
#  elif defined(C_RECURSION_LIMIT)
#    define UT_C_RECURSION_LIMIT C_RECURSION_LIMIT
#  else
#    error "no C recursion limit macro in this CPython's headers"
#  endif
#endif

struct uthread_pystate {
    /* enum uthread_pystate_status */
    int status;
    /* 1 once begin ran: this uthread owns exc_state as its bottom exception entry. */
    int begun;
    /* The thread state it runs in: set by begin or the first save, checked by every later call
     * that installs or removes its state (a uthread can only ever run in one PyThreadState). */
    PyThreadState *owner;
    /* 3.12+: the C recursion budget begin gives (0: CPython's own limit). */
    int c_budget;
    /* The contextvars context. Owned here while NEW or SUSPENDED (or FINISHED, if set after
     * the end); while RUNNING, ts->context owns it and this is NULL. */
    PyObject *context;
    /* ts->exc_info of the suspended uthread. */
    _PyErr_StackItem *exc_info;
    /* Bottom entry of the exception stack of a uthread started by begin. Owns its references. */
    _PyErr_StackItem exc_state;

#if !UT_PY311 /* ---- 3.10 ---- */
    PyFrameObject *frame; /* borrowed, as ts->frame is: the frame's own eval owns it */
    int recursion_depth;
    int trash_delete_nesting;
    CFrame *cframe;      /* on the uthread's C stack, or &base_cframe */
    CFrame base_cframe;  /* the bottom CFrame of a uthread started by begin */
#elif !UT_PY313 /* ---- 3.11, 3.12 ---- */
    _PyCFrame *cframe; /* on the uthread's C stack, or &base_cframe; holds current_frame */
    /* cframe->current_frame as of the save: read then, because a uthread in copying mode has
     * its C stack (and the cframe on it) moved to the heap while it is suspended. */
    struct _PyInterpreterFrame *suspended_frame;
    int py_recursion_depth;
#  if UT_PY312
    int c_recursion_remaining;
#  endif
    int trash_delete_nesting;
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyCFrame base_cframe;
#else /* ---- 3.13 ---- */
    struct _PyInterpreterFrame *current_frame;
    int py_recursion_depth;
    int c_recursion_remaining;
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
#endif
    /* Copying mode (uthread_pystate_set_copying), 3.12+: while suspended, the links of its frame
     * chain that lead into a C-stack entry frame are bent around it (the C stack is on the heap
     * then); `hidden` remembers each bent link (frame, original previous) to put it back. */
    int copying;
    int hidden_count;
    int hidden_cap;
    /* The first bent link inline (most uthreads have just one entry frame: their first eval's),
     * the others in `hidden_more` (hidden_cap entries, from PyMem_RawRealloc). */
    void *hidden_frame; /* struct _PyInterpreterFrame * (3.12+) */
    void *hidden_previous;
    struct ut_hidden_link *hidden_more;
};

struct ut_hidden_link {
    void *frame; /* struct _PyInterpreterFrame * (3.12+) */
    void *previous;
};

#define UT_ROUND_UP(n, a) (((n) + (a) - 1) / (a) * (a))

_Static_assert(_Alignof(struct uthread_pystate) <= UTHREAD_PYSTATE_ALIGN,
               "uthread_pystate needs more alignment than UTHREAD_PYSTATE_ALIGN");

/* A broken calling protocol would corrupt the interpreter: stop at once, saying what happened. */
static void
ut_fatal(const char *what, const uthread_pystate *s)
{
    char msg[200];
    snprintf(msg, sizeof msg, "uthread: %s (uthread_pystate %p, status %d)", what,
             (const void *)s, s ? s->status : -1);
    Py_FatalError(msg);
}

static void
ut_check_owner(uthread_pystate *s, PyThreadState *ts)
{
    if (s->owner == NULL) {
        s->owner = ts;
    }
    else if (s->owner != ts) {
        ut_fatal("a uthread's state used with another PyThreadState than its own", s);
    }
}

/* Makes the context held by `s` the running one of `ts` (the reference moves) and bumps
 * context_ver, which keys the ContextVar.get cache. */
static void
ut_install_context(uthread_pystate *s, PyThreadState *ts)
{
    ts->context = s->context;
    s->context = NULL;
    ts->context_ver++;
}

/* ---- pending exception, kept across code that may run finalizers ---- */

typedef struct {
#if UT_PY312
    PyObject *exc;
#else
    PyObject *type, *value, *tb;
#endif
} ut_pending;

static void
ut_pending_take(ut_pending *p)
{
#if UT_PY312
    p->exc = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&p->type, &p->value, &p->tb);
#endif
}

static void
ut_pending_put_back(ut_pending *p)
{
#if UT_PY312
    if (p->exc != NULL) {
        PyErr_SetRaisedException(p->exc);
    }
#else
    if (p->type != NULL) {
        PyErr_Restore(p->type, p->value, p->tb);
    }
#endif
}

/* ---- the bottom exception entry ---- */

static int
ut_exc_state_is_empty(const _PyErr_StackItem *e)
{
#if UT_PY311
    return e->exc_value == NULL;
#else
    return e->exc_type == NULL && e->exc_value == NULL && e->exc_traceback == NULL;
#endif
}

static void
ut_exc_state_clear(_PyErr_StackItem *e)
{
#if !UT_PY311
    Py_CLEAR(e->exc_type);
    Py_CLEAR(e->exc_traceback);
#endif
    Py_CLEAR(e->exc_value);
}

/* ---- 3.10 / 3.11: the tracing flag ----
 *
 * The trace and profile functions are per thread, but 3.10/3.11 cache "is anything tracing" in
 * cframe->use_tracing, which each eval copies from the C frame below it and writes back to it on
 * return, and sys.settrace updates only in the current C frame. So a uthread switched in would
 * keep the flag of the time it was switched out. We recompute it on every switch in, the same
 * way the interpreter itself does after calling a trace function (0 while the `tracing` guard is
 * held, so code run while a trace function is suspended is not traced). */
#if !UT_PY312
static void
ut_update_use_tracing(PyThreadState *ts)
{
    int on = ts->tracing == 0 && (ts->c_tracefunc != NULL || ts->c_profilefunc != NULL);
#  if UT_PY311
    ts->cframe->use_tracing = on ? 255 : 0;
#  else
    ts->cframe->use_tracing = on;
#  endif
}
#endif

/* ---- 3.11+: the frame data stack ---- */

#if UT_PY311
/* Frees a chain of data-stack chunks the way CPython's _PyObject_VirtualFree does. */
static void
ut_free_datastack(_PyStackChunk *chunk)
{
    if (chunk == NULL) {
        return;
    }
    PyObjectArenaAllocator arena;
    PyObject_GetArenaAllocator(&arena);
    while (chunk != NULL) {
        _PyStackChunk *previous = chunk->previous;
        if (arena.free != NULL) {
            arena.free(arena.ctx, chunk, chunk->size);
        }
        chunk = previous;
    }
}

/* A small per-thread pool of root chunks. CPython gives every new data stack a root chunk from
 * the arena allocator (an mmap of DATA_STACK_CHUNK_SIZE) and the uthread frees it when it ends
 * (a munmap): two system calls per short-lived uthread, most of the cost of creating and
 * finishing one. Begin takes a root chunk from the pool and end gives it back. The pool is per
 * OS thread, so no lock is needed even with per-interpreter GILs, and is drained when the
 * thread's uthread state goes (uthread_pystate_drain_pool). */
#define UT_ROOT_CHUNK_SIZE (16 * 1024) /* CPython's DATA_STACK_CHUNK_SIZE, 3.11 to 3.13 */
#define UT_POOL_MAX 16
static _Thread_local struct {
    int len;
    _PyStackChunk *chunks[UT_POOL_MAX];
} ut_pool;

/* Installs a root chunk as push_chunk would (its first slot is never used, so the root chunk is
 * never popped), or leaves the data stack empty for CPython to allocate if memory is short. */
static void
ut_install_root_chunk(PyThreadState *ts)
{
    _PyStackChunk *chunk = NULL;
    if (ut_pool.len > 0) {
        chunk = ut_pool.chunks[--ut_pool.len];
    }
    else {
        PyObjectArenaAllocator arena;
        PyObject_GetArenaAllocator(&arena);
        if (arena.alloc != NULL) {
            chunk = arena.alloc(arena.ctx, UT_ROOT_CHUNK_SIZE);
        }
        if (chunk == NULL) {
            ts->datastack_chunk = NULL;
            ts->datastack_top = NULL;
            ts->datastack_limit = NULL;
            return;
        }
        chunk->size = UT_ROOT_CHUNK_SIZE;
    }
    chunk->previous = NULL;
    chunk->top = 0;
    ts->datastack_chunk = chunk;
    ts->datastack_top = &chunk->data[1];
    ts->datastack_limit = (PyObject **)((char *)chunk + UT_ROOT_CHUNK_SIZE);
}

/* Releases a finished uthread's data stack: the root chunk (the only one left once every frame
 * has returned) goes back to the pool if it has room and is of the pooled size. */
static void
ut_release_datastack(_PyStackChunk *chunk)
{
    if (chunk != NULL && chunk->previous == NULL && chunk->size == UT_ROOT_CHUNK_SIZE &&
        ut_pool.len < UT_POOL_MAX) {
        ut_pool.chunks[ut_pool.len++] = chunk;
        return;
    }
    ut_free_datastack(chunk);
}
#endif

void
uthread_pystate_drain_pool(void)
{
#if UT_PY311
    while (ut_pool.len > 0) {
        _PyStackChunk *chunk = ut_pool.chunks[--ut_pool.len];
        chunk->previous = NULL;
        ut_free_datastack(chunk);
    }
#endif
}

/* ================= the per-version stack state (one set of functions per range) ============== */

#if !UT_PY311 /* ---------------------------------- 3.10 ---------------------------------- */

static void
ut_save_stack(uthread_pystate *s, PyThreadState *ts)
{
    s->frame = ts->frame;
    s->recursion_depth = ts->recursion_depth;
    s->trash_delete_nesting = ts->trash_delete_nesting;
    s->cframe = ts->cframe;
}

static void
ut_restore_stack(uthread_pystate *s, PyThreadState *ts)
{
    ts->frame = s->frame;
    ts->recursion_depth = s->recursion_depth;
    ts->trash_delete_nesting = s->trash_delete_nesting;
    ts->cframe = s->cframe;
    ut_update_use_tracing(ts);
    s->frame = NULL;
    s->cframe = NULL;
}

static void
ut_begin_stack(uthread_pystate *s, PyThreadState *ts)
{
    s->base_cframe.use_tracing = 0;
    s->base_cframe.previous = &ts->root_cframe; /* never popped: only for code that follows it */
    ts->cframe = &s->base_cframe;
    ut_update_use_tracing(ts);
    ts->frame = NULL;
    ts->recursion_depth = 0;
    ts->trash_delete_nesting = 0;
}

static int
ut_stack_is_empty(PyThreadState *ts)
{
    return ts->frame == NULL;
}

static void
ut_end_stack(uthread_pystate *s, PyThreadState *ts)
{
    (void)s;
    ts->frame = NULL;
    ts->cframe = &ts->root_cframe;
    ts->recursion_depth = 0;
    ts->trash_delete_nesting = 0;
}

static PyObject *
ut_suspended_top_frame(uthread_pystate *s)
{
    return Py_XNewRef((PyObject *)s->frame);
}

#elif !UT_PY313 /* ------------------------------ 3.11, 3.12 ------------------------------ */

#  if UT_PY312
#    define UT_PY_LIMIT(ts) ((ts)->py_recursion_limit)
#    define UT_PY_REMAINING(ts) ((ts)->py_recursion_remaining)
#    define UT_TRASH_NESTING(ts) ((ts)->trash.delete_nesting)
#  else
#    define UT_PY_LIMIT(ts) ((ts)->recursion_limit)
#    define UT_PY_REMAINING(ts) ((ts)->recursion_remaining)
#    define UT_TRASH_NESTING(ts) ((ts)->trash_delete_nesting)
#  endif

static void
ut_save_stack(uthread_pystate *s, PyThreadState *ts)
{
    s->cframe = ts->cframe;
    s->suspended_frame = ts->cframe->current_frame;
    s->py_recursion_depth = UT_PY_LIMIT(ts) - UT_PY_REMAINING(ts);
#  if UT_PY312
    s->c_recursion_remaining = ts->c_recursion_remaining;
#  endif
    s->trash_delete_nesting = UT_TRASH_NESTING(ts);
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
}

static void
ut_restore_stack(uthread_pystate *s, PyThreadState *ts)
{
    ts->cframe = s->cframe;
    UT_PY_REMAINING(ts) = UT_PY_LIMIT(ts) - s->py_recursion_depth;
#  if UT_PY312
    ts->c_recursion_remaining = s->c_recursion_remaining;
#  else
    ut_update_use_tracing(ts);
#  endif
    UT_TRASH_NESTING(ts) = s->trash_delete_nesting;
    ts->datastack_chunk = s->datastack_chunk;
    ts->datastack_top = s->datastack_top;
    ts->datastack_limit = s->datastack_limit;
    s->cframe = NULL;
    s->suspended_frame = NULL;
    s->datastack_chunk = NULL;
    s->datastack_top = NULL;
    s->datastack_limit = NULL;
}

static void
ut_begin_stack(uthread_pystate *s, PyThreadState *ts)
{
    /* The bottom C frame: the uthread's first eval links its own cframe to it, reads
     * current_frame (NULL: the uthread's first frame has no previous frame) and, on 3.11, writes
     * use_tracing back into it when it returns. It has to outlive every eval of the uthread,
     * hence it lives in the uthread_pystate, not on the stack of whoever calls begin. */
    memset(&s->base_cframe, 0, sizeof s->base_cframe);
    s->base_cframe.current_frame = NULL;
    s->base_cframe.previous = &ts->root_cframe; /* never popped: only for code that follows it */
    ts->cframe = &s->base_cframe;
#  if !UT_PY312
    ut_update_use_tracing(ts);
#  endif
    UT_PY_REMAINING(ts) = UT_PY_LIMIT(ts);
#  if UT_PY312
    ts->c_recursion_remaining = s->c_budget > 0 ? s->c_budget : UT_C_RECURSION_LIMIT;
#  endif
    UT_TRASH_NESTING(ts) = 0;
    ut_install_root_chunk(ts);
}

static int
ut_stack_is_empty(PyThreadState *ts)
{
    return ts->cframe->current_frame == NULL;
}

static void
ut_end_stack(uthread_pystate *s, PyThreadState *ts)
{
    (void)s;
    ut_release_datastack(ts->datastack_chunk);
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
    ts->cframe = &ts->root_cframe;
    UT_PY_REMAINING(ts) = UT_PY_LIMIT(ts);
#  if UT_PY312
    ts->c_recursion_remaining = UT_C_RECURSION_LIMIT;
#  endif
    UT_TRASH_NESTING(ts) = 0;
}

#  define UT_THREAD_CURRENT_FRAME(ts) ((ts)->cframe->current_frame)

static struct _PyInterpreterFrame *
ut_suspended_iframe(uthread_pystate *s)
{
    return s->suspended_frame;
}

#else /* ---------------------------------------- 3.13 ---------------------------------------- */

static void
ut_save_stack(uthread_pystate *s, PyThreadState *ts)
{
    s->current_frame = ts->current_frame;
    s->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    s->c_recursion_remaining = ts->c_recursion_remaining;
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
}

static void
ut_restore_stack(uthread_pystate *s, PyThreadState *ts)
{
    ts->current_frame = s->current_frame;
    ts->py_recursion_remaining = ts->py_recursion_limit - s->py_recursion_depth;
    ts->c_recursion_remaining = s->c_recursion_remaining;
    ts->datastack_chunk = s->datastack_chunk;
    ts->datastack_top = s->datastack_top;
    ts->datastack_limit = s->datastack_limit;
    s->current_frame = NULL;
    s->datastack_chunk = NULL;
    s->datastack_top = NULL;
    s->datastack_limit = NULL;
}

static void
ut_begin_stack(uthread_pystate *s, PyThreadState *ts)
{
    ts->current_frame = NULL;
    ts->py_recursion_remaining = ts->py_recursion_limit;
    ts->c_recursion_remaining = s->c_budget > 0 ? s->c_budget : UT_C_RECURSION_LIMIT;
    ut_install_root_chunk(ts);
}

static int
ut_stack_is_empty(PyThreadState *ts)
{
    return ts->current_frame == NULL;
}

static void
ut_end_stack(uthread_pystate *s, PyThreadState *ts)
{
    (void)s;
    ut_release_datastack(ts->datastack_chunk);
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
    ts->current_frame = NULL;
    ts->py_recursion_remaining = ts->py_recursion_limit;
    ts->c_recursion_remaining = UT_C_RECURSION_LIMIT;
}

#  define UT_THREAD_CURRENT_FRAME(ts) ((ts)->current_frame)

static struct _PyInterpreterFrame *
ut_suspended_iframe(uthread_pystate *s)
{
    return s->current_frame;
}

#endif

#if UT_PY312
/* 3.12+: every eval called from C starts with an entry frame on the C stack (owner
 * FRAME_OWNED_BY_CSTACK) that the next Python frame's `previous` points to. A copying uthread's
 * C stack lives on the heap while it is suspended, so anything walking its frames then (gr_frame,
 * f_back, tracebacks) would read another coroutine's stack at those addresses. At the save, each
 * link into an entry frame is bent to the first frame past the entry frames; the restore puts
 * the links back before any of the uthread's Python code runs. Entry frames themselves carry no
 * Python-visible state (frame walkers skip them as incomplete). Runs only for copying uthreads. */
static void
ut_hide_cstack_frames(uthread_pystate *s, struct _PyInterpreterFrame *top)
{
    s->hidden_count = 0;
    for (struct _PyInterpreterFrame *f = top; f != NULL; f = f->previous) {
        struct _PyInterpreterFrame *p = f->previous;
        if (p == NULL || p->owner != FRAME_OWNED_BY_CSTACK) {
            continue;
        }
        if (s->hidden_count == 0) {
            s->hidden_frame = f;
            s->hidden_previous = p;
        }
        else {
            if (s->hidden_count - 1 == s->hidden_cap) {
                int cap = s->hidden_cap > 0 ? 2 * s->hidden_cap : 4;
                struct ut_hidden_link *mem = PyMem_RawRealloc(s->hidden_more, (size_t)cap * sizeof *mem);
                if (mem == NULL) {
                    /* Out of memory: leave this link (and the older frames behind it) as it is;
                     * walking that far into a suspended copying uthread is then unsafe. */
                    break;
                }
                s->hidden_more = mem;
                s->hidden_cap = cap;
            }
            s->hidden_more[s->hidden_count - 1].frame = f;
            s->hidden_more[s->hidden_count - 1].previous = p;
        }
        s->hidden_count++;
        while (p != NULL && p->owner == FRAME_OWNED_BY_CSTACK) {
            p = p->previous;
        }
        f->previous = p;
    }
}

static void
ut_expose_cstack_frames(uthread_pystate *s)
{
    for (int i = s->hidden_count - 1; i >= 1; i--) {
        ((struct _PyInterpreterFrame *)s->hidden_more[i - 1].frame)->previous = s->hidden_more[i - 1].previous;
    }
    if (s->hidden_count > 0) {
        ((struct _PyInterpreterFrame *)s->hidden_frame)->previous = s->hidden_previous;
    }
    s->hidden_count = 0;
}
#endif

static void
ut_free_hidden(uthread_pystate *s)
{
    PyMem_RawFree(s->hidden_more);
    s->hidden_more = NULL;
    s->hidden_count = 0;
    s->hidden_cap = 0;
}

#if UT_PY311
/* 3.11+: interpreter frames are not objects; the frame object of the suspended uthread's top
 * frame is created (once; the interpreter frame keeps it) by PyThreadState_GetFrame while that
 * frame is briefly the running uthread's current frame. The running uthread's current frame is
 * put back right after; cyclic GC is held off meanwhile so no finalizer runs with the borrowed
 * frame stack in place (3.11 may collect while allocating; 3.12+ only collects at eval breaks).
 * The suspended frames stay valid: they live in the uthread's data stack and C stack, which
 * nobody else uses while it is suspended. */
static PyObject *
ut_suspended_top_frame(uthread_pystate *s)
{
    struct _PyInterpreterFrame *iframe = ut_suspended_iframe(s);
    if (iframe == NULL) {
        return NULL;
    }
    PyThreadState *ts = PyThreadState_Get();
    ut_pending pending;
    ut_pending_take(&pending);
    int gc_was_enabled = PyGC_Disable();
    struct _PyInterpreterFrame *running = UT_THREAD_CURRENT_FRAME(ts);
    UT_THREAD_CURRENT_FRAME(ts) = iframe;
    PyFrameObject *frame = PyThreadState_GetFrame(ts);
    UT_THREAD_CURRENT_FRAME(ts) = running;
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    if (frame == NULL) {
        PyErr_Clear();
    }
    ut_pending_put_back(&pending);
    return (PyObject *)frame;
}
#endif

/* ============================================ API ============================================ */

size_t
uthread_pystate_size(void)
{
    return UT_ROUND_UP(sizeof(struct uthread_pystate), UTHREAD_PYSTATE_ALIGN);
}

void
uthread_pystate_init(uthread_pystate *s)
{
    memset(s, 0, sizeof *s);
    s->status = UTHREAD_PYSTATE_NEW;
}

void
uthread_pystate_init_main(uthread_pystate *s, PyThreadState *ts)
{
    memset(s, 0, sizeof *s);
    s->status = UTHREAD_PYSTATE_RUNNING;
    s->owner = ts;
}

PyThreadState *
uthread_pystate_owner(const uthread_pystate *s)
{
    return s->owner;
}

void
uthread_pystate_set_stack_size(uthread_pystate *s, size_t stack_bytes)
{
#if UT_PY312
    if (stack_bytes == 0) {
        s->c_budget = 0;
        return;
    }
    size_t usable = stack_bytes > UT_STACK_RESERVE ? stack_bytes - UT_STACK_RESERVE : 0;
    size_t units = usable / UT_C_UNIT_BYTES;
    if (units >= (size_t)UT_C_RECURSION_LIMIT) {
        s->c_budget = 0; /* the whole CPython limit fits */
    }
    else {
        s->c_budget = units < UT_MIN_C_BUDGET ? UT_MIN_C_BUDGET : (int)units;
    }
#else
    /* 3.10/3.11 count C recursion against the Python recursion limit: nothing to scale. */
    (void)s;
    (void)stack_bytes;
#endif
}

int
uthread_pystate_c_recursion_budget(const uthread_pystate *s)
{
#if UT_PY312
    return s->c_budget > 0 ? s->c_budget : UT_C_RECURSION_LIMIT;
#else
    (void)s;
    return 0;
#endif
}

int
uthread_pystate_status(const uthread_pystate *s)
{
    return s->status;
}

void
uthread_pystate_save(uthread_pystate *s, PyThreadState *ts)
{
    if (s->status == UTHREAD_PYSTATE_NEW) {
        /* A thread's main coroutine, saved for the first time: its state is in ts already. */
        if (s->context != NULL) {
            ut_fatal("save: a main coroutine's state had a context set before its first save", s);
        }
    }
    else if (s->status != UTHREAD_PYSTATE_RUNNING) {
        ut_fatal("save of a uthread that is not running", s);
    }
    ut_check_owner(s, ts);
    s->context = ts->context; /* the reference moves */
    ts->context = NULL;
    s->exc_info = ts->exc_info;
    ut_save_stack(s, ts);
#if UT_PY312
    if (s->copying) {
        ut_hide_cstack_frames(s, ut_suspended_iframe(s));
    }
#endif
    s->status = UTHREAD_PYSTATE_SUSPENDED;
}

void
uthread_pystate_restore(uthread_pystate *s, PyThreadState *ts)
{
    if (s->status != UTHREAD_PYSTATE_SUSPENDED) {
        ut_fatal("restore of a uthread that is not suspended", s);
    }
    ut_check_owner(s, ts);
    ut_install_context(s, ts);
    ts->exc_info = s->exc_info;
    s->exc_info = NULL;
#if UT_PY312
    ut_expose_cstack_frames(s);
#endif
    ut_restore_stack(s, ts);
    s->status = UTHREAD_PYSTATE_RUNNING;
}

void
uthread_pystate_begin(uthread_pystate *s, PyThreadState *ts)
{
    if (s->status != UTHREAD_PYSTATE_NEW) {
        ut_fatal("begin of a uthread that is not new", s);
    }
    ut_check_owner(s, ts);
    ut_install_context(s, ts);
    memset(&s->exc_state, 0, sizeof s->exc_state);
    ts->exc_info = &s->exc_state;
    ut_begin_stack(s, ts);
    s->begun = 1;
    s->status = UTHREAD_PYSTATE_RUNNING;
}

void
uthread_pystate_end(uthread_pystate *s, PyThreadState *ts)
{
    if (s->status != UTHREAD_PYSTATE_RUNNING || !s->begun) {
        ut_fatal("end of a uthread that is not running or was not started by begin", s);
    }
    ut_check_owner(s, ts);
    if (!ut_stack_is_empty(ts)) {
        ut_fatal("end while the uthread still has Python frames", s);
    }
    if (ts->exc_info != &s->exc_state) {
        ut_fatal("end while the uthread's exception stack is not back at its bottom", s);
    }
    /* Drop what the uthread still holds while its state is still installed: finalizers run here
     * as ordinary code of this uthread. Whatever they leave behind is dropped again. */
    ut_pending pending;
    ut_pending_take(&pending);
    for (int round = 0; round < 8; round++) {
        if (ut_exc_state_is_empty(&s->exc_state) && ts->context == NULL) {
            break;
        }
        ut_exc_state_clear(&s->exc_state);
        PyObject *ctx = ts->context;
        ts->context = NULL;
        ts->context_ver++;
        Py_XDECREF(ctx);
    }
    ut_pending_put_back(&pending);
    if (!ut_stack_is_empty(ts) || ts->exc_info != &s->exc_state) {
        ut_fatal("a finalizer run by end left the uthread unbalanced", s);
    }
    /* Now the structure: no Python code runs from here until the next restore. */
    ut_end_stack(s, ts);
    ts->exc_info = &ts->exc_state;
    ut_free_hidden(s);
    s->status = UTHREAD_PYSTATE_FINISHED;
}

PyObject *
uthread_pystate_frame(uthread_pystate *s)
{
    if (s->status != UTHREAD_PYSTATE_SUSPENDED) {
        return NULL;
    }
    return ut_suspended_top_frame(s);
}

PyObject *
uthread_pystate_get_context(uthread_pystate *s)
{
    if (s->status == UTHREAD_PYSTATE_RUNNING) {
        /* Its context is in the thread state it runs in. */
        return uthread_pystate_ts_get_context(s->owner != NULL ? s->owner : PyThreadState_Get());
    }
    return s->context;
}

void
uthread_pystate_set_context(uthread_pystate *s, PyObject *ctx)
{
    if (s->status == UTHREAD_PYSTATE_RUNNING) {
        /* Its context is in the thread state it runs in. */
        uthread_pystate_ts_set_context(s->owner != NULL ? s->owner : PyThreadState_Get(), ctx);
        return;
    }
    Py_XINCREF(ctx);
    Py_XSETREF(s->context, ctx);
}

int
uthread_pystate_traverse(uthread_pystate *s, visitproc visit, void *arg)
{
    Py_VISIT(s->context);
#if !UT_PY311
    Py_VISIT(s->exc_state.exc_type);
    Py_VISIT(s->exc_state.exc_traceback);
#endif
    Py_VISIT(s->exc_state.exc_value);
    return 0;
}

#if UT_PY311
/* Whether no object can point into the frames of the suspended uthread `s`: no frame of its
 * chain has a frame object or belongs to a generator (a generator's frame lives in the generator
 * and links back into this chain). On 3.12+ this reads the entry frames on its C stack (a copying
 * uthread's chain is bent around them while it is suspended). */
static int
ut_frames_unreferenced(uthread_pystate *s)
{
    for (struct _PyInterpreterFrame *f = ut_suspended_iframe(s); f != NULL; f = f->previous) {
#  if UT_PY312
        if (f->owner == FRAME_OWNED_BY_CSTACK) {
            continue; /* an entry frame on the C stack: only `previous` is meaningful */
        }
#  endif
        if (f->frame_obj != NULL || f->owner == FRAME_OWNED_BY_GENERATOR) {
            return 0;
        }
    }
    return 1;
}
#endif

int
uthread_pystate_release_abandoned(uthread_pystate *s)
{
    if (s->status != UTHREAD_PYSTATE_SUSPENDED || !s->begun) {
        return 0;
    }
#if !UT_PY311
    /* The top frame's reference held by the abandoned C stack (the eval call that runs it) is
     * dropped; a generator's frame is owned by its generator instead, so it is left alone. */
    PyFrameObject *top = s->frame;
    if (top == NULL || top->f_gen != NULL) {
        return 0;
    }
    s->frame = NULL;
    s->cframe = NULL;
    s->status = UTHREAD_PYSTATE_FINISHED;
    Py_DECREF(top);
    return 1;
#else
    if (s->datastack_chunk == NULL || !ut_frames_unreferenced(s)) {
        return 0;
    }
    ut_free_datastack(s->datastack_chunk);
    s->datastack_chunk = NULL;
    s->datastack_top = NULL;
    s->datastack_limit = NULL;
#  if UT_PY313
    s->current_frame = NULL;
#  else
    s->cframe = NULL;
#  endif
    s->status = UTHREAD_PYSTATE_FINISHED;
    return 1;
#endif
}

void
uthread_pystate_clear(uthread_pystate *s)
{
    Py_CLEAR(s->context);
    ut_exc_state_clear(&s->exc_state);
    if (s->status != UTHREAD_PYSTATE_SUSPENDED) {
        ut_free_hidden(s); /* a suspended one still needs its bent links, to put them back */
    }
}

void
uthread_pystate_set_copying(uthread_pystate *s, int copying)
{
    s->copying = copying != 0;
}

PyObject *
uthread_pystate_ts_get_context(PyThreadState *ts)
{
    return ts->context;
}

void
uthread_pystate_ts_set_context(PyThreadState *ts, PyObject *ctx)
{
    PyObject *old = ts->context;
    Py_XINCREF(ctx);
    ts->context = ctx;
    ts->context_ver++;
    Py_XDECREF(old);
}

int
uthread_pystate_ts_trash_delete_nesting(PyThreadState *ts)
{
#if !UT_PY311
    return ts->trash_delete_nesting;
#elif !UT_PY313
    return UT_TRASH_NESTING(ts);
#else
    (void)ts;
    return -1;
#endif
}

void
uthread_pystate_ts_adjust_tracing(PyThreadState *ts, int enter)
{
#if UT_PY311
    if (enter) {
        PyThreadState_EnterTracing(ts);
    } else {
        PyThreadState_LeaveTracing(ts);
    }
#else
    /* 3.10 has no function for it; cframe->use_tracing is left alone (ut_update_use_tracing
     * recomputes it whenever a uthread is switched in). */
    ts->tracing += enter ? 1 : -1;
#endif
}

unsigned long
uthread_pystate_compiled_version(void)
{
    return (unsigned long)PY_VERSION_HEX;
}

int
uthread_pystate_check_runtime(void)
{
    int major = 0, minor = 0;
    if (sscanf(Py_GetVersion(), "%d.%d", &major, &minor) == 2 && major == PY_MAJOR_VERSION &&
        minor == PY_MINOR_VERSION) {
        return 0;
    }
    PyErr_Format(PyExc_ImportError,
                 "uthread: built for CPython %d.%d but running on %.20s", PY_MAJOR_VERSION,
                 PY_MINOR_VERSION, Py_GetVersion());
    return -1;
}
