//! The Python side of the greenlet type: its methods (`switch`, `throw`, `__getstate__`, …),
//! attributes (`run`, `parent`, `gr_frame`, `gr_context`, …) and slots, and the creation of the
//! type objects `greenlet` and `UnswitchableGreenlet`.

use super::layout::{
    globals, is_greenlet, own_thread, raise, Globals, Greenlet, Payload, PyGreenlet, DICT_OFFSET, GLOBALS,
    WEAKLIST_OFFSET,
};
use super::lifecycle::{
    green_clear, green_dealloc, green_init, green_is_gc, green_new, green_traverse, murder_in_place,
};
use super::switch::g_switch;
use crate::object::{new_ref_or_none, replace, Fetched, Owned};
use crate::panic_boundary::abort_on_panic;
use crate::pystate;
use crate::pyversion;
use crate::thread::{self};
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;
use coro::Coroutine;
use pyo3::ffi;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The address of the C function behind `greenlet.switch` (for [`thread`]'s optional cleanup,
/// which recognizes bound `switch` methods by it).
pub fn switch_cfunction() -> usize {
    green_switch as *const () as usize
}

/// Whether `o` is a `GreenletExit` instance (a flag test for everything else).
///
/// # Safety
/// GIL held; `o` is a live object.
#[inline]
pub(super) unsafe fn is_greenlet_exit_instance(o: *mut ffi::PyObject) -> bool {
    unsafe {
        ffi::PyExceptionInstance_Check(o) != 0
            && ffi::PyType_IsSubtype(ffi::Py_TYPE(o), globals().greenlet_exit.cast()) != 0
    }
}

/// `switch`, called through vectorcall (`METH_FASTCALL | METH_KEYWORDS`): no argument tuple is
/// built for the common single argument, which travels as itself.
///
/// # Safety
/// Called by the interpreter as the vectorcall method `switch`: GIL held, `o` a live greenlet,
/// `args` `nargs` live objects followed by the values of the names in `kwnames` (null or a tuple of
/// strings).
unsafe extern "C" fn green_switch(
    o: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    abort_on_panic("the greenlet type", || unsafe {
        let nargs = ffi::PyVectorcall_NARGS(nargsf as usize);
        let nkw = if kwnames.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(kwnames) };
        let payload = if nkw == 0 && nargs == 1 && ffi::PyTuple_Check(*args) == 0 && !is_greenlet_exit_instance(*args) {
            // A lone non-tuple argument stands for itself (`single_result` returns it as is).
            Payload::Args { args: Owned::from_borrowed(*args), kwargs: None }
        } else {
            let Some(tuple) = Owned::from_new(ffi::PyTuple_New(nargs)) else { return null_mut() };
            for i in 0..nargs {
                let a = *args.offset(i);
                ffi::Py_INCREF(a);
                ffi::PyTuple_SET_ITEM(tuple.as_ptr(), i, a);
            }
            let kwargs = if nkw == 0 {
                None
            } else {
                let Some(d) = Owned::from_new(ffi::PyDict_New()) else { return null_mut() };
                for i in 0..nkw {
                    let key = ffi::PyTuple_GET_ITEM(kwnames, i);
                    if ffi::PyDict_SetItem(d.as_ptr(), key, *args.offset(nargs + i)) < 0 {
                        return null_mut();
                    }
                }
                Some(d)
            };
            Payload::Args { args: tuple, kwargs }
        };
        g_switch(o, payload)
    })
}

/// `greenlet.switch(*args, **kwargs)` with an argument tuple and a keyword dict: the C API's
/// `PyGreenlet_Switch` (capsule.rs; the `switch` method itself is [`green_switch`]).
///
/// # Safety
/// GIL held; `o` a live greenlet; `args` null or a tuple; `kwargs` null or a dict.
pub unsafe fn switch_impl(
    o: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let args = if args.is_null() { globals().empty_tuple } else { args };
        let payload = Payload::Args {
            args: Owned::from_borrowed(args),
            kwargs: if kwargs.is_null() { None } else { Some(Owned::from_borrowed(kwargs)) },
        };
        g_switch(o, payload)
    }
}

