//! Switching: checks, starting a greenlet on its engine coroutine, the transfer of what a
//! switch carries, the trace function, and a uthread's entry and finish (greenlet's parent rule).

use super::layout::{globals, raise, repr_string, Greenlet, Payload, STACK_SIZE};
use super::lifecycle::abandon_stack;
use super::pytype::is_greenlet_exit_instance;
use crate::object::{clear, new_ref_or_none, replace, Fetched, Owned};
use crate::panic_boundary::abort_on_panic;
use crate::pystate;
use crate::pyversion;
use crate::thread::{self, ThreadShared, ThreadState, Transfer};
use core::ptr::null_mut;
use coro::{Builder, Coroutine, State};
use pyo3::ffi;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The thread an (unstarted) greenlet would run on: its own, or its parent chain's.
///
/// # Safety
/// GIL held; `o` a live greenlet.
unsafe fn lineage_thread(mut o: *mut ffi::PyObject) -> Option<Arc<ThreadShared>> {
    unsafe {
        loop {
            let g = Greenlet::of(o);
            if (*g).started {
                return (*g).thread.clone();
            }
            o = (*g).parent;
            if o.is_null() {
                return None;
            }
        }
    }
}

/// greenlet's `check_switch_allowed`: `greenlet.error` unless `target` belongs to this thread.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state; `target` a live greenlet.
#[inline]
unsafe fn check_switch_allowed(ts: *mut ThreadState, target: *mut ffi::PyObject) -> Result<(), ()> {
    unsafe {
        // Fast path: a started greenlet of this (running, so live) thread.
        let g = Greenlet::of(target);
        if (*g).started && (*g).thread.as_ref().is_some_and(|t| Arc::ptr_eq(t, &(*ts).shared)) {
            return Ok(());
        }
        check_switch_allowed_slow(ts, target)
    }
}

/// The slow path of [`check_switch_allowed`].
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state; `target` a live greenlet.
#[cold]
#[inline(never)]
unsafe fn check_switch_allowed_slow(ts: *mut ThreadState, target: *mut ffi::PyObject) -> Result<(), ()> {
    unsafe {
        let err = globals().error;
        match lineage_thread(target) {
            None => raise(err, "cannot switch to a garbage collected greenlet"),
            Some(t) if !t.is_alive() => {
                raise(err, "cannot switch to a different thread (which happens to have exited)")
            }
            Some(t) if !Arc::ptr_eq(&t, &(*ts).shared) => {
                let current = repr_string((*ts).main);
                let expected = match lineage_main(target) {
                    Some(m) => repr_string(m),
                    None => "<main greenlet of another thread>".to_owned(),
                };
                raise(
                    err,
                    &format!("Cannot switch to a different thread\n\tCurrent:  {current}\n\tExpected: {expected}"),
                )
            }
            Some(_) => return Ok(()),
        }
        Err(())
    }
}

/// The main greenlet at the root of `o`'s parent chain, if the chain reaches one.
///
/// # Safety
/// GIL held; `o` a live greenlet.
unsafe fn lineage_main(mut o: *mut ffi::PyObject) -> Option<*mut ffi::PyObject> {
    unsafe {
        while !o.is_null() {
            if (*Greenlet::of(o)).is_main {
                return Some(o);
            }
            o = (*Greenlet::of(o)).parent;
        }
        None
    }
}

enum Start {
    Started,
    /// Started by someone else while `run` was looked up: switch to it normally.
    Retry,
}

/// First switch into an unstarted greenlet: looks up `run` (arbitrary code may run, and may even
/// start the greenlet meanwhile), then creates its engine coroutine on this thread.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state; `t` a live, unstarted greenlet of
/// it.
unsafe fn prepare_start(ts: *mut ThreadState, t: *mut ffi::PyObject) -> Result<Start, ()> {
    unsafe {
        let run = Owned::from_new(ffi::PyObject_GetAttr(t, globals().str_run)).ok_or(())?;
        check_switch_allowed(ts, t)?;
        let g = Greenlet::of(t);
        if (*g).started {
            return Ok(Start::Retry);
        }
        let target = t as usize;
        let mut builder = Builder::new().stack_size(STACK_SIZE.load(Ordering::Relaxed)).unwind_on_drop(false);
        if let Some(copying) = (*g).copying {
            builder = builder.copying(copying);
        }
        let spawned = builder.spawn(move |_| uthread_main(target as *mut ffi::PyObject));
        let coro = match spawned {
            Ok(c) => c,
            Err(e) => {
                raise(ffi::PyExc_MemoryError, &format!("cannot create a uthread: {e}"));
                return Err(());
            }
        };
        (*g).pystate.set_copying(coro.is_copying());
        if let Err(e) = coro.set_parent(&(*ts).root) {
            raise(ffi::PyExc_SystemError, &format!("uthread: set_parent failed: {e}"));
            return Err(());
        }
        (*g).coro = Some(coro);
        (*g).started = true;
        (*g).thread = Some((*ts).shared.clone());
        clear(&mut (*g).start_run);
        (*g).start_run = run.into_ptr();
        Ok(Start::Started)
    }
}

