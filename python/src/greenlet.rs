//! The `greenlet` type: greenlet 3's object layout and semantics over the coro engine.
//!
//! # Layout
//! Instances are exactly greenlet 3's `PyGreenlet` (`greenlet.h`): `PyObject_HEAD`, the weak
//! reference list, the instance dict and one pointer to the implementation — 40 bytes on 64-bit,
//! `tp_weaklistoffset` 16, `tp_dictoffset` 24 — so C and Cython code compiled against
//! greenlet.h can subclass the type and add fields after it. pyo3's `#[pyclass]` puts its own
//! header and borrow flag in the instance, so the type is built here with raw ffi as a static
//! type (as greenlet's is), and everything lives behind the `pimpl` pointer: a [`Greenlet`].
//!
//! # Switching
//! A switch stores what it carries (arguments or an exception, [`Payload`]) and a strong
//! reference to its target in the thread's [`Transfer`] slot, saves the interpreter state of the
//! current greenlet (`pystate.c`) and calls the engine's switch. The side that resumes restores
//! its interpreter state, takes the transfer, and makes itself current. No Python code runs
//! between the store and the take, so one slot per thread suffices.
//!
//! Greenlets start lazily: the engine coroutine is only created by the first switch into a
//! greenlet, on the thread of its parent chain (an unstarted greenlet belongs to no thread yet,
//! as in greenlet). Every engine coroutine's engine parent is the thread's root coroutine; a
//! finishing greenlet applies greenlet's parent rule itself (skip dead parents, start an
//! unstarted one, pass errors on when a parent cannot be switched to) and sets its engine parent
//! to the greenlet it chose just before its entry returns.

use crate::object::{clear, new_ref_or_none, replace, set_refcnt, Fetched, Owned};
use crate::pystate::{self, PyState};
use crate::thread::{self, SendHandle, SendPtr, ThreadShared, ThreadState, Transfer};
use core::ffi::{c_char, c_int, c_void};
use core::ptr::{addr_of_mut, null_mut};
use coro::{Builder, Coroutine, State};
use pyo3::ffi;
use std::alloc::Layout;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The instance layout of greenlet 3's `PyGreenlet`.
#[repr(C)]
pub struct PyGreenlet {
    pub ob_base: ffi::PyObject,
    pub weakreflist: *mut ffi::PyObject,
    pub dict: *mut ffi::PyObject,
    pub pimpl: *mut Greenlet,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(core::mem::size_of::<PyGreenlet>() == 40);
const WEAKLIST_OFFSET: usize = core::mem::offset_of!(PyGreenlet, weakreflist);
const DICT_OFFSET: usize = core::mem::offset_of!(PyGreenlet, dict);
#[cfg(target_pointer_width = "64")]
const _: () = assert!(WEAKLIST_OFFSET == 16 && DICT_OFFSET == 24);

/// Default usable stack size of a uthread: generous, so that CPython's recursion limits (which
/// count frames, not bytes) trigger before the stack ends; only touched pages cost memory.
pub const DEFAULT_STACK_SIZE: usize = 8 * 1024 * 1024;
/// The stack size of greenlets started from now on (`uthread.stack_size()`).
pub static STACK_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_STACK_SIZE);

/// What a switch carries.
pub enum Payload {
    /// `switch(*args, **kwargs)`, or a finished greenlet's result (`args` is then the value
    /// wrapped as greenlet does: a 1-tuple, or the `GreenletExit` instance itself).
    Args { args: Owned, kwargs: Option<Owned> },
    /// An exception to raise in the greenlet switched to.
    Error(Fetched),
}

