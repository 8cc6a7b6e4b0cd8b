//! The boundary between Rust and the C code that calls the extension (the interpreter's slots
//! and method tables, greenlet's C API capsule, pending calls, the engine's entry functions).
//!
//! No Rust panic may unwind into C: it would be undefined behaviour, and a panic in the middle of
//! a switch could not leave the interpreter, the thread's greenlet state and the engine
//! consistent anyway. So every function that C calls runs its body through [`abort_on_panic`],
//! which ends the process with a message naming the entry point instead. (Foreign exceptions
//! going the other way, a C++ exception escaping a uthread's `run`, are `unwind_barrier`'s
//! concern.)

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; if it panics, prints "uthread: internal error (Rust panic) in `what`; aborting" to
/// stderr and aborts. `what` is only formatted on that path, so passing `format_args!` is free.
///
/// `AssertUnwindSafe`: nothing observes the state `f` left behind after a panic, since the
/// process ends.
#[inline]
pub fn abort_on_panic<R>(what: impl Display, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            eprintln!("uthread: internal error (Rust panic) in {what}; aborting");
            std::process::abort()
        }
    }
}