/// Finds the greenlet a switch to `target` really goes to: `target` itself if it is running or
/// suspended, started now if it never ran, else (dead) the first such ancestor. Returns a strong
/// reference. On failure a Python exception is set.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state; `target` a live greenlet.
unsafe fn resolve_target(ts: *mut ThreadState, target: *mut ffi::PyObject) -> Result<Owned, ()> {
    unsafe {
        let mut t = Owned::from_borrowed(target);
        loop {
            let g = Greenlet::of(t.as_ptr());
            if (*g).active() {
                return Ok(t);
            }
            if !(*g).started {
                match prepare_start(ts, t.as_ptr())? {
                    Start::Started => return Ok(t),
                    Start::Retry => continue,
                }
            }
            let p = (*g).parent;
            if p.is_null() {
                raise(globals().error, "cannot switch to a garbage collected greenlet");
                return Err(());
            }
            t = Owned::from_borrowed(p);
        }
    }
}

/// Switches to `target` carrying `payload`; returns what the switch back brings (a new
/// reference), or null with an exception set. greenlet's `g_switch`.
///
/// # Safety
/// GIL held; `target` is a live greenlet.
pub unsafe fn g_switch(target: *mut ffi::PyObject, payload: Payload) -> *mut ffi::PyObject {
    unsafe {
        let Ok(ts) = thread::get_maintained() else { return null_mut() };
        if check_switch_allowed(ts, target).is_err() {
            drop(payload);
            return null_mut();
        }
        let t = match resolve_target(ts, target) {
            Ok(t) => t,
            Err(()) => {
                let e = Fetched::take();
                drop(payload);
                e.restore();
                return null_mut();
            }
        };
        transfer(ts, t, payload)
    }
}

/// About where the stack pointer is: the address of a local of this (never inlined) function.
#[inline(never)]
fn approximate_sp() -> usize {
    let marker = 0u8;
    core::hint::black_box(&marker) as *const u8 as usize
}

/// Suspends the current greenlet and resumes (or starts) `t`; the value or exception the switch
/// back brings is returned/raised.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state, on the running greenlet's own
/// stack; `t` a greenlet of this thread that is not running, as [`resolve_target`] returns.
unsafe fn transfer(ts: *mut ThreadState, t: Owned, payload: Payload) -> *mut ffi::PyObject {
    unsafe {
        let cur = (*ts).current;
        if t.as_ptr() == cur {
            // Switching to yourself: the arguments come straight back (traced all the same).
            let origin = t;
            return deliver(ts, origin, cur, payload);
        }
        let tg = Greenlet::of(t.as_ptr());
        // Borrowed, not cloned: the handle is only read before the switch departs (the target is
        // kept alive until it lands by the reference in the transfer).
        let handle: *const Coroutine = if (*tg).is_main { &(*ts).root } else { (*tg).coro.as_ref().expect("started") };
        let me = Greenlet::of(cur);
        let tstate = ffi::PyThreadState_Get();
        (*me).pystate.save(tstate);
        if (*me).is_main {
            (*me).saved_sp = approximate_sp();
        }
        let first = (*handle).state() == State::New;
        let forced = (*tg).force_switch_error;
        (*ts).transfer = Some(Transfer { payload, target: t });
        let switched = if forced { Err(None) } else { (*handle).switch(0).map_err(Some) };
        // Back in `cur`: its object is alive, since whoever resumed us holds a reference (a
        // greenlet being killed on deallocation is temporarily resurrected). `handle` and `tg`
        // may be stale now, unless the switch failed (then nothing ran).
        (*me).pystate.restore(ffi::PyThreadState_Get());
        if let Err(e) = switched {
            // Nothing ran: take back what we stored (the target's reference among it).
            let undo = (*ts).transfer.take();
            // As greenlet: a greenlet that could not be started is dead; a suspended one stays
            // as it was and may be switched to again.
            if first {
                (*tg).dead = true;
                clear(&mut (*tg).start_run);
                clear(&mut (*tg).run);
                abandon_stack(tg);
            }
            drop(undo);
            let what = if first {
                "Failed to switch stacks into a greenlet for the first time."
            } else {
                "Failed to switch stacks into a running greenlet."
            };
            let msg = match e {
                None => what.to_owned(),
                Some(e) => format!("{what} (the engine refused the switch: {e})"),
            };
            raise(ffi::PyExc_SystemError, &msg);
            return null_mut();
        }
        match (*ts).land() {
            Some((payload, origin)) => deliver(ts, origin, cur, payload),
            None => {
                raise(ffi::PyExc_SystemError, "uthread: resumed without a pending switch");
                null_mut()
            }
        }
    }
}

