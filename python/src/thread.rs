//! Per-OS-thread greenlet state: the main and current greenlets, the trace function, what the
//! switch in flight carries, and the cleanup of a thread's greenlets after it exits.
//!
//! # Thread exit
//! When an OS thread exits, its Python thread state is already gone and the GIL is not held, so
//! no Python code can run for its greenlets. A thread-local guard marks the thread dead and
//! queues its [`ThreadState`] for destruction by `Py_AddPendingCall` on a thread that holds the
//! GIL (greenlet's "pending cleanup"; [`pending_cleanup_count`] reports the queue length).
//! Greenlets of the dead thread that are still referenced report `dead`, refuse switches with
//! `greenlet.error`, and release their interpreter state without running when freed.
//!
//! The guard's destructor must run after the coro engine's own thread teardown, because only
//! then may another thread release the dead thread's coroutine handles (they are orphans). Thread
//! locals are destroyed in the reverse order of their registration, so [`ThreadState::create`]
//! registers the guard before it first touches the engine on that thread.

use crate::greenlet::{self, Payload};
use crate::object::{clear, Owned};
use crate::panic_boundary::abort_on_panic;
use coro::Coroutine;
use pyo3::ffi;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The part of a thread's state that other threads may look at.
pub struct ThreadShared {
    /// False once the OS thread has exited (set after the engine's teardown on that thread).
    pub alive: AtomicBool,
    /// The greenlet running on that thread (a borrowed pointer, for cross-thread checks only).
    pub current: AtomicPtr<ffi::PyObject>,
    /// Work for that thread, queued by other threads: greenlets to finish (strong references)
    /// and coroutine handles to release.
    pub deferred: Mutex<Deferred>,
    pub has_deferred: AtomicBool,
}

#[derive(Default)]
pub struct Deferred {
    pub greenlets: Vec<SendPtr>,
    pub handles: Vec<SendHandle>,
}

/// A raw object pointer moved between threads under the GIL.
pub struct SendPtr(pub *mut ffi::PyObject);
// SAFETY: only dereferenced with the GIL held.
unsafe impl Send for SendPtr {}

