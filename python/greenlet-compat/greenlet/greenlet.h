/*
 * greenlet.h -- greenlet 3's C API, as provided by uthread's drop-in `greenlet` package.
 *
 * Written for uthread from the ABI that greenlet 3 publishes; C, C++ and Cython code compiled
 * against greenlet 3's own greenlet.h runs against uthread unchanged, and code compiled against
 * this header runs against greenlet 3 too. See uthread's docs/greenlet-compat.md.
 *
 * Use:
 *
 *     #include <greenlet/greenlet.h>       (or "greenlet.h")
 *
 *     PyMODINIT_FUNC PyInit_mymod(void) {
 *         ...
 *         if (PyGreenlet_Import() == NULL)  // imports `greenlet`, fetches greenlet._C_API
 *             return NULL;
 *     }
 *
 *     PyGreenlet *g = PyGreenlet_New(run, NULL);        // greenlet(run)
 *     PyObject *r = PyGreenlet_Switch(g, args, kwargs); // g.switch(*args, **kwargs)
 *
 * Every entry point needs the GIL (as all of CPython's C API). Entry points that return an
 * object return a new reference, or NULL with a Python exception set; those that return int
 * return -1 with an exception set on error. A NULL or non-greenlet argument where a greenlet is
 * expected is a TypeError; a switch to a greenlet of another thread is greenlet.error.
 */
#ifndef UTHREAD_GREENLET_H
#define UTHREAD_GREENLET_H
/* greenlet's own include guard too: a translation unit sees one of the two headers only. */
#ifndef Py_GREENLETOBJECT_H
#define Py_GREENLETOBJECT_H

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A constant greenlet's header has always defined (unrelated to the package's version). */
#define GREENLET_VERSION "1.0.0"

/*
 * The instance layout of the greenlet type. A C or Cython subtype puts its own fields after
 * these (the type's tp_basicsize is sizeof(PyGreenlet)); everything else about a greenlet
 * lives behind `pimpl`, which extensions must not touch.
 */
typedef struct _greenlet {
    PyObject_HEAD
    PyObject *weakreflist; /* tp_weaklistoffset */
    PyObject *dict;        /* tp_dictoffset */
    void *pimpl;           /* the implementation (opaque) */
} PyGreenlet;

/* ---- The capsule ------------------------------------------------------------------------ */

/* `greenlet._C_API` is a PyCapsule of that name holding an array of this many pointers, at the
 * indexes below. The order is fixed: it is greenlet 3's. */
#define PyGreenlet_API_pointers 12

#define PyGreenlet_Type_NUM 0         /* PyTypeObject *: greenlet.greenlet */
#define PyExc_GreenletError_NUM 1     /* PyObject *: greenlet.error */
#define PyExc_GreenletExit_NUM 2      /* PyObject *: greenlet.GreenletExit */
#define PyGreenlet_New_NUM 3          /* PyGreenlet_New_t */
#define PyGreenlet_GetCurrent_NUM 4   /* PyGreenlet_GetCurrent_t */
#define PyGreenlet_Throw_NUM 5        /* PyGreenlet_Throw_t */
#define PyGreenlet_Switch_NUM 6       /* PyGreenlet_Switch_t */
#define PyGreenlet_SetParent_NUM 7    /* PyGreenlet_SetParent_t */
#define PyGreenlet_MAIN_NUM 8         /* PyGreenlet_Flag_t */
#define PyGreenlet_STARTED_NUM 9      /* PyGreenlet_Flag_t */
#define PyGreenlet_ACTIVE_NUM 10      /* PyGreenlet_Flag_t */
#define PyGreenlet_GET_PARENT_NUM 11  /* PyGreenlet_GetParent_t */

/* greenlet.greenlet(run, parent): run and parent may be NULL (no run yet; the current
 * greenlet as parent). A new greenlet, not started. */
typedef PyGreenlet *(*PyGreenlet_New_t)(PyObject *run, PyGreenlet *parent);
/* greenlet.getcurrent(): the running greenlet of this thread (RuntimeError while the
 * interpreter is finalizing). */
