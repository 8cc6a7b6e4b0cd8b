//! `uthread._uthread`: greenlet-compatible micro-threads for CPython on the coro engine.
//!
//! - [`greenlet`]: the `greenlet` type (raw ffi: greenlet 3's instance layout) and switching,
//!   one file per concern (layout, lifecycle, switch, the Python type).
//! - [`capsule`]: greenlet 3's C API, the `_C_API` capsule.
//! - [`thread`]: per-OS-thread state, and the cleanup of greenlets whose thread exited.
//! - [`preempt`]: the preemption hook of `uthread.stackless`.
//! - [`pystate`]: the interface of `pystate.c`, the C shim that saves and restores the
//!   per-uthread part of CPython's thread state.
//! - [`pyversion`]: every CPython version difference the Rust side sees; with `pystate.c`, the
//!   only files of python/src that may test the version (`ci/lint-version-isolation.sh`).
//! - [`object`]: owned-reference helpers over raw `PyObject` pointers.
//! - [`panic_boundary`]: [`abort_on_panic`], which every function called from C runs through.
//! - [`unwind_barrier`]: calls into Python from a uthread's bottom, so that an uncaught C++
//!   exception ends in `std::terminate` (as in greenlet), not in the engine's `catch_unwind`.
//!
//! This file: the module-level functions (`getcurrent`, `settrace`, … ; pyo3, but for
//! `getcurrent`, a plain C function) and exceptions, and the module's initialization.
#![deny(unsafe_op_in_unsafe_fn)]

mod capsule;
mod greenlet;
mod object;
mod panic_boundary;
mod preempt;
mod pystate;
mod pyversion;
mod thread;
mod unwind_barrier;

use crate::object::new_ref_or_none;
use crate::panic_boundary::abort_on_panic;
use core::ptr::null_mut;
use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::Ordering;

create_exception!(
    uthread,
    GreenletExit,
    PyBaseException,
    "Raised in a greenlet to make it exit (thrown into suspended greenlets that are collected); \
     a greenlet that ends with it returns its value to its parent instead of raising."
);
#[allow(non_camel_case_types)] // the Python name is greenlet's
mod error_type {
    use super::*;
    create_exception!(
        uthread,
        error,
        PyException,
        "An invalid switch: to a greenlet of another thread, or one that can never run again."
    );
}
use error_type::error;

/// `getcurrent()`, as a plain `METH_NOARGS` C function: it is called often (every event loop
/// asks it on every turn), so it skips pyo3's argument handling.
///
/// # Safety
/// Called by the interpreter through its method definition, with the GIL held.
unsafe extern "C" fn getcurrent(
    _module: *mut pyo3::ffi::PyObject,
    _: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: called by the interpreter with the GIL held.
    abort_on_panic("getcurrent()", || unsafe { current_greenlet() })
}

/// What `getcurrent()` returns: a new reference to the running greenlet.
///
/// # Safety
/// GIL held.
pub(crate) unsafe fn current_greenlet() -> *mut ffi::PyObject {
    // SAFETY: GIL held (the contract); the thread's state from `get_maintained` is live and its
    // `current` is a strong reference it holds, so it is live to incref.
    unsafe {
        if pyversion::is_finalizing() {
            greenlet::raise(ffi::PyExc_RuntimeError, "greenlet is being finalized");
            return null_mut();
        }
        let Ok(ts) = thread::get_maintained() else { return null_mut() };
        let c = (*ts).current;
        ffi::Py_INCREF(c);
        c
    }
}

/// What `settrace(callback)` does: stores `f` (None: no trace function) and returns the
/// previous callback (new reference, None if none).
///
/// # Safety
/// GIL held; `f` borrowed.
unsafe fn swap_tracefunc(f: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: GIL held (the contract); the thread's state is live, its `tracefunc` slot owns null
    // or a strong reference, which is handed to the caller.
    unsafe {
        let Ok(ts) = thread::get_maintained() else { return null_mut() };
        let new = if f == ffi::Py_None() {
            null_mut()
        } else {
            ffi::Py_INCREF(f);
            f
        };
        let old = core::mem::replace(&mut (*ts).tracefunc, new);
        if old.is_null() {
            new_ref_or_none(null_mut())
        } else {
            old
        }
    }
}

/// What `gettrace()` returns: the current callback (new reference) or None.
///
/// # Safety
/// GIL held.
unsafe fn tracefunc() -> *mut ffi::PyObject {
    // SAFETY: GIL held (the contract); the slot holds null or a live strong reference.
    unsafe {
        let Ok(ts) = thread::get_maintained() else { return null_mut() };
        new_ref_or_none((*ts).tracefunc)
    }
}