/// A coroutine handle to be released on its own thread (or after that thread has exited).
pub struct SendHandle(#[allow(dead_code)] pub Coroutine);
// SAFETY: the handle is only dropped on its owner thread, or once that thread has exited and
// the engine's teardown there has finished (then the coroutine is an orphan that any thread may
// release; see the module docs).
unsafe impl Send for SendHandle {}

impl ThreadShared {
    /// Queues work for this thread; it runs the next time the thread enters the greenlet API.
    pub fn defer(&self, f: impl FnOnce(&mut Deferred)) {
        let mut d = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut d);
        self.has_deferred.store(true, Ordering::Release);
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

/// This thread's greenlet state. Only its own thread touches it, with the GIL held, until the
/// thread exits; then the cleanup queue owns it.
pub struct ThreadState {
    pub shared: Arc<ThreadShared>,
    /// Strong reference to the main greenlet.
    pub main: *mut ffi::PyObject,
    /// Strong reference to the running greenlet.
    pub current: *mut ffi::PyObject,
    /// Strong reference to the `settrace` callback, or null.
    pub tracefunc: *mut ffi::PyObject,
    /// The engine coroutine that stands for the main greenlet (the thread's own stack).
    pub root: Coroutine,
    /// The highest address of the OS thread's stack (0 if unknown; found when first needed):
    /// the main greenlet's `_stack_saved` is measured from it.
    pub stack_top: Option<usize>,
    /// What the switch in flight carries: stored by the switching side, taken by the side that
    /// resumes, with no Python code running in between.
    pub transfer: Option<Transfer>,
}

/// A switch in flight.
pub struct Transfer {
    /// The arguments or the exception.
    pub payload: Payload,
    /// A strong reference to the greenlet switched to: it becomes `current` when it lands.
    pub target: Owned,
}

thread_local! {
    static STATE: Cell<*mut ThreadState> = const { Cell::new(core::ptr::null_mut()) };
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

/// Number of live main greenlets (`get_total_main_greenlets`).
pub static TOTAL_MAIN_GREENLETS: AtomicUsize = AtomicUsize::new(0);

/// States of exited threads waiting for the pending call that destroys them.
static DESTROY_QUEUE: Mutex<Vec<SendState>> = Mutex::new(Vec::new());

struct SendState(*mut ThreadState);
// SAFETY: the state of an exited thread is only touched by the pending call, under the GIL.
unsafe impl Send for SendState {}

/// The calling thread's state if it exists (no allocation, no maintenance).
#[inline]
pub fn peek() -> *mut ThreadState {
    STATE.with(Cell::get)
}

/// The calling thread's state, created on first use. Does not run deferred work.
///
/// # Safety
/// The GIL is held.
#[inline]
pub unsafe fn get() -> Result<*mut ThreadState, ()> {
    let p = peek();
    if !p.is_null() {
        return Ok(p);
    }
    unsafe { ThreadState::create() }
}

/// The calling thread's state, after running work other threads queued for it (releasing
/// greenlets they dropped): what greenlet does whenever the current greenlet is looked up.
/// May run arbitrary Python code.
///
/// # Safety
/// The GIL is held.
#[inline]
pub unsafe fn get_maintained() -> Result<*mut ThreadState, ()> {
    let ts = unsafe { get()? };
    let shared: &ThreadShared = unsafe { &(*ts).shared };
    if shared.has_deferred.load(Ordering::Acquire) {
        unsafe { run_deferred(ts, false) };
    }
    Ok(ts)
}

/// Releases what other threads queued for this one. With `murder`, greenlets are made dead
/// without running (the thread is gone).
///
/// # Safety
/// The GIL is held; `ts` is the calling thread's state, or an exited thread's being destroyed.
unsafe fn run_deferred(ts: *mut ThreadState, murder: bool) {
    let taken = {
        let shared = unsafe { &(*ts).shared };
        let mut d = shared.deferred.lock().unwrap_or_else(|e| e.into_inner());
        shared.has_deferred.store(false, Ordering::Release);
        core::mem::take(&mut *d)
    };
    drop(taken.handles);
    if taken.greenlets.is_empty() || crate::pyversion::is_finalizing() {
        return;
    }
    // Keep an exception in flight intact around the finalizers we run.
    let saved = unsafe { crate::object::Fetched::take_if_set() };
    for SendPtr(g) in taken.greenlets {
        unsafe {
            if murder {
                greenlet::murder_in_place(g);
            }
            ffi::Py_DECREF(g);
            if !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_WriteUnraisable(core::ptr::null_mut());
            }
        }
    }
    if let Some(e) = saved {
        e.restore();
    }
}

impl ThreadState {
    /// Creates the calling thread's state with its main greenlet (a new reference the state
    /// keeps); Err with an exception set if that fails.
    ///
    /// # Safety
    /// GIL held; the calling thread has no state yet.
    #[cold]
    unsafe fn create() -> Result<*mut ThreadState, ()> {
        // Registered before the engine's own thread teardown: see the module docs.
        EXIT_GUARD.with(|_| ());
        let shared = Arc::new(ThreadShared {
            alive: AtomicBool::new(true),
            current: AtomicPtr::new(core::ptr::null_mut()),
            deferred: Mutex::new(Deferred::default()),
            has_deferred: AtomicBool::new(false),
        });
        let root = Coroutine::current();
        let main = unsafe { greenlet::new_main(&shared)? };
        let ts = Box::into_raw(Box::new(ThreadState {
            shared,
            main,
            current: main,
            tracefunc: core::ptr::null_mut(),
            root,
            stack_top: None,
            transfer: None,
        }));
        unsafe {
            ffi::Py_INCREF(main); // `current`
            let shared: &ThreadShared = &(*ts).shared;
            shared.current.store(main, Ordering::Relaxed);
        }
        STATE.with(|s| s.set(ts));
        Ok(ts)
    }

    /// What a switch that just landed carries: its payload, and the greenlet it came from (the
    /// reference `current` held; the landing greenlet is current now). Runs no Python code.
    #[inline]
    pub fn land(&mut self) -> Option<(Payload, Owned)> {
        let Transfer { payload, target } = self.transfer.take()?;
        let me = target.into_ptr();
        self.shared.current.store(me, Ordering::Relaxed);
        let origin = core::mem::replace(&mut self.current, me);
        // SAFETY: `current` always holds a strong reference.
        Some((payload, unsafe { Owned::from_new(origin) }?))
    }
}

/// The highest address of the calling OS thread's stack, or 0 if it cannot be found.
pub fn thread_stack_top() -> usize {
    // SAFETY: plain libc calls on the calling thread with out-parameters we own.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 0;
        }
        let mut addr: *mut core::ffi::c_void = core::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let r = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if r != 0 {
            return 0;
        }
        addr as usize + size
    }
}

