//! The coroutine control block, the type-stable slab it lives in, and C handles.
//!
//! Control blocks are never returned to the system allocator: a freed block goes back to a free
//! list with its generation number bumped. That is what lets the C ABI detect a destroyed handle
//! instead of reading freed memory: a handle is the block's address with the low bits of its
//! generation folded into the alignment bits, and every call compares them.

use crate::engine::switch::copying::SharedStack;
use crate::engine::thread::ThreadMark;
use crate::stack::Stack;
use crate::tools::StackBounds;
use core::cell::{Cell, UnsafeCell};
use core::ffi::c_void;
use std::alloc::Layout;
use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Mutex;

/// The life of a coroutine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Created, never switched to.
    New = 0,
    /// The current coroutine of its thread.
    Running = 1,
    /// Started and switched away; waits for a switch back.
    Suspended = 2,
    /// Finished (returned, panicked, or killed before it started).
    Dead = 3,
}

/// A C entry: `void *entry(coro_t *self, void *value)`.
pub type CEntry = unsafe extern "C" fn(this: *mut Block, value: *mut c_void) -> *mut c_void;

/// What a NEW coroutine will run.
pub(crate) enum Entry {
    /// Started, finished, or the main coroutine.
    Taken,
    C(CEntry),
    Rust(Box<dyn FnOnce(usize) -> usize>),
}

/// Flag bits of [`Block::flags`].
pub(crate) mod flags {
    /// The thread's main coroutine: runs on the thread's own stack, has no parent.
    pub const MAIN: u8 = 1;
    /// Dropping the last handle of a suspended one unwinds it (Rust API coroutines).
    pub const UNWIND_ON_DROP: u8 = 2;
    /// Its C handles were already invalidated in this life (by `coro_destroy`), so freeing it
    /// must not bump the generation again: one bump per life keeps the wrap-around at 1 in 128.
    pub const HANDLES_INVALID: u8 = 4;
}

/// Generation bits carried in a handle (the block's alignment leaves them zero in its address).
const TAG_MASK: usize = 127;

/// One coroutine. Every field but `gen` and `owner` is touched only by the owning thread (or,
/// for an orphan whose thread has exited, by the single thread destroying it).
#[repr(C, align(128))]
pub struct Block {
    /// Bumped whenever handles to this block must stop working (destroy, free).
    pub(crate) gen: AtomicU32,
    /// The owning thread's mark; null while the block is vacant.
    pub(crate) owner: AtomicPtr<ThreadMark>,
    /// Private: written only through [`Block::set_state`], which keeps `resume_key` in step.
    state: Cell<State>,
    pub(crate) flags: Cell<u8>,
    /// The switch fast path's one compare: `handle ^ owner` while this block is SUSPENDED with its
    /// frames in place (its own stack, or the occupant of its shared stack), else 0. See
    /// [`Block::refresh_resume_key`].
    pub(crate) resume_key: Cell<usize>,
    /// Handles (Rust clones, the C caller's reference) plus children whose parent this is.
    pub(crate) refs: Cell<u32>,
    /// Stack pointer saved by the last switch away (valid while NEW or SUSPENDED).
    pub(crate) saved_sp: Cell<*mut u8>,
    /// This stack's link word for unwinders (`arch::link_slot`); null for main coroutines.
    pub(crate) link_slot: Cell<*mut *mut *mut u8>,
    /// Strong reference; null only for main coroutines.
    pub(crate) parent: Cell<*mut Block>,
    pub(crate) stack: UnsafeCell<Option<Stack>>,
    /// The canary of an unguarded stack, checked at every switch out; null when guarded.
    pub(crate) canary: Cell<*const u64>,
    pub(crate) entry: UnsafeCell<Entry>,
    pub(crate) id: Cell<u64>,
    pub(crate) name: UnsafeCell<Option<CString>>,
    pub(crate) userdata: Cell<*mut c_void>,
    /// Where the C caller's pending `coro_switch` wants its received value (may be null).
    pub(crate) received: Cell<*mut *mut c_void>,
    /// AddressSanitizer bookkeeping: the fake-stack slot of this stack while switched out, and the
    /// bounds of a main coroutine's stack as learnt from ASan on its first switch away.
    pub(crate) asan_fake_stack: Cell<*mut c_void>,
    pub(crate) asan_bounds: Cell<StackBounds>,
    /// ThreadSanitizer's fiber for this coroutine (null until it first runs or without TSan).
    pub(crate) tsan_fiber: Cell<*mut c_void>,
    /// Copying mode: the thread's shared stack this coroutine runs on (null: it has a stack of
    /// its own, or none any more). See `switch/copying.rs`.
    pub(crate) shared: Cell<*const SharedStack>,
    /// Copying mode: the saved words of its stack (from `saved_sp` up) while another coroutine
    /// occupies the shared stack.
    pub(crate) image: UnsafeCell<Vec<usize>>,
}

