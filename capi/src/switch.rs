//! The coroutine lifecycle: create, switch, kill, finish (the parent rule), destroy, and the
//! reference counting that decides when a control block is freed.
//!
//! Everything here works on raw `*mut Block` and is `unsafe`: the safe Rust API
//! (`coroutine.rs`) and the C ABI (`ffi.rs`) are thin shells that establish the contracts.
//! All functions must be called on the thread that owns the blocks involved; the entry points
//! check that with [`check_owner`].

use crate::arch;
use crate::block::{self, flags, Block, Entry, State};
use crate::stack::Stack;
use crate::thread::{next_id, Signal, ThreadCtx};
use crate::Error;
use core::any::Any;
use core::ffi::c_void;
use std::ffi::CString;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

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

/// Everything a new coroutine needs.
pub(crate) struct Spawn {
    pub entry: Entry,
    pub stack_size: usize,
    pub name: Option<CString>,
    pub userdata: *mut c_void,
    pub unwind_on_drop: bool,
    /// Copying mode (shared stack); `None`: the thread's default (`copying.rs`).
    pub copying: Option<bool>,
}

/// Creates a NEW coroutine whose parent is the current one. The caller owns one reference.
pub(crate) fn create(spawn: Spawn) -> Result<*mut Block, Error> {
    let ctx = ThreadCtx::get()?;
    let usable = crate::stack::usable_size(spawn.stack_size)?;
    // SAFETY: pool, cache and copying state are only touched by this thread, never across a switch.
    let copying = spawn.copying.unwrap_or_else(|| unsafe { (*ctx.copying.get()).default_copying.get() });
    let (stack, shared) = if copying {
        // SAFETY: as above.
        let shared = unsafe { (*ctx.copying.get()).shared_stack(&mut *ctx.pool.get(), usable, ctx)? };
        (None, shared)
    } else {
        // SAFETY: as above.
        (Some(unsafe { (*ctx.pool.get()).take(usable)? }), core::ptr::null())
    };
    let b = match block::take_vacant(unsafe { &mut *ctx.vacant.get() }) {
        Some(b) => b,
        None => {
            if let Some(stack) = stack {
                // SAFETY: as above.
                unsafe { (*ctx.pool.get()).give(stack) };
            }
            return Err(Error::NoMemory);
        }
    };
    let parent = ctx.current.get();
    // SAFETY: a vacant block belongs to whoever took it; `parent` is this thread's current
    // coroutine, alive while it runs; the stack is fresh and unused.
    unsafe {
        let blk = &*b;
        std::sync::Arc::increment_strong_count(ctx.mark_ptr());
        blk.owner.store(ctx.mark_ptr(), Ordering::Release);
        blk.state.set(State::New);
        blk.flags.set(if spawn.unwind_on_drop { flags::UNWIND_ON_DROP } else { 0 });
        blk.refs.set(1);
        (*parent).refs.set((*parent).refs.get() + 1);
        blk.parent.set(parent);
        match &stack {
            Some(stack) => {
                blk.saved_sp.set(arch::init_stack(stack.top(), root, b.cast(), first_end));
                blk.link_slot.set(arch::link_slot(stack.top()));
                blk.canary.set(stack.canary());
            }
            None => {
                // Its first frame is written when it is first switched to (copying.rs).
                let sh = &(*shared).stack;
                blk.saved_sp.set(core::ptr::null_mut());
                blk.link_slot.set(arch::link_slot(sh.top()));
                blk.canary.set(sh.canary());
            }
        }
        blk.shared.set(shared);
        *blk.stack.get() = stack;
        *blk.entry.get() = spawn.entry;
        blk.id.set(next_id());
        *blk.name.get() = spawn.name;
        blk.userdata.set(spawn.userdata);
        blk.received.set(core::ptr::null_mut());
    }
    Ok(b)
}

