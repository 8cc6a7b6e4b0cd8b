//! greenlet 3's C API: the `greenlet._C_API` capsule.
//!
//! C and Cython extensions compiled against `greenlet.h` (gevent's compiled modules, for one) do
//! `PyCapsule_Import("greenlet._C_API", 0)` and call through the table of 12 pointers it holds,
//! in this fixed order (the `PyGreenlet_*_NUM` indexes of the header):
//!
//! | # | entry | returns |
//! | --- | --- | --- |
//! | 0 | the greenlet type object | |
//! | 1 | `greenlet.error` | |
//! | 2 | `greenlet.GreenletExit` | |
//! | 3 | `New(run, parent)` | new greenlet, or NULL + exception |
//! | 4 | `GetCurrent()` | new reference, or NULL + exception |
//! | 5 | `Throw(g, typ, val, tb)` | what the switch back brings, or NULL + exception |
//! | 6 | `Switch(g, args, kwargs)` | what the switch back brings, or NULL + exception |
//! | 7 | `SetParent(g, parent)` | 0, or -1 + exception |
//! | 8 | `MAIN(g)` | 1 / 0, or -1 + exception |
//! | 9 | `STARTED(g)` | 1 / 0, or -1 + exception |
//! | 10 | `ACTIVE(g)` | 1 / 0, or -1 + exception |
//! | 11 | `GET_PARENT(g)` | new reference; NULL without exception for a main greenlet; NULL + exception |
//!
//! The functions are Rust `extern "C"` functions over the same code the Python methods use, so
//! the C API cannot drift from the Python API. Every one checks its arguments first: a NULL or
//! non-greenlet where a greenlet is expected is a `TypeError` (greenlet's `PyErr_BadArgument`
//! gives the same class), a greenlet of another thread a `greenlet.error` (from the switch
//! itself), never a crash. As with every CPython C API function, the caller holds the GIL.
//! A Rust panic inside one of them aborts the process with a message (as in the rest of the
//! extension): unwinding out of the middle of a switch could not leave a consistent state.

use crate::greenlet::{self, globals, is_greenlet, Greenlet};
use crate::object::Owned;
use crate::panic_boundary::abort_on_panic;
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;
use pyo3::ffi;

/// The capsule's name: `PyCapsule_Import` checks it against the dotted path it imports.
const CAPSULE_NAME: &std::ffi::CStr = c"greenlet._C_API";

/// Number of pointers in the table (`PyGreenlet_API_pointers`).
pub const API_POINTERS: usize = 12;

/// Names a C API entry point in the message of [`abort_on_panic`]: "the greenlet C API (name)".
struct Entry(&'static str);

impl core::fmt::Display for Entry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the greenlet C API ({})", self.0)
    }
}

/// Sets `TypeError` naming the entry point and what it got.
///
/// # Safety
/// GIL held; `o` null or live.
unsafe fn bad_argument(func: &str, what: &str, o: *mut ffi::PyObject) {
    let got = if o.is_null() {
        "NULL".to_owned()
    } else {
        // SAFETY: `o` is live (the contract), so its type is too, and a type's `tp_name` is a
        // NUL-terminated string that lives as long as the type.
        unsafe { std::ffi::CStr::from_ptr((*ffi::Py_TYPE(o)).tp_name) }.to_string_lossy().into_owned()
    };
    let msg = std::ffi::CString::new(format!("{func}: {what} must be a greenlet, not {got}")).expect("no NUL");
    // SAFETY: GIL held (the contract); `msg` is a NUL-terminated string alive for the call
    // (CPython copies it).
    unsafe { ffi::PyErr_SetString(ffi::PyExc_TypeError, msg.as_ptr()) };
}

