//! Every status code through the raw C API (CORO_ENOMEM is in tests/enomem.rs; CORO_EPANIC needs a
//! panicking Rust coroutine and cannot be produced through the C interface), and the convention
//! that out-params are written only on success.

mod common;

use common::*;
use coro_sys::*;
use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::ptr;

unsafe extern "C" fn return_arg(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    v
}

unsafe extern "C" fn yield_to_main(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    let mut main = ptr::null_mut();
    let mut got = ptr::null_mut();
    unsafe {
        coro_main(&mut main);
        coro_switch(main, v, &mut got);
    }
    got
}

const SENTINEL: usize = 0x5e_4714e1;

#[test]
fn ok_and_killed() {
    let c = spawn(return_arg);
    assert_eq!(switch(c, 3), (CORO_OK, 3));
    destroy(c);
    assert_eq!(kill(main_coro(), 1), (CORO_KILLED, 1));
}

#[test]
fn einval_for_null_arguments() {
    let c = spawn(return_arg);
    let null_c: *mut coro_t = ptr::null_mut();
    let mut h = val(SENTINEL).cast::<coro_t>();
    let mut p = val(SENTINEL);
    let mut s: coro_state_t = 77;
    let mut id = 77u64;
    let mut name = val(SENTINEL) as *const c_char;
    unsafe {
        expect(coro_new(None, ptr::null(), &mut h), CORO_EINVAL);
        expect(coro_new(Some(return_arg), ptr::null(), ptr::null_mut()), CORO_EINVAL);
        expect(coro_switch(null_c, val(1), &mut p), CORO_EINVAL);
        expect(coro_kill(null_c, val(1), &mut p), CORO_EINVAL);
        expect(coro_destroy(null_c), CORO_EINVAL);
        expect(coro_options_init(ptr::null_mut()), CORO_EINVAL);
        expect(coro_current(ptr::null_mut()), CORO_EINVAL);
        expect(coro_main(ptr::null_mut()), CORO_EINVAL);
        expect(coro_state(null_c, &mut s), CORO_EINVAL);
        expect(coro_state(c, ptr::null_mut()), CORO_EINVAL);
        expect(coro_parent(null_c, &mut h), CORO_EINVAL);
        expect(coro_parent(c, ptr::null_mut()), CORO_EINVAL);
        expect(coro_set_parent(null_c, c), CORO_EINVAL);
        expect(coro_set_parent(c, null_c), CORO_EINVAL);
        expect(coro_set_userdata(null_c, val(1)), CORO_EINVAL);
        expect(coro_userdata(null_c, &mut p), CORO_EINVAL);
        expect(coro_userdata(c, ptr::null_mut()), CORO_EINVAL);
        expect(coro_set_name(null_c, c"x".as_ptr()), CORO_EINVAL);
        expect(coro_name(null_c, &mut name), CORO_EINVAL);
        expect(coro_name(c, ptr::null_mut()), CORO_EINVAL);
        expect(coro_id(null_c, &mut id), CORO_EINVAL);
        expect(coro_id(c, ptr::null_mut()), CORO_EINVAL);
    }
    // Out-params are written only on success.
    assert_eq!(h as usize, SENTINEL);
    assert_eq!(p as usize, SENTINEL);
    assert_eq!(s, 77);
    assert_eq!(id, 77);
    assert_eq!(name as usize, SENTINEL);
    // Nothing changed.
    assert_eq!(state(c), CORO_NEW);
    assert_eq!(parent(c), main_coro());
    destroy(c);
}

#[test]
fn einval_for_bad_options() {
    let mut h = ptr::null_mut();
    type Spoil = fn(&mut coro_options_t);
    let cases: [(&str, Spoil); 6] = [
        ("struct_size 0", |o| o.struct_size = 0),
        ("struct_size too small", |o| o.struct_size = std::mem::size_of::<coro_options_t>() - 1),
        ("stack below minimum", |o| o.stack_size = CORO_MIN_STACK_SIZE - 1),
        ("stack above maximum", |o| o.stack_size = CORO_MAX_STACK_SIZE + 1),
        ("unknown flag bit", |o| o.flags = 1 << 31),
        ("copying and own stack together", |o| o.flags = CORO_FLAG_COPYING | CORO_FLAG_OWN_STACK),
    ];
    for (what, spoil) in cases {
        let mut o = options();
        spoil(&mut o);
        let st = unsafe { coro_new(Some(return_arg), &o, &mut h) };
        assert_eq!(st, CORO_EINVAL, "{what}: {}", strerror(st));
        assert!(h.is_null(), "{what}: out written on failure");
    }
}

#[test]
fn estale_after_destroy() {
    let c = spawn(return_arg);
    let other = spawn(return_arg);
    destroy(c);
    let mut h = ptr::null_mut();
    let mut p = ptr::null_mut();
    let mut s = 0;
    let mut id = 0;
    let mut name = ptr::null();
    unsafe {
        expect(coro_switch(c, val(1), &mut p), CORO_ESTALE);
        expect(coro_kill(c, val(1), &mut p), CORO_ESTALE);
        expect(coro_destroy(c), CORO_ESTALE);
        expect(coro_state(c, &mut s), CORO_ESTALE);
        expect(coro_parent(c, &mut h), CORO_ESTALE);
        expect(coro_set_parent(c, other), CORO_ESTALE);
        expect(coro_set_parent(other, c), CORO_ESTALE);
        expect(coro_set_userdata(c, val(1)), CORO_ESTALE);
        expect(coro_userdata(c, &mut p), CORO_ESTALE);
        expect(coro_set_name(c, c"x".as_ptr()), CORO_ESTALE);
        expect(coro_name(c, &mut name), CORO_ESTALE);
        expect(coro_id(c, &mut id), CORO_ESTALE);
    }
    assert_eq!(parent(other), main_coro());
    destroy(other);
}

