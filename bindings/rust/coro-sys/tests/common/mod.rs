//! Helpers shared by the integration tests. They use nothing but `coro_sys` (and std).
//!
//! Entry functions never assert: a panic cannot leave an `extern "C"` function (it would abort the
//! whole test binary), so coroutines record what they see and the test asserts on the thread's own
//! stack afterwards.
#![allow(dead_code)]

use coro_sys::*;
use std::ffi::{c_void, CStr};
use std::ptr;

/// The text of a status, for assertion messages.
pub fn strerror(status: coro_status_t) -> String {
    // SAFETY: coro_strerror returns a static NUL-terminated string for any number.
    unsafe { CStr::from_ptr(coro_strerror(status)) }.to_string_lossy().into_owned()
}

/// Asserts that a call returned `expected`, naming both statuses on failure.
#[track_caller]
pub fn expect(status: coro_status_t, expected: coro_status_t) {
    assert_eq!(status, expected, "got {status} ({}), expected {expected} ({})", strerror(status), strerror(expected));
}

#[track_caller]
pub fn ok(status: coro_status_t) {
    expect(status, CORO_OK);
}

pub fn val(n: usize) -> *mut c_void {
    n as *mut c_void
}

pub type Entry = unsafe extern "C" fn(*mut coro_t, *mut c_void) -> *mut c_void;

/// A new coroutine with default options.
#[track_caller]
pub fn spawn(entry: Entry) -> *mut coro_t {
    let mut c = ptr::null_mut();
    // SAFETY: valid out-pointer, NULL options.
    ok(unsafe { coro_new(Some(entry), ptr::null(), &mut c) });
    assert!(!c.is_null());
    c
}

/// A new coroutine whose userdata is `userdata`.
#[track_caller]
pub fn spawn_with(entry: Entry, userdata: *mut c_void) -> *mut coro_t {
    let mut opts = options();
    opts.userdata = userdata;
    let mut c = ptr::null_mut();
    // SAFETY: initialised options, valid out-pointer.
    ok(unsafe { coro_new(Some(entry), &opts, &mut c) });
    c
}

/// `coro_options_init` defaults.
#[track_caller]
pub fn options() -> coro_options_t {
    let mut opts = std::mem::MaybeUninit::<coro_options_t>::uninit();
    // SAFETY: writable memory for one coro_options_t; initialised on CORO_OK.
    unsafe {
        ok(coro_options_init(opts.as_mut_ptr()));
        opts.assume_init()
    }
}

/// `coro_switch(to, value)` as (status, received).
pub fn switch(to: *mut coro_t, value: usize) -> (coro_status_t, usize) {
    let mut got = val(usize::MAX);
    // SAFETY: `to` comes from the library (or is deliberately NULL/stale in error tests).
    let st = unsafe { coro_switch(to, val(value), &mut got) };
    (st, got as usize)
}

/// `coro_kill(target, reason)` as (status, received).
pub fn kill(target: *mut coro_t, reason: usize) -> (coro_status_t, usize) {
    let mut got = val(usize::MAX);
    // SAFETY: as for `switch`.
    let st = unsafe { coro_kill(target, val(reason), &mut got) };
    (st, got as usize)
}

#[track_caller]
pub fn state(c: *const coro_t) -> coro_state_t {
    let mut s = coro_state_t::MAX;
    // SAFETY: handle from the library, valid out-pointer.
    ok(unsafe { coro_state(c, &mut s) });
    s
}

#[track_caller]
pub fn parent(c: *const coro_t) -> *mut coro_t {
    let mut p = val(1).cast();
    // SAFETY: as above.
    ok(unsafe { coro_parent(c, &mut p) });
    p
}

#[track_caller]
pub fn main_coro() -> *mut coro_t {
    let mut m = ptr::null_mut();
    // SAFETY: valid out-pointer.
    ok(unsafe { coro_main(&mut m) });
    m
}

#[track_caller]
pub fn current() -> *mut coro_t {
    let mut c = ptr::null_mut();
    // SAFETY: valid out-pointer.
    ok(unsafe { coro_current(&mut c) });
    c
}

#[track_caller]
pub fn userdata(c: *const coro_t) -> *mut c_void {
    let mut u = ptr::null_mut();
    // SAFETY: as above.
    ok(unsafe { coro_userdata(c, &mut u) });
    u
}

#[track_caller]
pub fn destroy(c: *mut coro_t) {
    // SAFETY: handle from the library.
    ok(unsafe { coro_destroy(c) });
}

/// A raw handle that may be carried to another thread (the tests decide what is done with it).
#[derive(Clone, Copy, Debug)]
pub struct SendPtr(pub *mut coro_t);
// SAFETY: a handle is a token; the library checks the calling thread on every use.
unsafe impl Send for SendPtr {}

impl SendPtr {
    /// The handle (a method, so that closures capture the whole `SendPtr`, not its field).
    pub fn get(self) -> *mut coro_t {
        self.0
    }
}

/// The value behind `me`'s userdata, for use inside an entry function. Shared (use `Cell` /
/// `RefCell` fields): the test reads the same value while the coroutine is suspended.
///
/// # Safety
/// `me`'s userdata points to a live `T`.
pub unsafe fn data<'a, T>(me: *mut coro_t) -> &'a T {
    let mut u = ptr::null_mut();
    // SAFETY: `me` is the running coroutine's own handle.
    let st = unsafe { coro_userdata(me, &mut u) };
    if st != CORO_OK || u.is_null() {
        eprintln!("coro_userdata failed inside a coroutine: {}", strerror(st));
        std::process::abort();
    }
    // SAFETY: per the contract above.
    unsafe { &*u.cast::<T>() }
}

/// `&T` as the `void *` userdata.
pub fn ud<T>(t: &T) -> *mut c_void {
    (t as *const T).cast_mut().cast()
}
