//! Copying (shared-stack) mode: coroutines that run on a stack shared by their thread and keep
//! only the used part of it on the heap while another coroutine occupies it.
//!
//! Each thread has one *shared stack* per usable size in use by copying coroutines. At any time
//! at most one copying coroutine, the stack's *occupant*, has its frames on it. A switch into a
//! copying coroutine that is not the occupant first saves the occupant's used part (from its
//! saved stack pointer to the top) into the occupant's heap *image*, then copies the arriving
//! coroutine's image back to the very addresses it came from (or, for a NEW one, writes its first
//! frame). Saving is lazy, as in greenlet: a copying coroutine that switches to a coroutine with a
//! stack of its own (the thread's main coroutine, typically) stays in place, and switching back
//! to it copies nothing.
//!
//! **Where the copying runs.** Saving only reads the leaving stack above its saved stack pointer,
//! so it always runs in the begin hook of the switch (on the leaving stack, below that pointer).
//! Restoring writes the range `[arriving saved sp, top)`: when the leaving coroutine runs on
//! another stack (its own, the thread's, another shared one), the begin hook restores too.
//! When it runs on the same shared stack, the restore would overwrite the frames the hook runs
//! on (and the leaving frame that `coro_arch_enter` still reads), so the switch takes a detour
//! through the thread's small *switcher stack*: the begin hook continues there, a loop on that
//! stack restores the image and then completes the switch with a second `coro_arch_enter` into
//! the arriving coroutine.
//!
//! **Pointer rule.** While a copying coroutine is switched out and not the occupant, its stack
//! lives in its heap image: pointers into its stack (to its locals) must not be used by anyone
//! (the addresses hold another coroutine's frames). They become valid again when it runs.
//!
//! Copies are done word by word with volatile accesses, not `memcpy`, so that AddressSanitizer's
//! interceptor never inspects a stack range with redzones in it; under ASan the shared stack is
//! unpoisoned before each restore (the restored frames lose their redzones, never report falsely).
//!
//! **Why it sits inside `switch`.** The two call each other: `depart` hands a switch into a copying
//! coroutine to [`bring_in`] / [`via_switcher`], and the switcher completes it with the parent
//! module's `depart_tail`; a NEW copying coroutine's first frame points at its `root` and
//! `first_end`. The blocks and thread state point at this module's [`SharedStack`] and
//! [`ThreadCopying`] (visible to the whole engine, nothing above it).

use crate::arch;
use crate::engine::block::{Block, State};
use crate::engine::thread::ThreadCtx;
use crate::error::Error;
use crate::stack::{Stack, StackPool};
use core::cell::Cell;

/// A thread's stack for the copying coroutines of one usable size.
pub(crate) struct SharedStack {
    pub(crate) stack: Stack,
    /// The copying coroutine whose frames are on this stack now; null when none (or when the
    /// frames there belong to a finished coroutine).
    /// Private: written only through [`SharedStack::set_occupant`].
    occupant: Cell<*mut Block>,
}

impl SharedStack {
    /// The copying coroutine whose frames are on this stack now (null: none).
    pub(crate) fn occupant(&self) -> *mut Block {
        self.occupant.get()
    }

    /// Changes the occupant, keeping both blocks' fast-path keys in step (residency is part of
    /// what `Block::resume_key` summarises).
    ///
    /// # Safety
    /// Both the old occupant and `b` (when non-null) are live blocks of this thread.
    unsafe fn set_occupant(&self, b: *mut Block) {
        let old = self.occupant.replace(b);
        // SAFETY: per the contract.
        unsafe {
            if !old.is_null() {
                Block::refresh_resume_key(old);
            }
            if !b.is_null() {
                Block::refresh_resume_key(b);
            }
        }
    }
}

/// The per-thread state of copying mode.
#[derive(Default)]
pub(crate) struct ThreadCopying {
    /// Shared stacks by usable size; boxed so that blocks can point at them (their addresses must
    /// not move when the vector grows). They live as long as the thread's state.
    #[allow(clippy::vec_box)]
    shared: Vec<Box<SharedStack>>,
    /// The switcher stack (see the module docs), created with the first copying coroutine.
    switcher: Option<Stack>,
    /// Where the switcher is suspended.
    switcher_sp: Cell<*mut u8>,
    /// The switch the switcher completes: from, to, and the link word value for `to`.
    job_from: Cell<*mut Block>,
    job_to: Cell<*mut Block>,
    job_link: Cell<*mut *mut u8>,
    /// Whether coroutines created without an explicit mode are copying (`coro_set_copying_default`).
    pub(crate) default_copying: Cell<bool>,
}

/// Smallest switcher stack: the loop, the hooks and a page or two of slack.
const SWITCHER_STACK: usize = crate::stack::MIN_STACK_SIZE;

