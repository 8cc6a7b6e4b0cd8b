//! coro_version, coro_strerror and the constants of the header.

mod common;

use common::strerror;
use coro_sys::*;
use std::collections::HashSet;
use std::ffi::CStr;

#[test]
fn version_matches_the_header_constants() {
    // SAFETY: a static NUL-terminated string, never NULL.
    let v = unsafe { CStr::from_ptr(coro_version()) }.to_str().unwrap();
    assert_eq!(v, format!("{CORO_VERSION_MAJOR}.{CORO_VERSION_MINOR}.{CORO_VERSION_PATCH}"));
    // This crate is versioned with the library it binds.
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

#[test]
fn strerror_describes_every_status() {
    let all = [
        (CORO_OK, "CORO_OK"),
        (CORO_KILLED, "CORO_KILLED"),
        (CORO_EINVAL, "CORO_EINVAL"),
        (CORO_ESTALE, "CORO_ESTALE"),
        (CORO_EDEAD, "CORO_EDEAD"),
        (CORO_ETHREAD, "CORO_ETHREAD"),
        (CORO_EBUSY, "CORO_EBUSY"),
        (CORO_ECYCLE, "CORO_ECYCLE"),
        (CORO_ENOMEM, "CORO_ENOMEM"),
        (CORO_EMAIN, "CORO_EMAIN"),
        (CORO_EPANIC, "CORO_EPANIC"),
    ];
    // The numbers never change.
    for (i, (code, name)) in all.iter().enumerate() {
        assert_eq!(*code as usize, i, "{name}");
    }
    let unknown = strerror(11);
    assert_eq!(unknown, strerror(u32::MAX));
    assert!(!unknown.is_empty());
    let mut texts = HashSet::new();
    for (code, name) in all {
        let t = strerror(code);
        assert!(!t.is_empty() && !t.contains('\n'), "{name}: {t:?}");
        assert_ne!(t, unknown, "{name} is known");
        assert!(texts.insert(t.clone()), "{name}: duplicate text {t:?}");
    }
    assert_eq!(strerror(CORO_OK), "success");
}

#[test]
fn state_codes_and_stack_constants() {
    assert_eq!([CORO_NEW, CORO_RUNNING, CORO_SUSPENDED, CORO_DEAD], [0, 1, 2, 3]);
    // `usize`, like coro_options_t::stack_size.
    let sizes: [usize; 3] = [CORO_MIN_STACK_SIZE, CORO_DEFAULT_STACK_SIZE, CORO_MAX_STACK_SIZE];
    assert!(sizes[0] <= sizes[1] && sizes[1] <= sizes[2], "{sizes:?}");
}