/// `throw(typ=GreenletExit, val=None, tb=None)`: parses its arguments for [`throw_impl`].
///
/// # Safety
/// Called by the interpreter as a method of the type: GIL held, `o` a live greenlet, `args` a
/// tuple.
unsafe extern "C" fn green_throw(o: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    abort_on_panic("the greenlet type", || unsafe {
        let mut typ = globals().greenlet_exit;
        let mut val: *mut ffi::PyObject = null_mut();
        let mut tb: *mut ffi::PyObject = null_mut();
        if ffi::PyArg_ParseTuple(
            args,
            c"|OOO:throw".as_ptr(),
            &mut typ as *mut *mut ffi::PyObject,
            &mut val as *mut *mut ffi::PyObject,
            &mut tb as *mut *mut ffi::PyObject,
        ) == 0
        {
            return null_mut();
        }
        throw_impl(o, typ, val, tb)
    })
}

/// `greenlet.throw(typ, val, tb)` (also the C API's `PyGreenlet_Throw`): checks and normalizes
/// the exception as `raise` would, then switches to `o` raising it there.
///
/// # Safety
/// GIL held; `o` a live greenlet; the others borrowed, `val`/`tb` may be null.
#[allow(deprecated)] // PyErr_NormalizeException: the triple form works on every supported version
pub unsafe fn throw_impl(
    o: *mut ffi::PyObject,
    typ: *mut ffi::PyObject,
    val: *mut ffi::PyObject,
    tb: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe {
        let tb = if tb == ffi::Py_None() { null_mut() } else { tb };
        if !tb.is_null() && ffi::PyTraceBack_Check(tb) == 0 {
            raise(ffi::PyExc_TypeError, "throw() third argument must be a traceback object");
            return null_mut();
        }
        let mut t = typ;
        let mut v = val;
        let mut b = tb;
        if ffi::PyExceptionClass_Check(typ) != 0 {
            ffi::Py_XINCREF(t);
            ffi::Py_XINCREF(v);
            ffi::Py_XINCREF(b);
            ffi::PyErr_NormalizeException(&mut t, &mut v, &mut b);
        } else if ffi::PyExceptionInstance_Check(typ) != 0 {
            if !val.is_null() && val != ffi::Py_None() {
                raise(ffi::PyExc_TypeError, "instance exception may not have a separate value");
                return null_mut();
            }
            v = typ;
            t = ffi::Py_TYPE(typ).cast();
            ffi::Py_INCREF(t);
            ffi::Py_INCREF(v);
            ffi::Py_XINCREF(b);
        } else {
            let name = std::ffi::CStr::from_ptr((*ffi::Py_TYPE(typ)).tp_name).to_string_lossy();
            raise(ffi::PyExc_TypeError, &format!("exceptions must be classes, or instances, not {name}"));
            return null_mut();
        }
        if !v.is_null() && !b.is_null() {
            ffi::PyException_SetTraceback(v, b);
        }
        let e = Fetched { ptype: t, pvalue: v, ptraceback: b };
        throw_fetched(o, e)
    }
}

/// Throws a ready exception instance (the dealloc kill).
///
/// # Safety
/// GIL held; `o` a live greenlet; `exc` an exception instance.
pub(super) unsafe fn throw_instance(o: *mut ffi::PyObject, exc: Owned) -> *mut ffi::PyObject {
    unsafe {
        let t = ffi::Py_TYPE(exc.as_ptr()).cast::<ffi::PyObject>();
        ffi::Py_INCREF(t);
        throw_fetched(o, Fetched { ptype: t, pvalue: exc.into_ptr(), ptraceback: null_mut() })
    }
}

/// Switches to `o` raising the fetched exception `e` there.
///
/// # Safety
/// GIL held; `o` a live greenlet.
unsafe fn throw_fetched(o: *mut ffi::PyObject, e: Fetched) -> *mut ffi::PyObject {
    unsafe {
        let g = Greenlet::of(o);
        // A dead greenlet turns GreenletExit into a plain return value (for its parent).
        let payload = if (*g).started && !(*g).active() && e.matches(globals().greenlet_exit) {
            let value = Owned::from_new(new_ref_or_none(e.pvalue)).expect("non-null");
            drop(e);
            Payload::Args { args: value, kwargs: None }
        } else {
            Payload::Error(e)
        };
        g_switch(o, payload)
    }
}