impl ThreadCopying {
    /// The shared stack of `usable` bytes, made on first use; also makes the switcher stack.
    /// Called when a copying coroutine is created (never during a switch).
    pub(crate) fn shared_stack(
        &mut self,
        pool: &mut StackPool,
        usable: usize,
        ctx: *const ThreadCtx,
    ) -> Result<*const SharedStack, Error> {
        if self.switcher.is_none() {
            let stack = pool.take(crate::stack::usable_size(SWITCHER_STACK)?)?;
            // SAFETY: a fresh stack nobody uses; the entry never returns.
            let sp = unsafe { arch::init_stack(stack.top(), switcher_loop, ctx as *mut u8, switcher_first_end) };
            self.switcher_sp.set(sp);
            self.switcher = Some(stack);
        }
        if let Some(s) = self.shared.iter().find(|s| s.stack.usable() == usable) {
            return Ok(&**s);
        }
        let stack = pool.take(usable)?;
        self.shared.push(Box::new(SharedStack { stack, occupant: Cell::new(core::ptr::null_mut()) }));
        Ok(&**self.shared.last().expect("just pushed"))
    }
}

/// Copies `words` machine words from `src` to `dst` without `memcpy` (see the module docs).
///
/// # Safety
/// Both ranges are valid for `words` words and do not overlap.
#[inline]
unsafe fn copy_words(dst: *mut usize, src: *const usize, words: usize) {
    // Large images: `rep movsq`, which copies forwards (the ABI keeps the direction flag clear at
    // calls), is one instruction the sanitizers do not intercept, and is about twice as fast as
    // the loop from a few KiB on; below that its start-up cost dominates (measured with
    // bench/depth.c).
    #[cfg(target_arch = "x86_64")]
    if words >= 512 {
        // SAFETY: per the contract.
        unsafe {
            core::arch::asm!(
                "rep movsq",
                inout("rcx") words => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags),
            );
        }
        return;
    }
    for i in 0..words {
        // SAFETY: per the contract.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
    }
}

/// Saves the occupant of `sh` (if any, and not finished) into its image and vacates the stack.
///
/// # Safety
/// `sh` is a shared stack of this thread; the caller runs below the occupant's saved stack
/// pointer or on another stack.
unsafe fn save_occupant(sh: &SharedStack) {
    let occ = sh.occupant();
    if occ.is_null() {
        return;
    }
    // SAFETY: an occupant is a live block of this thread (burial clears the occupant).
    unsafe { sh.set_occupant(core::ptr::null_mut()) };
    // SAFETY: an occupant is a live block of this thread (burial clears the occupant).
    unsafe {
        if (*occ).state() == State::Dead {
            return;
        }
        let sp = (*occ).saved_sp.get();
        let top = sh.stack.top() as usize;
        let words = (top - sp as usize) / core::mem::size_of::<usize>();
        // Its frames' redzones are poisoned in ASan's shadow, and an instrumented copy loop
        // would report reading them (the range is mapped: the occupant's live frames). The
        // restore unpoisons the whole stack anyway.
        crate::tools::asan_unpoison(sp, top - sp as usize);
        let image = &mut *(*occ).image.get();
        image.clear();
        image.reserve_exact(words);
        copy_words(image.as_mut_ptr(), sp as *const usize, words);
        image.set_len(words);
    }
}

/// Puts `to`'s frames on its shared stack: its image, or a first frame for a NEW coroutine.
///
/// # Safety
/// `to` is a copying coroutine of this thread that is not the occupant; the stack has no occupant
/// left to save; nothing runs in the range being written.
unsafe fn restore(to: *mut Block, sh: &SharedStack) {
    // SAFETY: per the contract.
    unsafe {
        // The previous occupants' frames left their redzones in ASan's shadow; the arriving frames
        // (and what they push next) must not inherit them. The range is the mapped shared stack.
        crate::tools::asan_unpoison(sh.stack.bottom(), sh.stack.usable());
        let sp = (*to).saved_sp.get();
        // Memcheck has marked parts of the shared stack inaccessible as earlier occupants'
        // stack pointers moved; the arriving frames and whatever they push below them are fine.
        crate::tools::valgrind_make_mem_undefined(sh.stack.bottom(), sh.stack.usable());
        if sp.is_null() {
            let first = arch::init_stack(sh.stack.top(), super::root, to.cast(), super::first_end);
            (*to).saved_sp.set(first);
        } else {
            let image = &*(*to).image.get();
            copy_words(sp.cast(), image.as_ptr(), image.len());
        }
        sh.set_occupant(to);
    }
}

