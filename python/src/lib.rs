//! `uthread._uthread`: greenlet-compatible micro-threads for CPython on the coro engine.
//!
//! - [`greenlet`]: the `greenlet` type (raw ffi: greenlet 3's instance layout) and switching.
//! - [`thread`]: per-OS-thread state, and the cleanup of greenlets whose thread exited.
//! - [`pystate`]: the interface of `pystate.c`, the C shim that saves and restores the
//!   per-uthread part of CPython's thread state (every CPython version difference lives there).
//!
//! The module functions and exceptions use pyo3 normally.
#![deny(unsafe_op_in_unsafe_fn)]

mod greenlet;
mod object;
mod pystate;
mod thread;

use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyException, PyValueError};
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

/// getcurrent() -> greenlet
///
/// Returns the greenlet running on this thread (its main greenlet when no other runs).
#[pyfunction]
fn getcurrent(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: attached to the interpreter; the result is a new reference or null with an error.
    unsafe { Bound::from_owned_ptr_or_err(py, greenlet::getcurrent()) }
}

/// settrace(callback) -> previous callback or None
///
/// Sets this thread's greenlet trace function, called as ``callback(event, (origin, target))``
/// with event ``'switch'`` or ``'throw'`` on every switch; None removes it. If it raises, it is
/// removed and its exception is raised in the greenlet being switched to.
#[pyfunction]
fn settrace<'py>(py: Python<'py>, callback: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: as above; `callback` is borrowed for the call.
    unsafe { Bound::from_owned_ptr_or_err(py, greenlet::settrace(callback.as_ptr())) }
}

/// gettrace() -> callback or None
///
/// Returns this thread's greenlet trace function.
#[pyfunction]
fn gettrace(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: as above.
    unsafe { Bound::from_owned_ptr_or_err(py, greenlet::gettrace()) }
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
/// Accepted for compatibility with greenlet; uthread has no optional cleanup to enable.
#[pyfunction]
fn enable_optional_cleanup(flag: &Bound<'_, PyAny>) -> PyResult<()> {
    flag.is_truthy()?;
    Ok(())
}

/// get_clocks_used_doing_optional_cleanup() -> int
///
/// Always 0 (see ``enable_optional_cleanup``).
#[pyfunction]
fn get_clocks_used_doing_optional_cleanup() -> usize {
    0
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
    m.add("GreenletExit", &exit)?;
    m.add("error", &err)?;
    m.add_function(wrap_pyfunction!(getcurrent, m)?)?;
    m.add_function(wrap_pyfunction!(settrace, m)?)?;
    m.add_function(wrap_pyfunction!(gettrace, m)?)?;
    m.add_function(wrap_pyfunction!(get_pending_cleanup_count, m)?)?;
    m.add_function(wrap_pyfunction!(get_total_main_greenlets, m)?)?;
    m.add_function(wrap_pyfunction!(stack_size, m)?)?;
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