/// The landing side of a switch into a suspended (or the current) greenlet: traces, releases
/// the origin, and returns the packed arguments or raises the exception.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state, right after the switch landed on
/// `me` (the running greenlet); `origin` the greenlet switched from.
unsafe fn deliver(ts: *mut ThreadState, origin: Owned, me: *mut ffi::PyObject, payload: Payload) -> *mut ffi::PyObject {
    unsafe {
        let payload = trace(ts, &origin, me, payload);
        drop(origin);
        match payload {
            Payload::Args { args, kwargs } => single_result(pack_args(args, kwargs)),
            Payload::Error(e) => {
                e.restore();
                null_mut()
            }
        }
    }
}

/// greenlet's packing of switch arguments: `(args)` alone, `{kwargs}` alone, or both as a
/// pair; `()` when nothing was passed.
///
/// # Safety
/// GIL held; `args` a tuple, `kwargs` a dict.
unsafe fn pack_args(args: Owned, kwargs: Option<Owned>) -> Option<Owned> {
    unsafe {
        let Some(kwargs) = kwargs else { return Some(args) };
        if ffi::PyDict_Size(kwargs.as_ptr()) == 0 {
            return Some(args);
        }
        let n = ffi::PySequence_Length(args.as_ptr());
        if n == 0 {
            return Some(kwargs);
        }
        if n < 0 {
            return None;
        }
        Owned::from_new(ffi::PyTuple_Pack(2, args.as_ptr(), kwargs.as_ptr()))
    }
}

/// A 1-tuple becomes its element; anything else is returned as is.
///
/// # Safety
/// GIL held.
pub(super) unsafe fn single_result(r: Option<Owned>) -> *mut ffi::PyObject {
    unsafe {
        let Some(r) = r else { return null_mut() };
        let p = r.as_ptr();
        if ffi::PyTuple_Check(p) != 0 && ffi::PyTuple_GET_SIZE(p) == 1 {
            let item = ffi::PyTuple_GET_ITEM(p, 0);
            ffi::Py_INCREF(item);
            return item;
        }
        r.into_ptr()
    }
}

/// Calls the `settrace` function, if any, with `('switch' | 'throw', (origin, target))`. If it
/// raises, tracing is turned off and its exception replaces what the switch carried.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state; `target` a live greenlet.
#[inline]
unsafe fn trace(ts: *mut ThreadState, origin: &Owned, target: *mut ffi::PyObject, payload: Payload) -> Payload {
    unsafe {
        if (*ts).tracefunc.is_null() {
            return payload;
        }
        trace_call(ts, origin, target, payload)
    }
}

/// The call of [`trace`] once a trace function is set.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state; `target` a live greenlet; a trace
/// function is set.
#[cold]
#[inline(never)]
unsafe fn trace_call(ts: *mut ThreadState, origin: &Owned, target: *mut ffi::PyObject, payload: Payload) -> Payload {
    unsafe {
        let tracefunc = Owned::from_borrowed((*ts).tracefunc);
        let event = if matches!(payload, Payload::Args { .. }) { globals().str_switch } else { globals().str_throw };
        let tstate = ffi::PyThreadState_Get();
        pyversion::enter_trace_callback(tstate);
        let r = ffi::PyObject_CallFunction(tracefunc.as_ptr(), c"O(OO)".as_ptr(), event, origin.as_ptr(), target);
        pyversion::leave_trace_callback(tstate);
        if r.is_null() {
            let e = Fetched::take();
            clear(&mut (*ts).tracefunc);
            drop(payload);
            return Payload::Error(e);
        }
        ffi::Py_DECREF(r);
        payload
    }
}

/// The entry of every uthread, on its own stack: runs `run(*args, **kwargs)` (or dies at once
/// with the exception it was started with), then hands its result or exception to its parent
/// chain and returns, which switches there.
fn uthread_main(me: *mut ffi::PyObject) -> usize {
    abort_on_panic("the greenlet type", || unsafe { run_uthread(me) });
    0
}

