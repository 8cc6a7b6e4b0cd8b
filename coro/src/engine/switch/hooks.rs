//! The hooks of the two shells' switch calls, side by side. Each shell's switch is first its
//! assembly fast path (`fast.rs`); when that declines, one `coro_arch_enter` (see `arch`) runs a
//! *begin* hook on the leaving stack and, once the switch back has happened, an *end* hook on the
//! resumed one. Both begin hooks check their target and depart through [`depart_checked`]; they
//! differ only in how the caller names the target and what the resumed call returns.
//!
//! - Rust ([`enter_rust`], behind [`switch`](super::switch)): `begin_rust` / `end_rust` take a
//!   block and return an `arch::Arrival` (signal and value), which `switch` turns into a result.
//! - C (`coro_switch` in `ffi.rs`, whose body is the fast path): [`begin_c`] / [`end_c`] take a
//!   handle and return the call's status, writing `*received`.
//!
//! No hook may unwind: they run between the caller and the stack switch, with no Rust frame to
//! catch anything, so every fallible step is a status or a refusal, never a panic.

use super::{arrive, depart_checked, take_panic};
use crate::arch;
use crate::engine::block::Block;
use crate::engine::thread::{Signal, ThreadCtx};
use crate::error::{Error, SUCCESS};
use core::ffi::c_void;
use core::ptr::null_mut;
use std::panic::catch_unwind;

/// The Rust shell's switch: the assembly fast path (`fast.rs`), else one `coro_arch_enter` with
/// the Rust side's hooks. Naked, so that the resumed side returns straight into the code that
/// called it (see `arch`).
///
/// # Safety
/// `to` must be a slab block.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn enter_rust(to: *mut Block, signal: usize, value: usize) -> arch::Arrival {
    super::fast::rust_switch_body!();
}

/// Begin hook of [`enter_rust`], reached when its assembly fast path (`fast.rs`) declined: checks
/// `to` and departs through `depart_checked`, or refuses.
///
/// It is the function `coro_arch_enter` calls, with no frame of ours in between: under an
/// instrumented TSan build the fiber switch must happen in the hook's own frame
/// (`TsanFibers::switch`).
///
/// # Safety
/// Only as a begin hook of `coro_arch_enter`; `to` is a slab block.
pub(super) unsafe extern "C" fn begin_rust(to: usize, signal: usize, value: usize, sp: *mut u8) -> arch::Departure {
    let Ok(ctx) = ThreadCtx::get() else {
        return arch::Departure { sp, ctx: null_mut() };
    };
    ctx.signal.set(Signal::from_word(signal));
    ctx.value.set(value);
    // SAFETY: the caller passes a slab block; the current block is this thread's. A Rust caller
    // takes its value from the end hook's result, not through a pointer.
    unsafe {
        (*ctx.current.get()).received.set(null_mut());
        depart_checked(ctx, to as *mut Block, sp)
    }
}

/// End hook of [`enter_rust`]: what the resumed call returns.
pub(super) unsafe extern "C" fn end_rust(ctx: *mut u8) -> arch::Arrival {
    if ctx.is_null() {
        return arch::Arrival { signal: Signal::Refused as usize, value: Error::NoMemory.code() as usize };
    }
    // SAFETY: `ctx` is the word `depart` handed on: this thread's live ThreadCtx.
    unsafe {
        let ctx = &*(ctx as *const ThreadCtx);
        let arrival = arch::Arrival { signal: ctx.signal.get() as usize, value: ctx.value.get() };
        arrive(ctx);
        arrival
    }
}

/// Begin hook of `coro_switch(to, value, received)`, reached when its assembly fast path
/// (`fast.rs`) declined: checks everything and either departs for `to` or refuses (then it stays
/// on the caller's stack and the end hook returns the status). It never panics: its only
/// allocation is the thread's state on first use, and when that fails it stays with a null
/// context, which the end hook reports as `CORO_ENOMEM`. Called by `coro_arch_enter` directly,
/// like [`begin_rust`] (TSan's fiber switch must happen in this frame).
///
/// # Safety
/// Only as a begin hook of `coro_arch_enter`; `to` is NULL or a handle returned by this library,
/// `received` NULL or a writable `void *` slot.
pub(crate) unsafe extern "C" fn begin_c(to: usize, value: usize, received: usize, sp: *mut u8) -> arch::Departure {
    let Ok(ctx) = ThreadCtx::get() else {
        return arch::Departure { sp, ctx: null_mut() };
    };
    let refuse = |e: Error| {
        ctx.signal.set(Signal::Refused);
        ctx.value.set(e.code() as usize);
        arch::Departure { sp, ctx: ctx as *const ThreadCtx as *mut u8 }
    };
    // SAFETY: the handle's generation is checked before its block is used; the rest of the
    // checks happen in `depart_checked`. The current block is this thread's.
    unsafe {
        ctx.signal.set(Signal::Value);
        ctx.value.set(value);
        let b = match Block::from_handle(to as *const Block) {
            None => return refuse(Error::Invalid),
            Some(Err(())) => return refuse(Error::Stale),
            Some(Ok(b)) => b,
        };
        (*ctx.current.get()).received.set(received as *mut *mut c_void);
        depart_checked(ctx, b, sp)
    }
}

/// End hook of `coro_switch`, run on the resumed side: completes the switch and turns what the
/// resumed call was sent into its status and `*received`.
///
/// # Safety
/// Only as the end hook paired with [`begin_c`].
pub(crate) unsafe extern "C" fn end_c(ctx: *mut u8) -> u32 {
    if ctx.is_null() {
        return Error::NoMemory.code();
    }
    // SAFETY: `ctx` is this thread's live state, handed on by the begin hook.
    unsafe {
        let ctx = &*(ctx as *const ThreadCtx);
        let signal = ctx.signal.get();
        let value = ctx.value.get();
        arrive(ctx);
        let status = match signal {
            Signal::Value => SUCCESS,
            Signal::Killed | Signal::Unwind => Error::Killed { reason: value }.code(),
            Signal::Refused => return value as u32,
            Signal::Panic => {
                // Dropping a payload runs foreign code; it must not unwind into C.
                let _ = catch_unwind(|| drop(take_panic()));
                return Error::Panicked.code();
            }
        };
        let received = (*ctx.current.get()).received.get();
        if !received.is_null() {
            received.write(value as *mut c_void);
        }
        status
    }
}
