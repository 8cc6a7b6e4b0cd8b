//! Lifecycle of a coroutine and values passed both ways, through the raw C API only.

mod common;

use common::*;
use coro_sys::*;
use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr};
use std::ptr;

#[derive(Default)]
struct Log {
    /// Values received by the coroutine (first value, then each switch's).
    seen: RefCell<Vec<usize>>,
    /// Status of every call the coroutine made.
    statuses: RefCell<Vec<coro_status_t>>,
    /// Its own state as seen from inside.
    state_inside: Cell<coro_state_t>,
    /// coro_current() == me, inside.
    current_is_me: Cell<bool>,
    /// The handle passed to the entry.
    me: Cell<usize>,
}

/// Sends back twice what it receives, three times, then returns the last value + 1000.
unsafe extern "C" fn doubler(me: *mut coro_t, first: *mut c_void) -> *mut c_void {
    let log: &Log = unsafe { data(me) };
    log.me.set(me as usize);
    let mut st = log.statuses.borrow_mut();
    let mut cur = ptr::null_mut();
    st.push(unsafe { coro_current(&mut cur) });
    log.current_is_me.set(cur == me);
    let mut s = coro_state_t::MAX;
    st.push(unsafe { coro_state(me, &mut s) });
    log.state_inside.set(s);
    let mut main = ptr::null_mut();
    st.push(unsafe { coro_main(&mut main) });
    drop(st);

    let mut x = first as usize;
    for _ in 0..3 {
        log.seen.borrow_mut().push(x);
        let mut got = ptr::null_mut();
        let r = unsafe { coro_switch(main, val(x * 2), &mut got) };
        log.statuses.borrow_mut().push(r);
        x = got as usize;
    }
    log.seen.borrow_mut().push(x);
    val(x + 1000)
}

#[test]
fn lifecycle_and_values_both_ways() {
    let log = Log::default();
    let c = spawn_with(doubler, ud(&log));
    assert_eq!(state(c), CORO_NEW);
    assert_eq!(parent(c), main_coro());
    assert!(log.seen.borrow().is_empty(), "nothing runs before the first switch");

    assert_eq!(switch(c, 1), (CORO_OK, 2));
    assert_eq!(state(c), CORO_SUSPENDED);
    assert_eq!(log.state_inside.get(), CORO_RUNNING);
    assert!(log.current_is_me.get());
    assert_eq!(log.me.get(), c as usize, "the entry receives its own handle");

    assert_eq!(switch(c, 5), (CORO_OK, 10));
    assert_eq!(switch(c, 7), (CORO_OK, 14));
    // The fourth value makes it return: the return value comes back as `received`.
    assert_eq!(switch(c, 9), (CORO_OK, 1009));
    assert_eq!(state(c), CORO_DEAD);
    assert_eq!(*log.seen.borrow(), [1, 5, 7, 9]);
    assert!(log.statuses.borrow().iter().all(|&s| s == CORO_OK), "{:?}", log.statuses.borrow());

    expect(switch(c, 1).0, CORO_EDEAD);
    assert_eq!(current(), main_coro());
    destroy(c);
    let mut s = 0;
    expect(unsafe { coro_state(c, &mut s) }, CORO_ESTALE);
}

unsafe extern "C" fn return_arg(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    v
}

#[test]
fn received_may_be_null() {
    let c = spawn(return_arg);
    ok(unsafe { coro_switch(c, val(3), ptr::null_mut()) });
    assert_eq!(state(c), CORO_DEAD);
    destroy(c);
}

#[test]
fn switching_to_self_returns_at_once() {
    let m = main_coro();
    assert_eq!(switch(m, 42), (CORO_OK, 42));
    assert_eq!(current(), m);
}

unsafe extern "C" fn switch_to_self(me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    let mut got = ptr::null_mut();
    let st = unsafe { coro_switch(me, val(v as usize + 1), &mut got) };
    // Encode (status, value) into the return value for the test to check.
    val(st as usize * 1000 + got as usize)
}

#[test]
fn switching_to_self_inside_a_coroutine() {
    let c = spawn(switch_to_self);
    assert_eq!(switch(c, 41), (CORO_OK, CORO_OK as usize * 1000 + 42));
    destroy(c);
}

#[test]
fn main_and_current_on_a_plain_thread() {
    let m = main_coro();
    assert!(!m.is_null());
    assert_eq!(current(), m);
    assert_eq!(state(m), CORO_RUNNING);
    assert!(parent(m).is_null(), "a main coroutine has no parent");
    let mut id = 0;
    ok(unsafe { coro_id(m, &mut id) });
}

unsafe extern "C" fn set_flag(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    unsafe { data::<Cell<bool>>(me) }.set(true);
    ptr::null_mut()
}

#[test]
fn destroying_a_new_coroutine_never_runs_it() {
    let ran = Cell::new(false);
    let c = spawn_with(set_flag, ud(&ran));
    destroy(c);
    assert!(!ran.get());
    let mut s = 0;
    expect(unsafe { coro_state(c, &mut s) }, CORO_ESTALE);
}

#[test]
fn userdata_name_and_id() {
    let a = spawn(return_arg);
    let b = spawn(return_arg);
    assert!(userdata(a).is_null());
    ok(unsafe { coro_set_userdata(a, val(0xbeef)) });
    assert_eq!(userdata(a), val(0xbeef));
    assert!(userdata(b).is_null());

    let mut name = val(1) as *const _;
    ok(unsafe { coro_name(a, &mut name) });
    assert!(name.is_null());
    ok(unsafe { coro_set_name(a, c"worker-1".as_ptr()) });
    ok(unsafe { coro_name(a, &mut name) });
    assert_eq!(unsafe { CStr::from_ptr(name) }, c"worker-1");
    ok(unsafe { coro_set_name(a, ptr::null()) });
    ok(unsafe { coro_name(a, &mut name) });
    assert!(name.is_null());

    let (mut ia, mut ib, mut im) = (0u64, 0u64, 0u64);
    ok(unsafe { coro_id(a, &mut ia) });
    ok(unsafe { coro_id(b, &mut ib) });
    ok(unsafe { coro_id(main_coro(), &mut im) });
    assert!(ia != ib && ia != im && ib != im, "{ia} {ib} {im}");

    destroy(a);
    destroy(b);
}

#[test]
fn a_destroyed_handle_stays_stale_after_reuse() {
    let old = spawn(return_arg);
    let mut old_id = 0;
    ok(unsafe { coro_id(old, &mut old_id) });
    destroy(old);
    // New coroutines may reuse the control block; the old handle must still be refused.
    let fresh: Vec<_> = (0..4).map(|_| spawn(return_arg)).collect();
    let mut s = 0;
    expect(unsafe { coro_state(old, &mut s) }, CORO_ESTALE);
    expect(unsafe { coro_destroy(old) }, CORO_ESTALE);
    for c in fresh {
        assert_eq!(state(c), CORO_NEW);
        let mut id = 0;
        ok(unsafe { coro_id(c, &mut id) });
        assert_ne!(id, old_id, "ids are never reused");
        assert_eq!(switch(c, 5), (CORO_OK, 5));
        destroy(c);
    }
}