/// Switches from the current coroutine to `to`, carrying `signal` and `value`; returns what the
/// switch back into the caller carries. Switching to the current coroutine returns at once.
///
/// # Safety
/// `to` must be a slab block.
#[inline(always)]
pub(crate) unsafe fn switch(to: *mut Block, signal: Signal, value: usize) -> Result<Received, Error> {
    // SAFETY: the entry's begin hook checks `to` before departing.
    let arrival = unsafe { switch_entry(to, signal as usize, value) };
    match Signal::from_word(arrival.signal) {
        Signal::Refused => Err(Error::from_code(arrival.value as u32).unwrap_or(Error::Invalid)),
        signal => Ok(Received { signal, value: arrival.value }),
    }
}

/// One `coro_arch_enter` with the Rust side's hooks. Naked, so that the resumed side returns
/// straight into the code that called it (see `arch`).
///
/// # Safety
/// `to` must be a slab block.
#[unsafe(naked)]
unsafe extern "C" fn switch_entry(to: *mut Block, signal: usize, value: usize) -> arch::Arrival {
    crate::arch::enter_with_hooks!(begin_switch, end_switch);
}

/// Begin hook of [`switch_entry`].
unsafe extern "C" fn begin_switch(to: usize, signal: usize, value: usize, sp: *mut u8) -> arch::Departure {
    let Ok(ctx) = ThreadCtx::get() else {
        return arch::Departure { sp, ctx: core::ptr::null_mut() };
    };
    ctx.signal.set(Signal::from_word(signal));
    ctx.value.set(value);
    // SAFETY: the caller passes a slab block; the current block is this thread's. A Rust caller
    // takes its value from the end hook's result, not through a pointer.
    unsafe {
        (*ctx.current.get()).received.set(core::ptr::null_mut());
        depart_checked(ctx, to as *mut Block, sp)
    }
}