impl Block {
    fn vacant() -> Block {
        Block {
            gen: AtomicU32::new(0),
            owner: AtomicPtr::new(core::ptr::null_mut()),
            state: Cell::new(State::Dead),
            flags: Cell::new(0),
            resume_key: Cell::new(0),
            refs: Cell::new(0),
            saved_sp: Cell::new(core::ptr::null_mut()),
            link_slot: Cell::new(core::ptr::null_mut()),
            parent: Cell::new(core::ptr::null_mut()),
            stack: UnsafeCell::new(None),
            canary: Cell::new(core::ptr::null()),
            entry: UnsafeCell::new(Entry::Taken),
            id: Cell::new(0),
            name: UnsafeCell::new(None),
            userdata: Cell::new(core::ptr::null_mut()),
            received: Cell::new(core::ptr::null_mut()),
            asan_fake_stack: Cell::new(core::ptr::null_mut()),
            asan_bounds: Cell::new(StackBounds::UNKNOWN),
            tsan_fiber: Cell::new(core::ptr::null_mut()),
            shared: Cell::new(core::ptr::null()),
            image: UnsafeCell::new(Vec::new()),
        }
    }

    /// Generation bits carried in a handle (for the assembly fast path, `switch/fast.rs`).
    pub(crate) const TAG_MASK: usize = TAG_MASK;
    /// Where `state` sits (a private field, read and written by the assembly fast path).
    pub(crate) const STATE_OFFSET: usize = core::mem::offset_of!(Block, state);

    /// The life stage of this coroutine.
    #[inline(always)]
    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// Moves the coroutine to `state`: the one place its state changes, so that the fast path's
    /// key is cleared by every transition that makes the block not resumable.
    ///
    /// # Safety
    /// `this` is a live block the calling thread may touch.
    #[inline(always)]
    pub(crate) unsafe fn set_state(this: *mut Block, state: State) {
        // SAFETY: per the contract.
        unsafe {
            (*this).state.set(state);
            Block::refresh_resume_key(this);
        }
    }

    /// Recomputes `resume_key` from the fields it summarises: non-zero (`handle ^ owner`) only
    /// while the block is SUSPENDED and its frames are in place, i.e. a plain switch to it needs
    /// nothing but the register restore. Called by [`Block::set_state`] and whenever a shared
    /// stack's occupant changes (copying mode). The handle's generation bits, the owner thread,
    /// the state and the residency are thereby one word: the fast path compares it with the
    /// handle it was given `^` its own thread's mark, and anything else takes the checked path.
    ///
    /// # Safety
    /// `this` is a live block the calling thread may touch; if it is SUSPENDED, it belongs to the
    /// calling thread (whose shared stacks are alive). An orphan's shared stack died with its
    /// thread, so the state is tested first: an orphan is only ever made DEAD.
    pub(crate) unsafe fn refresh_resume_key(this: *mut Block) {
        // SAFETY: per the contract; the shared stack is read only for a SUSPENDED block of this
        // thread, and a thread's shared stacks outlive its coroutines.
        unsafe {
            let b = &*this;
            let shared = b.shared.get();
            let key = if b.state() == State::Suspended && (shared.is_null() || (*shared).occupant() == this) {
                Block::handle(this) as usize ^ b.owner.load(Ordering::Relaxed) as usize
            } else {
                0
            };
            b.resume_key.set(key);
        }
    }