#[test]
fn edead_for_switch_and_kill() {
    let c = spawn(return_arg);
    switch(c, 0);
    assert_eq!(state(c), CORO_DEAD);
    expect(switch(c, 1).0, CORO_EDEAD);
    expect(kill(c, 1).0, CORO_EDEAD);
    // A DEAD coroutine still answers queries and can be destroyed.
    assert_eq!(parent(c), main_coro());
    destroy(c);
}

#[test]
fn ethread_from_another_thread() {
    let c = spawn(yield_to_main);
    assert_eq!(switch(c, 1), (CORO_OK, 1)); // SUSPENDED
    let n = spawn(return_arg); // NEW
    let (sc, sn) = (SendPtr(c), SendPtr(n));
    let results = std::thread::spawn(move || {
        let (c, n) = (sc.get(), sn.get());
        let mut h = ptr::null_mut();
        let mut p = ptr::null_mut();
        let mut s = 0;
        let mut id = 0;
        let mut name = ptr::null();
        let mut local = ptr::null_mut();
        unsafe {
            let own = coro_new(Some(return_arg), ptr::null(), &mut local);
            let r = vec![
                ("switch", coro_switch(c, val(1), &mut p)),
                ("kill", coro_kill(c, val(1), &mut p)),
                ("kill NEW", coro_kill(n, val(1), &mut p)),
                ("destroy NEW", coro_destroy(n)),
                ("state", coro_state(c, &mut s)),
                ("parent", coro_parent(c, &mut h)),
                ("set_parent", coro_set_parent(c, n)),
                ("set_parent to a foreign parent", coro_set_parent(local, c)),
                ("set_userdata", coro_set_userdata(c, val(1))),
                ("userdata", coro_userdata(c, &mut p)),
                ("set_name", coro_set_name(c, c"x".as_ptr())),
                ("name", coro_name(c, &mut name)),
                ("id", coro_id(c, &mut id)),
            ];
            let mine = (own, coro_destroy(local));
            (r, mine)
        }
    })
    .join()
    .unwrap();
    let (r, mine) = results;
    for (what, st) in r {
        assert_eq!(st, CORO_ETHREAD, "{what}: {}", strerror(st));
    }
    assert_eq!(mine, (CORO_OK, CORO_OK));
    // Nothing changed here.
    assert_eq!(state(n), CORO_NEW);
    assert_eq!(state(c), CORO_SUSPENDED);
    assert!(userdata(c).is_null());
    assert_eq!(switch(c, 2), (CORO_OK, 2));
    destroy(c);
    destroy(n);
}

unsafe extern "C" fn destroy_self(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    val(unsafe { coro_destroy(me) } as usize)
}

#[test]
fn ebusy_for_running_and_suspended() {
    let c = spawn(yield_to_main);
    assert_eq!(switch(c, 1), (CORO_OK, 1));
    expect(unsafe { coro_destroy(c) }, CORO_EBUSY);
    assert_eq!(state(c), CORO_SUSPENDED);
    assert_eq!(switch(c, 2), (CORO_OK, 2));
    destroy(c);

    let r = spawn(destroy_self);
    let (st, inner) = switch(r, 0);
    ok(st);
    expect(inner as coro_status_t, CORO_EBUSY);
    destroy(r);
}

#[test]
fn ecycle_for_a_parent_loop() {
    let a = spawn(return_arg);
    let b = spawn(return_arg);
    let c = spawn(return_arg);
    expect(unsafe { coro_set_parent(a, a) }, CORO_ECYCLE);
    ok(unsafe { coro_set_parent(b, a) });
    ok(unsafe { coro_set_parent(c, b) });
    // a <- b <- c: making c (or b) a's parent would close the loop.
    expect(unsafe { coro_set_parent(a, c) }, CORO_ECYCLE);
    expect(unsafe { coro_set_parent(a, b) }, CORO_ECYCLE);
    assert_eq!(parent(a), main_coro(), "unchanged after ECYCLE");
    for h in [c, b, a] {
        destroy(h);
    }
}

#[test]
fn emain_for_main_coroutines() {
    let m = main_coro();
    let c = spawn(return_arg);
    expect(unsafe { coro_destroy(m) }, CORO_EMAIN);
    expect(unsafe { coro_set_parent(m, c) }, CORO_EMAIN);
    assert!(parent(m).is_null());
    assert_eq!(state(m), CORO_RUNNING);
    destroy(c);
}

unsafe extern "C" fn destroy_main(me: *mut coro_t, _v: *mut c_void) -> *mut c_void {
    let seen: &Cell<coro_status_t> = unsafe { data(me) };
    let mut m = ptr::null_mut();
    unsafe { coro_main(&mut m) };
    seen.set(unsafe { coro_destroy(m) });
    ptr::null_mut()
}

#[test]
fn emain_also_for_a_suspended_main() {
    let seen = Cell::new(CORO_OK);
    let c = spawn_with(destroy_main, ud(&seen));
    switch(c, 0);
    expect(seen.get(), CORO_EMAIN);
    destroy(c);
}