/// The implementation behind a greenlet object's `pimpl` pointer. Only touched with the GIL
/// held. The interpreter-state buffer of `pystate.c` follows it in the same allocation.
pub struct Greenlet {
    /// A thread's main greenlet (stands for the thread's own stack; never finishes).
    pub is_main: bool,
    /// Switched to at least once (always true for a main greenlet).
    pub started: bool,
    /// Finished, or made dead without running (thrown into before starting, or released after
    /// its thread exited).
    pub dead: bool,
    /// Strong reference; null for a main greenlet (and after the GC cleared it).
    pub parent: *mut ffi::PyObject,
    /// Strong reference to the callable: the `run` attribute before the start; while it runs,
    /// the callable actually invoked (so the GC sees it); null afterwards.
    pub run: *mut ffi::PyObject,
    /// Strong reference to the `run` looked up by the switch that starts the greenlet.
    start_run: *mut ffi::PyObject,
    /// The thread it runs on (set when it starts; mains from creation).
    pub thread: Option<Arc<ThreadShared>>,
    /// The engine coroutine (user greenlets, from their start).
    pub coro: Option<Coroutine>,
    pub pystate: PyState,
    /// Where its stack pointer was (about) when it last switched away: a main greenlet's
    /// `_stack_saved` is measured from it (the engine reports stack use of its own stacks only).
    saved_sp: usize,
    /// Test support (`UnswitchableGreenlet.force_switch_error`): switches into it fail as if the
    /// engine had refused them.
    force_switch_error: bool,
    /// Copying mode for its engine coroutine (`greenlet(..., copying=True)`); `None`: the
    /// engine's per-thread default (own stacks).
    copying: Option<bool>,
}

impl Greenlet {
    /// The implementation of a greenlet object.
    ///
    /// # Safety
    /// `o` is a live instance of the greenlet type (or a subclass).
    #[inline]
    pub unsafe fn of(o: *mut ffi::PyObject) -> *mut Greenlet {
        unsafe { (*o.cast::<PyGreenlet>()).pimpl }
    }

    /// Running or suspended.
    #[inline]
    pub fn active(&self) -> bool {
        self.started && !self.dead
    }

    /// Its thread has exited (it can never run again).
    #[inline]
    fn in_dead_thread(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_alive())
    }

    /// Layout of the implementation block and the offset of its interpreter-state buffer.
    fn block_layout() -> (Layout, usize) {
        static L: OnceLock<(Layout, usize)> = OnceLock::new();
        *L.get_or_init(|| {
            let (l, off) = Layout::new::<Greenlet>().extend(pystate::layout()).expect("greenlet layout");
            (l.pad_to_align(), off)
        })
    }

    /// Allocates an implementation with an initialized, empty interpreter state.
    fn alloc(is_main: bool, parent: *mut ffi::PyObject, thread: Option<Arc<ThreadShared>>) -> *mut Greenlet {
        let (layout, off) = Self::block_layout();
        // SAFETY: the layout has a non-zero size.
        let block = unsafe { std::alloc::alloc(layout) };
        if block.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: a fresh block of the right layout; the buffer is initialized before use.
        unsafe {
            let pystate = PyState(block.add(off).cast());
            pystate.init();
            let g = block.cast::<Greenlet>();
            g.write(Greenlet {
                is_main,
                started: is_main,
                dead: false,
                parent,
                run: null_mut(),
                start_run: null_mut(),
                thread,
                coro: None,
                pystate,
                saved_sp: 0,
                force_switch_error: false,
                copying: None,
            });
            g
        }
    }

    /// Frees an implementation (references, interpreter state, engine handle).
    ///
    /// # Safety
    /// GIL held; `g` came from [`Greenlet::alloc`] and is no longer reachable from its object.
    unsafe fn free(g: *mut Greenlet) {
        unsafe {
            clear(&mut (*g).parent);
            clear(&mut (*g).run);
            clear(&mut (*g).start_run);
            (*g).pystate.clear();
            if (*g).is_main {
                thread::TOTAL_MAIN_GREENLETS.fetch_sub(1, Ordering::Relaxed);
            }
            let mut me = g.read();
            let (layout, _) = Self::block_layout();
            std::alloc::dealloc(g.cast(), layout);
            // An engine handle is released on its own thread (or once that thread has exited).
            if let (Some(coro), Some(t)) = (me.coro.take(), me.thread.as_ref()) {
                if t.is_alive() && !own_thread(t) {
                    t.defer(|d| d.handles.push(SendHandle(coro)));
                } else {
                    if t.is_alive() && coro.state() == State::Suspended {
                        // Never finished (it was murdered): give its stack back rather than
                        // leaking it with the handle (`unwind_on_drop(false)`).
                        let _ = coro.abandon();
                    }
                    drop(coro);
                }
            }
            drop(me);
        }
    }
}