/// `__getstate__`: greenlets cannot be pickled (TypeError), as in greenlet.
///
/// # Safety
/// Called by the interpreter as a method of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_getstate(o: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    abort_on_panic("the greenlet type", || unsafe {
        let name = std::ffi::CStr::from_ptr((*ffi::Py_TYPE(o)).tp_name).to_string_lossy();
        raise(ffi::PyExc_TypeError, &format!("cannot serialize '{name}' object"));
        null_mut()
    })
}

/// `bool(g)`: started and not dead.
///
/// # Safety
/// Called by the interpreter as the type's `nb_bool` slot: GIL held, `o` a live greenlet (of the
/// type or a subtype).
unsafe extern "C" fn green_bool(o: *mut ffi::PyObject) -> c_int {
    unsafe { (*Greenlet::of(o)).active() as c_int }
}

/// Whether `o` is the running greenlet of its (live) thread.
///
/// # Safety
/// GIL held; `o` a live greenlet.
unsafe fn is_running(o: *mut ffi::PyObject) -> bool {
    unsafe {
        let g = Greenlet::of(o);
        match &(*g).thread {
            Some(t) => t.is_alive() && t.current.load(Ordering::Relaxed) == o && (*g).active(),
            None => false,
        }
    }
}

/// greenlet's `dead` check: a greenlet of an exited thread is released on the spot.
///
/// # Safety
/// GIL held; `o` a live greenlet.
unsafe fn is_dead(o: *mut ffi::PyObject) -> bool {
    unsafe {
        let g = Greenlet::of(o);
        if (*g).in_dead_thread() {
            murder_in_place(o);
            (*g).dead = true;
            return true;
        }
        (*g).started && !(*g).active()
    }
}

/// `repr(g)`, in greenlet's format.
///
/// # Safety
/// Called by the interpreter as the type's `tp_repr` slot: GIL held, `o` a live greenlet (of the
/// type or a subtype).
unsafe extern "C" fn green_repr(o: *mut ffi::PyObject) -> *mut ffi::PyObject {
    abort_on_panic("the greenlet type", || unsafe {
        let g = Greenlet::of(o);
        let tp_name = std::ffi::CStr::from_ptr((*ffi::Py_TYPE(o)).tp_name).to_string_lossy();
        let otid = (*g).thread.as_ref().map_or(null_mut(), |t| Arc::as_ptr(t).cast_mut());
        let s = if !is_dead(o) {
            let state = if (*g).in_dead_thread() {
                " (thread exited)"
            } else if !thread::peek().is_null() && (*thread::peek()).current == o {
                " current"
            } else if (*g).started {
                " suspended"
            } else {
                ""
            };
            format!(
                "<{tp_name} object at {o:p} (otid={otid:p}){state}{}{}{}>",
                if (*g).active() { " active" } else { "" },
                if !(*g).started { " pending" } else { " started" },
                if (*g).is_main { " main" } else { "" },
            )
        } else {
            format!(
                "<{tp_name} object at {o:p} (otid={otid:p}) {}dead>",
                if (*g).in_dead_thread() { "(thread exited) " } else { "" }
            )
        };
        ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as ffi::Py_ssize_t)
    })
}

// ------------------------------------------------------------------------------------------
// Attributes

/// `__dict__`, created on first use.
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_getdict(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe {
        let pg = o.cast::<PyGreenlet>();
        if (*pg).dict.is_null() {
            (*pg).dict = ffi::PyDict_New();
            if (*pg).dict.is_null() {
                return null_mut();
            }
        }
        ffi::Py_INCREF((*pg).dict);
        (*pg).dict
    }
}

/// Sets `__dict__` (a dict; deleting it is refused).
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet, `val`
/// null (delete) or live.
unsafe extern "C" fn green_setdict(o: *mut ffi::PyObject, val: *mut ffi::PyObject, _: *mut c_void) -> c_int {
    unsafe {
        if val.is_null() {
            raise(ffi::PyExc_TypeError, "__dict__ may not be deleted");
            return -1;
        }
        if ffi::PyDict_Check(val) == 0 {
            raise(ffi::PyExc_TypeError, "__dict__ must be a dictionary");
            return -1;
        }
        ffi::Py_INCREF(val);
        replace(&mut (*o.cast::<PyGreenlet>()).dict, val);
        0
    }
}