typedef PyGreenlet *(*PyGreenlet_GetCurrent_t)(void);
/* g.throw(typ, val, tb): val and tb may be NULL. Returns what the switch back brings. */
typedef PyObject *(*PyGreenlet_Throw_t)(PyGreenlet *g, PyObject *typ, PyObject *val, PyObject *tb);
/* g.switch(*args, **kwargs): args a tuple or NULL (no arguments); kwargs a dict, or NULL
 * (anything that is not a dict counts as none). Returns what the switch back brings. */
typedef PyObject *(*PyGreenlet_Switch_t)(PyGreenlet *g, PyObject *args, PyObject *kwargs);
/* g.parent = parent: 0, or -1 (TypeError, ValueError for a cycle or another thread's
 * greenlet, AttributeError for a main greenlet). */
typedef int (*PyGreenlet_SetParent_t)(PyGreenlet *g, PyGreenlet *parent);
/* MAIN: a thread's main greenlet; STARTED: switched to at least once; ACTIVE: started and
 * not dead (bool(g)). 1 or 0, or -1 with TypeError for a non-greenlet. */
typedef int (*PyGreenlet_Flag_t)(PyGreenlet *g);
/* g.parent: a new reference, or NULL -- *without* an exception set when g has no parent
 * (a main greenlet); with TypeError for a non-greenlet. */
typedef PyGreenlet *(*PyGreenlet_GetParent_t)(PyGreenlet *g);

/* The table, one per translation unit (as in greenlet's header): PyGreenlet_Import() fills it.
 * A function's slot is read through a pointer to the function pointer type (as POSIX's dlsym
 * examples do): ISO C has no conversion between void * and function pointers. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static void **_PyGreenlet_API = NULL;

/* Imports `greenlet` and fetches its capsule; evaluates to the table, NULL on failure (with
 * ImportError or AttributeError set). Call it once in the module's init function. */
#define PyGreenlet_Import() \
    (_PyGreenlet_API = (void **)PyCapsule_Import("greenlet._C_API", 0))

#define PyGreenlet_Type (*(PyTypeObject *)_PyGreenlet_API[PyGreenlet_Type_NUM])
#define PyExc_GreenletError ((PyObject *)_PyGreenlet_API[PyExc_GreenletError_NUM])
#define PyExc_GreenletExit ((PyObject *)_PyGreenlet_API[PyExc_GreenletExit_NUM])

/* Whether op is a greenlet (or an instance of a subtype); op may be NULL. */
#define PyGreenlet_Check(op) ((op) && PyObject_TypeCheck((op), &PyGreenlet_Type))

#define PyGreenlet_New (*(PyGreenlet_New_t *)&_PyGreenlet_API[PyGreenlet_New_NUM])
#define PyGreenlet_GetCurrent (*(PyGreenlet_GetCurrent_t *)&_PyGreenlet_API[PyGreenlet_GetCurrent_NUM])
#define PyGreenlet_Throw (*(PyGreenlet_Throw_t *)&_PyGreenlet_API[PyGreenlet_Throw_NUM])
#define PyGreenlet_Switch (*(PyGreenlet_Switch_t *)&_PyGreenlet_API[PyGreenlet_Switch_NUM])
#define PyGreenlet_SetParent (*(PyGreenlet_SetParent_t *)&_PyGreenlet_API[PyGreenlet_SetParent_NUM])
#define PyGreenlet_MAIN (*(PyGreenlet_Flag_t *)&_PyGreenlet_API[PyGreenlet_MAIN_NUM])
#define PyGreenlet_STARTED (*(PyGreenlet_Flag_t *)&_PyGreenlet_API[PyGreenlet_STARTED_NUM])
#define PyGreenlet_ACTIVE (*(PyGreenlet_Flag_t *)&_PyGreenlet_API[PyGreenlet_ACTIVE_NUM])
#define PyGreenlet_GetParent (*(PyGreenlet_GetParent_t *)&_PyGreenlet_API[PyGreenlet_GET_PARENT_NUM])
/* The older spelling of PyGreenlet_GetParent. */
#define PyGreenlet_GET_PARENT PyGreenlet_GetParent

#ifdef __cplusplus
}
#endif
#endif /* Py_GREENLETOBJECT_H */
#endif /* UTHREAD_GREENLET_H */