/// Whether `t` is the calling thread.
fn own_thread(t: &Arc<ThreadShared>) -> bool {
    let ts = thread::peek();
    // SAFETY: the calling thread's state, if any.
    !ts.is_null() && Arc::ptr_eq(unsafe { &(*ts).shared }, t)
}

// ------------------------------------------------------------------------------------------
// Module-wide objects

/// Objects created at module init and never freed.
pub struct Globals {
    pub ty: *mut ffi::PyTypeObject,
    pub greenlet_exit: *mut ffi::PyObject,
    pub error: *mut ffi::PyObject,
    str_run: *mut ffi::PyObject,
    str_switch: *mut ffi::PyObject,
    str_throw: *mut ffi::PyObject,
    empty_tuple: *mut ffi::PyObject,
}

static GLOBALS: AtomicPtr<Globals> = AtomicPtr::new(null_mut());

#[inline]
pub fn globals() -> &'static Globals {
    // SAFETY: set once by `init` before any greenlet object exists, never freed.
    unsafe { &*GLOBALS.load(Ordering::Relaxed) }
}

/// Whether `o` is a greenlet (or a subclass instance).
///
/// # Safety
/// GIL held; `o` live.
#[inline]
pub unsafe fn is_greenlet(o: *mut ffi::PyObject) -> bool {
    let ty = globals().ty;
    unsafe { ffi::Py_TYPE(o) == ty || ffi::PyType_IsSubtype(ffi::Py_TYPE(o), ty) != 0 }
}

/// Whether the interpreter is shutting down (no Python code may run for greenlets then).
pub fn is_finalizing() -> bool {
    #[cfg(Py_3_13)]
    // SAFETY: callable without the GIL.
    unsafe {
        ffi::Py_IsFinalizing() != 0
    }
    #[cfg(not(Py_3_13))]
    {
        extern "C" {
            fn _Py_IsFinalizing() -> c_int;
        }
        // SAFETY: callable without the GIL.
        unsafe { _Py_IsFinalizing() != 0 }
    }
}

/// Aborts on a Rust panic: a slot called by the interpreter must never unwind into it.
fn no_unwind<R>(f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            eprintln!("uthread: internal error (Rust panic) in the greenlet type; aborting");
            std::process::abort()
        }
    }
}

/// Sets an exception of class `exc` with a message.
///
/// # Safety
/// GIL held.
unsafe fn raise(exc: *mut ffi::PyObject, msg: &str) {
    let msg = std::ffi::CString::new(msg.replace('\0', "?")).expect("no NUL");
    unsafe { ffi::PyErr_SetString(exc, msg.as_ptr()) };
}

unsafe fn repr_string(o: *mut ffi::PyObject) -> String {
    unsafe {
        let r = ffi::PyObject_Repr(o);
        if r.is_null() {
            ffi::PyErr_Clear();
            return "<?>".to_owned();
        }
        let r = Owned::from_new(r).expect("non-null");
        let mut len = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(r.as_ptr(), &mut len);
        if p.is_null() {
            ffi::PyErr_Clear();
            return "<?>".to_owned();
        }
        String::from_utf8_lossy(core::slice::from_raw_parts(p.cast::<u8>(), len as usize)).into_owned()
    }
}

// ------------------------------------------------------------------------------------------
// Creation

/// Creates the main greenlet of the calling thread (a new reference).
///
/// # Safety
/// GIL held; called once per thread by [`ThreadState`] creation.
pub unsafe fn new_main(shared: &Arc<ThreadShared>) -> Result<*mut ffi::PyObject, ()> {
    let o = unsafe { ffi::PyType_GenericAlloc(globals().ty, 0) };
    if o.is_null() {
        return Err(());
    }
    let g = Greenlet::alloc(true, null_mut(), Some(shared.clone()));
    unsafe { (*o.cast::<PyGreenlet>()).pimpl = g };
    thread::TOTAL_MAIN_GREENLETS.fetch_add(1, Ordering::Relaxed);
    Ok(o)
}