/// settrace(callback) -> previous callback or None
///
/// Sets this thread's greenlet trace function, called as ``callback(event, (origin, target))``
/// with event ``'switch'`` or ``'throw'`` on every switch; None removes it. If it raises, it is
/// removed and its exception is raised in the greenlet being switched to.
#[pyfunction]
fn settrace<'py>(py: Python<'py>, callback: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: a pyfunction runs with the GIL held; `callback` is borrowed for the call.
    unsafe { Bound::from_owned_ptr_or_err(py, swap_tracefunc(callback.as_ptr())) }
}

/// gettrace() -> callback or None
///
/// Returns this thread's greenlet trace function.
#[pyfunction]
fn gettrace(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: a pyfunction runs with the GIL held.
    unsafe { Bound::from_owned_ptr_or_err(py, tracefunc()) }
}

/// get_pending_cleanup_count() -> int
///
/// Number of exited threads whose greenlets wait to be released (they are released by a call
/// the interpreter makes on another thread shortly after the thread exits).
#[pyfunction]
fn get_pending_cleanup_count() -> usize {
    thread::pending_cleanup_count()
}

/// get_total_main_greenlets() -> int
///
/// Number of main greenlets alive (one per thread that used greenlets, until it is released).
#[pyfunction]
fn get_total_main_greenlets() -> usize {
    thread::TOTAL_MAIN_GREENLETS.load(Ordering::Relaxed)
}

/// get_tstate_trash_delete_nesting() -> int
///
/// Test support, as in greenlet's ``_greenlet`` on CPython before 3.13: the running uthread's
/// trash-can nesting depth (each uthread has its own; 0 outside deallocation chains). Only in the
/// module where the interpreter has that counter ([`pyversion::HAS_TRASH_DELETE_NESTING`]).
#[pyfunction]
fn get_tstate_trash_delete_nesting() -> i32 {
    // SAFETY: a pyfunction runs with the GIL held on the calling thread.
    unsafe { pystate::trash_delete_nesting(pyo3::ffi::PyThreadState_Get()) }
}

/// set_thread_local(key, value) -> None
///
/// Test support, as in greenlet's ``_greenlet``: stores ``value`` under ``key`` in this thread's
/// interpreter thread-state dictionary (released when the thread's state is).
#[pyfunction]
fn set_thread_local(key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = key.py();
    // SAFETY: attached to the interpreter; a borrowed reference to this thread's dict or null.
    let dict = unsafe { pyo3::ffi::PyThreadState_GetDict() };
    if dict.is_null() {
        return Err(
            PyErr::take(py).unwrap_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("no thread state dictionary"))
        );
    }
    // SAFETY: a live dict owned by the thread state.
    let dict: Bound<'_, PyDict> = unsafe { Bound::from_borrowed_ptr(py, dict).cast_into_unchecked() };
    dict.set_item(key, value)
}

/// stack_size([size]) -> int
///
/// Returns the stack size (bytes) given to greenlets started from now on; with ``size``, sets it
/// (0 restores the default, 8 MiB) and returns the previous one. Stacks are reserved, not
/// committed: only the pages a greenlet touches cost memory. CPython's recursion limit is
/// counted in frames, so a stack much smaller than the default may overflow (a fatal error)
/// before ``RecursionError`` is raised.
#[pyfunction]
#[pyo3(signature = (size=None))]
fn stack_size(size: Option<usize>) -> PyResult<usize> {
    let previous = greenlet::STACK_SIZE.load(Ordering::Relaxed);
    if let Some(size) = size {
        let size = if size == 0 { greenlet::DEFAULT_STACK_SIZE } else { size };
        if !(coro::MIN_STACK_SIZE..=coro::MAX_STACK_SIZE).contains(&size) {
            return Err(PyValueError::new_err(format!(
                "stack size must be between {} and {} bytes (or 0 for the default)",
                coro::MIN_STACK_SIZE,
                coro::MAX_STACK_SIZE
            )));
        }
        greenlet::STACK_SIZE.store(size, Ordering::Relaxed);
    }
    Ok(previous)
}

/// enable_optional_cleanup(flag) -> None
///
/// Enables (the default) or disables greenlet's optional cleanup: when an exited thread's
/// greenlet state is released and the only reference left to its main greenlet is one no object
/// known to the garbage collector holds (a frame of a greenlet of that thread that can never run
/// again), that reference is dropped so the main greenlet is freed. Finding out uses
/// ``gc.get_referrers()``, whose cost grows with the number of live objects.
#[pyfunction]
fn enable_optional_cleanup(flag: &Bound<'_, PyAny>) -> PyResult<()> {
    let clocks = &thread::CLOCKS_USED_DOING_CLEANUP;
    if flag.is_truthy()? {
        // Keep the count if it was already enabled.
        let _ = clocks.compare_exchange(-1, 0, Ordering::Relaxed, Ordering::Relaxed);
    } else {
        clocks.store(-1, Ordering::Relaxed);
    }
    Ok(())
}