/// End hook of [`switch_entry`]: what the resumed call returns.
unsafe extern "C" fn end_switch(ctx: *mut u8) -> arch::Arrival {
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
        match (*to).state.get() {
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
    match unsafe { (*target).state.get() } {
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
            crate::overflow::report_canary(&*from, stack_size(from));
        }
        (*from).saved_sp.set(sp);
        if let (Some(asan), State::New, true) = (ctx.asan, (*to).state.get(), (*to).shared.get().is_null()) {
            // A stack's earlier users may have left poison in ASan's shadow (see `unpoison`).
            // (Copying mode unpoisons its shared stack at every restore: copying.rs.)
            asan.unpoison(stack_bounds(to));
        }
        if (*from).state.get() == State::Running {
            (*from).state.set(State::Suspended);
        }
        (*to).state.set(State::Running);
        ctx.current.set(to);
        // Tell unwinders who resumed `to`. A finishing coroutine hands on its own resumer, since
        // its stack is about to be released (read now: a copying coroutine's link word may be
        // overwritten below).
        let link = if (*to).link_slot.get().is_null() {
            core::ptr::null_mut() // a main coroutine: no link word
        } else {
            let from_link = (*from).link_slot.get();
            if (*from).state.get() == State::Dead && !from_link.is_null() {
                *from_link
            } else {
                (*from).saved_sp.as_ptr()
            }
        };
        // Copying mode: put `to`'s frames on its shared stack first (see copying.rs).
        let shared = (*to).shared.get();
        if !shared.is_null() && (*shared).occupant.get() != to && crate::copying::bring_in(from, to, &*shared) {
            return crate::copying::via_switcher(ctx, from, to, link);
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
                if (*from).state.get() == State::Dead { None } else { Some(&mut *(*from).asan_fake_stack.as_ptr()) };
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
        if !from.is_null() && (*from).refs.get() == 0 && (*from).state.get() == State::Suspended {
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
        (*me).state.set(State::Dead);
        let mut target = (*me).parent.get();
        loop {
            match (*target).state.get() {
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

/// Releases the stack of a coroutine that just finished (we run on another stack now), and the
/// block too if nothing refers to it any more.
///
/// # Safety
/// `b` is a DEAD block of this thread whose stack is no longer in use.
unsafe fn bury_finished(ctx: &ThreadCtx, b: *mut Block) {
    // SAFETY: per the contract; the pool is not borrowed across switches.
    unsafe {
        if let Some(stack) = (*(*b).stack.get()).take() {
            if !stack.canary_fully_intact() {
                crate::overflow::report_canary(&*b, stack.usable());
            }
            (*b).canary.set(core::ptr::null());
            (*ctx.pool.get()).give(stack);
        }
        if !(*b).shared.get().is_null() {
            let sh = &(*(*b).shared.get()).stack;
            if !sh.canary_fully_intact() {
                crate::overflow::report_canary(&*b, sh.usable());
            }
            (*b).canary.set(core::ptr::null());
            crate::copying::release(b, true);
        }
        if (*b).refs.get() == 0 {
            let parent = free_block(b);
            if !parent.is_null() {
                release_ref(parent);
            }
        }
    }
}

/// Makes a NEW coroutine DEAD without running it.
///
/// # Safety
/// `b` is a NEW block this thread may touch (owned, or an orphan being destroyed).
unsafe fn bury_unstarted(ctx: &ThreadCtx, b: *mut Block) {
    // SAFETY: per the contract; the entry is moved out before it is dropped, because dropping
    // a Rust closure runs arbitrary code (which may even switch).
    unsafe {
        (*b).state.set(State::Dead);
        if let Some(stack) = (*(*b).stack.get()).take() {
            give_stack(ctx, b, stack);
        }
        crate::copying::release(b, (*b).owner.load(Ordering::Relaxed) == ctx.mark_ptr());
        let entry = core::mem::replace(&mut *(*b).entry.get(), Entry::Taken);
        drop(entry);
    }
}

/// Returns a stack to this thread's pool if `b` is ours; unmaps it otherwise (orphans).
///
/// # Safety
/// Nothing runs on `stack`.
unsafe fn give_stack(ctx: &ThreadCtx, b: *const Block, stack: Stack) {
    // SAFETY: `owner` is atomic; the pool is not borrowed across switches.
    unsafe {
        if (*b).owner.load(Ordering::Relaxed) == ctx.mark_ptr() {
            (*ctx.pool.get()).give(stack);
        } else {
            drop(stack);
        }
    }
}

/// Adds a reference.
///
/// # Safety
/// `b` is a live block of this thread.
pub(crate) unsafe fn add_ref(b: *mut Block) {
    // SAFETY: per the contract.
    unsafe { (*b).refs.set((*b).refs.get() + 1) };
}

/// Drops a reference; frees the block when none are left and it is not running. A SUSPENDED
/// Rust coroutine that loses its last reference is unwound first.
///
/// # Safety
/// `b` is a live block the caller holds a reference to, and the caller may touch it (owner
/// thread, or the thread destroying an orphan).
pub(crate) unsafe fn release_ref(mut b: *mut Block) {
    // A loop rather than recursion: freeing a block releases its parent, and so on up the chain.
    loop {
        // SAFETY: per the contract; each iteration holds the reference being released.
        unsafe {
            let refs = (*b).refs.get() - 1;
            (*b).refs.set(refs);
            if refs > 0 {
                return;
            }
            match (*b).state.get() {
                // Freed by `bury_finished` when it finishes.
                State::Running => return,
                State::Suspended => {
                    suspended_unreferenced(b);
                    return;
                }
                State::New => {
                    if let Ok(ctx) = ThreadCtx::get() {
                        bury_unstarted(ctx, b);
                    }
                }
                State::Dead => {}
            }
            let parent = free_block(b);
            if parent.is_null() {
                return;
            }
            b = parent;
        }
    }
}

/// A SUSPENDED coroutine lost its last reference.
///
/// # Safety
/// As for [`release_ref`]; `b` has no references left.
unsafe fn suspended_unreferenced(b: *mut Block) {
    let Ok(ctx) = ThreadCtx::get() else { return };
    // SAFETY: per the contract.
    unsafe {
        let ours = (*b).owner.load(Ordering::Relaxed) == ctx.mark_ptr();
        if !ours {
            // An orphan: it can never run again. Release its stack unrun.
            (*b).state.set(State::Dead);
            drop((*(*b).stack.get()).take());
            crate::copying::release(b, false);
            let parent = free_block(b);
            if !parent.is_null() {
                release_ref(parent);
            }
        } else if (*b).flags.get() & flags::UNWIND_ON_DROP != 0 {
            // Unwind it, with the current coroutine as its parent so control comes back here.
            let me = ctx.current.get();
            add_ref(me);
            let old_parent = (*b).parent.replace(me);
            (*b).refs.set(1); // held by this function while it unwinds
            release_ref(old_parent);
            let _ = transfer(b, Signal::Unwind, 0);
            // If it refused to die it keeps our reference and stays suspended (leaked).
            if (*b).state.get() == State::Dead {
                release_ref(b);
            }
        }
        // A C coroutine is never unwound behind the program's back; the C ABI prevents this
        // case (destroy refuses SUSPENDED coroutines), so there is nothing to do.
    }
}

/// Empties `b` and returns it to the vacant list; returns its former parent, whose reference the
/// caller must release.
///
/// # Safety
/// `b` has no references and is NEW-buried or DEAD; the caller may touch it.
unsafe fn free_block(b: *mut Block) -> *mut Block {
    // SAFETY: per the contract; after this the block is vacant.
    unsafe {
        let blk = &*b;
        let parent = blk.parent.replace(core::ptr::null_mut());
        drop((*blk.stack.get()).take());
        let owned = {
            let ctx = ThreadCtx::peek();
            !ctx.is_null() && blk.owner.load(Ordering::Relaxed) == (*ctx).mark_ptr()
        };
        crate::copying::release(b, owned);
        *blk.entry.get() = Entry::Taken;
        *blk.name.get() = None;
        blk.userdata.set(core::ptr::null_mut());
        blk.received.set(core::ptr::null_mut());
        blk.asan_fake_stack.set(core::ptr::null_mut());
        blk.asan_bounds.set(crate::tools::StackBounds::UNKNOWN);
        let fiber = blk.tsan_fiber.replace(core::ptr::null_mut());
        if let (Some(tsan), false) = (crate::tools::TsanFibers::get(), blk.is_main()) {
            // A freed block is not running, and a main block's fiber is its thread's own.
            tsan.destroy(fiber);
        }
        blk.link_slot.set(core::ptr::null_mut());
        blk.canary.set(core::ptr::null());
        blk.state.set(State::Dead);
        blk.invalidate_handles();
        blk.flags.set(0);
        let mark = blk.owner.swap(core::ptr::null_mut(), Ordering::AcqRel);
        let ctx = ThreadCtx::peek();
        if !ctx.is_null() && (*ctx).mark_ptr() == mark {
            block::give_vacant(&mut *(*ctx).vacant.get(), b);
        } else {
            let mut one = vec![b];
            block::spill_vacant(&mut one, 0);
        }
        if !mark.is_null() {
            std::sync::Arc::decrement_strong_count(mark);
        }
        parent
    }
}

/// Abandons a SUSPENDED coroutine: it becomes DEAD without ever running again and its stack is
/// released as it is (nothing on it is unwound or dropped).
///
/// # Safety
/// `b` is a live block of this thread. The caller accepts that whatever the coroutine's frames
/// own is leaked.
pub(crate) unsafe fn abandon(b: *mut Block) -> Result<(), Error> {
    let ctx = ThreadCtx::get()?;
    // SAFETY: forwarded; an owned block's fields are ours.
    unsafe {
        if let Access::Orphan = check_owner(ctx, b)? {
            return Err(Error::WrongThread);
        }
        if (*b).is_main() {
            return Err(Error::Main);
        }
        match (*b).state.get() {
            State::Suspended => {
                (*b).state.set(State::Dead);
                if let Some(stack) = (*(*b).stack.get()).take() {
                    give_stack(ctx, b, stack);
                }
                crate::copying::release(b, true);
                Ok(())
            }
            State::New => {
                bury_unstarted(ctx, b);
                Ok(())
            }
            State::Running => Err(Error::Busy),
            State::Dead => Err(Error::Dead),
        }
    }
}

/// Bytes of stack a SUSPENDED coroutine is using (from its saved stack pointer to the top of its
/// stack); 0 for other states and main coroutines.
///
/// # Safety
/// `b` is a live block of this thread.
pub(crate) unsafe fn stack_in_use(b: *const Block) -> usize {
    // SAFETY: per the contract.
    unsafe {
        match (&*(*b).stack.get(), (*b).state.get()) {
            (Some(stack), State::Suspended) => stack.top() as usize - (*b).saved_sp.get() as usize,
            (None, State::Suspended) if !(*b).shared.get().is_null() => crate::copying::in_use(b),
            _ => 0,
        }
    }
}

/// Changes `c`'s parent: see docs/semantics.md.
///
/// # Safety
/// `c` and `parent` are slab blocks.
pub(crate) unsafe fn set_parent(c: *mut Block, parent: *mut Block) -> Result<(), Error> {
    let ctx = ThreadCtx::get()?;
    // SAFETY: forwarded; owner checks first, then fields of this thread's blocks.
    unsafe {
        if let Access::Orphan = check_owner(ctx, c)? {
            return Err(Error::WrongThread);
        }
        if let Access::Orphan = check_owner(ctx, parent)? {
            return Err(Error::WrongThread);
        }
        if (*c).is_main() {
            return Err(Error::Main);
        }
        let mut p = parent;
        while !p.is_null() {
            if p == c {
                return Err(Error::Cycle);
            }
            p = (*p).parent.get();
        }
        add_ref(parent);
        let old = (*c).parent.replace(parent);
        release_ref(old);
    }
    Ok(())
}

/// Releases the C caller's reference (`coro_destroy`).
///
/// # Safety
/// `b` is a slab block named by a handle that passed its generation check.
pub(crate) unsafe fn destroy(b: *mut Block) -> Result<(), Error> {
    let ctx = ThreadCtx::get()?;
    // SAFETY: forwarded; after the owner check the fields are ours.
    unsafe {
        let access = check_owner(ctx, b)?;
        if (*b).is_main() {
            return Err(Error::Main);
        }
        match ((*b).state.get(), access) {
            (State::New, _) => bury_unstarted(ctx, b),
            (State::Dead, _) => {}
            (State::Suspended, Access::Orphan) => {
                (*b).state.set(State::Dead);
                drop((*(*b).stack.get()).take());
                crate::copying::release(b, false);
            }
            (State::Running | State::Suspended, _) => return Err(Error::Busy),
        }
        (*b).invalidate_handles();
        release_ref(b);
    }
    Ok(())
}

/// Sets this thread's default mode for coroutines created without one.
pub(crate) fn set_copying_default(copying: bool) -> Result<(), Error> {
    let ctx = ThreadCtx::get()?;
    // SAFETY: this thread's copying state, not borrowed across a switch.
    unsafe { (*ctx.copying.get()).default_copying.set(copying) };
    Ok(())
}

/// This thread's default mode for coroutines created without one.
pub(crate) fn copying_default() -> Result<bool, Error> {
    let ctx = ThreadCtx::get()?;
    // SAFETY: as above.
    Ok(unsafe { (*ctx.copying.get()).default_copying.get() })
}

/// The current coroutine of this thread (its main one when none other runs).
pub(crate) fn current() -> Result<*mut Block, Error> {
    Ok(ThreadCtx::get()?.current.get())
}

/// This thread's main coroutine.
pub(crate) fn main() -> Result<*mut Block, Error> {
    Ok(ThreadCtx::get()?.main)
}

/// Checks that `b` may be inspected by this thread (owner only).
///
/// # Safety
/// `b` is a slab block.
pub(crate) unsafe fn owned(b: *const Block) -> Result<&'static Block, Error> {
    let ctx = ThreadCtx::get()?;
    // SAFETY: forwarded; an owned block stays alive while the caller holds its handle.
    unsafe {
        match check_owner(ctx, b)? {
            Access::Owner => Ok(&*b),
            Access::Orphan => Err(Error::WrongThread),
        }
    }
}

/// Takes the panic payload a [`Signal::Panic`] announced.
pub(crate) fn take_panic() -> Option<Box<dyn Any + Send>> {
    ThreadCtx::get().ok()?.panic.take()
}