/// Its destructor runs when the OS thread exits.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let ts = STATE.with(|s| s.replace(core::ptr::null_mut()));
        if ts.is_null() {
            return;
        }
        // SAFETY: the state is ours and no Python code runs on this thread any more. Other
        // threads only read `alive` (atomically) and queue work under the mutex.
        unsafe {
            let shared: &ThreadShared = &(*ts).shared;
            shared.alive.store(false, Ordering::Release);
            if ffi::PyInterpreterState_Head().is_null() || crate::pyversion::is_finalizing() {
                // The interpreter is gone (or going): nothing can be released safely. Leak.
                return;
            }
            // This thread begins and ends no uthread any more.
            crate::pystate::drain_pool();
        }
        let mut queue = DESTROY_QUEUE.lock().unwrap_or_else(|e| e.into_inner());
        queue.push(SendState(ts));
        if queue.len() == 1 {
            // SAFETY: Py_AddPendingCall may be called without the GIL from any thread.
            if unsafe { ffi::Py_AddPendingCall(Some(destroy_queued), core::ptr::null_mut()) } < 0 {
                eprintln!("uthread: Py_AddPendingCall failed; the greenlets of an exited thread leak");
            }
        }
    }
}

/// Processor time (`clock()` ticks) spent in [`optional_cleanup`]; -1 while it is disabled.
pub static CLOCKS_USED_DOING_CLEANUP: AtomicI64 = AtomicI64::new(0);

