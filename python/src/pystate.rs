//! The per-uthread interpreter state, saved and restored around every switch by the C shim in
//! `pystate.c` (see `pystate.h`). The shim holds every version difference in the thread state
//! (the rest of the version differences are in `pyversion.rs`); this module only declares its
//! version-independent interface and wraps the opaque buffer.

use core::ffi::c_int;
use pyo3::ffi::{visitproc, PyObject, PyThreadState};
use std::alloc::Layout;
use std::sync::OnceLock;

/// Opaque: the shim's `uthread_pystate`, whose size only the shim knows.
#[repr(C)]
pub struct RawPyState {
    _opaque: [u8; 0],
}

extern "C" {
    fn uthread_pystate_size() -> usize;
    fn uthread_pystate_init(s: *mut RawPyState);
    fn uthread_pystate_save(s: *mut RawPyState, ts: *mut PyThreadState);
    fn uthread_pystate_restore(s: *mut RawPyState, ts: *mut PyThreadState);
    fn uthread_pystate_begin(s: *mut RawPyState, ts: *mut PyThreadState);
    fn uthread_pystate_end(s: *mut RawPyState, ts: *mut PyThreadState);
    fn uthread_pystate_frame(s: *mut RawPyState) -> *mut PyObject;
    fn uthread_pystate_get_context(s: *mut RawPyState) -> *mut PyObject;
    fn uthread_pystate_set_context(s: *mut RawPyState, ctx: *mut PyObject);
    fn uthread_pystate_traverse(s: *mut RawPyState, visit: visitproc, arg: *mut core::ffi::c_void) -> c_int;
    fn uthread_pystate_clear(s: *mut RawPyState);
    fn uthread_pystate_set_copying(s: *mut RawPyState, copying: c_int);
    fn uthread_pystate_release_abandoned(s: *mut RawPyState) -> c_int;
    fn uthread_pystate_ts_get_context(ts: *mut PyThreadState) -> *mut PyObject;
    fn uthread_pystate_ts_set_context(ts: *mut PyThreadState, ctx: *mut PyObject);
    fn uthread_pystate_check_runtime() -> c_int;
    fn uthread_pystate_drain_pool();
    fn uthread_pystate_ts_adjust_tracing(ts: *mut PyThreadState, enter: c_int);
    fn uthread_pystate_ts_trash_delete_nesting(ts: *mut PyThreadState) -> c_int;
}

/// The trash-can nesting counter of `ts`, or -1 where the interpreter has no such counter (see
/// [`crate::pyversion::HAS_TRASH_DELETE_NESTING`]).
///
/// # Safety
/// GIL held; `ts` is the calling thread's state.
pub unsafe fn trash_delete_nesting(ts: *mut PyThreadState) -> c_int {
    unsafe { uthread_pystate_ts_trash_delete_nesting(ts) }
}

/// Leaves (`enter` false) or enters the per-thread tracing guard of `ts`, the version's way.
///
/// # Safety
/// GIL held; `ts` is the calling thread's state; every leave is followed by an enter before the
/// interpreter's own code continues.
pub unsafe fn adjust_tracing(ts: *mut PyThreadState, enter: bool) {
    unsafe { uthread_pystate_ts_adjust_tracing(ts, c_int::from(enter)) }
}

/// Frees the calling thread's pool of data-stack chunks kept for new uthreads (3.11+).
///
/// # Safety
/// Called on the thread that owns the pool, when no uthread of it will begin or end any more;
/// the interpreter's arena allocator is still usable (the interpreter has not been finalized).
pub unsafe fn drain_pool() {
    unsafe { uthread_pystate_drain_pool() }
}

/// The context of the uthread running on `ts` (borrowed) or null.
///
/// # Safety
/// GIL held; `ts` is the calling thread's state.
pub unsafe fn running_context(ts: *mut PyThreadState) -> *mut PyObject {
    unsafe { uthread_pystate_ts_get_context(ts) }
}

