//! The parent rule: a finishing coroutine's return value goes to its parent; if the parent is
//! DEAD, to the grandparent, and so on. Raw C API only.

mod common;

use common::*;
use coro_sys::*;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;

#[derive(Default)]
struct Family {
    child: Cell<usize>,
    child_parent_is_me: Cell<bool>,
    /// What the parent's pending switch into the child returned: (status, value).
    from_child: Cell<(coro_status_t, usize)>,
    statuses: RefCell<Vec<coro_status_t>>,
}

/// B: hands 10 to main (skipping its parent A), then returns 100 when resumed.
unsafe extern "C" fn child_b(_me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let mut main = ptr::null_mut();
    let mut got = ptr::null_mut();
    unsafe {
        coro_main(&mut main);
        coro_switch(main, val(10), &mut got);
    }
    val(100 + got as usize)
}

/// A: creates B (so A is B's parent), runs it, and returns what B's return gave it, plus one.
unsafe extern "C" fn parent_a(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let fam: &Family = unsafe { data(me) };
    let mut b = ptr::null_mut();
    fam.statuses.borrow_mut().push(unsafe { coro_new(Some(child_b), ptr::null(), &mut b) });
    fam.child.set(b as usize);
    let mut p = ptr::null_mut();
    fam.statuses.borrow_mut().push(unsafe { coro_parent(b, &mut p) });
    fam.child_parent_is_me.set(p == me);
    let mut got = ptr::null_mut();
    let st = unsafe { coro_switch(b, val(1), &mut got) };
    fam.from_child.set((st, got as usize));
    val(got as usize + 1)
}

#[test]
fn return_goes_to_the_parent_not_to_the_last_switcher() {
    let fam = Family::default();
    let a = spawn_with(parent_a, ud(&fam));
    // A starts B; B switches straight to main with 10.
    assert_eq!(switch(a, 0), (CORO_OK, 10));
    let b = fam.child.get() as *mut coro_t;
    assert!(fam.child_parent_is_me.get());
    assert_eq!(state(a), CORO_SUSPENDED);
    assert_eq!(state(b), CORO_SUSPENDED);
    // Main resumes B, which returns 120: that goes to A (its parent), whose switch returns it;
    // A then returns 121, which comes to main (A's parent) as the result of main's switch into B.
    assert_eq!(switch(b, 20), (CORO_OK, 121));
    assert_eq!(fam.from_child.get(), (CORO_OK, 120));
    assert_eq!(state(a), CORO_DEAD);
    assert_eq!(state(b), CORO_DEAD);
    assert!(fam.statuses.borrow().iter().all(|&s| s == CORO_OK));
    destroy(b);
    destroy(a);
}

unsafe extern "C" fn triple(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    val(v as usize * 3)
}

/// Creates a child (parent: itself) and finishes at once, returning the child's handle.
unsafe extern "C" fn make_child_and_die(_me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let mut b = ptr::null_mut();
    if unsafe { coro_new(Some(triple), ptr::null(), &mut b) } != CORO_OK {
        return ptr::null_mut();
    }
    b.cast()
}

fn dead_parent_case(destroy_parent_first: bool) {
    let a = spawn(make_child_and_die);
    let (st, b) = switch(a, 0);
    ok(st);
    let b = b as *mut coro_t;
    assert!(!b.is_null());
    assert_eq!(state(a), CORO_DEAD);
    assert_eq!(parent(b), a, "the parent is the creator, even once DEAD");
    if destroy_parent_first {
        // The handle goes stale at once; the control block lives on for the child.
        destroy(a);
        let mut s = 0;
        expect(unsafe { coro_state(a, &mut s) }, CORO_ESTALE);
    }
    // B's parent A is DEAD: B's return value goes to A's parent, main.
    assert_eq!(switch(b, 7), (CORO_OK, 21));
    assert_eq!(state(b), CORO_DEAD);
    assert_eq!(current(), main_coro());
    destroy(b);
    if !destroy_parent_first {
        destroy(a);
    }
}

#[test]
fn dead_parent_passes_to_the_grandparent() {
    dead_parent_case(false);
}

#[test]
fn destroyed_dead_parent_passes_to_the_grandparent() {
    dead_parent_case(true);
}

unsafe extern "C" fn add_one(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    val(v as usize + 1)
}

#[test]
fn set_parent_redirects_the_return_and_starts_a_new_parent() {
    let b = spawn(triple);
    let n = spawn(add_one);
    ok(unsafe { coro_set_parent(b, n) });
    assert_eq!(parent(b), n);
    // B returns 15 to N, which is NEW: N starts with 15 as its first value and returns 16 to main.
    assert_eq!(switch(b, 5), (CORO_OK, 16));
    assert_eq!(state(b), CORO_DEAD);
    assert_eq!(state(n), CORO_DEAD);
    destroy(b);
    destroy(n);
}

#[test]
fn longer_chain_of_dead_ancestors() {
    // main <- a <- b <- c, with a and b finished: c's return goes to main.
    let a = spawn(add_one);
    let b = spawn(add_one);
    let c = spawn(triple);
    ok(unsafe { coro_set_parent(b, a) });
    ok(unsafe { coro_set_parent(c, b) });
    // a and b finish first: b returns to a (which starts and returns to main).
    assert_eq!(switch(b, 1), (CORO_OK, 3));
    assert_eq!(state(a), CORO_DEAD);
    assert_eq!(state(b), CORO_DEAD);
    assert_eq!(switch(c, 4), (CORO_OK, 12));
    for h in [c, b, a] {
        destroy(h);
    }
}
