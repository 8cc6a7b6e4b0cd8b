/*
 * _pystate_probe: a minimal greenlet-like CPython extension used only to test
 * python/src/pystate.c without the Rust extension. Each uthread runs a Python callable on its own
 * libcoro coroutine; the state of the interpreter is saved/restored with uthread_pystate_* around
 * every coro_switch, and begin/end are called inside the coroutine entry.
 *
 *   spawn(callable, stack_size=8 MiB, fit_c_recursion=False, copying=False) -> Handle
 *                                                 a NEW uthread; its parent is the current one;
 *                                                 fit_c_recursion: uthread_pystate_set_stack_size
 *                                                 copying: CORO_FLAG_COPYING and
 *                                                 uthread_pystate_set_copying
 *   switch(handle, value=None) -> value           run/resume it; returns what is switched back
 *   throw(handle, exc) -> value                   switch with `exc` raised in the target
 *   current() / main() -> Handle
 *
 * The first switch into a uthread calls callable(value). When it returns, its result goes to its
 * parent (the uthread that spawned it); when it raises, the exception is raised in the parent.
 * Handle attributes: dead, started, status (uthread_pystate_status), frame (of a suspended one),
 * context (get/set, any state), c_recursion_budget.
 *
 * Protocol followed (as pystate.h describes): save right before every coro_switch and restore
 * right after it returns; begin first and end last in the entry. A started uthread holds a
 * reference to its own Handle until it finishes; the entry cannot drop it itself (that could free
 * the state it is still using, after end), so it parks it in tl_finished and whoever runs next
 * drops it. Not covered (not needed by the tests): killing suspended uthreads when their handle
 * goes away, uthreads whose thread exited.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

#include "coro.h"
#include "../../python/src/pystate.h" /* by path: CPython has its own pystate.h */

/* The raised exception as one object (3.12 API, emulated on 3.10/3.11). */
#if PY_VERSION_HEX >= 0x030C0000
static PyObject *
PyErr_GetRaisedException_compat(void)
{
    return PyErr_GetRaisedException();
}
static void
PyErr_SetRaisedException_compat(PyObject *exc)
{
    if (exc != NULL) {
        PyErr_SetRaisedException(exc);
    }
}
#else
static PyObject *
PyErr_GetRaisedException_compat(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_DECREF(type);
    Py_XDECREF(tb);
    return value;
}
static void
PyErr_SetRaisedException_compat(PyObject *exc)
{
    if (exc != NULL) {
        PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
    }
}
#endif

typedef struct {
    PyObject_HEAD
    coro_t *coro;            /* the thread's main coroutine for a main handle (borrowed) */
    uthread_pystate *state;
    PyObject *callable;      /* until started */
    int is_main;
    int started;
    int dead;
} Handle;

static PyTypeObject Handle_Type;

static _Thread_local Handle *tl_current;  /* borrowed (kept alive by running or by tl_main) */
static _Thread_local Handle *tl_main;     /* owned, never released */
static _Thread_local Handle *tl_finished; /* owned: self-reference of a uthread that just died */

