//! Preemption for `uthread.stackless.run(timeout=…/timeslice=…)`: a native interpreter hook that
//! counts *ticks* and, when a thread's budget is used up, sets a flag and calls the scheduler's
//! Python handler at a safe point.
//!
//! A tick is a loop iteration (a jump back) or the start of a Python function: the points where
//! CPython itself checks its eval breaker, so a tight loop with no calls is still counted.
//!
//! [`pyversion::HAS_SYS_MONITORING`] picks one of two mechanisms:
//!
//! - CPython 3.12+: `sys.monitoring` with one tool id (4, else 3) and the events `JUMP` and
//!   `PY_START`, whose callback is [`tick_fn`], a `METH_FASTCALL` C function. Events are
//!   process-wide; threads that did not arm the hook return at once.
//! - CPython 3.10/3.11: a C trace function for the arming thread (`PyEval_SetTrace`), counting
//!   `line` and `call` events (a loop iteration starts a line). The thread must not already have
//!   a trace function (a debugger or coverage tool): arming refuses with `RuntimeError`.
//!
//! Why the handler runs where it does: the interpreter calls hooks inside its tracing guard
//! (`tstate->tracing` > 0: nothing is traced or monitored), and that guard is per thread, not per
//! uthread. A switch made inside the guard would run the next uthread untraced, so it could never
//! be preempted. So the hook, after setting the flag, leaves the guard, calls the handler (plain
//! Python code between two bytecodes of the interrupted uthread: a safe point, as Stackless's
//! eval loop does), and enters the guard again when the handler returns. The handler decides
//! (atomic sections, the scheduler's state) and switches; the interrupted uthread continues from
//! the hook when it is switched back to. While the handler runs on a thread, ticks are only
//! counted (it is never re-entered); a switch resets that (`_preempt_reset`).
//!
//! The handler must not raise: an exception propagated out of a hook after a switch inside it is
//! not reliably caught by the interrupted frame's `try` blocks (CPython 3.10 unwinds past them,
//! 3.12 too once instrumentation changed meanwhile). An exception thrown into the interrupted
//! uthread while it was switched away (a kill) is handed to [`preempt_defer`] instead: the hook
//! returns normally and the interpreter raises it at the interrupted code's next instruction
//! through its asynchronous-exception slot, as it raises a signal handler's exception.

use crate::panic_boundary::abort_on_panic;
use crate::{pystate, pyversion};
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The hook state of one OS thread.
struct ThreadHook {
    armed: Cell<bool>,
    /// Ticks left before the handler is called.
    left: Cell<i64>,
    /// The budget reloaded after each expiry and by `_preempt_reset()`.
    reload: Cell<i64>,
    /// Set when the budget expires, cleared when the handler returns: the "preempt now" flag.
    pending: Cell<bool>,
    /// Strong reference to the handler while armed, else null.
    handler: Cell<*mut ffi::PyObject>,
    /// True while the handler runs on this thread (ticks are only counted then); cleared by
    /// `_preempt_reset()`, which the scheduler calls whenever it switches.
    in_handler: Cell<bool>,
    /// An exception class (strong reference, or null) to raise where the hook returns: see
    /// `_preempt_defer`.
    deferred: Cell<*mut ffi::PyObject>,
    /// Time slices (`slice` non-zero): the budget of ticks is only how often the clock is
    /// read; the handler is called once the slice that `_preempt_reset()` started has passed.
    slice: Cell<Duration>,
    deadline: Cell<Option<Instant>>,
}

thread_local! {
    static HOOK: ThreadHook = const {
        ThreadHook {
            armed: Cell::new(false),
            left: Cell::new(0),
            reload: Cell::new(0),
            pending: Cell::new(false),
            handler: Cell::new(std::ptr::null_mut()),
            in_handler: Cell::new(false),
            deferred: Cell::new(std::ptr::null_mut()),
            slice: Cell::new(Duration::ZERO),
            deadline: Cell::new(None),
        }
    };
}

