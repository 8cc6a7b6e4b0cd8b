//! coro_kill through the raw C API: SUSPENDED, NEW, self, DEAD, and a pending kill interrupted.

mod common;

use common::*;
use coro_sys::*;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;

#[derive(Default)]
struct Seen {
    /// (status, value) of each pending call the coroutine made, in order.
    calls: RefCell<Vec<(coro_status_t, usize)>>,
    ran: Cell<bool>,
}

fn main_handle() -> *mut coro_t {
    let mut m = ptr::null_mut();
    // SAFETY: valid out-pointer.
    unsafe { coro_main(&mut m) };
    m
}

/// Switches to main with 1; when killed, "cleans up" and returns reason + 1.
unsafe extern "C" fn cleans_up(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let seen: &Seen = unsafe { data(me) };
    seen.ran.set(true);
    let mut got = ptr::null_mut();
    let st = unsafe { coro_switch(main_handle(), val(1), &mut got) };
    seen.calls.borrow_mut().push((st, got as usize));
    val(got as usize + 1)
}

#[test]
fn kill_suspended_makes_its_pending_switch_return_killed() {
    let seen = Seen::default();
    let t = spawn_with(cleans_up, ud(&seen));
    assert_eq!(switch(t, 0), (CORO_OK, 1));
    assert_eq!(state(t), CORO_SUSPENDED);
    // The target sees CORO_KILLED with the reason and returns 78, which comes back to the killer
    // (its parent) as the result of coro_kill.
    assert_eq!(kill(t, 77), (CORO_OK, 78));
    assert_eq!(*seen.calls.borrow(), [(CORO_KILLED, 77)]);
    assert_eq!(state(t), CORO_DEAD);
    destroy(t);
}

/// Ignores kills: each time it is killed it switches back to main with the reason * 2, until it
/// has been killed twice; then it returns.
unsafe extern "C" fn stubborn(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let seen: &Seen = unsafe { data(me) };
    let mut out = 0usize;
    let mut kills = 0;
    loop {
        let mut got = ptr::null_mut();
        let st = unsafe { coro_switch(main_handle(), val(out), &mut got) };
        seen.calls.borrow_mut().push((st, got as usize));
        if st == CORO_KILLED {
            kills += 1;
            if kills == 2 {
                return val(999);
            }
            out = got as usize * 2;
        } else {
            out = got as usize;
        }
    }
}

#[test]
fn a_killed_coroutine_may_refuse_to_die() {
    let seen = Seen::default();
    let t = spawn_with(stubborn, ud(&seen));
    assert_eq!(switch(t, 0), (CORO_OK, 0));
    // First kill: it switches back with 2 * reason and stays alive.
    assert_eq!(kill(t, 5), (CORO_OK, 10));
    assert_eq!(state(t), CORO_SUSPENDED);
    assert_eq!(switch(t, 3), (CORO_OK, 3));
    // Second kill: it returns.
    assert_eq!(kill(t, 6), (CORO_OK, 999));
    assert_eq!(state(t), CORO_DEAD);
    assert_eq!(*seen.calls.borrow(), [(CORO_KILLED, 5), (CORO_OK, 3), (CORO_KILLED, 6)]);
    destroy(t);
}

#[test]
fn kill_new_makes_it_dead_without_running() {
    let seen = Seen::default();
    let t = spawn_with(cleans_up, ud(&seen));
    assert_eq!(kill(t, 5), (CORO_OK, 5));
    assert_eq!(state(t), CORO_DEAD);
    assert!(!seen.ran.get(), "a killed NEW coroutine never runs");
    expect(switch(t, 0).0, CORO_EDEAD);
    expect(kill(t, 0).0, CORO_EDEAD);
    destroy(t);
}

#[test]
fn killing_yourself_returns_killed_at_once() {
    let m = main_coro();
    assert_eq!(kill(m, 9), (CORO_KILLED, 9));
    assert_eq!(current(), m);
    assert_eq!(state(m), CORO_RUNNING);
}

unsafe extern "C" fn kill_self(me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    let mut got = ptr::null_mut();
    let st = unsafe { coro_kill(me, v, &mut got) };
    val(st as usize * 1000 + got as usize)
}

#[test]
fn killing_yourself_inside_a_coroutine() {
    let t = spawn(kill_self);
    assert_eq!(switch(t, 4), (CORO_OK, CORO_KILLED as usize * 1000 + 4));
    destroy(t);
}

#[test]
fn kill_dead_is_edead() {
    let t = spawn(kill_self);
    switch(t, 0);
    assert_eq!(state(t), CORO_DEAD);
    let (st, got) = kill(t, 1);
    expect(st, CORO_EDEAD);
    assert_eq!(got, usize::MAX, "out-params are written only on success");
    destroy(t);
}

#[derive(Default)]
struct Pair {
    a: Cell<usize>,
    b: Cell<usize>,
    /// (status, value) of A's pending coro_kill(B).
    a_kill: Cell<(coro_status_t, usize)>,
    /// What B's pending switch (to main) got when A killed it.
    b_switch: Cell<(coro_status_t, usize)>,
    /// What B's pending coro_kill(A) returned once main resumed B.
    b_kill: Cell<(coro_status_t, usize)>,
}

/// A: kills B with 10. B answers by killing A with 20, so A's pending coro_kill returns KILLED.
unsafe extern "C" fn killer_a(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let p: &Pair = unsafe { data(me) };
    let mut got = ptr::null_mut();
    let st = unsafe { coro_kill(p.b.get() as *mut coro_t, val(10), &mut got) };
    p.a_kill.set((st, got as usize));
    val(30)
}

unsafe extern "C" fn victim_b(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let p: &Pair = unsafe { data(me) };
    let mut got = ptr::null_mut();
    let st = unsafe { coro_switch(main_handle(), val(1), &mut got) };
    p.b_switch.set((st, got as usize));
    let st = unsafe { coro_kill(p.a.get() as *mut coro_t, val(20), &mut got) };
    p.b_kill.set((st, got as usize));
    val(40)
}

#[test]
fn a_pending_kill_can_itself_be_interrupted_by_a_kill() {
    let p = Pair::default();
    let a = spawn_with(killer_a, ud(&p));
    let b = spawn_with(victim_b, ud(&p));
    p.a.set(a as usize);
    p.b.set(b as usize);
    assert_eq!(switch(b, 0), (CORO_OK, 1));
    // main -> A; A kills B; B kills A; A's kill returns KILLED(20) and A returns 30 to main.
    assert_eq!(switch(a, 0), (CORO_OK, 30));
    assert_eq!(p.b_switch.get(), (CORO_KILLED, 10));
    assert_eq!(p.a_kill.get(), (CORO_KILLED, 20));
    assert_eq!(state(a), CORO_DEAD);
    assert_eq!(state(b), CORO_SUSPENDED, "B waits in its coro_kill(A)");
    // Resuming B ends its pending kill with the switch's value; B returns 40 to main.
    assert_eq!(switch(b, 50), (CORO_OK, 40));
    assert_eq!(p.b_kill.get(), (CORO_OK, 50));
    destroy(a);
    destroy(b);
}