/// Sets the context of the uthread running on `ts` (`ctx` borrowed, may be null).
///
/// # Safety
/// GIL held; `ts` is the calling thread's state; `ctx` is null or a `contextvars.Context`.
pub unsafe fn set_running_context(ts: *mut PyThreadState, ctx: *mut PyObject) {
    unsafe { uthread_pystate_ts_set_context(ts, ctx) }
}

/// Fails with ImportError set if the shim was compiled for another CPython minor version.
///
/// # Safety
/// GIL held.
pub unsafe fn check_runtime() -> bool {
    unsafe { uthread_pystate_check_runtime() == 0 }
}

/// Size and alignment of the shim's buffer (asked once).
pub fn layout() -> Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    // SAFETY: a pure function of the build.
    *LAYOUT.get_or_init(|| Layout::from_size_align(unsafe { uthread_pystate_size() }.max(1), 16).expect("pystate size"))
}

/// A pointer to one uthread's saved interpreter state (the buffer lives inside the greenlet's
/// implementation block, which owns it).
#[derive(Clone, Copy)]
pub struct PyState(pub *mut RawPyState);

// The `# Safety` contract of every method but `init`, called "the PyState contract" below: the
// buffer is live and initialized, and the caller holds the GIL on the thread that the state
// belongs to (or, for `clear`/`traverse`/`frame`/contexts, any thread holding the GIL while the
// uthread is not running), following pystate.h's protocol.
impl PyState {
    /// # Safety
    /// `self` points to an uninitialized buffer of [`layout`].
    pub unsafe fn init(self) {
        unsafe { uthread_pystate_init(self.0) }
    }
    /// Before `begin`: the uthread runs in the engine's copying mode (its C stack is moved to
    /// the heap while it is suspended).
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn set_copying(self, copying: bool) {
        unsafe { uthread_pystate_set_copying(self.0, c_int::from(copying)) }
    }
    /// On switching out of the uthread.
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn save(self, ts: *mut PyThreadState) {
        unsafe { uthread_pystate_save(self.0, ts) }
    }
    /// Right after switching back into the uthread.
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn restore(self, ts: *mut PyThreadState) {
        unsafe { uthread_pystate_restore(self.0, ts) }
    }
    /// First thing on a new uthread's stack.
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn begin(self, ts: *mut PyThreadState) {
        unsafe { uthread_pystate_begin(self.0, ts) }
    }
    /// When the uthread's Python code has finished, still on its stack.
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn end(self, ts: *mut PyThreadState) {
        unsafe { uthread_pystate_end(self.0, ts) }
    }
    /// The top frame of a suspended uthread (new reference) or null.
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn frame(self) -> *mut PyObject {
        unsafe { uthread_pystate_frame(self.0) }
    }
    /// The saved context of a NEW or SUSPENDED uthread (borrowed) or null.
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn context(self) -> *mut PyObject {
        unsafe { uthread_pystate_get_context(self.0) }
    }
    /// Replaces the saved context (`ctx` borrowed, may be null; the old one is released, which
    /// may run finalizers).
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn set_context(self, ctx: *mut PyObject) {
        unsafe { uthread_pystate_set_context(self.0, ctx) }
    }
    /// GC support: visits the references the state owns (see `uthread_pystate_traverse`).
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn traverse(self, visit: visitproc, arg: *mut core::ffi::c_void) -> c_int {
        unsafe { uthread_pystate_traverse(self.0, visit, arg) }
    }
    /// Drops every reference the state holds, without running the uthread. A suspended
    /// uthread's frames are freed if nothing can point into them (else leaked): its coroutine's
    /// stack must still be mapped, and it must never run again.
    ///
    /// # Safety
    /// The PyState contract (above the `impl`).
    pub unsafe fn clear(self) {
        unsafe {
            // Not while the interpreter shuts down: on 3.10 releasing a frame runs finalizers.
            if !crate::pyversion::is_finalizing() {
                uthread_pystate_release_abandoned(self.0);
            }
            uthread_pystate_clear(self.0)
        }
    }
}