    pub(crate) fn is_main(&self) -> bool {
        self.flags.get() & flags::MAIN != 0
    }

    /// Makes every outstanding C handle of this block stale (once per life of the block).
    pub(crate) fn invalidate_handles(&self) {
        if self.flags.get() & flags::HANDLES_INVALID == 0 {
            self.flags.set(self.flags.get() | flags::HANDLES_INVALID);
            self.gen.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The C handle for this block as of now.
    pub(crate) fn handle(this: *const Block) -> *mut Block {
        // SAFETY (deref): callers pass live blocks; `gen` is atomic, so reading it is race-free.
        let tag = unsafe { (*this).gen.load(Ordering::Relaxed) } as usize & TAG_MASK;
        (this as usize | tag) as *mut Block
    }

    /// Splits a C handle into the block it names and checks its generation.
    /// Returns `None` for null; `Some(Err(()))` for a stale handle.
    ///
    /// # Safety
    /// A non-null `handle` must have been produced by [`Block::handle`] at some point (blocks are
    /// never unmapped, so the memory stays readable even after the coroutine is gone).
    pub(crate) unsafe fn from_handle(handle: *const Block) -> Option<Result<*mut Block, ()>> {
        let raw = handle as usize;
        let block = (raw & !TAG_MASK) as *mut Block;
        if block.is_null() {
            return None;
        }
        // SAFETY: per the contract the address is a slab block, which stays mapped forever.
        let gen = unsafe { (*block).gen.load(Ordering::Relaxed) } as usize;
        Some(if gen & TAG_MASK == raw & TAG_MASK { Ok(block) } else { Err(()) })
    }
}

/// Blocks per slab chunk.
const CHUNK: usize = 64;

/// Vacant blocks shared by all threads (each thread also keeps a small cache of its own).
struct SharedVacancies(Vec<*mut Block>);
// SAFETY: the pointers name vacant blocks, which no thread uses until it pops one.
unsafe impl Send for SharedVacancies {}

static VACANT: Mutex<SharedVacancies> = Mutex::new(SharedVacancies(Vec::new()));

/// How many vacant blocks a thread keeps before giving half back to the shared list.
pub(crate) const CACHE_HIGH: usize = 256;

/// Takes a vacant block: from `cache`, else from the shared list, else from a new chunk.
pub(crate) fn take_vacant(cache: &mut Vec<*mut Block>) -> Option<*mut Block> {
    if let Some(b) = cache.pop() {
        return Some(b);
    }
    {
        let mut shared = VACANT.lock().unwrap_or_else(|p| p.into_inner());
        let n = shared.0.len().min(CACHE_HIGH / 2);
        let at = shared.0.len() - n;
        cache.extend(shared.0.drain(at..));
    }
    if let Some(b) = cache.pop() {
        return Some(b);
    }
    let layout = Layout::array::<Block>(CHUNK).ok()?;
    // SAFETY: the layout has non-zero size. The chunk is never freed (type-stable memory).
    let chunk = unsafe { std::alloc::alloc(layout) }.cast::<Block>();
    if chunk.is_null() {
        return None;
    }
    for i in 0..CHUNK {
        // SAFETY: `i < CHUNK`, inside the fresh allocation; writing initialises the slot.
        unsafe { chunk.add(i).write(Block::vacant()) };
        if i > 0 {
            // SAFETY: as above.
            cache.push(unsafe { chunk.add(i) });
        }
    }
    Some(chunk)
}

/// Returns a block (already emptied) to `cache`, spilling to the shared list when it is large.
pub(crate) fn give_vacant(cache: &mut Vec<*mut Block>, block: *mut Block) {
    cache.push(block);
    if cache.len() > CACHE_HIGH {
        spill_vacant(cache, CACHE_HIGH / 2);
    }
}

/// Moves all but `keep` cached blocks to the shared list.
pub(crate) fn spill_vacant(cache: &mut Vec<*mut Block>, keep: usize) {
    if cache.len() > keep {
        let mut shared = VACANT.lock().unwrap_or_else(|p| p.into_inner());
        shared.0.extend(cache.drain(keep..));
    }
}
