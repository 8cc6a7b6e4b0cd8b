//! Per-OS-thread state: the current and main coroutines, what the last switch carried, the stack
//! pool and the block cache. Created lazily by the first call that needs it; torn down by a
//! thread-local destructor when the thread exits.

use crate::engine::block::{self, flags, Block, Entry, State};
use crate::engine::overflow;
use crate::engine::switch::copying::ThreadCopying;
use crate::stack::StackPool;
use crate::tools::{AsanFibers, TsanFibers};
use core::any::Any;
use core::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Identifies a thread for ownership checks; outlives the thread while any of its blocks exist.
pub struct ThreadMark {
    pub(crate) alive: AtomicBool,
}

/// How the coroutine being resumed must interpret the value it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Signal {
    /// A plain value (a switch, or a finished child's return value).
    Value,
    /// `kill(reason)`: the pending switch reports that it was killed.
    Killed,
    /// A child panicked; the payload waits in [`ThreadCtx::panic`].
    Panic,
    /// The last handle was dropped: unwind (Rust coroutines only).
    Unwind,
    /// No switch happened: the C ABI refused it; the value is the status code.
    Refused,
}

impl Signal {
    /// The signal a word carries (as written by `Signal as usize`).
    pub(crate) fn from_word(word: usize) -> Signal {
        match word {
            0 => Signal::Value,
            1 => Signal::Killed,
            2 => Signal::Panic,
            3 => Signal::Unwind,
            _ => Signal::Refused,
        }
    }
}

pub(crate) struct ThreadCtx {
    pub(crate) current: Cell<*mut Block>,
    pub(crate) main: *mut Block,
    pub(crate) mark: Arc<ThreadMark>,
    /// What the switch fast path XORs a handle with to get the key a resumable block of this
    /// thread carries (`Block::resume_key`): the mark's address, or 0 when a sanitizer needs to
    /// see every switch (no key can match 0: a mark is a heap address, never a handle's tag).
    pub(crate) fast_mark: usize,
    /// The switch in flight: how to read its value, and the value.
    pub(crate) signal: Cell<Signal>,
    pub(crate) value: Cell<usize>,
    /// Set by `depart`, cleared by `arrive`: whether an end hook finds a switch to complete.
    pub(crate) arriving: Cell<bool>,
    pub(crate) panic: Cell<Option<Box<dyn Any + Send>>>,
    /// A coroutine that just finished: the next code to run on another stack releases its stack.
    pub(crate) dying: Cell<*mut Block>,
    /// The coroutine that switched last (for ASan's stack bookkeeping and unreferenced checks).
    pub(crate) came_from: Cell<*mut Block>,
    pub(crate) asan: Option<AsanFibers>,
    pub(crate) tsan: Option<TsanFibers>,
    pub(crate) pool: UnsafeCell<StackPool>,
    pub(crate) vacant: UnsafeCell<Vec<*mut Block>>,
    /// Copying mode: shared stacks, the switcher, the thread's default mode.
    pub(crate) copying: UnsafeCell<ThreadCopying>,
    altstack: Option<overflow::AltStack>,
}

thread_local! {
    static TEARDOWN: Teardown = const { Teardown };
}

/// Where this thread's `ThreadCtx` is published: the arch's thread word (read on every switch),
/// null until the first use and again once `Teardown` has run.
#[inline(always)]
fn ctx_slot() -> *mut *mut ThreadCtx {
    crate::arch::thread_word().cast()
}

