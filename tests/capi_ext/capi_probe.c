/*
 * _capi_probe: a C extension of uthread's tests, compiled at test time (tests/python/test_capi.py)
 * against the greenlet.h that the drop-in greenlet wheel installs, with -Wall -Wextra -Wpedantic
 * -Werror. It calls every entry of the `greenlet._C_API` capsule through the header's macros,
 * passing NULL where the Python tests pass `NULL` (the module's sentinel), and defines `Sub`, a
 * C subtype of the greenlet type with fields of its own after PyGreenlet, as Cython's
 * `cdef class X(greenlet)` (gevent's Greenlet) does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <structmember.h>

#include <greenlet/greenlet.h>

/* Stands for a C NULL in arguments and results. */
static PyObject *null_sentinel;

static PyObject *unnull(PyObject *o) { return o == null_sentinel ? NULL : o; }

/* An int result of the C API: the value, or (-1 with an exception) the exception. A -1 without
 * an exception, or an exception with another value, is a bug the tests must see. */
static PyObject *int_result(int r) {
    if (r == -1) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "C API returned -1 without an exception");
        return NULL;
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_SystemError, "C API returned %d with an exception set", r);
        return NULL;
    }
    return PyLong_FromLong(r);
}

/* An object result: the object, or NULL with its exception; NULL without an exception is
 * returned as the sentinel. */
static PyObject *obj_result(PyObject *r) {
    if (r == NULL && !PyErr_Occurred())
        return Py_NewRef(null_sentinel);
    if (r != NULL && PyErr_Occurred()) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_SystemError, "C API returned an object with an exception set");
        return NULL;
    }
    return r;
}

static PyObject *probe_table(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return Py_BuildValue("(OOOn)", (PyObject *)&PyGreenlet_Type, PyExc_GreenletError,
                         PyExc_GreenletExit, (Py_ssize_t)PyGreenlet_API_pointers);
}

static PyObject *probe_layout(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return Py_BuildValue("(nnnnnn)", (Py_ssize_t)sizeof(PyGreenlet),
                         (Py_ssize_t)offsetof(PyGreenlet, weakreflist),
                         (Py_ssize_t)offsetof(PyGreenlet, dict), PyGreenlet_Type.tp_basicsize,
                         PyGreenlet_Type.tp_weaklistoffset, PyGreenlet_Type.tp_dictoffset);
}

static PyObject *probe_new(PyObject *self, PyObject *args) {
    PyObject *run, *parent;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &run, &parent))
        return NULL;
    return obj_result((PyObject *)PyGreenlet_New(unnull(run), (PyGreenlet *)unnull(parent)));
}

static PyObject *probe_getcurrent(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return obj_result((PyObject *)PyGreenlet_GetCurrent());
}

static PyObject *probe_throw(PyObject *self, PyObject *args) {
    PyObject *g, *typ, *val, *tb;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &g, &typ, &val, &tb))
        return NULL;
    return obj_result(PyGreenlet_Throw((PyGreenlet *)unnull(g), unnull(typ), unnull(val), unnull(tb)));
}

static PyObject *probe_switch(PyObject *self, PyObject *args) {
    PyObject *g, *sargs, *skwargs;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO", &g, &sargs, &skwargs))
        return NULL;
    return obj_result(PyGreenlet_Switch((PyGreenlet *)unnull(g), unnull(sargs), unnull(skwargs)));
}

static PyObject *probe_setparent(PyObject *self, PyObject *args) {
    PyObject *g, *parent;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &g, &parent))
        return NULL;
    return int_result(PyGreenlet_SetParent((PyGreenlet *)unnull(g), (PyGreenlet *)unnull(parent)));
}

static PyObject *probe_main(PyObject *self, PyObject *g) {
    (void)self;
    return int_result(PyGreenlet_MAIN((PyGreenlet *)unnull(g)));
}

static PyObject *probe_started(PyObject *self, PyObject *g) {
    (void)self;
    return int_result(PyGreenlet_STARTED((PyGreenlet *)unnull(g)));
}

static PyObject *probe_active(PyObject *self, PyObject *g) {
    (void)self;
    return int_result(PyGreenlet_ACTIVE((PyGreenlet *)unnull(g)));
}

static PyObject *probe_get_parent(PyObject *self, PyObject *g) {
    (void)self;
    return obj_result((PyObject *)PyGreenlet_GetParent((PyGreenlet *)unnull(g)));
}

static PyObject *probe_get_parent_old_name(PyObject *self, PyObject *g) {
    (void)self;
    return obj_result((PyObject *)PyGreenlet_GET_PARENT((PyGreenlet *)unnull(g)));
}

static PyObject *probe_check(PyObject *self, PyObject *o) {
    (void)self;
    return PyBool_FromLong(PyGreenlet_Check(unnull(o)));
}

/* Switches to `g` from inside a C function, twice, checking that C locals survive: a C frame
 * that is suspended in the middle and resumed later. Returns the two results. */
static PyObject *probe_switch_twice(PyObject *self, PyObject *g) {
    volatile long canary = 0x5eed;
    PyObject *first, *second, *r;
    (void)self;
    first = PyGreenlet_Switch((PyGreenlet *)g, NULL, NULL);
    if (first == NULL)
        return NULL;
    second = PyGreenlet_Switch((PyGreenlet *)g, NULL, NULL);
    if (second == NULL) {
        Py_DECREF(first);
        return NULL;
    }
    if (canary != 0x5eed) {
        Py_DECREF(first);
        Py_DECREF(second);
        PyErr_SetString(PyExc_AssertionError, "a C local changed across switches");
        return NULL;
    }
    r = PyTuple_Pack(2, first, second);
    Py_DECREF(first);
    Py_DECREF(second);
    return r;
}

