//! Small owned-reference helpers over pyo3's raw ffi. The greenlet machinery works with raw
//! `PyObject` pointers because it must decide exactly when a reference is released: a decref can
//! run arbitrary Python code (finalizers), and that code may switch uthreads.

use pyo3::ffi;
use std::ptr::NonNull;

/// A strong reference, released on drop.
pub struct Owned(NonNull<ffi::PyObject>);

impl Owned {
    /// Takes over a new reference; `None` for null (an exception is then normally set).
    ///
    /// # Safety
    /// `p` is null or a new reference the caller gives up; the GIL is held.
    pub unsafe fn from_new(p: *mut ffi::PyObject) -> Option<Owned> {
        NonNull::new(p).map(Owned)
    }

    /// Adds a reference to a borrowed pointer.
    ///
    /// # Safety
    /// `p` is a live object; the GIL is held.
    pub unsafe fn from_borrowed(p: *mut ffi::PyObject) -> Owned {
        unsafe { ffi::Py_INCREF(p) };
        // SAFETY: callers pass live (non-null) objects.
        Owned(unsafe { NonNull::new_unchecked(p) })
    }

    pub fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    /// Gives the reference to the caller.
    pub fn into_ptr(self) -> *mut ffi::PyObject {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: we own one reference; every `Owned` is created and dropped with the GIL held.
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}

/// `Py_XDECREF` of a raw strong reference, after which the slot holds null.
///
/// # Safety
/// `*slot` is null or a strong reference owned by the slot; the GIL is held.
pub unsafe fn clear(slot: &mut *mut ffi::PyObject) {
    unsafe { replace(slot, core::ptr::null_mut()) }
}

/// Stores `new` (null or a strong reference, which the slot takes over) in the slot, then
/// releases the reference it held before, which may run arbitrary code: the slot is already
/// consistent by then.
///
/// # Safety
/// `*slot` is null or a strong reference owned by the slot; the GIL is held.
pub unsafe fn replace(slot: &mut *mut ffi::PyObject, new: *mut ffi::PyObject) {
    let old = core::mem::replace(slot, new);
    if !old.is_null() {
        unsafe { ffi::Py_DECREF(old) };
    }
}

/// New reference to `p`, or to None when `p` is null.
///
/// # Safety
/// `p` is null or live; the GIL is held.
pub unsafe fn new_ref_or_none(p: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let p = if p.is_null() { unsafe { ffi::Py_None() } } else { p };
    unsafe { ffi::Py_INCREF(p) };
    p
}

/// A raised exception taken out of the interpreter's error indicator: `(type, value, traceback)`,
/// normalized (the value is an instance of the type).
pub struct Fetched {
    pub ptype: *mut ffi::PyObject,
    pub pvalue: *mut ffi::PyObject,
    pub ptraceback: *mut ffi::PyObject,
}

impl Fetched {
    /// Takes the current exception (one must be set), normalizing it.
    ///
    /// # Safety
    /// The GIL is held.
    #[allow(deprecated)] // PyErr_Fetch: the triple form works on every supported version.
    pub unsafe fn take() -> Fetched {
        let mut f =
            Fetched { ptype: core::ptr::null_mut(), pvalue: core::ptr::null_mut(), ptraceback: core::ptr::null_mut() };
        unsafe {
            ffi::PyErr_Fetch(&mut f.ptype, &mut f.pvalue, &mut f.ptraceback);
            if f.ptype.is_null() {
                // Callers only take an exception after a failure; be defensive all the same.
                ffi::PyErr_SetString(ffi::PyExc_SystemError, c"error return without exception set".as_ptr());
                ffi::PyErr_Fetch(&mut f.ptype, &mut f.pvalue, &mut f.ptraceback);
            }
            ffi::PyErr_NormalizeException(&mut f.ptype, &mut f.pvalue, &mut f.ptraceback);
            if !f.ptraceback.is_null() && !f.pvalue.is_null() {
                ffi::PyException_SetTraceback(f.pvalue, f.ptraceback);
            }
        }
        f
    }

    /// Takes the current exception if one is set.
    ///
    /// # Safety
    /// The GIL is held.
    pub unsafe fn take_if_set() -> Option<Fetched> {
        if unsafe { ffi::PyErr_Occurred() }.is_null() {
            None
        } else {
            Some(unsafe { Fetched::take() })
        }
    }

    /// Puts it back as the current exception.
    #[allow(deprecated)]
    pub fn restore(self) {
        let f = core::mem::ManuallyDrop::new(self);
        // SAFETY: the references are ours to give; only called with the GIL held.
        unsafe { ffi::PyErr_Restore(f.ptype, f.pvalue, f.ptraceback) }
    }

    /// Whether the exception is an instance of `class`.
    pub fn matches(&self, class: *mut ffi::PyObject) -> bool {
        // SAFETY: live references; GIL held by the owner of a Fetched.
        unsafe { ffi::PyErr_GivenExceptionMatches(self.ptype, class) != 0 }
    }
}

impl Drop for Fetched {
    fn drop(&mut self) {
        // SAFETY: we own the references (any may be null); GIL held by the owner.
        unsafe {
            clear(&mut self.ptype);
            clear(&mut self.pvalue);
            clear(&mut self.ptraceback);
        }
    }
}