static uthread_pystate *
new_state(void)
{
    size_t size = uthread_pystate_size();
    uthread_pystate *s = aligned_alloc(UTHREAD_PYSTATE_ALIGN, size);
    if (s == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    uthread_pystate_init(s);
    return s;
}

static int
coro_error(coro_status_t st, const char *what)
{
    PyErr_Format(PyExc_RuntimeError, "%s: %s", what, coro_strerror(st));
    return -1;
}

static Handle *
get_main(void)
{
    if (tl_main == NULL) {
        Handle *h = PyObject_GC_New(Handle, &Handle_Type);
        if (h == NULL) {
            return NULL;
        }
        h->callable = NULL;
        h->is_main = 1;
        h->started = 1;
        h->dead = 0;
        h->coro = NULL;
        h->state = new_state();
        if (h->state == NULL) {
            Py_DECREF(h);
            return NULL;
        }
        uthread_pystate_init_main(h->state, PyThreadState_Get());
        coro_status_t st = coro_main(&h->coro);
        if (st != CORO_OK) {
            Py_DECREF(h);
            coro_error(st, "coro_main");
            return NULL;
        }
        PyObject_GC_Track(h);
        tl_main = h;
        tl_current = h;
    }
    return tl_main;
}

static Handle *
get_current(void)
{
    if (get_main() == NULL) {
        return NULL;
    }
    return tl_current;
}

/* Releases the self-reference of a uthread that finished; called by whoever runs next. */
static void
drop_finished(void)
{
    Handle *fin = tl_finished;
    if (fin == NULL) {
        return;
    }
    tl_finished = NULL;
    PyObject *exc = PyErr_GetRaisedException_compat();
    Py_DECREF(fin);
    PyErr_SetRaisedException_compat(exc);
}

/* `msg` is an owned value, or NULL with an exception set (to raise in the target). Returns what
 * is switched back (owned), or NULL with an exception set. */
static PyObject *
do_switch(Handle *target, PyObject *msg)
{
    Handle *cur = get_current();
    if (cur == NULL) {
        Py_XDECREF(msg);
        return NULL;
    }
    if (target == cur) {
        return msg;
    }
    if (target->dead) {
        Py_XDECREF(msg);
        PyErr_SetString(PyExc_ValueError, "switch to a dead uthread");
        return NULL;
    }
    int starting = !target->started;
    if (starting) {
        target->started = 1;
        Py_INCREF(target); /* held while it runs; released through tl_finished */
    }
    PyThreadState *ts = PyThreadState_Get();
    void *received = NULL;
    uthread_pystate_save(cur->state, ts);
    coro_status_t st = coro_switch(target->coro, msg, &received);
    uthread_pystate_restore(cur->state, ts);
    tl_current = cur;
    if (st != CORO_OK) {
        if (starting) {
            target->started = 0;
            Py_DECREF(target);
        }
        Py_XDECREF(msg);
        coro_error(st, "coro_switch");
        return NULL;
    }
    drop_finished();
    if (received == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_SystemError, "switched back with neither a value nor an exception");
    }
    return (PyObject *)received;
}

static void *
entry(coro_t *self, void *arg)
{
    Handle *h = NULL;
    coro_userdata(self, (void **)&h);
    PyThreadState *ts = PyThreadState_Get();
    uthread_pystate_begin(h->state, ts);
    tl_current = h;
    drop_finished();

    PyObject *result = NULL;
    PyObject *callable = h->callable;
    h->callable = NULL;
    if (arg != NULL) {
        result = PyObject_CallOneArg(callable, (PyObject *)arg);
        Py_DECREF((PyObject *)arg);
    }
    /* else: thrown into before it started; the exception is pending */
    {
        PyObject *exc = PyErr_GetRaisedException_compat();
        Py_XDECREF(callable);
        PyErr_SetRaisedException_compat(exc);
    }
    h->dead = 1;
    uthread_pystate_end(h->state, ts);
    tl_finished = h;
    return result;
}

/* ---- Handle ---- */

static int
Handle_traverse(Handle *h, visitproc visit, void *arg)
{
    Py_VISIT(h->callable);
    if (h->state != NULL) {
        return uthread_pystate_traverse(h->state, visit, arg);
    }
    return 0;
}

static int
Handle_clear(Handle *h)
{
    Py_CLEAR(h->callable);
    if (h->state != NULL) {
        int status = uthread_pystate_status(h->state);
        if (status == UTHREAD_PYSTATE_NEW || status == UTHREAD_PYSTATE_FINISHED) {
            uthread_pystate_clear(h->state);
        }
    }
    return 0;
}

static void
Handle_dealloc(Handle *h)
{
    PyObject_GC_UnTrack(h);
    if (h->coro != NULL && !h->is_main) {
        coro_destroy(h->coro); /* NEW or DEAD: running/suspended ones hold a self-reference */
    }
    Py_CLEAR(h->callable);
    if (h->state != NULL) {
        uthread_pystate_clear(h->state);
        free(h->state);
    }
    PyObject_GC_Del(h);
}

