//! Switching: moving control between coroutines, and what a switch sets off (kill, the parent
//! rule when a coroutine finishes). The rest of a coroutine's life is in [`lifetime`]; both
//! shells' switch entries, the assembly fast path, in [`fast`], and their `coro_arch_enter` hooks
//! (the checked path) in [`hooks`]; copying mode, which every switch into a
//! copying coroutine goes through and which calls back into this module, in [`copying`].
//!
//! Everything here works on raw `*mut Block` and is `unsafe`: the safe Rust API
//! (`coroutine.rs`) and the C ABI (`ffi.rs`) are thin shells that establish the contracts.
//! All functions must be called on the thread that owns the blocks involved; the entry points
//! check that with [`check_owner`].

use crate::arch;
use crate::engine::block::{Block, Entry, State};
use crate::engine::thread::{Signal, ThreadCtx};
use crate::Error;
use core::any::Any;
use core::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

pub(in crate::engine) mod copying;
pub(crate) mod fast;
pub(in crate::engine) mod hooks;
mod lifetime;

pub(crate) use fast::c_switch_body;
pub(crate) use hooks::{begin_c, end_c};
pub(crate) use lifetime::*;

/// What a suspended coroutine finds when it is resumed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub signal: Signal,
    pub value: usize,
}

/// The panic payload used to unwind a coroutine whose last handle was dropped. Caught at the
/// coroutine's root and never reported as a panic.
pub(crate) struct ForcedUnwind;

/// Who may touch `b` from this thread.
pub(crate) enum Access {
    /// `b` belongs to this thread.
    Owner,
    /// `b`'s thread has exited: only destroy is possible.
    Orphan,
}

/// Checks that `b` belongs to the calling thread (or is an orphan).
///
/// # Safety
/// `b` must be a slab block (live or vacant).
pub(crate) unsafe fn check_owner(ctx: &ThreadCtx, b: *const Block) -> Result<Access, Error> {
    // SAFETY: slab blocks stay mapped; `owner` is atomic.
    let owner = unsafe { (*b).owner.load(Ordering::Acquire) };
    if owner == ctx.mark_ptr() {
        Ok(Access::Owner)
    } else if owner.is_null() {
        Err(Error::Stale)
    } else if unsafe { (*owner).alive.load(Ordering::Acquire) } {
        // SAFETY (deref above): a mark outlives every block that points to it.
        Err(Error::WrongThread)
    } else {
        Ok(Access::Orphan)
    }
}

/// Switches from the current coroutine to `to`, carrying `signal` and `value`; returns what the
/// switch back into the caller carries. Switching to the current coroutine returns at once.
///
/// # Safety
/// `to` must be a slab block.
#[inline(always)]
pub(crate) unsafe fn switch(to: *mut Block, signal: Signal, value: usize) -> Result<Received, Error> {
    // SAFETY: the entry's begin hook checks `to` before departing.
    let arrival = unsafe { hooks::enter_rust(to, signal as usize, value) };
    match Signal::from_word(arrival.signal) {
        Signal::Refused => Err(Error::from_code(arrival.value as u32).unwrap_or(Error::Invalid)),
        signal => Ok(Received { signal, value: arrival.value }),
    }
}

/// Checks that `to` can be switched to from this thread's current coroutine and departs for it;
/// otherwise stays (the caller's own `sp`), with the refusal (or, for the current coroutine
/// itself, the signal and value as they are) left in `ctx` for the end hook.
///
/// # Safety
/// `to` is a slab block; `ctx.signal`/`ctx.value` hold what the switch carries.
#[inline(always)]
pub(crate) unsafe fn depart_checked(ctx: &ThreadCtx, to: *mut Block, sp: *mut u8) -> arch::Departure {
    let stay = arch::Departure { sp, ctx: ctx as *const ThreadCtx as *mut u8 };
    let refuse = |e: Error| {
        ctx.signal.set(Signal::Refused);
        ctx.value.set(e.code() as usize);
        arch::Departure { sp, ctx: ctx as *const ThreadCtx as *mut u8 }
    };
    // SAFETY: slab blocks stay readable; once the owner matches, the block is this thread's.
    unsafe {
        if (*to).owner.load(Ordering::Relaxed) != ctx.mark_ptr() {
            return refuse(match check_owner(ctx, to) {
                Err(e) => e,
                Ok(_) => Error::WrongThread,
            });
        }
        if to == ctx.current.get() {
            return stay;
        }
        match (*to).state() {
            State::Suspended | State::New => depart(ctx, to, sp),
            State::Dead => refuse(Error::Dead),
            // Only the current coroutine runs, and that case was handled above.
            State::Running => refuse(Error::Busy),
        }
    }
}