/// Threads armed right now (3.12+: the monitoring tool is registered while this is non-zero).
static ARMED_THREADS: AtomicUsize = AtomicUsize::new(0);
/// The `sys.monitoring` tool id in use, or -1 (always -1 before 3.12).
static TOOL_ID: AtomicI32 = AtomicI32::new(-1);
/// The `_preempt_tick` function object (owned by the module; lives as long as the process).
static TICK_FN: AtomicPtr<ffi::PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// Leaves (`enter` false) or re-enters the calling thread's tracing guard (`pystate.c` does it
/// the version's way; on 3.10 `cframe->use_tracing` stays as the interpreter left it while
/// calling the hook, 0, and is recomputed whenever a uthread is switched in).
///
/// # Safety
/// Attached to the interpreter (GIL held) on the thread whose state this is.
unsafe fn adjust_tracing(enter: bool) {
    // SAFETY: per the contract; the current thread state is live.
    unsafe { pystate::adjust_tracing(ffi::PyThreadState_Get(), enter) }
}

/// One tick. Returns 0, or -1 with an exception set (raised where the tick happened).
///
/// # Safety
/// Called by the interpreter with the GIL held, inside its tracing guard.
unsafe fn tick() -> c_int {
    let handler = HOOK.with(|h| {
        if !h.armed.get() {
            return std::ptr::null_mut();
        }
        let left = h.left.get() - 1;
        if left > 0 || h.in_handler.get() {
            h.left.set(left.max(1));
            return std::ptr::null_mut();
        }
        h.left.set(h.reload.get());
        if let Some(deadline) = h.deadline.get() {
            if Instant::now() < deadline {
                return std::ptr::null_mut();
            }
        }
        h.pending.set(true);
        h.in_handler.set(true);
        h.handler.get()
    });
    if handler.is_null() {
        return 0;
    }
    // SAFETY: GIL held; `handler` is a strong reference kept while armed, and we hold our own
    // for the call (the handler may disarm). The tracing guard is left and re-entered around the
    // call as explained in the module docs; it is re-entered on every path.
    unsafe {
        ffi::Py_INCREF(handler);
        adjust_tracing(false);
        let result = ffi::PyObject_CallNoArgs(handler);
        adjust_tracing(true);
        ffi::Py_DECREF(handler);
        let deferred = HOOK.with(|h| {
            h.pending.set(false);
            h.in_handler.set(false);
            h.deferred.replace(std::ptr::null_mut())
        });
        if result.is_null() {
            ffi::Py_XDECREF(deferred);
            return -1;
        }
        ffi::Py_DECREF(result);
        if !deferred.is_null() {
            // Raised by the interpreter's eval breaker at the next instruction of the code
            // this hook interrupted, the way a signal's KeyboardInterrupt is: an ordinary
            // exception there, caught by its try blocks.
            let rc = ffi::PyThreadState_SetAsyncExc(ffi::PyThread_get_thread_ident() as std::ffi::c_long, deferred);
            ffi::Py_DECREF(deferred);
            if rc != 1 {
                if ffi::PyErr_Occurred().is_null() {
                    ffi::PyErr_SetString(
                        ffi::PyExc_SystemError,
                        c"uthread: cannot raise the deferred exception".as_ptr(),
                    );
                }
                return -1;
            }
        }
    }
    0
}

/// `_preempt_tick(*args)`: the `sys.monitoring` callback (3.12+). Returns None.
///
/// # Safety
/// Called by the interpreter as a `METH_FASTCALL` function with the GIL held.
unsafe extern "C" fn tick_fn(
    _module: *mut ffi::PyObject,
    _args: *mut *mut ffi::PyObject,
    _nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    abort_on_panic("the preemption hook", || {
        // SAFETY: per the contract.
        if unsafe { tick() } < 0 {
            return std::ptr::null_mut();
        }
        // SAFETY: GIL held.
        unsafe { ffi::Py_NewRef(ffi::Py_None()) }
    })
}

/// The C trace function (before 3.12: without [`pyversion::HAS_SYS_MONITORING`]): counts `call`
/// and `line` events.
///
/// # Safety
/// Called by the interpreter as a `Py_tracefunc` with the GIL held.
unsafe extern "C" fn trace_fn(
    _obj: *mut ffi::PyObject,
    _frame: *mut ffi::PyFrameObject,
    what: c_int,
    _arg: *mut ffi::PyObject,
) -> c_int {
    if what != ffi::PyTrace_LINE && what != ffi::PyTrace_CALL {
        return 0;
    }
    // SAFETY: per the contract.
    abort_on_panic("the preemption hook", || unsafe { tick() })
}

