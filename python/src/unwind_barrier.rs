//! Calls into Python from the bottom of a uthread, behind a barrier for C++ exceptions.
//!
//! A C++ exception that no C++ frame catches must end the process through `std::terminate`, as
//! it does in a plain thread and in greenlet ("terminate called after throwing an instance of
//! … what(): …"): greenlet's `test_cpp` checks it, and the message is what tells a user which
//! exception escaped. Below a uthread's `run` sit Rust frames, the engine's root among them,
//! which catches Rust panics with `catch_unwind`; a foreign exception reaching it aborts with
//! Rust's own message instead, and the exception's is lost.
//!
//! The barrier is a Rust frame that has an exception table (it holds a value with a destructor
//! across a call that may unwind) in which the call into Python has no entry, because that call
//! is to an `extern "C"` function, which Rust assumes never unwinds. By the Itanium C++ ABI a
//! call site missing from its frame's table means "terminate": the unwinder's search phase
//! stops there (Rust's personality routine reports a fatal phase-1 error), `_Unwind_RaiseException`
//! returns to `__cxa_throw`, and that calls `std::terminate` with the exception still current.
//! Rust panics never reach this frame (CPython code does not unwind).

use pyo3::ffi;

/// Aborts if dropped while armed; its destructor is what gives the barrier frames an exception
/// table.
struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        eprintln!("uthread: a Rust panic unwound into the call of a uthread's run; aborting");
        std::process::abort();
    }
}

/// A call the compiler must assume may unwind (through an opaque function pointer), made while
/// an [`Armed`] is alive: it gives the calling frame a landing pad, hence an exception table.
#[inline(always)]
fn may_unwind() {
    fn nothing() {}
    let f: fn() = core::hint::black_box(nothing);
    f();
}

/// `PyObject_Call(callable, args, kwargs)` behind the barrier.
///
/// # Safety
/// As `PyObject_Call`: GIL held, `args` a tuple, `kwargs` null or a dict.
#[inline(never)]
pub unsafe fn call(
    callable: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let armed = Armed;
    may_unwind();
    // SAFETY: the caller's contract.
    let r = unsafe { ffi::PyObject_Call(callable, args, kwargs) };
    core::mem::forget(armed);
    r
}

/// `PyObject_CallOneArg(callable, arg)` behind the barrier.
///
/// # Safety
/// As `PyObject_CallOneArg`: GIL held, both live.
#[inline(never)]
pub unsafe fn call_one_arg(callable: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let armed = Armed;
    may_unwind();
    // SAFETY: the caller's contract.
    let r = unsafe { ffi::PyObject_CallOneArg(callable, arg) };
    core::mem::forget(armed);
    r
}

/// `PyObject_CallNoArgs(callable)` behind the barrier.
///
/// # Safety
/// As `PyObject_CallNoArgs`: GIL held, `callable` live.
#[inline(never)]
pub unsafe fn call_no_args(callable: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let armed = Armed;
    may_unwind();
    // SAFETY: the caller's contract.
    let r = unsafe { ffi::PyObject_CallNoArgs(callable) };
    core::mem::forget(armed);
    r
}