/// `run`: the callable given, until the greenlet starts; AttributeError after that, when none
/// was given, and for a main greenlet.
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_getrun(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe {
        let g = Greenlet::of(o);
        if (*g).is_main {
            raise(ffi::PyExc_AttributeError, "Main greenlets do not have a run attribute.");
            return null_mut();
        }
        if (*g).started || (*g).run.is_null() {
            raise(ffi::PyExc_AttributeError, "run");
            return null_mut();
        }
        ffi::Py_INCREF((*g).run);
        (*g).run
    }
}

/// Sets or deletes `run` (refused once the greenlet started, and for a main greenlet).
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet, `val`
/// null (delete) or live.
pub(super) unsafe extern "C" fn green_setrun(o: *mut ffi::PyObject, val: *mut ffi::PyObject, _: *mut c_void) -> c_int {
    unsafe {
        let g = Greenlet::of(o);
        if (*g).is_main {
            raise(ffi::PyExc_AttributeError, "Main greenlets do not have a run attribute.");
            return -1;
        }
        if (*g).started {
            raise(ffi::PyExc_AttributeError, "run cannot be set after the start of the greenlet");
            return -1;
        }
        ffi::Py_XINCREF(val);
        replace(&mut (*g).run, val);
        0
    }
}

/// `parent`: None for a main greenlet.
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_getparent(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe { new_ref_or_none((*Greenlet::of(o)).parent) }
}

/// The `parent` setter (also the C API's `PyGreenlet_SetParent`).
///
/// # Safety
/// GIL held; `o` a live greenlet; `val` borrowed or null (delete).
pub unsafe extern "C" fn green_setparent(o: *mut ffi::PyObject, val: *mut ffi::PyObject, _: *mut c_void) -> c_int {
    unsafe {
        let g = Greenlet::of(o);
        if val.is_null() {
            raise(ffi::PyExc_AttributeError, "can't delete attribute");
            return -1;
        }
        if (*g).is_main {
            raise(ffi::PyExc_AttributeError, "cannot set the parent of a main greenlet");
            return -1;
        }
        if !is_greenlet(val) {
            let name = std::ffi::CStr::from_ptr((*ffi::Py_TYPE(val)).tp_name).to_string_lossy();
            raise(ffi::PyExc_TypeError, &format!("GreenletChecker: Expected any type of greenlet, not {name}"));
            return -1;
        }
        let mut p = val;
        let mut root_thread = None;
        while !p.is_null() {
            if p == o {
                raise(ffi::PyExc_ValueError, "cyclic parent chain");
                return -1;
            }
            let pg = Greenlet::of(p);
            root_thread = if (*pg).started { (*pg).thread.clone() } else { None };
            p = (*pg).parent;
        }
        let Some(root_thread) = root_thread else {
            raise(ffi::PyExc_ValueError, "parent must not be garbage collected");
            return -1;
        };
        if (*g).started && !(*g).thread.as_ref().is_some_and(|t| Arc::ptr_eq(t, &root_thread)) {
            raise(ffi::PyExc_ValueError, "parent cannot be on a different thread");
            return -1;
        }
        ffi::Py_INCREF(val);
        replace(&mut (*g).parent, val);
        0
    }
}

/// `gr_frame`: the top frame of a suspended greenlet, else None.
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_getframe(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    abort_on_panic("the greenlet type", || unsafe {
        let g = Greenlet::of(o);
        // A dead greenlet has no frames; one that was murdered may even have had its stack
        // released, which its frames may link through (3.12+): never look at them.
        if is_running(o) || !(*g).active() {
            return new_ref_or_none(null_mut());
        }
        let f = (*g).pystate.frame();
        if f.is_null() {
            if !ffi::PyErr_Occurred().is_null() {
                return null_mut();
            }
            return new_ref_or_none(null_mut());
        }
        f
    })
}

/// `gr_context`: the greenlet's contextvars context (None if it has none).
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_getcontext(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    abort_on_panic("the greenlet type", || unsafe {
        if is_running(o) {
            let ts = thread::peek();
            if ts.is_null() || (*ts).current != o {
                raise(ffi::PyExc_ValueError, "cannot get context of a greenlet that is running in a different thread");
                return null_mut();
            }
            return new_ref_or_none(pystate::running_context(ffi::PyThreadState_Get()));
        }
        new_ref_or_none((*Greenlet::of(o)).pystate.context())
    })
}