/// The implementation of `o` if it is a fully constructed greenlet; else a `TypeError` (or,
/// for an instance whose base `__new__` never ran, a `SystemError`) is set.
///
/// # Safety
/// GIL held; `o` null or live.
unsafe fn checked(func: &str, o: *mut ffi::PyObject) -> Option<*mut Greenlet> {
    // SAFETY: GIL held (the contract); `is_greenlet` is only asked about a non-null `o`, which is
    // then live, and `Greenlet::of` only about a greenlet, whose `pimpl` slot it reads.
    unsafe {
        if o.is_null() || !is_greenlet(o) {
            bad_argument(func, "the greenlet argument", o);
            return None;
        }
        let g = Greenlet::of(o);
        if g.is_null() {
            ffi::PyErr_SetString(
                ffi::PyExc_SystemError,
                c"greenlet C API: an uninitialized greenlet (its type's tp_new did not call greenlet's)".as_ptr(),
            );
            return None;
        }
        Some(g)
    }
}

/// `PyGreenlet_New(run, parent)`: `greenlet(run, parent)` (either may be NULL: no `run` yet,
/// and the current greenlet as parent). A new reference, or NULL with an exception set.
///
/// # Safety
/// GIL held; `run` and `parent` null or live (borrowed).
unsafe extern "C" fn capi_new(run: *mut ffi::PyObject, parent: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: the caller holds the GIL (every C API function's contract); `parent` is checked
    // to be a greenlet before use, `run` is only stored in a dict (any live object will do), and
    // the type's tp_new/tp_init are the greenlet slots set by `greenlet::init`, called with the
    // argument kinds they expect (a tuple and a dict we own for the call).
    abort_on_panic(Entry("PyGreenlet_New"), || unsafe {
        if !parent.is_null() && !is_greenlet(parent) {
            bad_argument("PyGreenlet_New", "parent", parent);
            return null_mut();
        }
        // Through the type's own slots, as `greenlet(run=run, parent=parent)` would go.
        let ty = globals().ty;
        let Some(empty) = Owned::from_new(ffi::PyTuple_New(0)) else { return null_mut() };
        let Some(kwargs) = Owned::from_new(ffi::PyDict_New()) else { return null_mut() };
        if !run.is_null() && ffi::PyDict_SetItemString(kwargs.as_ptr(), c"run".as_ptr(), run) < 0 {
            return null_mut();
        }
        if !parent.is_null() && ffi::PyDict_SetItemString(kwargs.as_ptr(), c"parent".as_ptr(), parent) < 0 {
            return null_mut();
        }
        let new = (*ty).tp_new.expect("greenlet tp_new");
        let init = (*ty).tp_init.expect("greenlet tp_init");
        let Some(g) = Owned::from_new(new(ty, empty.as_ptr(), kwargs.as_ptr())) else { return null_mut() };
        if init(g.as_ptr(), empty.as_ptr(), kwargs.as_ptr()) < 0 {
            return null_mut();
        }
        g.into_ptr()
    })
}

/// `PyGreenlet_GetCurrent()`: a new reference to the running greenlet, or NULL with an
/// exception set (`RuntimeError` while the interpreter is finalizing).
///
/// # Safety
/// GIL held.
unsafe extern "C" fn capi_getcurrent() -> *mut ffi::PyObject {
    // SAFETY: `current_greenlet` needs only the GIL, which the caller holds.
    abort_on_panic(Entry("PyGreenlet_GetCurrent"), || unsafe { crate::current_greenlet() })
}

/// `PyGreenlet_Throw(g, typ, val, tb)`: `g.throw(typ, val, tb)` (`val` and `tb` may be NULL).
/// Returns what the switch back into the caller brings (new reference), or NULL with an
/// exception set.
///
/// # Safety
/// GIL held; the arguments null or live (borrowed).
unsafe extern "C" fn capi_throw(
    g: *mut ffi::PyObject,
    typ: *mut ffi::PyObject,
    val: *mut ffi::PyObject,
    tb: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: GIL held by the caller; `g` is checked to be an initialized greenlet and `typ` to
    // be non-null before `throw_impl`, which accepts any live `typ` and null or live `val`/`tb`
    // (it validates them as `greenlet.throw` does).
    abort_on_panic(Entry("PyGreenlet_Throw"), || unsafe {
        if checked("PyGreenlet_Throw", g).is_none() {
            return null_mut();
        }
        if typ.is_null() {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, c"PyGreenlet_Throw: the exception type is NULL".as_ptr());
            return null_mut();
        }
        greenlet::throw_impl(g, typ, val, tb)
    })
}