/// Kills `target`: see docs/semantics.md ("Kill").
///
/// # Safety
/// `target` must be a slab block.
pub(crate) unsafe fn kill(target: *mut Block, reason: usize) -> Result<Received, Error> {
    let ctx = ThreadCtx::get()?;
    // SAFETY: forwarded.
    if let Access::Orphan = unsafe { check_owner(ctx, target)? } {
        return Err(Error::WrongThread);
    }
    // SAFETY: owned by this thread.
    match unsafe { (*target).state() } {
        State::New => {
            // SAFETY: a NEW coroutine never ran, so nothing is on its stack.
            unsafe { bury_unstarted(ctx, target) };
            Ok(Received { signal: Signal::Value, value: reason })
        }
        // SAFETY: forwarded; `switch` handles the current coroutine and SUSPENDED targets.
        _ => unsafe { switch(target, Signal::Killed, reason) },
    }
}

/// Moves control from the current coroutine to `to` and back, for internal switches whose target
/// is known to be valid.
///
/// # Safety
/// `to` is NEW or SUSPENDED and belongs to this thread; it is not the current coroutine.
unsafe fn transfer(to: *mut Block, signal: Signal, value: usize) -> Received {
    // SAFETY: forwarded.
    match unsafe { switch(to, signal, value) } {
        Ok(received) => received,
        // The contract rules refusals out; carrying on would corrupt the coroutine graph.
        Err(_) => std::process::abort(),
    }
}

/// End hook of a fresh stack: the second word is the value the entry starts with.
pub(crate) unsafe extern "C" fn first_end(ctx: *mut u8) -> arch::Arrival {
    // SAFETY: `ctx` is the word `depart` handed on: this thread's live ThreadCtx.
    unsafe {
        let ctx = &*(ctx as *const ThreadCtx);
        let value = ctx.value.get();
        arrive(ctx);
        arch::Arrival { signal: Signal::Value as usize, value }
    }
}

/// The leaving half of a switch from the current coroutine to `to` (the signal and value to
/// deliver are already in `ctx`): runs in a begin hook, with the current stack's saved `sp`.
///
/// # Safety
/// `to` is a NEW or SUSPENDED block of this thread other than the current one.
#[inline(always)]
pub(crate) unsafe fn depart(ctx: &ThreadCtx, to: *mut Block, sp: *mut u8) -> arch::Departure {
    let from = ctx.current.get();
    // SAFETY: both blocks belong to this thread and are alive (the current one runs; `to` is
    // referenced by the caller).
    unsafe {
        let canary = (*from).canary.get();
        if !canary.is_null() && !crate::stack::canary_intact(canary) {
            crate::engine::overflow::report_canary(&*from, stack_size(from));
        }
        (*from).saved_sp.set(sp);
        if let (Some(asan), State::New, true) = (ctx.asan, (*to).state(), (*to).shared.get().is_null()) {
            // A stack's earlier users may have left poison in ASan's shadow (see `unpoison`).
            // (Copying mode unpoisons its shared stack at every restore: copying.rs.)
            asan.unpoison(stack_bounds(to));
        }
        if (*from).state() == State::Running {
            Block::set_state(from, State::Suspended);
        }
        Block::set_state(to, State::Running);
        ctx.current.set(to);
        // Tell unwinders who resumed `to`. A finishing coroutine hands on its own resumer, since
        // its stack is about to be released (read now: a copying coroutine's link word may be
        // overwritten below).
        let link = if (*to).link_slot.get().is_null() {
            core::ptr::null_mut() // a main coroutine: no link word
        } else {
            let from_link = (*from).link_slot.get();
            if (*from).state() == State::Dead && !from_link.is_null() {
                *from_link
            } else {
                (*from).saved_sp.as_ptr()
            }
        };
        // Copying mode: put `to`'s frames on its shared stack first (see copying.rs).
        let shared = (*to).shared.get();
        if !shared.is_null() && (*shared).occupant() != to && copying::bring_in(from, to, &*shared) {
            return copying::via_switcher(ctx, from, to, link);
        }
        depart_tail(ctx, from, to, link)
    }
}

