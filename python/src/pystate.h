/*
 * pystate.h: the per-uthread part of CPython's PyThreadState, saved and restored around every
 * switch. This interface is the same on every supported CPython version; the differences are
 * behind it, in pystate.c. pystate.c is the only code of the extension that reads or writes
 * PyThreadState fields or interpreter frames, and with python/src/pyversion.rs (the differences
 * the Rust side sees: public API that appeared, changed or moved) it holds every CPython version
 * difference of the extension; ci/lint-version-isolation.sh keeps version checks out of every
 * other file of python/src, this header included.
 *
 * Supported: CPython 3.10, 3.11, 3.12, 3.13 with the GIL (not the free-threaded build, not the
 * limited API). pystate.c must be compiled against the headers of the exact minor version it runs
 * on, and with that version's internal headers on the include path (python/build.rs adds
 * <include>/internal): on 3.11+ it defines the core-build macro and includes pycore_frame.h to
 * read three fields of interpreter frames (see the top of pystate.c). This header itself includes
 * only Python.h.
 *
 * The model. Every uthread (coroutine) has its own C stack, so the interpreter state that lives
 * on or points into a C stack, and the state that describes "the current call stack", has to be
 * per uthread; everything else in PyThreadState stays per OS thread. While a uthread RUNS, its
 * state lives in the thread's PyThreadState; while it is SUSPENDED, it lives in its
 * uthread_pystate. Per uthread:
 *   - the current frame (3.10 tstate->frame; 3.11/3.12 tstate->cframe and the current_frame it
 *     holds; 3.13 tstate->current_frame);
 *   - the recursion counters (3.10 recursion_depth; 3.11 recursion_remaining; 3.12/3.13
 *     py_recursion_remaining and c_recursion_remaining), kept as depths so that
 *     sys.setrecursionlimit() while a uthread is suspended applies to it too;
 *   - the exception stack: tstate->exc_info, whose bottom entry for a uthread started with
 *     uthread_pystate_begin() is inside its uthread_pystate (sys.exc_info() is per uthread);
 *   - the contextvars context (tstate->context; context_ver is bumped on every change);
 *   - the frame data stack of 3.11+ (datastack_chunk/top/limit);
 *   - the trashcan nesting of 3.10-3.12 (3.13 counts it in c_recursion_remaining);
 *   - 3.10/3.11: cframe->use_tracing is recomputed from the thread's trace/profile functions on
 *     every switch in (the functions themselves are per thread, as for threads).
 * Per thread (untouched): the raised exception (PyErr_Occurred(), so an error set before a switch
 * is seen by the uthread switched to), trace/profile functions and the `tracing` guard, the trash
 * delete_later list, async_exc, dict (threading.local), async-gen hooks, the GIL state.
 *
 * Protocol (all calls with the GIL held, on the thread that owns the uthreads, with `ts` =
 * PyThreadState_Get() of that thread). For a switch from uthread A to uthread B:
 *
 *     uthread_pystate_save(A->state, ts);        // A's last Python-visible act
 *     st = coro_switch(B->coro, msg, &recv);     // no Python API in between, GIL kept
 *     uthread_pystate_restore(A->state, ts);     // A's first act when it runs again
 *
 * i.e. each uthread saves itself right before its coro_switch/coro_kill and restores itself right
 * after it returns, whatever the status (if the switch failed, nothing ran and the restore undoes
 * the save). A NEW uthread's entry function, on its own stack, calls
 * uthread_pystate_begin(B->state, ts) before any Python API call and
 * uthread_pystate_end(B->state, ts) after its last one, then returns (the library then resumes
 * the parent, which restores itself). The thread's main coroutine never calls begin/end: its
 * uthread_pystate is init'ed (init_main, or init) and then saved/restored. Python references the
 * entry still holds must be dropped BEFORE end (or handed to the next uthread to drop): Python
 * code running between end and the next restore would run on an empty, half-torn-down state.
 *
 * A uthread_pystate must not move in memory from begin (or the first save) until it is FINISHED
 * or abandoned: the interpreter keeps pointers into it (the bottom exception entry, the bottom
 * C frame of 3.10-3.12).
 *
 * Dead threads. When the owning thread has exited, its SUSPENDED uthreads can never run again:
 * call only uthread_pystate_release_abandoned/clear/traverse/status on them (their frames are
 * freed when nothing can point into them, else leaked, see uthread_pystate_release_abandoned),
 * and do not ask for the frame of one whose coroutine stack was released (3.12+ link frames
 * through entries on that C stack).
 *
 * Include this header by its path or with python/src ahead of CPython's include directory:
 * CPython has a pystate.h of its own.
 */
#ifndef UTHREAD_PYSTATE_H
#define UTHREAD_PYSTATE_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque. Allocate uthread_pystate_size() bytes aligned to UTHREAD_PYSTATE_ALIGN. */
typedef struct uthread_pystate uthread_pystate;

