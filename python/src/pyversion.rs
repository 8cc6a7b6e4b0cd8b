//! Every difference between the supported CPython versions (3.10 to 3.13) that the Rust side of
//! the extension sees. The other half is `pystate.c`, the C shim compiled against each version's
//! own headers (internal ones included): every `PyThreadState` field and interpreter frame the
//! extension touches is read or written there, behind the version-independent interface of
//! `pystate.h` (declared in [`crate::pystate`]). A port to another CPython version changes this
//! module and `pystate.c`, nothing else; `ci/lint-version-isolation.sh` (part of `make lint`)
//! fails if a version check (`Py_3_*`, `PY_VERSION_HEX`, `Py_BUILD_CORE`, internal headers)
//! appears in any other file of python/src.
//!
//! What differs is exposed as functions with one signature on every version, and as feature
//! constants that the rest of the code tests with a plain `if`, so that both branches compile
//! (and are checked) on every version and the unused one is dropped by the optimizer.

use core::ffi::c_char;
use pyo3::ffi;
use std::ffi::CStr;

/// Whether `sys.monitoring` exists (3.12+). The preemption hook uses it when it does, and a C
/// trace function of the arming thread before.
pub const HAS_SYS_MONITORING: bool = cfg!(Py_3_12);

/// Whether the thread state has a trash-can nesting counter of its own (3.10 to 3.12; 3.13 counts
/// that nesting in `c_recursion_remaining`). greenlet's `_greenlet` has its
/// `get_tstate_trash_delete_nesting()` test helper only then, and so does `_uthread`.
pub const HAS_TRASH_DELETE_NESTING: bool = cfg!(not(Py_3_13));

/// Whether the interpreter is shutting down (no Python code may run for greenlets then):
/// `Py_IsFinalizing` is public from 3.13, `_Py_IsFinalizing` before.
pub fn is_finalizing() -> bool {
    #[cfg(Py_3_13)]
    // SAFETY: callable without the GIL.
    unsafe {
        ffi::Py_IsFinalizing() != 0
    }
    #[cfg(not(Py_3_13))]
    {
        extern "C" {
            fn _Py_IsFinalizing() -> core::ffi::c_int;
        }
        // SAFETY: callable without the GIL.
        unsafe { _Py_IsFinalizing() != 0 }
    }
}

/// One entry of the keyword list `PyArg_ParseTupleAndKeywords` takes: `char *const *` from 3.13,
/// `char **` before (the strings are never written either way).
#[cfg(Py_3_13)]
pub type KwName = *const c_char;
/// One entry of the keyword list `PyArg_ParseTupleAndKeywords` takes: `char *const *` from 3.13,
/// `char **` before (the strings are never written either way).
#[cfg(not(Py_3_13))]
pub type KwName = *mut c_char;

/// `name` as a keyword-list entry.
pub const fn kw_name(name: &'static CStr) -> KwName {
    #[cfg(Py_3_13)]
    {
        name.as_ptr()
    }
    #[cfg(not(Py_3_13))]
    {
        name.as_ptr().cast_mut()
    }
}

/// The null entry that ends a keyword list.
#[cfg(Py_3_13)]
pub const KW_END: KwName = core::ptr::null();
/// The null entry that ends a keyword list.
#[cfg(not(Py_3_13))]
pub const KW_END: KwName = core::ptr::null_mut();

/// `Py_SET_REFCNT`, which pyo3-ffi does not provide: `ob_refcnt` became a union in 3.12.
///
/// # Safety
/// `o` is live, not immortal, and the GIL is held.
pub unsafe fn set_refcnt(o: *mut ffi::PyObject, n: ffi::Py_ssize_t) {
    // SAFETY: per the contract, `o` points to a live object header.
    #[cfg(Py_3_12)]
    unsafe {
        (*o).ob_refcnt.ob_refcnt = n
    };
    // SAFETY: as above.
    #[cfg(not(Py_3_12))]
    unsafe {
        (*o).ob_refcnt = n
    };
}

/// Before a call of greenlet's trace function (`settrace`): enters the thread's tracing guard so
/// that the callback is not itself traced, where CPython has public API for it (3.11+). On 3.10
/// the callback runs under the guard as the switch found it. Pair with [`leave_trace_callback`].
///
/// # Safety
/// GIL held; `ts` is the calling thread's state.
pub unsafe fn enter_trace_callback(ts: *mut ffi::PyThreadState) {
    // SAFETY: per the contract.
    #[cfg(Py_3_11)]
    unsafe {
        ffi::PyThreadState_EnterTracing(ts)
    };
    #[cfg(not(Py_3_11))]
    let _ = ts;
}

/// After the call [`enter_trace_callback`] prepared.
///
/// # Safety
/// GIL held; `ts` is the calling thread's state, on which `enter_trace_callback` was called.
pub unsafe fn leave_trace_callback(ts: *mut ffi::PyThreadState) {
    // SAFETY: per the contract.
    #[cfg(Py_3_11)]
    unsafe {
        ffi::PyThreadState_LeaveTracing(ts)
    };
    #[cfg(not(Py_3_11))]
    let _ = ts;
}