/// `PyGreenlet_Switch(g, args, kwargs)`: `g.switch(*args, **kwargs)`. `args` NULL means no
/// positional arguments; `kwargs` NULL or not a dict means no keyword arguments (greenlet's
/// rule). Returns what the switch back brings (new reference), or NULL with an exception set.
///
/// # Safety
/// GIL held; the arguments null or live (borrowed).
unsafe extern "C" fn capi_switch(
    g: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: GIL held by the caller; `g` is checked to be an initialized greenlet, `args` to be
    // null or a tuple, and `kwargs` is passed on only if it is a dict: what `switch_impl` needs.
    abort_on_panic(Entry("PyGreenlet_Switch"), || unsafe {
        if checked("PyGreenlet_Switch", g).is_none() {
            return null_mut();
        }
        if !args.is_null() && ffi::PyTuple_Check(args) == 0 {
            bad_tuple(args);
            return null_mut();
        }
        let kwargs = if kwargs.is_null() || ffi::PyDict_Check(kwargs) == 0 { null_mut() } else { kwargs };
        greenlet::switch_impl(g, args, kwargs)
    })
}

/// Sets `TypeError` for `PyGreenlet_Switch` arguments that are not a tuple.
///
/// # Safety
/// GIL held; `o` live.
unsafe fn bad_tuple(o: *mut ffi::PyObject) {
    // SAFETY: `o` is live (the contract), so its type is too, and a type's `tp_name` is a
    // NUL-terminated string that lives as long as the type.
    let got = unsafe { std::ffi::CStr::from_ptr((*ffi::Py_TYPE(o)).tp_name) }.to_string_lossy();
    let msg =
        std::ffi::CString::new(format!("PyGreenlet_Switch: args must be a tuple or NULL, not {got}")).expect("no NUL");
    // SAFETY: GIL held (the contract); `msg` is a NUL-terminated string alive for the call
    // (CPython copies it).
    unsafe { ffi::PyErr_SetString(ffi::PyExc_TypeError, msg.as_ptr()) };
}

/// `PyGreenlet_SetParent(g, parent)`: `g.parent = parent`. 0, or -1 with an exception set
/// (`TypeError` for a non-greenlet, `ValueError` for a cycle or another thread's parent,
/// `AttributeError` for a main greenlet), as the attribute.
///
/// # Safety
/// GIL held; the arguments null or live (borrowed).
unsafe extern "C" fn capi_setparent(g: *mut ffi::PyObject, parent: *mut ffi::PyObject) -> c_int {
    // SAFETY: GIL held by the caller; both arguments are checked to be greenlets (`g` an
    // initialized one) before the attribute setter, which takes a greenlet and a live value.
    abort_on_panic(Entry("PyGreenlet_SetParent"), || unsafe {
        if checked("PyGreenlet_SetParent", g).is_none() {
            return -1;
        }
        if parent.is_null() || !is_greenlet(parent) {
            bad_argument("PyGreenlet_SetParent", "the new parent", parent);
            return -1;
        }
        greenlet::green_setparent(g, parent, null_mut())
    })
}

/// `PyGreenlet_MAIN(g)`: 1 if `g` is a thread's main greenlet, else 0; -1 with `TypeError`
/// for a non-greenlet.
///
/// # Safety
/// GIL held; `g` null or live.
unsafe extern "C" fn capi_main(g: *mut ffi::PyObject) -> c_int {
    // SAFETY: GIL held by the caller; `checked` accepts null or live and only returns the
    // non-null implementation block of a live greenlet, which stays valid while `g` is alive.
    abort_on_panic(Entry("PyGreenlet_MAIN"), || unsafe {
        match checked("PyGreenlet_MAIN", g) {
            Some(imp) => (*imp).is_main as c_int,
            None => -1,
        }
    })
}