#define UTHREAD_PYSTATE_ALIGN 16

/* Where a uthread_pystate is in its life (uthread_pystate_status). */
enum uthread_pystate_status {
    UTHREAD_PYSTATE_NEW = 0,       /* after init: nothing saved (a NEW uthread, or a main one) */
    UTHREAD_PYSTATE_RUNNING = 1,   /* after begin or restore: the state is in the PyThreadState */
    UTHREAD_PYSTATE_SUSPENDED = 2, /* after save: the state is in the uthread_pystate */
    UTHREAD_PYSTATE_FINISHED = 3,  /* after end: nothing left (a dead uthread) */
};

/* Bytes to allocate for one uthread_pystate (a multiple of UTHREAD_PYSTATE_ALIGN). */
size_t uthread_pystate_size(void);

/* Initialises `s` to the state of a uthread that has not started: no frames, nothing saved, no
 * context. No GIL needed. Also the initial state of a thread's main coroutine. */
void uthread_pystate_init(uthread_pystate *s);

/* Initialises `s` for a thread's main coroutine (or any uthread that is already running without
 * having been started by begin): RUNNING, owned by `ts`. Its state is in `ts` until its first
 * save. (uthread_pystate_init also works for a main coroutine; this one makes get_context,
 * set_context and frame treat it as running from the start.) */
void uthread_pystate_init_main(uthread_pystate *s, PyThreadState *ts);

/* Switch OUT of the running uthread: moves its per-uthread state from `ts` into `s`
 * (NEW or RUNNING -> SUSPENDED). Takes over ts's reference to the context. Runs no Python code. */
void uthread_pystate_save(uthread_pystate *s, PyThreadState *ts);

/* Switch IN: moves `s` back into `ts` (SUSPENDED -> RUNNING); recomputes the 3.10/3.11 tracing
 * flag from the thread's trace/profile functions; bumps ts->context_ver. Runs no Python code. */
void uthread_pystate_restore(uthread_pystate *s, PyThreadState *ts);

/* First thing on a NEW uthread's own stack (NEW -> RUNNING): gives `ts` a fresh per-uthread state:
 * no current frame, full recursion budgets, an empty exception stack whose bottom entry lives in
 * `s`, the context set by uthread_pystate_set_context (if any; else none, so contextvars start
 * from an empty context), an empty data stack (3.11+; allocated by CPython on first use), a
 * bottom C frame inside `s` (3.10-3.12), trashcan nesting 0. Runs no Python code. */
void uthread_pystate_begin(uthread_pystate *s, PyThreadState *ts);

/* When the uthread's Python code has finished, still on its stack (RUNNING -> FINISHED): drops the
 * uthread's context and bottom exception entry (this may run finalizers; a pending exception is
 * preserved), then frees the data-stack chunks begin's state allocated (3.11+) and leaves `ts` in
 * a neutral state (no frame). No Python code may run after this until the next restore. */
void uthread_pystate_end(uthread_pystate *s, PyThreadState *ts);

/* A new reference to the top (innermost) frame of a SUSPENDED uthread (its gr_frame), or NULL
 * without an exception set if it has none or is not SUSPENDED. May create the frame object. */
PyObject *uthread_pystate_frame(uthread_pystate *s);

/* Borrowed: the contextvars context of a uthread, or NULL if it has none (then its first
 * contextvars use creates an empty one). For a RUNNING uthread it is the context in the thread
 * state it runs in (uthread_pystate_owner; the calling thread's if none is recorded yet). */
PyObject *uthread_pystate_get_context(uthread_pystate *s);

/* Sets the context of a uthread (a contextvars.Context, or NULL for none). Steals nothing: increfs
 * `ctx`, decrefs the old one (which may run finalizers). For a RUNNING uthread it sets the context
 * in the thread state it runs in, as uthread_pystate_ts_set_context. Memory-safe from any thread
 * holding the GIL, but changing the context of a uthread running in ANOTHER thread pulls it from
 * under that thread's code (greenlet refuses that case with ValueError; so should the caller). */
void uthread_pystate_set_context(uthread_pystate *s, PyObject *ctx);

/* GC support: visits the references `s` owns (the context of a NEW/SUSPENDED uthread and its
 * bottom exception entry). Frames of a suspended uthread are not visited: they are referenced from
 * its C stack and data stack, which the collector treats as external, like another thread's. */
int uthread_pystate_traverse(uthread_pystate *s, visitproc visit, void *arg);

/* Drops the references `s` owns (context, bottom exception entry). For tp_clear/dealloc of a
 * NEW, FINISHED or abandoned uthread (one that can never run again, e.g. its thread exited). It
 * does not free the frames or data stack of an abandoned SUSPENDED uthread: call
 * uthread_pystate_release_abandoned first for that. Safe to call more than once. */
