//! The rest of a coroutine's life around its switches: creation, the burial of finished and
//! unstarted coroutines, reference counting (which decides when a control block is freed),
//! abandon, destroy, re-parenting, and the per-thread queries the shells need.
//!
//! Same contract as the parent module: raw blocks, `unsafe`, owner thread only.

use super::copying;
use super::{check_owner, first_end, root, transfer, Access};
use crate::arch;
use crate::engine::block::{self, flags, Block, Entry, State};
use crate::engine::thread::{next_id, Signal, ThreadCtx};
use crate::stack::Stack;
use crate::Error;
use core::any::Any;
use core::ffi::c_void;
use std::ffi::CString;
use std::sync::atomic::Ordering;

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
        Block::set_state(b, State::New);
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

/// Releases the stack of a coroutine that just finished (we run on another stack now), and the
/// block too if nothing refers to it any more.
///
/// # Safety
/// `b` is a DEAD block of this thread whose stack is no longer in use.
pub(super) unsafe fn bury_finished(ctx: &ThreadCtx, b: *mut Block) {
    // SAFETY: per the contract; the pool is not borrowed across switches.
    unsafe {
        if let Some(stack) = (*(*b).stack.get()).take() {
            if !stack.canary_fully_intact() {
                crate::engine::overflow::report_canary(&*b, stack.usable());
            }
            (*b).canary.set(core::ptr::null());
            (*ctx.pool.get()).give(stack);
        }
        if !(*b).shared.get().is_null() {
            let sh = &(*(*b).shared.get()).stack;
            if !sh.canary_fully_intact() {
                crate::engine::overflow::report_canary(&*b, sh.usable());
            }
            (*b).canary.set(core::ptr::null());
            copying::release(b, true);
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
pub(super) unsafe fn bury_unstarted(ctx: &ThreadCtx, b: *mut Block) {
    // SAFETY: per the contract; the entry is moved out before it is dropped, because dropping
    // a Rust closure runs arbitrary code (which may even switch).
    unsafe {
        Block::set_state(b, State::Dead);
        if let Some(stack) = (*(*b).stack.get()).take() {
            give_stack(ctx, b, stack);
        }
        copying::release(b, (*b).owner.load(Ordering::Relaxed) == ctx.mark_ptr());
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
            match (*b).state() {
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
pub(super) unsafe fn suspended_unreferenced(b: *mut Block) {
    let Ok(ctx) = ThreadCtx::get() else { return };
    // SAFETY: per the contract.
    unsafe {
        let ours = (*b).owner.load(Ordering::Relaxed) == ctx.mark_ptr();
        if !ours {
            // An orphan: it can never run again. Release its stack unrun.
            Block::set_state(b, State::Dead);
            drop((*(*b).stack.get()).take());
            copying::release(b, false);
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
            if (*b).state() == State::Dead {
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
        copying::release(b, owned);
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
        Block::set_state(b, State::Dead);
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
        match (*b).state() {
            State::Suspended => {
                Block::set_state(b, State::Dead);
                if let Some(stack) = (*(*b).stack.get()).take() {
                    give_stack(ctx, b, stack);
                }
                copying::release(b, true);
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
        match (&*(*b).stack.get(), (*b).state()) {
            (Some(stack), State::Suspended) => stack.top() as usize - (*b).saved_sp.get() as usize,
            (None, State::Suspended) if !(*b).shared.get().is_null() => copying::in_use(b),
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
        match ((*b).state(), access) {
            (State::New, _) => bury_unstarted(ctx, b),
            (State::Dead, _) => {}
            (State::Suspended, Access::Orphan) => {
                Block::set_state(b, State::Dead);
                drop((*(*b).stack.get()).take());
                copying::release(b, false);
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
