//! A greenlet's life outside switching: creation (`tp_new`, `tp_init`, a thread's main
//! greenlet), the garbage collector's traverse and clear, and deallocation, which kills a
//! suspended greenlet (throws `GreenletExit` into it) or abandons the stack of one whose thread
//! exited.

use super::layout::{globals, own_thread, raise, Greenlet, PyGreenlet};
use super::pytype::{green_setparent, green_setrun, throw_instance};
use crate::object::{clear, replace, Fetched, Owned};
use crate::panic_boundary::abort_on_panic;
use crate::pyversion;
use crate::thread::{self, SendPtr, ThreadShared};
use core::ffi::{c_int, c_void};
use core::ptr::{addr_of_mut, null_mut};
use coro::State;
use pyo3::ffi;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Creates the main greenlet of the calling thread (a new reference).
///
/// # Safety
/// GIL held; called once per thread by [`ThreadState`](crate::thread::ThreadState) creation.
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

/// `tp_new`: allocates the instance and its implementation block (not started, no thread yet).
///
/// # Safety
/// Called by the interpreter (or `PyGreenlet_New`) as the type's `tp_new`: GIL held, `ty` the
/// greenlet type or a subtype, `args`/`kwargs` its call arguments.
pub(super) unsafe extern "C" fn green_new(
    ty: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    abort_on_panic("the greenlet type", || unsafe {
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

/// `tp_init`: `greenlet(run=None, parent=None, *, copying=None)`.
///
/// # Safety
/// Called by the interpreter as the type's `tp_init` slot: GIL held, `o` a live greenlet (of the
/// type or a subtype), `args` a tuple, `kwargs` null or a dict.
pub(super) unsafe extern "C" fn green_init(
    o: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> c_int {
    abort_on_panic("the greenlet type", || unsafe {
        let mut run: *mut ffi::PyObject = null_mut();
        let mut parent: *mut ffi::PyObject = null_mut();
        let mut copying: *mut ffi::PyObject = null_mut();
        let mut kwlist: [pyversion::KwName; 4] = [
            pyversion::kw_name(c"run"),
            pyversion::kw_name(c"parent"),
            pyversion::kw_name(c"copying"),
            pyversion::KW_END,
        ];
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

/// `tp_traverse`: visits the dict, `parent`, `run` (also the one a start took) and the references
/// the saved interpreter state holds.
///
/// # Safety
/// Called by the interpreter as the type's `tp_traverse` slot: GIL held, `o` a live greenlet (of
/// the type or a subtype), during a collection.
pub(super) unsafe extern "C" fn green_traverse(
    o: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
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
///
/// # Safety
/// Called by the interpreter as the type's `tp_is_gc` slot: GIL held, `o` a live greenlet (of the
/// type or a subtype).
pub(super) unsafe extern "C" fn green_is_gc(o: *mut ffi::PyObject) -> c_int {
    unsafe {
        let g = Greenlet::of(o);
        if g.is_null() {
            return 1;
        }
        ((*g).is_main || !(*g).active() || (*g).in_dead_thread()) as c_int
    }
}

/// `tp_clear`: drops the dict, `parent` and `run`, and the saved interpreter state of a greenlet
/// that cannot run any more.
///
/// # Safety
/// Called by the interpreter as the type's `tp_clear` slot: GIL held, `o` a live greenlet (of the
/// type or a subtype).
pub(super) unsafe extern "C" fn green_clear(o: *mut ffi::PyObject) -> c_int {
    abort_on_panic("the greenlet type", || unsafe {
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
pub(super) unsafe fn abandon_stack(g: *mut Greenlet) {
    unsafe {
        if let (Some(coro), Some(t)) = ((*g).coro.as_ref(), (*g).thread.as_ref()) {
            if t.is_alive() && own_thread(t) && matches!(coro.state(), State::Suspended | State::New) {
                // Cannot fail for a SUSPENDED or NEW coroutine of this thread.
                let _ = coro.abandon();
            }
        }
    }
}

/// `tp_dealloc`: kills a started, unfinished greenlet first (see [`kill_on_dealloc`]; it may
/// resurrect it), then frees it.
///
/// # Safety
/// Called by the interpreter as the type's `tp_dealloc` slot: GIL held, `o` a live greenlet (of the
/// type or a subtype) whose reference count reached zero.
pub(super) unsafe extern "C" fn green_dealloc(o: *mut ffi::PyObject) {
    abort_on_panic("the greenlet type", || unsafe {
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
///
/// # Safety
/// GIL held; `o` a suspended greenlet being deallocated (reference count zero).
unsafe fn kill_on_dealloc(o: *mut ffi::PyObject) -> bool {
    unsafe {
        let g = Greenlet::of(o);
        if pyversion::is_finalizing() {
            murder_in_place(o);
            return true;
        }
        // Temporarily resurrect the object.
        pyversion::set_refcnt(o, 1);
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
        pyversion::set_refcnt(o, refcnt);
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