/// The rest of [`depart`] once `to`'s frames are in place: the link word, the tools, and either
/// the fast path or the hand-over to `to`'s end hook. Runs on the leaving stack, or on the
/// switcher stack (copying mode).
/// Like [`depart`] and [`depart_checked`], always inlined into its begin hook: under an
/// instrumented TSan build the fiber switch must happen in the hook's own frame
/// (`TsanFibers::switch`).
///
/// # Safety
/// As for [`depart`], whose first half has run for `from` and `to`; `link` is the value for
/// `to`'s link word.
#[inline(always)]
pub(crate) unsafe fn depart_tail(
    ctx: &ThreadCtx,
    from: *mut Block,
    to: *mut Block,
    link: *mut *mut u8,
) -> arch::Departure {
    // SAFETY: per the contract.
    unsafe {
        let slot = (*to).link_slot.get();
        if !slot.is_null() {
            *slot = link;
        }
        if let Some(tsan) = ctx.tsan {
            tsan.switch(&(*from).tsan_fiber, &(*to).tsan_fiber);
        }
        // Fast path: a plain value to deliver, and nothing for the arriving side to tidy up (no
        // sanitizer, no finished coroutine to bury, and `from` still referenced). Then this hook
        // completes the switch itself: a C caller suspended in `coro_switch` gets its value
        // written here, and its call returns (CORO_OK, value), as every end hook would.
        if ctx.signal.get() == Signal::Value
            && ctx.asan.is_none()
            && ctx.dying.get().is_null()
            && (*from).refs.get() != 0
        {
            let received = (*to).received.get();
            if !received.is_null() {
                *received = ctx.value.get() as *mut c_void;
            }
            let sp = ((*to).saved_sp.get() as usize | arch::FAST) as *mut u8;
            return arch::Departure { sp, ctx: ctx.value.get() as *mut u8 };
        }
        ctx.came_from.set(from);
        ctx.arriving.set(true);
        if let Some(asan) = ctx.asan {
            let leaving =
                if (*from).state() == State::Dead { None } else { Some(&mut *(*from).asan_fake_stack.as_ptr()) };
            asan.start(leaving, stack_bounds(to));
        }
        arch::Departure { sp: (*to).saved_sp.get(), ctx: ctx as *const ThreadCtx as *mut u8 }
    }
}

/// The bounds ASan must be told for a switch onto `b`'s stack.
///
/// # Safety
/// `b` is a live block of this thread.
unsafe fn stack_bounds(b: *const Block) -> crate::tools::StackBounds {
    // SAFETY: per the contract.
    unsafe {
        match &*(*b).stack.get() {
            Some(s) => crate::tools::StackBounds { bottom: s.bottom().cast(), size: s.usable() },
            None if !(*b).shared.get().is_null() => {
                let s = &(*(*b).shared.get()).stack;
                crate::tools::StackBounds { bottom: s.bottom().cast(), size: s.usable() }
            }
            None => (*b).asan_bounds.get(),
        }
    }
}

/// Usable bytes of the stack `b` runs on (0 for a main coroutine).
///
/// # Safety
/// `b` is a live block of this thread.
pub(crate) unsafe fn stack_size(b: *const Block) -> usize {
    // SAFETY: per the contract; a copying block's shared stack lives as long as its thread.
    unsafe {
        match &*(*b).stack.get() {
            Some(s) => s.usable(),
            None if !(*b).shared.get().is_null() => (*(*b).shared.get()).stack.usable(),
            None => 0,
        }
    }
}