/// Sets `gr_context` (a Context or None; refused for a greenlet running on another thread).
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet, `val`
/// null (delete) or live.
unsafe extern "C" fn green_setcontext(o: *mut ffi::PyObject, val: *mut ffi::PyObject, _: *mut c_void) -> c_int {
    abort_on_panic("the greenlet type", || unsafe {
        if val.is_null() {
            raise(ffi::PyExc_AttributeError, "can't delete context attribute");
            return -1;
        }
        let ctx = if val == ffi::Py_None() {
            null_mut()
        } else if ffi::PyContext_CheckExact(val) != 0 {
            val
        } else {
            raise(ffi::PyExc_TypeError, "greenlet context must be a contextvars.Context or None");
            return -1;
        };
        if is_running(o) {
            let ts = thread::peek();
            if ts.is_null() || (*ts).current != o {
                raise(ffi::PyExc_ValueError, "cannot set context of a greenlet that is running in a different thread");
                return -1;
            }
            pystate::set_running_context(ffi::PyThreadState_Get(), ctx);
        } else {
            (*Greenlet::of(o)).pystate.set_context(ctx);
        }
        0
    })
}

/// `dead`: started and finished, or of an exited thread.
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_getdead(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe { ffi::PyBool_FromLong(is_dead(o) as _) }
}

/// greenlet reports how much of a suspended greenlet's C stack it copied to the heap; a uthread
/// keeps its own stack, so this reports how much of its stack a suspended greenlet is using
/// (`Coroutine::stack_in_use`; for a main greenlet, the thread's stack from its top down to where
/// the main greenlet switched away). 0 while running, before the start, after the end, and for
/// greenlets of other threads (the engine answers for the calling thread's coroutines only).
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet.
unsafe extern "C" fn green_get_stack_saved(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe {
        let g = Greenlet::of(o);
        let mine = (*g).thread.as_ref().is_some_and(|t| t.is_alive() && own_thread(t));
        let bytes = if !mine || !(*g).active() || is_running(o) {
            0
        } else if (*g).is_main {
            let ts = thread::peek(); // non-null: `g` belongs to this thread
            let top = *(*ts).stack_top.get_or_insert_with(thread::thread_stack_top);
            if top == 0 {
                0
            } else {
                top.saturating_sub((*g).saved_sp)
            }
        } else {
            (*g).coro.as_ref().map_or(0, Coroutine::stack_in_use)
        };
        ffi::PyLong_FromSize_t(bytes)
    }
}

// ------------------------------------------------------------------------------------------
// The type

const SWITCH_DOC: &std::ffi::CStr = c"switch(*args, **kwargs)\n\n\
Switch execution to this greenlet.\n\n\
If this greenlet has never been run, then it starts running ``self.run(*args, **kwargs)``.\n\
If it is suspended, its pending ``switch()`` returns: ``()`` if no arguments were given, the\n\
argument if exactly one was given, the tuple of positional arguments if several, the dict of\n\
keyword arguments if only those, and ``(args, kwargs)`` if both.\n\
If it is dead, the switch goes to its parent (and so on up the chain). Switching to the current\n\
greenlet returns the arguments at once.";

const THROW_DOC: &std::ffi::CStr = c"throw(typ=GreenletExit, val=None, tb=None)\n\n\
Switches to this greenlet and raises the given exception in it at once. ``typ`` may be an\n\
exception class (instantiated with ``val``) or instance. If the greenlet never ran, it dies\n\
without running and the exception goes to its parent; if it is dead, ``GreenletExit`` becomes\n\
a plain return value and other exceptions go to its parent.";

const TYPE_DOC: &std::ffi::CStr = c"greenlet(run=None, parent=None) -> greenlet\n\n\
Creates a new micro-thread (without running it).\n\n\
 - *run* -- the callable to invoke when it is first switched to.\n\
 - *parent* -- the greenlet that receives its result or exception when it finishes;\n\
   the default is the current greenlet.";

