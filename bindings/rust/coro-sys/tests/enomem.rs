//! CORO_ENOMEM: under an address-space limit, a coroutine whose stack cannot be mapped is refused.
//!
//! A test binary of its own: RLIMIT_AS is process-wide, so nothing else may run beside it.
//! Not under ThreadSanitizer (`--cfg coro_sanitize="thread"`, ci/sanitize.sh): its runtime maps
//! shadow memory for every new mapping, so under the limit the sanitizer's own mapping fails
//! first and it ends the process. The plain and AddressSanitizer runs keep this test.

#![cfg(all(target_os = "linux", target_pointer_width = "64", not(coro_sanitize = "thread")))]

mod common;

use common::*;
use coro_sys::*;
use std::ffi::{c_int, c_void};
use std::ptr;

/// `struct rlimit` on 64-bit Linux (`rlim_t` is `unsigned long`).
#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

const RLIMIT_AS: c_int = 9;

extern "C" {
    fn getrlimit(resource: c_int, rlim: *mut Rlimit) -> c_int;
    fn setrlimit(resource: c_int, rlim: *const Rlimit) -> c_int;
}

/// Current address-space size in bytes, from /proc/self/status.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

unsafe extern "C" fn return_arg(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    v
}

fn new_sized(stack_size: usize) -> (coro_status_t, *mut coro_t) {
    let mut o = options();
    o.stack_size = stack_size;
    let mut c = ptr::null_mut();
    let st = unsafe { coro_new(Some(return_arg), &o, &mut c) };
    (st, c)
}

#[test]
fn enomem_when_the_stack_cannot_be_mapped() {
    main_coro(); // the thread's main coroutine exists before the limit
    let mut old = Rlimit { cur: 0, max: 0 };
    assert_eq!(unsafe { getrlimit(RLIMIT_AS, &mut old) }, 0);
    let limit = vm_size() + (256 << 20);
    if old.cur != u64::MAX && old.cur < limit {
        eprintln!("skipped: RLIMIT_AS is already {} bytes", old.cur);
        return;
    }
    assert_eq!(unsafe { setrlimit(RLIMIT_AS, &Rlimit { cur: limit, max: old.max }) }, 0);

    let (big, big_c) = new_sized(CORO_MAX_STACK_SIZE);
    let (small, small_c) = new_sized(CORO_MIN_STACK_SIZE);

    assert_eq!(unsafe { setrlimit(RLIMIT_AS, &old) }, 0);

    expect(big, CORO_ENOMEM);
    assert!(big_c.is_null(), "out written on failure");
    // A stack that fits is still granted, and works.
    ok(small);
    assert_eq!(switch(small_c, 6), (CORO_OK, 6));
    destroy(small_c);
    // With the limit lifted, the big one can be created again.
    let (big, big_c) = new_sized(CORO_MAX_STACK_SIZE);
    ok(big);
    destroy(big_c);
}