/// Its destructor runs when the thread exits and releases the thread's state.
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        // SAFETY: the thread word is this thread's own.
        let ctx = unsafe { ctx_slot().replace(core::ptr::null_mut()) };
        if !ctx.is_null() {
            // SAFETY: `ctx` came from Box::into_raw in `ThreadCtx::get` and was just unpublished,
            // so nothing else will reach it.
            unsafe { ThreadCtx::destroy(ctx) };
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique coroutine id (never reused).
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl ThreadCtx {
    /// This thread's state, created on first use (with its main coroutine).
    ///
    /// The reference is valid until the thread's TLS destructors run; coroutine code never runs
    /// after that, so callers may hold it across switches.
    #[inline]
    pub(crate) fn get() -> Result<&'static ThreadCtx, crate::Error> {
        // SAFETY: the thread word is this thread's own.
        let ctx = unsafe { *ctx_slot() };
        if !ctx.is_null() {
            // SAFETY: published by `create` below and only freed by `Teardown` at thread exit.
            return Ok(unsafe { &*ctx });
        }
        Self::create()
    }

    /// This thread's state if it exists (for the fault handler: never allocates).
    #[inline(always)]
    pub(crate) fn peek() -> *const ThreadCtx {
        // SAFETY: the thread word is this thread's own (and static TLS, valid in a signal handler).
        unsafe { *ctx_slot() }
    }

    #[cold]
    fn create() -> Result<&'static ThreadCtx, crate::Error> {
        overflow::install_handler();
        let mut vacant = Vec::new();
        let main = block::take_vacant(&mut vacant).ok_or(crate::Error::NoMemory)?;
        let mark = Arc::new(ThreadMark { alive: AtomicBool::new(true) });
        // SAFETY: a vacant block belongs to whoever took it.
        unsafe {
            let b = &*main;
            b.owner.store(Arc::into_raw(mark.clone()).cast_mut(), Ordering::Relaxed);
            Block::set_state(main, State::Running);
            b.flags.set(flags::MAIN);
            b.refs.set(1); // held by this ThreadCtx
            b.id.set(next_id());
        }
        let asan = AsanFibers::get();
        let tsan = TsanFibers::get();
        let fast_mark = if asan.is_none() && tsan.is_none() { Arc::as_ptr(&mark) as usize } else { 0 };
        let ctx = Box::new(ThreadCtx {
            current: Cell::new(main),
            main,
            mark,
            fast_mark,
            signal: Cell::new(Signal::Value),
            value: Cell::new(0),
            arriving: Cell::new(false),
            panic: Cell::new(None),
            dying: Cell::new(core::ptr::null_mut()),
            came_from: Cell::new(core::ptr::null_mut()),
            asan,
            tsan,
            pool: UnsafeCell::new(StackPool::default()),
            vacant: UnsafeCell::new(vacant),
            copying: UnsafeCell::new(ThreadCopying::default()),
            altstack: overflow::AltStack::install(),
        });
        let ctx = Box::into_raw(ctx);
        // SAFETY: the thread word is this thread's own.
        unsafe { *ctx_slot() = ctx };
        // Registers the destructor; a thread already tearing down simply leaks its state.
        let _ = TEARDOWN.try_with(|_| ());
        // SAFETY: just published; lives until Teardown.
        Ok(unsafe { &*ctx })
    }

    pub(crate) fn mark_ptr(&self) -> *mut ThreadMark {
        Arc::as_ptr(&self.mark).cast_mut()
    }

    /// # Safety
    /// `ctx` must be unpublished and not used again.
    unsafe fn destroy(ctx: *mut ThreadCtx) {
        // SAFETY: per the contract we own it now.
        let ctx = unsafe { Box::from_raw(ctx) };
        let main = ctx.main;
        // SAFETY: the main block lives while the ctx holds its reference.
        unsafe {
            Block::set_state(main, State::Dead);
            *(*main).entry.get() = Entry::Taken;
        }
        // SAFETY: releases the reference taken in `create`.
        unsafe { crate::engine::switch::release_ref(main) };
        // SAFETY: no switch can happen any more on this thread.
        let vacant = unsafe { &mut *ctx.vacant.get() };
        block::spill_vacant(vacant, 0);
        // Last: from here on other threads may treat this thread's coroutines as orphans and
        // release them, so this thread must not touch them any more.
        ctx.mark.alive.store(false, Ordering::Release);
        drop(ctx);
    }
}

impl Drop for ThreadCtx {
    fn drop(&mut self) {
        if let Some(alt) = self.altstack.take() {
            alt.uninstall();
        }
    }
}