/// greenlet's "optional cleanup" (`enable_optional_cleanup`), done as greenlet does it. When an
/// exited thread's state goes and one reference to its main greenlet is left that no object the
/// collector knows refers to, it is a reference from a frame that can never run again: typically
/// the `getcurrent().parent.switch()` by which a greenlet of that thread (murdered since: the
/// thread is gone, its frames are never cleared) switched back to the main greenlet. It is
/// dropped, so the main greenlet is freed. Likewise for a bound `switch` method of the main
/// greenlet that is itself referred to only from such a frame.
///
/// # Safety
/// GIL held; `main` is live with exactly one (unowned) reference left.
unsafe fn optional_cleanup(main: *mut ffi::PyObject) {
    if CLOCKS_USED_DOING_CLEANUP.load(Ordering::Relaxed) < 0 {
        return;
    }
    let begin = cpu_clock();
    unsafe {
        let Some(gc) = Owned::from_new(ffi::PyImport_ImportModule(c"gc".as_ptr())) else {
            ffi::PyErr_Clear();
            return;
        };
        let Some(get_referrers) = Owned::from_new(ffi::PyObject_GetAttrString(gc.as_ptr(), c"get_referrers".as_ptr()))
        else {
            ffi::PyErr_Clear();
            return;
        };
        let referrers = |o: *mut ffi::PyObject| Owned::from_new(ffi::PyObject_CallOneArg(get_referrers.as_ptr(), o));
        match referrers(main) {
            Some(refs) if ffi::PyList_Check(refs.as_ptr()) != 0 => {
                let n = ffi::PyList_GET_SIZE(refs.as_ptr());
                if n == 0 {
                    drop(refs);
                    ffi::Py_DECREF(main); // frees it
                } else if n == 1 {
                    let f = ffi::PyList_GET_ITEM(refs.as_ptr(), 0);
                    if ffi::PyCFunction_Check(f) != 0
                        && ffi::Py_REFCNT(f) == 2
                        && ffi::PyCFunction_GetFunction(f).map(|p| p as *const () as usize)
                            == Some(greenlet::switch_cfunction())
                    {
                        let f = Owned::from_borrowed(f);
                        drop(refs);
                        // Ours and the unknown one: can the unknown one be found?
                        match referrers(f.as_ptr()) {
                            Some(refs)
                                if ffi::PyList_Check(refs.as_ptr()) != 0
                                    && ffi::PyList_GET_SIZE(refs.as_ptr()) == 0 =>
                            {
                                drop(refs);
                                ffi::Py_DECREF(f.as_ptr()); // the unknown reference
                                drop(f); // frees the method, which frees the main greenlet
                            }
                            _ => ffi::PyErr_Clear(),
                        }
                    }
                }
            }
            _ => ffi::PyErr_Clear(),
        }
    }
    let used = cpu_clock().saturating_sub(begin).max(0);
    let _ = CLOCKS_USED_DOING_CLEANUP
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| (c >= 0).then(|| c.saturating_add(used)));
}

/// Processor time used by the process, in microseconds (C's `clock()` with CLOCKS_PER_SEC 1e6).
fn cpu_clock() -> i64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: an out-parameter we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } != 0 {
        return 0;
    }
    t.tv_sec.saturating_mul(1_000_000).saturating_add(t.tv_nsec / 1000)
}

/// Number of exited threads whose greenlet state waits to be destroyed.
pub fn pending_cleanup_count() -> usize {
    DESTROY_QUEUE.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Pending call: destroys the states of exited threads (GIL held, on a live thread).
extern "C" fn destroy_queued(_: *mut core::ffi::c_void) -> core::ffi::c_int {
    loop {
        let next = DESTROY_QUEUE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let Some(SendState(ts)) = next else { break };
        // SAFETY: queued by the exit guard of a thread that no longer runs.
        abort_on_panic("the release of an exited thread's greenlets", || unsafe { destroy(ts) });
    }
    0
}

/// Releases an exited thread's state: its greenlets are made dead without running.
///
/// # Safety
/// `ts` came from an exit guard; the GIL is held; nothing else refers to `ts`.
unsafe fn destroy(ts: *mut ThreadState) {
    let saved = unsafe { crate::object::Fetched::take_if_set() };
    unsafe {
        clear(&mut (*ts).tracefunc);
        run_deferred(ts, true);
        (*ts).transfer = None;
        let current = (*ts).current;
        let main = (*ts).main;
        if !current.is_null() {
            greenlet::murder_in_place(current);
        }
        clear(&mut (*ts).current);
        // The thread fell off the end of its main greenlet: a reference to it may be left where
        // nothing can ever release it (see `optional_cleanup`).
        let cleanup = current == main && !main.is_null() && ffi::Py_REFCNT(main) == 2;
        clear(&mut (*ts).main);
        if cleanup && ffi::Py_REFCNT(main) == 1 {
            optional_cleanup(main);
        }
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_WriteUnraisable(core::ptr::null_mut());
        }
        drop(Box::from_raw(ts));
    }
    if let Some(e) = saved {
        e.restore();
    }
}