/* ---- Sub: a C subtype with its own fields after PyGreenlet ---------------------------------- */

#define SUB_MAGIC 0x0DDBA11L

typedef struct {
    PyGreenlet base;
    long magic;        /* set by tp_new, checked by every method */
    PyObject *payload; /* a strong reference (GC-visible) */
    double ratio;
    char tag[24];
} SubObject;

static int sub_ok(SubObject *s) {
    if (s->magic != SUB_MAGIC) {
        PyErr_SetString(PyExc_AssertionError, "Sub: the subtype's fields were overwritten");
        return 0;
    }
    return 1;
}

static PyObject *sub_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    SubObject *s = (SubObject *)PyGreenlet_Type.tp_new(type, args, kwds);
    if (s == NULL)
        return NULL;
    s->magic = SUB_MAGIC;
    s->payload = NULL;
    s->ratio = 0.5;
    memcpy(s->tag, "uthread-sub", sizeof "uthread-sub");
    return (PyObject *)s;
}

static int sub_traverse(SubObject *s, visitproc visit, void *arg) {
    Py_VISIT(s->payload);
    return PyGreenlet_Type.tp_traverse((PyObject *)s, visit, arg);
}

static int sub_clear(SubObject *s) {
    Py_CLEAR(s->payload);
    return PyGreenlet_Type.tp_clear((PyObject *)s);
}

static void sub_dealloc(SubObject *s) {
    /* As Cython does for a GC subtype: untrack, clear our fields, track again for the base. */
    PyObject_GC_UnTrack(s);
    Py_CLEAR(s->payload);
    PyObject_GC_Track(s);
    PyGreenlet_Type.tp_dealloc((PyObject *)s);
}

static PyObject *sub_fields(PyObject *self, PyObject *noargs) {
    SubObject *s = (SubObject *)self;
    (void)noargs;
    if (!sub_ok(s))
        return NULL;
    return Py_BuildValue("(lds)", s->magic, s->ratio, s->tag);
}

static PyObject *sub_bump(PyObject *self, PyObject *noargs) {
    SubObject *s = (SubObject *)self;
    (void)noargs;
    if (!sub_ok(s))
        return NULL;
    s->ratio *= 2.0;
    return PyFloat_FromDouble(s->ratio);
}

static PyMethodDef sub_methods[] = {
    {"fields", sub_fields, METH_NOARGS, "(magic, ratio, tag): the C fields of the subtype."},
    {"bump", sub_bump, METH_NOARGS, "Doubles the C field `ratio` and returns it."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef sub_members[] = {
    {"payload", T_OBJECT, offsetof(SubObject, payload), 0, "A C field holding an object."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SubType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_capi_probe.Sub",
    .tp_basicsize = sizeof(SubObject),
    .tp_dealloc = (destructor)sub_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A greenlet subtype defined in C with fields after PyGreenlet.",
    .tp_traverse = (traverseproc)sub_traverse,
    .tp_clear = (inquiry)sub_clear,
    .tp_methods = sub_methods,
    .tp_members = sub_members,
    .tp_new = sub_new,
};

static PyMethodDef probe_methods[] = {
    {"table", probe_table, METH_NOARGS, "(type, error, GreenletExit, PyGreenlet_API_pointers)"},
    {"layout", probe_layout, METH_NOARGS, "sizeof/offsetof of PyGreenlet, and the type's slots"},
    {"new", probe_new, METH_VARARGS, "PyGreenlet_New(run, parent)"},
    {"getcurrent", probe_getcurrent, METH_NOARGS, "PyGreenlet_GetCurrent()"},
    {"throw", probe_throw, METH_VARARGS, "PyGreenlet_Throw(g, typ, val, tb)"},
    {"switch", probe_switch, METH_VARARGS, "PyGreenlet_Switch(g, args, kwargs)"},
    {"setparent", probe_setparent, METH_VARARGS, "PyGreenlet_SetParent(g, parent)"},
    {"main", probe_main, METH_O, "PyGreenlet_MAIN(g)"},
    {"started", probe_started, METH_O, "PyGreenlet_STARTED(g)"},
    {"active", probe_active, METH_O, "PyGreenlet_ACTIVE(g)"},
    {"get_parent", probe_get_parent, METH_O, "PyGreenlet_GetParent(g)"},
    {"get_parent_old_name", probe_get_parent_old_name, METH_O, "PyGreenlet_GET_PARENT(g)"},
    {"check", probe_check, METH_O, "PyGreenlet_Check(o)"},
    {"switch_twice", probe_switch_twice, METH_O, "Two switches to g from one C frame."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef probe_module = {
    PyModuleDef_HEAD_INIT, "_capi_probe", "Drives greenlet's C API (uthread's tests).", -1,
    probe_methods,         NULL,          NULL,                                        NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__capi_probe(void) {
    PyObject *m;
    if (PyGreenlet_Import() == NULL)
        return NULL;
    SubType.tp_base = &PyGreenlet_Type;
    if (PyType_Ready(&SubType) < 0)
        return NULL;
    m = PyModule_Create(&probe_module);
    if (m == NULL)
        return NULL;
    null_sentinel = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (null_sentinel == NULL || PyModule_AddObject(m, "NULL", Py_NewRef(null_sentinel)) < 0 ||
        PyModule_AddObject(m, "Sub", Py_NewRef((PyObject *)&SubType)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