/// The body of [`uthread_main`]: runs `me` from its `begin` to its `end`.
///
/// # Safety
/// On `me`'s own new engine coroutine, first thing, with the GIL held and the switch that started
/// it pending in the thread's transfer slot; `me` a live greenlet (its start holds a reference).
unsafe fn run_uthread(me: *mut ffi::PyObject) {
    unsafe {
        let ts = thread::peek();
        let g = Greenlet::of(me);
        let tstate = ffi::PyThreadState_Get();
        (*g).pystate.begin(tstate);
        let Some((payload, origin)) = (*ts).land() else {
            ffi::Py_FatalError(c"uthread: a uthread started without a pending switch".as_ptr());
        };
        let payload = trace(ts, &origin, me, payload);
        drop(origin);
        // The callable looked up at the start is what runs, and what the GC sees meanwhile.
        replace(&mut (*g).run, core::mem::replace(&mut (*g).start_run, null_mut()));
        let result = match payload {
            Payload::Args { args, kwargs } => {
                let run = (*g).run;
                let r = if run.is_null() {
                    raise(ffi::PyExc_AttributeError, "run");
                    null_mut()
                } else if ffi::PyTuple_Check(args.as_ptr()) != 0 {
                    // Calls of `run` go through unwind_barrier: an uncaught C++ exception must
                    // end in std::terminate, not in the engine's catch_unwind.
                    crate::unwind_barrier::call(run, args.as_ptr(), kwargs.as_ref().map_or(null_mut(), Owned::as_ptr))
                } else if is_greenlet_exit_instance(args.as_ptr()) {
                    // A child's GreenletExit handed up as its result (the instance itself, not a
                    // 1-tuple; `switch` never sends one untupled). greenlet 3.5.6 passes it as
                    // the argument tuple, which CPython reads as empty: `run` starts with no
                    // arguments. Found by tests/fuzz (regression
                    // `greenlet_exit_result_starts_new_parent`).
                    crate::unwind_barrier::call_no_args(run)
                } else {
                    crate::unwind_barrier::call_one_arg(run, args.as_ptr())
                };
                let r = Owned::from_new(r).ok_or_else(|| Fetched::take());
                drop(args);
                drop(kwargs);
                r
            }
            Payload::Error(e) => Err(e),
        };
        clear(&mut (*g).run);
        // greenlet's g_handle_exit: a result goes up as a 1-tuple; GreenletExit is not an
        // error but a value (the exception instance itself).
        let out = match result {
            Ok(v) => match Owned::from_new(ffi::PyTuple_Pack(1, v.as_ptr())) {
                Some(t) => Payload::Args { args: t, kwargs: None },
                None => Payload::Error(Fetched::take()),
            },
            Err(e) if e.matches(globals().greenlet_exit) => {
                let value = Owned::from_new(new_ref_or_none(e.pvalue)).expect("non-null");
                drop(e);
                Payload::Args { args: value, kwargs: None }
            }
            Err(e) => Payload::Error(e),
        };
        (*g).dead = true;
        // Where control goes now. Finding it may run Python code (a parent's `run` is looked
        // up to start it), which must happen while this uthread's state is still installed.
        let (target, out) = finish_target(ts, me, out);
        // A finished greenlet keeps its context as gr_context (greenlet saves it on the way out).
        let context = pystate::running_context(tstate);
        ffi::Py_XINCREF(context);
        (*g).pystate.end(tstate);
        (*g).pystate.set_context(context);
        ffi::Py_XDECREF(context); // not the last reference: runs no code
                                  // No Python code runs from here until the target lands.
        let tg = Greenlet::of(target.as_ptr());
        let handle = if (*tg).is_main { (*ts).root.clone() } else { (*tg).coro.clone().expect("started") };
        if let Err(e) = (*g).coro.as_ref().expect("started").set_parent(&handle) {
            let msg = std::ffi::CString::new(format!("uthread: cannot hand a finished uthread to its parent: {e}"))
                .expect("no NUL");
            ffi::Py_FatalError(msg.as_ptr());
        }
        drop(handle);
        (*ts).transfer = Some(Transfer { payload: out, target });
    }
}

/// greenlet's parent rule for a finished greenlet: the first parent that can be switched to
/// (skipping dead ones, starting an unstarted one); a parent that cannot be switched to passes
/// its error on to the next one.
///
/// # Safety
/// GIL held on `ts`'s thread; `ts` is that thread's live state; `me` the running greenlet,
/// finishing.
unsafe fn finish_target(ts: *mut ThreadState, me: *mut ffi::PyObject, mut payload: Payload) -> (Owned, Payload) {
    unsafe {
        let mut parent = (*Greenlet::of(me)).parent;
        loop {
            if parent.is_null() {
                ffi::Py_FatalError(c"uthread: ran out of parent greenlets while finishing a greenlet".as_ptr());
            }
            // Held while Python code may run (and reparent things) below.
            let p = Owned::from_borrowed(parent);
            match check_switch_allowed(ts, p.as_ptr()).and_then(|()| resolve_target(ts, p.as_ptr())) {
                Ok(t) => return (t, payload),
                Err(()) => {
                    let e = Fetched::take();
                    drop(payload);
                    payload = Payload::Error(e);
                }
            }
            parent = (*Greenlet::of(p.as_ptr())).parent;
        }
    }
}