fn leak<T>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Creates the type and the module-wide objects. Called once, from module init.
///
/// # Safety
/// GIL held; called once.
pub unsafe fn init(greenlet_exit: *mut ffi::PyObject, error: *mut ffi::PyObject) -> Result<*mut ffi::PyTypeObject, ()> {
    unsafe {
        if !pystate::check_runtime() {
            return Err(());
        }
        let methods = leak([
            ffi::PyMethodDef {
                ml_name: c"switch".as_ptr(),
                ml_meth: ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: green_switch },
                ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
                ml_doc: SWITCH_DOC.as_ptr(),
            },
            ffi::PyMethodDef {
                ml_name: c"throw".as_ptr(),
                ml_meth: ffi::PyMethodDefPointer { PyCFunction: green_throw },
                ml_flags: ffi::METH_VARARGS,
                ml_doc: THROW_DOC.as_ptr(),
            },
            ffi::PyMethodDef {
                ml_name: c"__getstate__".as_ptr(),
                ml_meth: ffi::PyMethodDefPointer { PyCFunction: green_getstate },
                ml_flags: ffi::METH_NOARGS,
                ml_doc: c"Greenlets cannot be pickled or copied.".as_ptr(),
            },
            ffi::PyMethodDef::zeroed(),
        ]);
        fn gs(
            name: &'static std::ffi::CStr,
            get: ffi::getter,
            set: Option<ffi::setter>,
            doc: &'static std::ffi::CStr,
        ) -> ffi::PyGetSetDef {
            ffi::PyGetSetDef { name: name.as_ptr(), get: Some(get), set, doc: doc.as_ptr(), closure: null_mut() }
        }
        let getsets = leak([
            gs(c"__dict__", green_getdict, Some(green_setdict), c"The instance dictionary."),
            gs(
                c"run",
                green_getrun,
                Some(green_setrun),
                c"The callable run when the greenlet starts (only before it starts).",
            ),
            gs(
                c"parent",
                green_getparent,
                Some(green_setparent),
                c"The greenlet that receives this one's result when it finishes.",
            ),
            gs(c"gr_frame", green_getframe, None, c"The innermost frame of a suspended greenlet, else None."),
            gs(
                c"gr_context",
                green_getcontext,
                Some(green_setcontext),
                c"The contextvars.Context this greenlet runs in (None: not created yet).",
            ),
            gs(c"dead", green_getdead, None, c"True once the greenlet has finished (or can never run again)."),
            gs(
                c"_stack_saved",
                green_get_stack_saved,
                None,
                c"Bytes of C stack copied to the heap (always 0: uthreads keep their own stacks).",
            ),
            ffi::PyGetSetDef::default(),
        ]);
        let number = leak(core::mem::zeroed::<ffi::PyNumberMethods>());
        (*number).nb_bool = Some(green_bool);

        let ty = leak(core::mem::zeroed::<ffi::PyTypeObject>());
        pyversion::set_refcnt(ty.cast(), 1);
        // greenlet's own name: the drop-in must look like greenlet to code that prints or parses
        // it (gevent's greenlet trees, "O!" argument errors); see docs/greenlet-compat.md.
        (*ty).tp_name = c"greenlet.greenlet".as_ptr();
        (*ty).tp_basicsize = core::mem::size_of::<PyGreenlet>() as ffi::Py_ssize_t;
        (*ty).tp_dealloc = Some(green_dealloc);
        (*ty).tp_repr = Some(green_repr);
        (*ty).tp_as_number = number;
        (*ty).tp_flags = ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_HAVE_VERSION_TAG
            | ffi::Py_TPFLAGS_HAVE_GC
            | ffi::Py_TPFLAGS_BASETYPE;
        (*ty).tp_doc = TYPE_DOC.as_ptr();
        (*ty).tp_traverse = Some(green_traverse);
        (*ty).tp_clear = Some(green_clear);
        (*ty).tp_weaklistoffset = WEAKLIST_OFFSET as ffi::Py_ssize_t;
        (*ty).tp_methods = methods.cast();
        (*ty).tp_getset = getsets.cast();
        (*ty).tp_dictoffset = DICT_OFFSET as ffi::Py_ssize_t;
        (*ty).tp_init = Some(green_init);
        (*ty).tp_alloc = Some(ffi::PyType_GenericAlloc);
        (*ty).tp_new = Some(green_new);
        (*ty).tp_free = Some(ffi::PyObject_GC_Del);
        (*ty).tp_is_gc = Some(green_is_gc);
        if ffi::PyType_Ready(ty) < 0 {
            return Err(());
        }
        let intern = |s: &std::ffi::CStr| ffi::PyUnicode_InternFromString(s.as_ptr());
        let globals = Globals {
            ty,
            greenlet_exit,
            error,
            str_run: intern(c"run"),
            str_switch: intern(c"switch"),
            str_throw: intern(c"throw"),
            empty_tuple: ffi::PyTuple_New(0),
        };
        if globals.str_run.is_null()
            || globals.str_switch.is_null()
            || globals.str_throw.is_null()
            || globals.empty_tuple.is_null()
        {
            return Err(());
        }
        ffi::Py_INCREF(greenlet_exit);
        ffi::Py_INCREF(error);
        GLOBALS.store(leak(globals), Ordering::Release);
        Ok(ty)
    }
}