/// Installs the interpreter hook for the calling thread.
fn install(py: Python<'_>) -> PyResult<()> {
    if pyversion::HAS_SYS_MONITORING {
        if ARMED_THREADS.load(Ordering::Relaxed) == 0 {
            let mon = py.import("sys")?.getattr("monitoring")?;
            let mut tool = None;
            for id in [4, 3] {
                if mon.call_method1("get_tool", (id,))?.is_none() {
                    mon.call_method1("use_tool_id", (id, "uthread preemption"))?;
                    tool = Some(id);
                    break;
                }
            }
            let tool = tool.ok_or_else(|| {
                PyRuntimeError::new_err("preemption needs a free sys.monitoring tool id (3 or 4); both are in use")
            })?;
            // SAFETY: set once by `register`, owned by the module for the life of the process.
            let tick = unsafe { Bound::from_borrowed_ptr(py, TICK_FN.load(Ordering::Relaxed)) };
            let events = mon.getattr("events")?;
            let jump = events.getattr("JUMP")?;
            let start = events.getattr("PY_START")?;
            mon.call_method1("register_callback", (tool, &jump, &tick))?;
            mon.call_method1("register_callback", (tool, &start, &tick))?;
            mon.call_method1("set_events", (tool, jump.bitor(&start)?))?;
            TOOL_ID.store(tool, Ordering::Relaxed);
        }
    } else {
        if !py.import("sys")?.call_method0("gettrace")?.is_none() {
            return Err(PyRuntimeError::new_err(
                "preemption on CPython before 3.12 uses this thread's trace function, and a tracer \
                 (sys.settrace: a debugger or coverage tool) is already set",
            ));
        }
        // SAFETY: GIL held; sets the calling thread's C trace function.
        unsafe { ffi::PyEval_SetTrace(Some(trace_fn), std::ptr::null_mut()) };
    }
    ARMED_THREADS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Removes what [`install`] did for the calling thread.
fn uninstall(py: Python<'_>) -> PyResult<()> {
    let left = ARMED_THREADS.fetch_sub(1, Ordering::Relaxed) - 1;
    if pyversion::HAS_SYS_MONITORING {
        if left == 0 {
            let tool = TOOL_ID.swap(-1, Ordering::Relaxed);
            if tool >= 0 {
                let mon = py.import("sys")?.getattr("monitoring")?;
                mon.call_method1("set_events", (tool, 0))?;
                let events = mon.getattr("events")?;
                for name in ["JUMP", "PY_START"] {
                    mon.call_method1("register_callback", (tool, events.getattr(name)?, py.None()))?;
                }
                mon.call_method1("free_tool_id", (tool,))?;
            }
        }
    } else {
        // SAFETY: GIL held; clears the calling thread's C trace function (ours).
        unsafe { ffi::PyEval_SetTrace(None, std::ptr::null_mut()) };
    }
    Ok(())
}

/// _preempt_arm(handler, ticks, timeslice=0.0) -> None
///
/// Arms preemption on the calling thread: every ``ticks`` ticks (loop iterations and Python
/// calls) the hook sets its flag and calls ``handler()`` at a safe point. With ``timeslice``
/// (seconds), ``ticks`` is only how often the clock is read: the handler is called once
/// ``timeslice`` has passed since arming or the last ``_preempt_reset()``. Raises RuntimeError
/// if this thread is already armed or the interpreter hook is unavailable.
#[pyfunction]
#[pyo3(name = "_preempt_arm")]
#[pyo3(signature = (handler, ticks, timeslice=0.0))]
fn preempt_arm(handler: &Bound<'_, PyAny>, ticks: i64, timeslice: f64) -> PyResult<()> {
    let py = handler.py();
    if ticks <= 0 {
        return Err(pyo3::exceptions::PyValueError::new_err("ticks must be positive"));
    }
    let slice = Duration::try_from_secs_f64(timeslice)
        .map_err(|_| pyo3::exceptions::PyValueError::new_err("timeslice must be a non-negative number of seconds"))?;
    if !handler.is_callable() {
        return Err(pyo3::exceptions::PyTypeError::new_err("the preemption handler must be callable"));
    }
    if HOOK.with(|h| h.armed.get()) {
        return Err(PyRuntimeError::new_err("preemption is already armed on this thread"));
    }
    install(py)?;
    let handler = handler.clone().unbind().into_ptr();
    HOOK.with(|h| {
        h.handler.set(handler);
        h.reload.set(ticks);
        h.left.set(ticks);
        h.pending.set(false);
        h.in_handler.set(false);
        h.slice.set(slice);
        h.deadline.set((!slice.is_zero()).then(|| Instant::now() + slice));
        h.armed.set(true);
    });
    Ok(())
}

/// _preempt_disarm() -> None
///
/// Disarms preemption on the calling thread (nothing happens if it is not armed) and removes the
/// interpreter hook when no thread needs it any more.
#[pyfunction]
#[pyo3(name = "_preempt_disarm")]
fn preempt_disarm(py: Python<'_>) -> PyResult<()> {
    let handler = HOOK.with(|h| {
        if !h.armed.get() {
            return None;
        }
        h.armed.set(false);
        h.pending.set(false);
        Some(h.handler.replace(std::ptr::null_mut()))
    });
    let Some(handler) = handler else { return Ok(()) };
    // SAFETY: GIL held; the strong reference taken by `_preempt_arm`.
    unsafe { ffi::Py_DECREF(handler) };
    uninstall(py)
}

/// _preempt_reset() -> None
///
/// Gives the running code a fresh budget of ticks, or a fresh time slice (the scheduler calls
/// it on every switch).
#[pyfunction]
#[pyo3(name = "_preempt_reset")]
fn preempt_reset() {
    HOOK.with(|h| {
        h.left.set(h.reload.get());
        h.pending.set(false);
        h.in_handler.set(false);
        let slice = h.slice.get();
        h.deadline.set((!slice.is_zero()).then(|| Instant::now() + slice));
    });
}

/// _preempt_defer(exc_class) -> None
///
/// Called by the handler when an exception was thrown into the code it interrupted while that
/// code was switched away inside the hook: the hook returns normally and ``exc_class()`` is
/// raised at the next instruction of that code (through the interpreter's asynchronous
/// exception, as a signal handler's exception is). Propagating an exception out of the hook
/// itself after a switch inside it is not reliable on every CPython version (3.10 unwinds past
/// the interrupted frame's handlers; 3.12 does so once instrumentation changed meanwhile).
#[pyfunction]
#[pyo3(name = "_preempt_defer")]
fn preempt_defer(exc_class: &Bound<'_, PyAny>) -> PyResult<()> {
    // SAFETY: a type object pointer check on a live object.
    let is_exc_class = unsafe { ffi::PyExceptionClass_Check(exc_class.as_ptr()) } != 0;
    if !is_exc_class {
        return Err(pyo3::exceptions::PyTypeError::new_err("_preempt_defer() needs an exception class"));
    }
    let new = exc_class.clone().unbind().into_ptr();
    let old = HOOK.with(|h| h.deferred.replace(new));
    // SAFETY: GIL held; a strong reference we owned.
    unsafe { ffi::Py_XDECREF(old) };
    Ok(())
}

/// _preempt_state() -> (armed, ticks_left, pending)
///
/// The calling thread's hook state (for tests and debugging).
#[pyfunction]
#[pyo3(name = "_preempt_state")]
fn preempt_state() -> (bool, i64, bool) {
    HOOK.with(|h| (h.armed.get(), h.left.get(), h.pending.get()))
}

/// Adds the preemption functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Leaked: the interpreter keeps pointing to it for the life of the process.
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: c"_preempt_tick".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunctionFast: tick_fn },
        ml_flags: ffi::METH_FASTCALL,
        ml_doc: c"_preempt_tick($module, /, *args)\n--\n\nThe preemption hook's sys.monitoring callback (counts one \
                  tick)."
            .as_ptr(),
    }));
    // SAFETY: a method definition that lives forever; the module is its `self`.
    let tick =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyCFunction_NewEx(def, m.as_ptr(), m.name()?.as_ptr()))? };
    TICK_FN.store(tick.as_ptr(), Ordering::Relaxed);
    m.add("_preempt_tick", tick)?;
    m.add_function(wrap_pyfunction!(preempt_arm, m)?)?;
    m.add_function(wrap_pyfunction!(preempt_disarm, m)?)?;
    m.add_function(wrap_pyfunction!(preempt_reset, m)?)?;
    m.add_function(wrap_pyfunction!(preempt_state, m)?)?;
    m.add_function(wrap_pyfunction!(preempt_defer, m)?)?;
    Ok(())
}
