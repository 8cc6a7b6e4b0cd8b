//! The greenlet object: greenlet 3's instance layout ([`PyGreenlet`]), the implementation block
//! every instance points to ([`Greenlet`]), what a switch carries ([`Payload`]), and the
//! module-wide objects created with the type ([`Globals`]).

use crate::object::{clear, Fetched, Owned};
use crate::pystate::{self, PyState};
use crate::thread::{self, SendHandle, ThreadShared};
use core::ptr::null_mut;
use coro::{Coroutine, State};
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
pub(super) const WEAKLIST_OFFSET: usize = core::mem::offset_of!(PyGreenlet, weakreflist);
pub(super) const DICT_OFFSET: usize = core::mem::offset_of!(PyGreenlet, dict);
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
    pub(super) start_run: *mut ffi::PyObject,
    /// The thread it runs on (set when it starts; mains from creation).
    pub thread: Option<Arc<ThreadShared>>,
    /// The engine coroutine (user greenlets, from their start).
    pub coro: Option<Coroutine>,
    pub pystate: PyState,
    /// Where its stack pointer was (about) when it last switched away: a main greenlet's
    /// `_stack_saved` is measured from it (the engine reports stack use of its own stacks only).
    pub(super) saved_sp: usize,
    /// Test support (`UnswitchableGreenlet.force_switch_error`): switches into it fail as if the
    /// engine had refused them.
    pub(super) force_switch_error: bool,
    /// Copying mode for its engine coroutine (`greenlet(..., copying=True)`); `None`: the
    /// engine's per-thread default (own stacks).
    pub(super) copying: Option<bool>,
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
    pub(super) fn in_dead_thread(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_alive())
    }

    /// Layout of the implementation block and the offset of its interpreter-state buffer.
    pub(super) fn block_layout() -> (Layout, usize) {
        static L: OnceLock<(Layout, usize)> = OnceLock::new();
        *L.get_or_init(|| {
            let (l, off) = Layout::new::<Greenlet>().extend(pystate::layout()).expect("greenlet layout");
            (l.pad_to_align(), off)
        })
    }

    /// Allocates an implementation with an initialized, empty interpreter state.
    pub(super) fn alloc(is_main: bool, parent: *mut ffi::PyObject, thread: Option<Arc<ThreadShared>>) -> *mut Greenlet {
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
    pub(super) unsafe fn free(g: *mut Greenlet) {
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
pub(super) fn own_thread(t: &Arc<ThreadShared>) -> bool {
    let ts = thread::peek();
    // SAFETY: the calling thread's state, if any.
    !ts.is_null() && Arc::ptr_eq(unsafe { &(*ts).shared }, t)
}

/// Objects created at module init and never freed.
pub struct Globals {
    pub ty: *mut ffi::PyTypeObject,
    pub greenlet_exit: *mut ffi::PyObject,
    pub error: *mut ffi::PyObject,
    pub(super) str_run: *mut ffi::PyObject,
    pub(super) str_switch: *mut ffi::PyObject,
    pub(super) str_throw: *mut ffi::PyObject,
    pub(super) empty_tuple: *mut ffi::PyObject,
}

pub(super) static GLOBALS: AtomicPtr<Globals> = AtomicPtr::new(null_mut());

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

/// Sets an exception of class `exc` with a message.
///
/// # Safety
/// GIL held.
pub unsafe fn raise(exc: *mut ffi::PyObject, msg: &str) {
    let msg = std::ffi::CString::new(msg.replace('\0', "?")).expect("no NUL");
    unsafe { ffi::PyErr_SetString(exc, msg.as_ptr()) };
}

/// `repr(o)` as a Rust string, `<?>` if it fails (the error is cleared).
///
/// # Safety
/// GIL held; `o` live.
pub(super) unsafe fn repr_string(o: *mut ffi::PyObject) -> String {
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