/// `PyGreenlet_STARTED(g)`: 1 if `g` has been switched to at least once, else 0; -1 with
/// `TypeError` for a non-greenlet.
///
/// # Safety
/// GIL held; `g` null or live.
unsafe extern "C" fn capi_started(g: *mut ffi::PyObject) -> c_int {
    // SAFETY: as in `capi_main`.
    abort_on_panic(Entry("PyGreenlet_STARTED"), || unsafe {
        match checked("PyGreenlet_STARTED", g) {
            Some(imp) => (*imp).started as c_int,
            None => -1,
        }
    })
}

/// `PyGreenlet_ACTIVE(g)`: 1 if `g` is started and not dead (`bool(g)`), else 0; -1 with
/// `TypeError` for a non-greenlet.
///
/// # Safety
/// GIL held; `g` null or live.
unsafe extern "C" fn capi_active(g: *mut ffi::PyObject) -> c_int {
    // SAFETY: as in `capi_main`.
    abort_on_panic(Entry("PyGreenlet_ACTIVE"), || unsafe {
        match checked("PyGreenlet_ACTIVE", g) {
            Some(imp) => (*imp).active() as c_int,
            None => -1,
        }
    })
}

/// `PyGreenlet_GET_PARENT(g)`: a new reference to `g.parent`; NULL *without* an exception
/// when it has none (a main greenlet); NULL with `TypeError` for a non-greenlet.
///
/// # Safety
/// GIL held; `g` null or live.
unsafe extern "C" fn capi_get_parent(g: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as in `capi_main`; `parent` is null or a strong reference the greenlet holds, so
    // it is live to incref.
    abort_on_panic(Entry("PyGreenlet_GET_PARENT"), || unsafe {
        let Some(imp) = checked("PyGreenlet_GET_PARENT", g) else { return null_mut() };
        let p = (*imp).parent;
        if !p.is_null() {
            ffi::Py_INCREF(p);
        }
        p
    })
}

/// Creates the `_C_API` capsule over a table that lives as long as the process.
///
/// # Safety
/// GIL held; after `greenlet::init` (the type and the exceptions exist and are never freed).
pub unsafe fn capsule() -> *mut ffi::PyObject {
    let g = globals();
    type Getter = unsafe extern "C" fn(*mut ffi::PyObject) -> c_int;
    let table: [*mut c_void; API_POINTERS] = [
        g.ty.cast(),
        g.error.cast(),
        g.greenlet_exit.cast(),
        capi_new as unsafe extern "C" fn(_, _) -> _ as *mut c_void,
        capi_getcurrent as unsafe extern "C" fn() -> _ as *mut c_void,
        capi_throw as unsafe extern "C" fn(_, _, _, _) -> _ as *mut c_void,
        capi_switch as unsafe extern "C" fn(_, _, _) -> _ as *mut c_void,
        capi_setparent as unsafe extern "C" fn(_, _) -> _ as *mut c_void,
        capi_main as Getter as *mut c_void,
        capi_started as Getter as *mut c_void,
        capi_active as Getter as *mut c_void,
        capi_get_parent as unsafe extern "C" fn(_) -> _ as *mut c_void,
    ];
    // Leaked: extensions keep the table's address for the life of the process.
    let table: &'static mut [*mut c_void; API_POINTERS] = Box::leak(Box::new(table));
    // SAFETY: GIL held (the contract); the name is a static C string and the table is leaked, so
    // both outlive the capsule, which therefore needs no destructor.
    unsafe { ffi::PyCapsule_New(table.as_mut_ptr().cast(), CAPSULE_NAME.as_ptr(), None) }
}