unsafe extern "C" fn green_new(
    ty: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    no_unwind(|| unsafe {
        // Looking up the current greenlet first releases greenlets other threads dropped.
        let Ok(ts) = thread::get_maintained() else { return null_mut() };
        let object_new = (*addr_of_mut!(ffi::PyBaseObject_Type)).tp_new.expect("object.__new__");
        let o = object_new(ty, globals().empty_tuple, null_mut());
        if o.is_null() {
            return null_mut();
        }
        let parent = (*ts).current;
        ffi::Py_INCREF(parent);
        (*o.cast::<PyGreenlet>()).pimpl = Greenlet::alloc(false, parent, None);
        o
    })
}

unsafe extern "C" fn green_init(o: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> c_int {
    no_unwind(|| unsafe {
        let mut run: *mut ffi::PyObject = null_mut();
        let mut parent: *mut ffi::PyObject = null_mut();
        let mut copying: *mut ffi::PyObject = null_mut();
        #[cfg(Py_3_13)]
        let mut kwlist: [*const c_char; 4] =
            [c"run".as_ptr(), c"parent".as_ptr(), c"copying".as_ptr(), core::ptr::null()];
        #[cfg(not(Py_3_13))]
        let mut kwlist: [*mut c_char; 4] =
            [c"run".as_ptr().cast_mut(), c"parent".as_ptr().cast_mut(), c"copying".as_ptr().cast_mut(), null_mut()];
        // `copying` is keyword-only: greenlet's positional signature (run, parent) is unchanged.
        if ffi::PyArg_ParseTupleAndKeywords(
            args,
            kwargs,
            c"|OO$O:green".as_ptr(),
            kwlist.as_mut_ptr(),
            &mut run as *mut *mut ffi::PyObject,
            &mut parent as *mut *mut ffi::PyObject,
            &mut copying as *mut *mut ffi::PyObject,
        ) == 0
        {
            return -1;
        }
        if !copying.is_null() && copying != ffi::Py_None() {
            let g = Greenlet::of(o);
            if (*g).started {
                raise(ffi::PyExc_ValueError, "copying cannot be changed after the greenlet started");
                return -1;
            }
            match ffi::PyObject_IsTrue(copying) {
                -1 => return -1,
                on => (*g).copying = Some(on == 1),
            }
        }
        if !run.is_null() && green_setrun(o, run, null_mut()) != 0 {
            return -1;
        }
        if !parent.is_null() && parent != ffi::Py_None() {
            return green_setparent(o, parent, null_mut());
        }
        0
    })
}

// ------------------------------------------------------------------------------------------
// Garbage collection and destruction

unsafe extern "C" fn green_traverse(o: *mut ffi::PyObject, visit: ffi::visitproc, arg: *mut c_void) -> c_int {
    unsafe {
        let dict = (*o.cast::<PyGreenlet>()).dict;
        if !dict.is_null() {
            let r = visit(dict, arg);
            if r != 0 {
                return r;
            }
        }
        let g = Greenlet::of(o);
        if g.is_null() {
            return 0;
        }
        for p in [(*g).parent, (*g).run, (*g).start_run] {
            if !p.is_null() {
                let r = visit(p, arg);
                if r != 0 {
                    return r;
                }
            }
        }
        (*g).pystate.traverse(visit, arg)
    }
}

/// Only greenlets that cannot run any more are collectable (as in greenlet): a suspended one
/// owns frames the collector cannot see, and killing it from inside a collection would run
/// Python code in the middle of it. A suspended greenlet is killed when its last reference goes.
unsafe extern "C" fn green_is_gc(o: *mut ffi::PyObject) -> c_int {
    unsafe {
        let g = Greenlet::of(o);
        if g.is_null() {
            return 1;
        }
        ((*g).is_main || !(*g).active() || (*g).in_dead_thread()) as c_int
    }
}

unsafe extern "C" fn green_clear(o: *mut ffi::PyObject) -> c_int {
    no_unwind(|| unsafe {
        clear(&mut (*o.cast::<PyGreenlet>()).dict);
        let g = Greenlet::of(o);
        if !g.is_null() {
            clear(&mut (*g).parent);
            clear(&mut (*g).run);
            clear(&mut (*g).start_run);
            if !(*g).active() || (*g).in_dead_thread() {
                (*g).pystate.clear();
            }
        }
        0
    })
}

/// Makes a greenlet that can never run again dead, dropping its interpreter state without
/// running any of its code (greenlet's `murder_in_place`).
///
/// # Safety
/// GIL held; `o` is a live greenlet that is not running.
pub unsafe fn murder_in_place(o: *mut ffi::PyObject) {
    unsafe {
        let g = Greenlet::of(o);
        if !g.is_null() && (*g).active() {
            (*g).dead = true;
            (*g).pystate.clear();
            abandon_stack(g);
        }
    }
}

/// Releases the engine stack of a greenlet that will never run again (`Coroutine::abandon`),
/// when it belongs to the calling thread: nothing on it is unwound, so what its frames hold is
/// leaked, as greenlet leaks it, but the stack itself is reused. The stacks of an exited thread's
/// coroutines are released by the engine when their handles go.
///
/// # Safety
/// GIL held; `g` is live and its interpreter state has been cleared: its frames, which may link
/// through that stack, are never looked at again (`gr_frame` of a dead greenlet is None).
unsafe fn abandon_stack(g: *mut Greenlet) {
    unsafe {
        if let (Some(coro), Some(t)) = ((*g).coro.as_ref(), (*g).thread.as_ref()) {
            if t.is_alive() && own_thread(t) && matches!(coro.state(), State::Suspended | State::New) {
                // Cannot fail for a SUSPENDED or NEW coroutine of this thread.
                let _ = coro.abandon();
            }
        }
    }
}

unsafe extern "C" fn green_dealloc(o: *mut ffi::PyObject) {
    no_unwind(|| unsafe {
        ffi::PyObject_GC_UnTrack(o.cast());
        let g = Greenlet::of(o);
        if !g.is_null() && (*g).active() && !(*g).is_main && !kill_on_dealloc(o) {
            return; // resurrected
        }
        let pg = o.cast::<PyGreenlet>();
        if !(*pg).weakreflist.is_null() {
            ffi::PyObject_ClearWeakRefs(o);
        }
        clear(&mut (*pg).dict);
        let g = core::mem::replace(&mut (*pg).pimpl, null_mut());
        if !g.is_null() {
            Greenlet::free(g);
        }
        let ty = ffi::Py_TYPE(o);
        let free = (*ty).tp_free.expect("tp_free");
        free(o.cast());
    })
}

/// A suspended greenlet lost its last reference: throws `GreenletExit` into it, with the current
/// greenlet as its parent for the occasion so that control comes back here (greenlet's
/// semantics). Returns false if the greenlet was resurrected (then the object stays).
unsafe fn kill_on_dealloc(o: *mut ffi::PyObject) -> bool {
    unsafe {
        let g = Greenlet::of(o);
        if is_finalizing() {
            murder_in_place(o);
            return true;
        }
        // Temporarily resurrect the object.
        set_refcnt(o, 1);
        let saved = Fetched::take_if_set();
        let thread = (*g).thread.clone();
        match thread {
            Some(t) if t.is_alive() && own_thread(&t) => {
                if let Ok(ts) = thread::get() {
                    let old_parent = core::mem::replace(&mut (*g).parent, (*ts).current);
                    ffi::Py_INCREF((*ts).current);
                    let exc = Owned::from_new(ffi::PyObject_CallFunction(
                        globals().greenlet_exit,
                        c"s".as_ptr(),
                        c"Killing the greenlet because all references have vanished.".as_ptr(),
                    ));
                    let r = match exc {
                        Some(exc) => throw_instance(o, exc),
                        None => null_mut(),
                    };
                    replace(&mut (*Greenlet::of(o)).parent, old_parent);
                    if r.is_null() {
                        ffi::PyErr_WriteUnraisable(o);
                    } else {
                        ffi::Py_DECREF(r);
                    }
                }
            }
            Some(t) if t.is_alive() => {
                // Another thread's greenlet: that thread finishes it the next time it enters the
                // greenlet API.
                ffi::Py_INCREF(o);
                t.defer(|d| d.greenlets.push(SendPtr(o)));
            }
            _ => murder_in_place(o),
        }
        if ffi::Py_REFCNT(o) == 1 && (*Greenlet::of(o)).active() {
            // Not resurrected, yet not dead either: it refused to die. Complain and leak it.
            let f = ffi::PySys_GetObject(c"stderr".as_ptr());
            ffi::Py_INCREF(o);
            if !f.is_null() {
                ffi::Py_INCREF(f);
                ffi::PyFile_WriteString(c"GreenletExit did not kill ".as_ptr(), f);
                ffi::PyFile_WriteObject(o, f, 0);
                ffi::PyFile_WriteString(c"\n".as_ptr(), f);
                ffi::Py_DECREF(f);
            }
        }
        ffi::PyErr_Clear();
        if let Some(e) = saved {
            e.restore();
        }
        let refcnt = ffi::Py_REFCNT(o) - 1;
        set_refcnt(o, refcnt);
        if refcnt != 0 {
            // Resurrected. A heap subtype's dealloc drops a reference to the type after we
            // return (subtype_dealloc), which the surviving object still needs.
            let ty = ffi::Py_TYPE(o);
            if ffi::PyType_HasFeature(ty, ffi::Py_TPFLAGS_HEAPTYPE) != 0 {
                ffi::Py_INCREF(ty.cast());
            }
            ffi::PyObject_GC_Track(o.cast());
            return false;
        }
        true
    }
}

// ------------------------------------------------------------------------------------------
// Switching

/// The thread an (unstarted) greenlet would run on: its own, or its parent chain's.
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
unsafe fn single_result(r: Option<Owned>) -> *mut ffi::PyObject {
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
#[inline]
unsafe fn trace(ts: *mut ThreadState, origin: &Owned, target: *mut ffi::PyObject, payload: Payload) -> Payload {
    unsafe {
        if (*ts).tracefunc.is_null() {
            return payload;
        }
        trace_call(ts, origin, target, payload)
    }
}

#[cold]
#[inline(never)]
unsafe fn trace_call(ts: *mut ThreadState, origin: &Owned, target: *mut ffi::PyObject, payload: Payload) -> Payload {
    unsafe {
        let tracefunc = Owned::from_borrowed((*ts).tracefunc);
        let event = if matches!(payload, Payload::Args { .. }) { globals().str_switch } else { globals().str_throw };
        let tstate = ffi::PyThreadState_Get();
        #[cfg(Py_3_11)]
        ffi::PyThreadState_EnterTracing(tstate);
        let r = ffi::PyObject_CallFunction(tracefunc.as_ptr(), c"O(OO)".as_ptr(), event, origin.as_ptr(), target);
        #[cfg(Py_3_11)]
        ffi::PyThreadState_LeaveTracing(tstate);
        #[cfg(not(Py_3_11))]
        let _ = tstate;
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
    no_unwind(|| unsafe { run_uthread(me) });
    0
}

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

// ------------------------------------------------------------------------------------------
// Methods

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
unsafe fn is_greenlet_exit_instance(o: *mut ffi::PyObject) -> bool {
    unsafe {
        ffi::PyExceptionInstance_Check(o) != 0
            && ffi::PyType_IsSubtype(ffi::Py_TYPE(o), globals().greenlet_exit.cast()) != 0
    }
}

/// `switch`, called through vectorcall (`METH_FASTCALL | METH_KEYWORDS`): no argument tuple is
/// built for the common single argument, which travels as itself.
unsafe extern "C" fn green_switch(
    o: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    no_unwind(|| unsafe {
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
/// `PyGreenlet_Switch` (capi.rs; the `switch` method itself is [`green_switch`]).
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

unsafe extern "C" fn green_throw(o: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    no_unwind(|| unsafe {
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
unsafe fn throw_instance(o: *mut ffi::PyObject, exc: Owned) -> *mut ffi::PyObject {
    unsafe {
        let t = ffi::Py_TYPE(exc.as_ptr()).cast::<ffi::PyObject>();
        ffi::Py_INCREF(t);
        throw_fetched(o, Fetched { ptype: t, pvalue: exc.into_ptr(), ptraceback: null_mut() })
    }
}

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

unsafe extern "C" fn green_getstate(o: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    no_unwind(|| unsafe {
        let name = std::ffi::CStr::from_ptr((*ffi::Py_TYPE(o)).tp_name).to_string_lossy();
        raise(ffi::PyExc_TypeError, &format!("cannot serialize '{name}' object"));
        null_mut()
    })
}

unsafe extern "C" fn green_bool(o: *mut ffi::PyObject) -> c_int {
    unsafe { (*Greenlet::of(o)).active() as c_int }
}

/// Whether `o` is the running greenlet of its (live) thread.
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

unsafe extern "C" fn green_repr(o: *mut ffi::PyObject) -> *mut ffi::PyObject {
    no_unwind(|| unsafe {
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

unsafe extern "C" fn green_setrun(o: *mut ffi::PyObject, val: *mut ffi::PyObject, _: *mut c_void) -> c_int {
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

unsafe extern "C" fn green_getframe(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    no_unwind(|| unsafe {
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

unsafe extern "C" fn green_getcontext(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    no_unwind(|| unsafe {
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

unsafe extern "C" fn green_setcontext(o: *mut ffi::PyObject, val: *mut ffi::PyObject, _: *mut c_void) -> c_int {
    no_unwind(|| unsafe {
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

unsafe extern "C" fn green_getdead(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe { ffi::PyBool_FromLong(is_dead(o) as _) }
}

/// greenlet reports how much of a suspended greenlet's C stack it copied to the heap; a uthread
/// keeps its own stack, so this reports how much of its stack a suspended greenlet is using
/// (`Coroutine::stack_in_use`; for a main greenlet, the thread's stack from its top down to where
/// the main greenlet switched away). 0 while running, before the start, after the end, and for
/// greenlets of other threads (the engine answers for the calling thread's coroutines only).
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
        set_refcnt(ty.cast(), 1);
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

unsafe extern "C" fn unswitchable_get_force(o: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    unsafe { ffi::PyBool_FromLong((*Greenlet::of(o)).force_switch_error as _) }
}

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
        set_refcnt(ty.cast(), 1);
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

// ------------------------------------------------------------------------------------------
// Module-level operations

/// `getcurrent()`: a new reference to the running greenlet.
///
/// # Safety
/// GIL held.
pub unsafe fn getcurrent() -> *mut ffi::PyObject {
    unsafe {
        if is_finalizing() {
            raise(ffi::PyExc_RuntimeError, "greenlet is being finalized");
            return null_mut();
        }
        let Ok(ts) = thread::get_maintained() else { return null_mut() };
        let c = (*ts).current;
        ffi::Py_INCREF(c);
        c
    }
}

/// `settrace(callback)`: returns the previous callback (new reference, None if none).
///
/// # Safety
/// GIL held; `f` borrowed.
pub unsafe fn settrace(f: *mut ffi::PyObject) -> *mut ffi::PyObject {
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

/// `gettrace()`: the current callback (new reference) or None.
///
/// # Safety
/// GIL held.
pub unsafe fn gettrace() -> *mut ffi::PyObject {
    unsafe {
        let Ok(ts) = thread::get_maintained() else { return null_mut() };
        new_ref_or_none((*ts).tracefunc)
    }
}