void uthread_pystate_clear(uthread_pystate *s);

/* Frees the frames' memory of an abandoned SUSPENDED uthread (one that will never run again,
 * e.g. its thread exited) when nothing can point into it, as greenlet does: on 3.11+ its data
 * stack chunks, if no frame of its chain has a frame object or belongs to a generator; on 3.10
 * its top frame (the reference its C stack held), unless a generator owns it. What the frames
 * refer to is leaked either way. Returns 1 if released (the state is then FINISHED), 0 if left
 * as it was (leaked). On 3.12+ the frame chain of a uthread runs through entry frames on its C
 * stack, so that stack must still be mapped (a copying uthread's chain is bent around them while
 * it is suspended, see uthread_pystate_set_copying). Call before uthread_pystate_clear, with the
 * GIL, on any thread. */
int uthread_pystate_release_abandoned(uthread_pystate *s);

/* ---- additions ---- */

/* The status of `s` (an enum uthread_pystate_status value). */
int uthread_pystate_status(const uthread_pystate *s);

/* The PyThreadState `s` belongs to (set by init_main, begin or the first save), or NULL. Every
 * save/restore/begin/end must pass this same thread state: a mismatch is a fatal error. */
PyThreadState *uthread_pystate_owner(const uthread_pystate *s);

/* Borrowed: the context of the RUNNING uthread of `ts` (ts->context), or NULL if none yet. */
PyObject *uthread_pystate_ts_get_context(PyThreadState *ts);

/* Sets the context of the RUNNING uthread of `ts` (a contextvars.Context or NULL); increfs it,
 * decrefs the old one, bumps ts->context_ver. Doing this inside Context.run() makes that run()
 * fail on exit, exactly as greenlet's gr_context does. */
void uthread_pystate_ts_set_context(PyThreadState *ts, PyObject *ctx);

/* The trash-can nesting counter of `ts` (3.10-3.12; per uthread, saved with its stack), or -1 on
 * 3.13, which has no separate counter. For greenlet's get_tstate_trash_delete_nesting(). */
int uthread_pystate_ts_trash_delete_nesting(PyThreadState *ts);

/* Enters (`enter` non-zero) or leaves the per-thread `tracing` guard of `ts`, as 3.11+'s
 * PyThreadState_EnterTracing/LeaveTracing do (3.10: ts->tracing += 1 / -= 1, use_tracing left as
 * it is). For a hook called inside the guard that runs Python code which may switch uthreads. */
void uthread_pystate_ts_adjust_tracing(PyThreadState *ts, int enter);

/* Optional, before begin: the usable size of the uthread's C stack, so that 3.12+ give it a C
 * recursion budget that fits (about one unit per 800 bytes, never more than CPython's own limit;
 * deep C recursion then raises RecursionError instead of overflowing the stack). 0, or not calling
 * it, gives CPython's full limit (C_RECURSION_LIMIT 1500 on 3.12, Py_C_RECURSION_LIMIT 10000 on
 * 3.13), which needs about 0.5 MiB (3.12) / 1.5 MiB (3.13) of stack in the worst cases measured.
 * No effect on 3.10/3.11, where C recursion counts against sys.getrecursionlimit() and a uthread
 * needs about 1 MiB of stack at the default limit of 1000 (see tests/pystate/measure_stack.py). */
void uthread_pystate_set_stack_size(uthread_pystate *s, size_t stack_bytes);

/* Optional, before begin: marks a uthread whose C stack is saved to the heap while it is
 * suspended (the engine's copying mode). Its state then never points into that stack while it is
 * suspended: on 3.12+ its frame chain's links into C-stack entry frames are bent around them from
 * save to restore (3.11 and 3.12 read the top frame at save time for every uthread anyway). */
void uthread_pystate_set_copying(uthread_pystate *s, int copying);

/* The C recursion budget begin gives this uthread (3.12+), or 0 on 3.10/3.11. */
int uthread_pystate_c_recursion_budget(const uthread_pystate *s);

/* Frees the calling OS thread's pool of data-stack root chunks (3.11+; up to 16 chunks of 16 KiB
 * that begin reuses instead of allocating). Call when the thread's uthread state goes, on that
 * thread; the GIL is not needed (the chunks come from the object arena allocator). No-op on 3.10. */
void uthread_pystate_drain_pool(void);

/* 0 if the running interpreter has the minor version this file was compiled for; otherwise -1 with
 * ImportError set. Call once at module init. */
int uthread_pystate_check_runtime(void);

/* The version (as a hex version number, e.g. 0x030D00F0) pystate.c was compiled against. */
unsigned long uthread_pystate_compiled_version(void);

#ifdef __cplusplus
}
#endif

#endif /* UTHREAD_PYSTATE_H */