static PyObject *
Handle_get_dead(Handle *h, void *c)
{
    (void)c;
    return PyBool_FromLong(h->dead);
}

static PyObject *
Handle_get_started(Handle *h, void *c)
{
    (void)c;
    return PyBool_FromLong(h->started);
}

static PyObject *
Handle_get_status(Handle *h, void *c)
{
    (void)c;
    return PyLong_FromLong(uthread_pystate_status(h->state));
}

static PyObject *
Handle_get_c_budget(Handle *h, void *c)
{
    (void)c;
    return PyLong_FromLong(uthread_pystate_c_recursion_budget(h->state));
}

static PyObject *
Handle_get_frame(Handle *h, void *c)
{
    (void)c;
    PyObject *f = uthread_pystate_frame(h->state);
    if (f == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return f;
}

static PyObject *
Handle_get_context(Handle *h, void *c)
{
    (void)c;
    PyObject *ctx = uthread_pystate_get_context(h->state); /* running: the thread state's */
    if (ctx == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(ctx);
}

static int
Handle_set_context(Handle *h, PyObject *value, void *c)
{
    (void)c;
    if (value == Py_None) {
        value = NULL;
    }
    if (value != NULL && !PyContext_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "context must be a contextvars.Context or None");
        return -1;
    }
    uthread_pystate_set_context(h->state, value); /* running: the thread state's */
    return 0;
}

static PyGetSetDef Handle_getset[] = {
    {"dead", (getter)Handle_get_dead, NULL, NULL, NULL},
    {"started", (getter)Handle_get_started, NULL, NULL, NULL},
    {"status", (getter)Handle_get_status, NULL, NULL, NULL},
    {"frame", (getter)Handle_get_frame, NULL, NULL, NULL},
    {"c_recursion_budget", (getter)Handle_get_c_budget, NULL, NULL, NULL},
    {"context", (getter)Handle_get_context, (setter)Handle_set_context, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Handle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_pystate_probe.Handle",
    .tp_basicsize = sizeof(Handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Handle_traverse,
    .tp_clear = (inquiry)Handle_clear,
    .tp_dealloc = (destructor)Handle_dealloc,
    .tp_getset = Handle_getset,
};

/* ---- module functions ---- */

static PyObject *
probe_spawn(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    (void)mod;
    static char *kwlist[] = {"callable", "stack_size", "fit_c_recursion", "copying", NULL};
    PyObject *callable;
    Py_ssize_t stack_size = 8 * 1024 * 1024;
    int fit = 0;
    int copying = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|npp:spawn", kwlist, &callable, &stack_size,
                                     &fit, &copying)) {
        return NULL;
    }
    if (get_main() == NULL) {
        return NULL;
    }
    Handle *h = PyObject_GC_New(Handle, &Handle_Type);
    if (h == NULL) {
        return NULL;
    }
    h->coro = NULL;
    h->callable = Py_NewRef(callable);
    h->is_main = 0;
    h->started = 0;
    h->dead = 0;
    h->state = new_state();
    if (h->state == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    if (fit) {
        uthread_pystate_set_stack_size(h->state, (size_t)stack_size);
    }
    uthread_pystate_set_copying(h->state, copying);
    coro_options_t opts;
    coro_options_init(&opts);
    opts.stack_size = (size_t)stack_size;
    opts.flags = copying ? CORO_FLAG_COPYING : CORO_FLAG_OWN_STACK;
    opts.userdata = h; /* borrowed: the handle outlives its coroutine (destroyed in dealloc) */
    coro_status_t st = coro_new(entry, &opts, &h->coro);
    if (st != CORO_OK) {
        h->coro = NULL;
        Py_DECREF(h);
        coro_error(st, "coro_new");
        return NULL;
    }
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

static PyObject *
probe_switch(PyObject *mod, PyObject *args)
{
    (void)mod;
    Handle *target;
    PyObject *value = Py_None;
    if (!PyArg_ParseTuple(args, "O!|O:switch", &Handle_Type, &target, &value)) {
        return NULL;
    }
    return do_switch(target, Py_NewRef(value));
}

static PyObject *
probe_throw(PyObject *mod, PyObject *args)
{
    (void)mod;
    Handle *target;
    PyObject *exc;
    if (!PyArg_ParseTuple(args, "O!O:throw", &Handle_Type, &target, &exc)) {
        return NULL;
    }
    if (PyExceptionClass_Check(exc)) {
        PyErr_SetNone(exc);
    }
    else if (PyExceptionInstance_Check(exc)) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "throw() needs an exception");
        return NULL;
    }
    return do_switch(target, NULL);
}

static PyObject *
probe_current(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
    Handle *h = get_current();
    return h ? Py_NewRef((PyObject *)h) : NULL;
}

static PyObject *
probe_main(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
    Handle *h = get_main();
    return h ? Py_NewRef((PyObject *)h) : NULL;
}

static PyObject *
probe_state_size(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
    return PyLong_FromSize_t(uthread_pystate_size());
}

static PyObject *
probe_compiled_version(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
    return PyLong_FromUnsignedLong(uthread_pystate_compiled_version());
}

/* Abandons a suspended uthread as an exited thread's would be: releases its frames if nothing
 * can point into them (returns whether it did), drops its references and marks it dead. Its
 * coroutine stays suspended for ever (its stack and the handle's self-reference are leaked). */
static PyObject *
probe_abandon(PyObject *mod, PyObject *arg)
{
    (void)mod;
    if (!PyObject_TypeCheck(arg, &Handle_Type)) {
        PyErr_SetString(PyExc_TypeError, "abandon() takes a Handle");
        return NULL;
    }
    Handle *h = (Handle *)arg;
    if (h->is_main || h->dead || !h->started ||
        uthread_pystate_status(h->state) != UTHREAD_PYSTATE_SUSPENDED) {
        PyErr_SetString(PyExc_ValueError, "abandon() takes a suspended uthread");
        return NULL;
    }
    int released = uthread_pystate_release_abandoned(h->state);
    uthread_pystate_clear(h->state);
    h->dead = 1;
    return PyBool_FromLong(released);
}

static PyObject *
probe_drain_pool(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
    uthread_pystate_drain_pool();
    Py_RETURN_NONE;
}

/* The address of the running uthread's root data-stack chunk (3.11+), or None (3.10). */
static PyObject *
probe_root_chunk(PyObject *mod, PyObject *noargs)
{
    (void)mod;
    (void)noargs;
#if PY_VERSION_HEX >= 0x030B0000
    _PyStackChunk *chunk = PyThreadState_Get()->datastack_chunk;
    while (chunk != NULL && chunk->previous != NULL) {
        chunk = chunk->previous;
    }
    return PyLong_FromVoidPtr(chunk);
#else
    Py_RETURN_NONE;
#endif
}

static PyMethodDef probe_methods[] = {
    {"drain_pool", probe_drain_pool, METH_NOARGS, NULL},
    {"abandon", probe_abandon, METH_O, NULL},
    {"root_chunk", probe_root_chunk, METH_NOARGS, NULL},
    {"spawn", (PyCFunction)(void (*)(void))probe_spawn, METH_VARARGS | METH_KEYWORDS, NULL},
    {"switch", probe_switch, METH_VARARGS, NULL},
    {"throw", probe_throw, METH_VARARGS, NULL},
    {"current", probe_current, METH_NOARGS, NULL},
    {"main", probe_main, METH_NOARGS, NULL},
    {"state_size", probe_state_size, METH_NOARGS, NULL},
    {"compiled_version", probe_compiled_version, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef probe_module = {
    PyModuleDef_HEAD_INIT, "_pystate_probe", NULL, -1, probe_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__pystate_probe(void)
{
    if (uthread_pystate_check_runtime() < 0) {
        return NULL;
    }
    if (PyType_Ready(&Handle_Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&probe_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObject(m, "Handle", Py_NewRef((PyObject *)&Handle_Type)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