/// Makes the arriving copying coroutine `to` the occupant of its shared stack, in the begin hook
/// of a switch from `from`. Returns `false` when done, `true` when `from` runs on the same shared
/// stack, so that the restore must be done by the switcher.
///
/// # Safety
/// Called from `switch::depart` only, with `to`'s shared stack `sh` not occupied by `to`.
#[inline(never)]
pub(crate) unsafe fn bring_in(from: *mut Block, to: *mut Block, sh: &SharedStack) -> bool {
    // SAFETY: per the contract (see the module docs for why each step may run here).
    unsafe {
        save_occupant(sh);
        // Leaving from the same shared stack: restore from the switcher, never here. Even an
        // arriving range entirely above `sp` would leave the leaving frame (which the switch
        // still reads, for the floating-point control state) below the new stack pointer,
        // where a signal may land.
        if core::ptr::eq((*from).shared.get(), sh) {
            return true;
        }
        restore(to, sh);
        false
    }
}

/// Continues the switch from `from` to `to` on the switcher stack, which restores `to` and then
/// departs for it with `link` as its link word value.
///
/// # Safety
/// `bring_in` returned `true` for this switch; `ctx` is this thread's.
pub(crate) unsafe fn via_switcher(
    ctx: &ThreadCtx,
    from: *mut Block,
    to: *mut Block,
    link: *mut *mut u8,
) -> arch::Departure {
    // SAFETY: the copying state is only touched by this thread, never across a switch.
    let c = unsafe { &*ctx.copying.get() };
    c.job_from.set(from);
    c.job_to.set(to);
    c.job_link.set(link);
    arch::Departure { sp: c.switcher_sp.get(), ctx: ctx as *const ThreadCtx as *mut u8 }
}

/// The switcher stack's code: restores the coroutine a switch is bringing in, then completes
/// the switch into it; resumed by the next switch that needs it.
unsafe extern "C" fn switcher_loop(data: *mut u8, _value: usize) -> ! {
    let ctx = data as *const ThreadCtx;
    loop {
        // SAFETY: `data` is this thread's ctx (set at creation); `via_switcher` filled the job.
        unsafe {
            let c = &*(*ctx).copying.get();
            let to = c.job_to.get();
            restore(to, &*(*to).shared.get());
            switcher_leave(ctx as usize, 0, 0);
        }
    }
}

/// Leaves the switcher for the job's arriving coroutine.
///
/// # Safety
/// Only from [`switcher_loop`].
#[unsafe(naked)]
unsafe extern "C" fn switcher_leave(ctx: usize, b: usize, c: usize) -> arch::Arrival {
    crate::arch::enter_with_hooks!(switcher_begin, switcher_end);
}

/// Begin hook of [`switcher_leave`]: remembers where the switcher waits and departs.
unsafe extern "C" fn switcher_begin(ctx: usize, _b: usize, _c: usize, sp: *mut u8) -> arch::Departure {
    // SAFETY: `ctx` is this thread's live state.
    unsafe {
        let ctx = &*(ctx as *const ThreadCtx);
        let c = &*ctx.copying.get();
        c.switcher_sp.set(sp);
        super::depart_tail(ctx, c.job_from.get(), c.job_to.get(), c.job_link.get())
    }
}

/// End hook of the switcher's suspended call: nothing to complete.
unsafe extern "C" fn switcher_end(_ctx: *mut u8) -> arch::Arrival {
    arch::Arrival { signal: 0, value: 0 }
}

/// First end hook of the switcher stack.
unsafe extern "C" fn switcher_first_end(_ctx: *mut u8) -> arch::Arrival {
    arch::Arrival { signal: 0, value: 0 }
}

/// Lets go of a copying coroutine's stack for good (finished, abandoned, released): its image is
/// freed and, if it occupies its shared stack, the stack is vacated.
///
/// # Safety
/// `b` is a block this thread may touch; `owned` says whether its thread is this one (only then
/// is its shared stack, which dies with its thread, touched).
pub(crate) unsafe fn release(b: *mut Block, owned: bool) {
    // SAFETY: per the contract.
    unsafe {
        let sh = (*b).shared.replace(core::ptr::null());
        if owned && !sh.is_null() && (*sh).occupant() == b {
            (*sh).set_occupant(core::ptr::null_mut());
        }
        Block::refresh_resume_key(b);
        *(*b).image.get() = Vec::new();
    }
}

/// Bytes of its stack a suspended copying coroutine uses (in place or in its image).
///
/// # Safety
/// `b` is a live copying block of this thread.
pub(crate) unsafe fn in_use(b: *const Block) -> usize {
    // SAFETY: per the contract.
    unsafe {
        let sp = (*b).saved_sp.get();
        if sp.is_null() {
            0
        } else {
            (*(*b).shared.get()).stack.top() as usize - sp as usize
        }
    }
}