const UNSWITCHABLE_DOC: &std::ffi::CStr = c"UnswitchableGreenlet(run=None, parent=None)\n\n\
Test support, as in greenlet's ``_greenlet``: a greenlet whose ``force_switch_error`` attribute,\n\
when true, makes every switch into it fail as a refused engine switch does: ``SystemError``,\n\
nothing runs, and a greenlet that could not be started is dead.";

/// `force_switch_error` of an `UnswitchableGreenlet`.
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet of the
/// `UnswitchableGreenlet` type.
unsafe extern "C" fn unswitchable_get_force(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe { ffi::PyBool_FromLong((*Greenlet::of(o)).force_switch_error as _) }
}

/// Sets `force_switch_error` of an `UnswitchableGreenlet`.
///
/// # Safety
/// Called by the interpreter as a getset entry of the type: GIL held, `o` a live greenlet, `val`
/// null (delete) or live, of the `UnswitchableGreenlet` type.
unsafe extern "C" fn unswitchable_set_force(o: *mut ffi::PyObject, val: *mut ffi::PyObject, _: *mut c_void) -> c_int {
    unsafe {
        if val.is_null() {
            raise(ffi::PyExc_AttributeError, "Cannot delete force_switch_error");
            return -1;
        }
        let truth = ffi::PyObject_IsTrue(val);
        if truth < 0 {
            return -1;
        }
        (*Greenlet::of(o)).force_switch_error = truth != 0;
        0
    }
}

/// Creates `UnswitchableGreenlet`, the greenlet subtype greenlet's test suite uses to make
/// switches fail (module `_uthread`, re-exported by the drop-in `greenlet._greenlet`).
///
/// # Safety
/// GIL held; after [`init`]; called once.
pub unsafe fn init_unswitchable() -> Result<*mut ffi::PyTypeObject, ()> {
    unsafe {
        let base = globals().ty;
        let getsets = leak([
            ffi::PyGetSetDef {
                name: c"force_switch_error".as_ptr(),
                get: Some(unswitchable_get_force),
                set: Some(unswitchable_set_force),
                doc: c"When true, switches into this greenlet fail with SystemError.".as_ptr(),
                closure: null_mut(),
            },
            ffi::PyGetSetDef::default(),
        ]);
        let ty = leak(core::mem::zeroed::<ffi::PyTypeObject>());
        pyversion::set_refcnt(ty.cast(), 1);
        (*ty).tp_name = c"uthread._uthread.UnswitchableGreenlet".as_ptr();
        (*ty).tp_basicsize = (*base).tp_basicsize;
        (*ty).tp_base = base;
        (*ty).tp_dealloc = (*base).tp_dealloc;
        // Not the base's flags: those include Py_TPFLAGS_READY.
        (*ty).tp_flags = ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_HAVE_VERSION_TAG
            | ffi::Py_TPFLAGS_HAVE_GC
            | ffi::Py_TPFLAGS_BASETYPE;
        (*ty).tp_doc = UNSWITCHABLE_DOC.as_ptr();
        (*ty).tp_traverse = (*base).tp_traverse;
        (*ty).tp_clear = (*base).tp_clear;
        (*ty).tp_weaklistoffset = (*base).tp_weaklistoffset;
        (*ty).tp_dictoffset = (*base).tp_dictoffset;
        (*ty).tp_getset = getsets.cast();
        (*ty).tp_init = (*base).tp_init;
        (*ty).tp_alloc = (*base).tp_alloc;
        (*ty).tp_new = (*base).tp_new;
        (*ty).tp_free = (*base).tp_free;
        (*ty).tp_is_gc = (*base).tp_is_gc;
        if ffi::PyType_Ready(ty) < 0 {
            return Err(());
        }
        Ok(ty)
    }
}