/// get_clocks_used_doing_optional_cleanup() -> int or None
///
/// Processor time spent in the optional cleanup (see ``enable_optional_cleanup``), in units of
/// ``1/CLOCKS_PER_SEC`` seconds; None while it is disabled.
#[pyfunction]
fn get_clocks_used_doing_optional_cleanup() -> Option<i64> {
    let clocks = thread::CLOCKS_USED_DOING_CLEANUP.load(Ordering::Relaxed);
    (clocks >= 0).then_some(clocks)
}

#[pymodule]
fn _uthread(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let exit = py.get_type::<GreenletExit>();
    let err = py.get_type::<error>();
    // SAFETY: attached; both type objects live as long as the process (the module keeps them).
    let ty = unsafe { greenlet::init(exit.as_ptr(), err.as_ptr()) }.map_err(|()| {
        PyErr::take(py).unwrap_or_else(|| PyErr::new::<pyo3::exceptions::PySystemError, _>("uthread init failed"))
    })?;
    // SAFETY: a static type object that lives forever.
    let ty = unsafe { Bound::from_borrowed_ptr(py, ty.cast()) };
    m.add("greenlet", &ty)?;
    // SAFETY: after `greenlet::init`; a static type object that lives forever.
    let unswitchable = unsafe { greenlet::init_unswitchable() }.map_err(|()| {
        PyErr::take(py).unwrap_or_else(|| PyErr::new::<pyo3::exceptions::PySystemError, _>("uthread init failed"))
    })?;
    // SAFETY: as above.
    m.add("UnswitchableGreenlet", unsafe { Bound::from_borrowed_ptr(py, unswitchable.cast()) })?;
    m.add("GreenletExit", &exit)?;
    // greenlet's C API (greenlet.h): the capsule `greenlet._C_API` (see capsule.rs).
    // SAFETY: attached, after `greenlet::init`.
    m.add("_C_API", unsafe { Bound::from_owned_ptr_or_err(py, capsule::capsule())? })?;
    m.add("error", &err)?;
    // Leaked: the interpreter keeps pointing to it for the life of the process.
    let def = Box::leak(Box::new(pyo3::ffi::PyMethodDef {
        ml_name: c"getcurrent".as_ptr(),
        ml_meth: pyo3::ffi::PyMethodDefPointer { PyCFunction: getcurrent },
        ml_flags: pyo3::ffi::METH_NOARGS,
        ml_doc: c"getcurrent($module, /)\n--\n\nReturns the greenlet running on this thread (its main greenlet \
                  when no other runs)."
            .as_ptr(),
    }));
    // SAFETY: a method definition that lives forever; the module is its `self`.
    let getcurrent =
        unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyCFunction_NewEx(def, m.as_ptr(), m.name()?.as_ptr()))? };
    m.add("getcurrent", getcurrent)?;
    preempt::register(m)?; // uthread.stackless's preemption hook (preempt.rs)
    m.add_function(wrap_pyfunction!(settrace, m)?)?;
    m.add_function(wrap_pyfunction!(gettrace, m)?)?;
    m.add_function(wrap_pyfunction!(get_pending_cleanup_count, m)?)?;
    m.add_function(wrap_pyfunction!(get_total_main_greenlets, m)?)?;
    if pyversion::HAS_TRASH_DELETE_NESTING {
        m.add_function(wrap_pyfunction!(get_tstate_trash_delete_nesting, m)?)?;
    }
    m.add_function(wrap_pyfunction!(stack_size, m)?)?;
    m.add_function(wrap_pyfunction!(set_thread_local, m)?)?;
    m.add_function(wrap_pyfunction!(enable_optional_cleanup, m)?)?;
    m.add_function(wrap_pyfunction!(get_clocks_used_doing_optional_cleanup, m)?)?;
    m.add("GREENLET_USE_GC", true)?;
    m.add("GREENLET_USE_TRACING", true)?;
    m.add("GREENLET_USE_CONTEXT_VARS", true)?;
    m.add("GREENLET_USE_STANDARD_THREADING", true)?;
    m.add("CLOCKS_PER_SEC", 1_000_000)?;
    m.add("DEFAULT_STACK_SIZE", greenlet::DEFAULT_STACK_SIZE)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // As greenlet does: the module's API is also reachable from the type.
    let tp_dict = ty.getattr("__dict__")?;
    let _ = tp_dict; // a mappingproxy: set through the real dict below
                     // SAFETY: a static type's tp_dict is a plain dict owned by the type.
    let real: Bound<'_, PyDict> = unsafe {
        Bound::from_borrowed_ptr(py, (*ty.as_ptr().cast::<pyo3::ffi::PyTypeObject>()).tp_dict).cast_into_unchecked()
    };
    for name in ["getcurrent", "error", "GreenletExit", "settrace", "gettrace"] {
        real.set_item(name, m.getattr(name)?)?;
    }
    // SAFETY: the type's dict changed.
    unsafe { pyo3::ffi::PyType_Modified(ty.as_ptr().cast()) };
    Ok(())
}
