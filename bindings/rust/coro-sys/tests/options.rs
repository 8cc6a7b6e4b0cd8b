//! coro_options_t: coro_options_init, custom stack sizes, name and userdata at creation.

mod common;

use common::*;
use coro_sys::*;
use std::ffi::{c_void, CStr, CString};
use std::hint::black_box;
use std::ptr;

unsafe extern "C" fn return_arg(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    v
}

/// Uses `v` KiB of its stack, touching every page, and returns the sum of what it wrote.
unsafe extern "C" fn use_stack(_me: *mut coro_t, v: *mut c_void) -> *mut c_void {
    #[inline(never)]
    fn with_buffer<const N: usize>() -> usize {
        let mut buf = [0u8; N];
        for i in (0..N).step_by(1024) {
            buf[i] = 1;
        }
        black_box(&mut buf).iter().map(|&b| b as usize).sum()
    }
    val(match v as usize {
        4 => with_buffer::<{ 4 << 10 }>(),
        4096 => with_buffer::<{ 4 << 20 }>(),
        _ => 0,
    })
}

#[test]
fn options_init_fills_the_defaults() {
    let mut o = coro_options_t { struct_size: 1, stack_size: 2, name: c"junk".as_ptr(), userdata: val(3), flags: 4 };
    ok(unsafe { coro_options_init(&mut o) });
    assert_eq!(o.struct_size, std::mem::size_of::<coro_options_t>());
    // The header says "default stack size"; 0 means exactly that (the library writes 0).
    assert!(o.stack_size == 0 || o.stack_size == CORO_DEFAULT_STACK_SIZE, "{}", o.stack_size);
    assert!(o.name.is_null());
    assert!(o.userdata.is_null());
    assert_eq!(o.flags, 0);
    // The defaults create a coroutine.
    let mut c = ptr::null_mut();
    ok(unsafe { coro_new(Some(return_arg), &o, &mut c) });
    assert_eq!(switch(c, 8), (CORO_OK, 8));
    destroy(c);
}

fn spawn_sized(stack_size: usize, entry: Entry) -> *mut coro_t {
    let mut o = options();
    o.stack_size = stack_size;
    let mut c = ptr::null_mut();
    let st = unsafe { coro_new(Some(entry), &o, &mut c) };
    assert_eq!(st, CORO_OK, "stack_size {stack_size}: {}", strerror(st));
    c
}

#[test]
fn custom_stack_sizes() {
    // The smallest stack runs a small frame.
    let c = spawn_sized(CORO_MIN_STACK_SIZE, use_stack);
    assert_eq!(switch(c, 4), (CORO_OK, 4));
    destroy(c);
    // 8 MiB holds a 4 MiB frame, which would overflow the 256 KiB default (and abort).
    let c = spawn_sized(8 << 20, use_stack);
    assert_eq!(switch(c, 4096), (CORO_OK, 4096));
    destroy(c);
    // Accepted sizes: 0 (default), the bounds, and sizes that are not whole pages.
    for size in [0, CORO_MIN_STACK_SIZE, CORO_MIN_STACK_SIZE + 1, 100_000, CORO_MAX_STACK_SIZE] {
        let c = spawn_sized(size, return_arg);
        assert_eq!(switch(c, 1), (CORO_OK, 1));
        destroy(c);
    }
}

#[test]
fn name_and_userdata_at_creation() {
    let name = CString::new("opt-name").unwrap();
    let mut o = options();
    o.name = name.as_ptr();
    o.userdata = val(0xfeed);
    let mut c = ptr::null_mut();
    ok(unsafe { coro_new(Some(return_arg), &o, &mut c) });
    drop(name); // the library copied it
    let mut got = ptr::null();
    ok(unsafe { coro_name(c, &mut got) });
    assert_eq!(unsafe { CStr::from_ptr(got) }, c"opt-name");
    assert_eq!(userdata(c), val(0xfeed));
    destroy(c);
}

#[test]
fn a_larger_struct_size_is_accepted() {
    /// What a caller built against a later header (with more fields) would pass.
    #[repr(C)]
    struct Later {
        base: coro_options_t,
        more: [u64; 4],
    }
    let mut l = Later { base: options(), more: [0; 4] };
    l.base.struct_size = std::mem::size_of::<Later>();
    let mut c = ptr::null_mut();
    ok(unsafe { coro_new(Some(return_arg), &l.base, &mut c) });
    assert_eq!(switch(c, 2), (CORO_OK, 2));
    destroy(c);
}