/// The arriving half of a switch, run by every end hook on the resumed stack after it has read
/// what it was sent (this may itself switch, see below). Does nothing if no switch happened.
///
/// # Safety
/// `ctx` is this thread's state, and the code calling runs on the current coroutine's stack.
#[inline]
pub(crate) unsafe fn arrive(ctx: &ThreadCtx) {
    if !ctx.arriving.replace(false) {
        return;
    }
    // SAFETY: per the contract; `came_from` and `dying` were set by the switch that brought us here.
    unsafe {
        if let Some(asan) = ctx.asan {
            let me = ctx.current.get();
            let from_bounds = asan.finish((*me).asan_fake_stack.get());
            let from = ctx.came_from.get();
            if (*(*from).stack.get()).is_none() && (*from).shared.get().is_null() {
                (*from).asan_bounds.set(from_bounds);
            }
        }
        let dying = ctx.dying.replace(core::ptr::null_mut());
        if !dying.is_null() {
            bury_finished(ctx, dying);
        }
        // The coroutine we came from may have dropped its last reference while it ran; now that
        // it is suspended, it is unreferenced like any other (and unwound if it is Rust's).
        let from = ctx.came_from.replace(core::ptr::null_mut());
        if !from.is_null() && (*from).refs.get() == 0 && (*from).state() == State::Suspended {
            suspended_unreferenced(from);
        }
    }
}

/// The root function of every coroutine stack: runs the entry, then finishes.
pub(crate) unsafe extern "C" fn root(data: *mut u8, value: usize) -> ! {
    let me = data.cast::<Block>();
    let Ok(ctx) = ThreadCtx::get() else {
        // Unreachable: a switch (which created the ctx) brought us here.
        std::process::abort()
    };
    // SAFETY: the entry is only taken here, on the coroutine's own first run.
    let entry = core::mem::replace(unsafe { &mut *(*me).entry.get() }, Entry::Taken);
    let outcome: Result<usize, Box<dyn Any + Send>> = match entry {
        // SAFETY: the C caller promised a function of this signature that does not unwind.
        Entry::C(f) => Ok(unsafe { f(Block::handle(me), value as *mut c_void) } as usize),
        Entry::Rust(f) => panic::catch_unwind(AssertUnwindSafe(move || f(value))),
        Entry::Taken => Ok(value),
    };
    // SAFETY: `me` is running and its entry has returned.
    unsafe { finish(ctx, me, outcome) }
}

/// The parent rule: passes the outcome to the first ancestor that is not DEAD, and never returns.
///
/// # Safety
/// `me` is the running coroutine and nothing of its own remains to run on its stack.
unsafe fn finish(ctx: &ThreadCtx, me: *mut Block, outcome: Result<usize, Box<dyn Any + Send>>) -> ! {
    let (signal, value) = match outcome {
        Ok(v) => (Signal::Value, v),
        Err(payload) if payload.is::<ForcedUnwind>() => (Signal::Value, 0),
        Err(payload) => {
            ctx.panic.set(Some(payload));
            (Signal::Panic, 0)
        }
    };
    // SAFETY: `me` and its ancestors are blocks of this thread kept alive by the parent links;
    // the walk ends because a thread's main coroutine is never DEAD while the thread runs.
    unsafe {
        Block::set_state(me, State::Dead);
        let mut target = (*me).parent.get();
        loop {
            match (*target).state() {
                State::Dead => {}
                // A NEW ancestor has no pending switch to resume a panic in: it dies unrun and
                // the panic travels on up the chain.
                State::New if signal == Signal::Panic => bury_unstarted(ctx, target),
                _ => break,
            }
            target = (*target).parent.get();
        }
        ctx.dying.set(me);
        transfer(target, signal, value);
    }
    // A finished coroutine is never resumed: its saved stack pointer is never switched to.
    std::process::abort()
}
