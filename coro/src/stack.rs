//! Where coroutines run: stacks carved from large arenas, guarded against overflow, and pooled.
//!
//! **Arenas.** A stack is a *slot* in an arena: one anonymous `MAP_NORESERVE` mapping holding many
//! slots of one size, so a million coroutines need a few hundred mappings, not a million (Linux
//! allows 65,530 by default), and only the pages a coroutine touches cost memory. Slots are never
//! unmapped: a released slot returns to a free list and is reused.
//!
//! **Overflow protection, in tiers** (see `docs/stacks.md`; a slot keeps its tier for life):
//! 1. *Kernel guard*: `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+) makes the slot's lowest
//!    `GUARD_BYTES` fault on any access without splitting the mapping: every stack is guarded,
//!    whatever the count. An overflow faults at once and is reported by name (`engine/overflow.rs`).
//! 2. *Guard page*: elsewhere, `mprotect(PROT_NONE)` on the same range, which splits the mapping
//!    (two more mappings per stack); used while the process's mapping budget allows.
//! 3. *Canary*: beyond that budget, the lowest bytes of the usable stack hold a known pattern that is
//!    checked every time the coroutine switches out; a damaged canary is reported by name and the
//!    process aborts. This detects an overflow at the next switch, after the write happened.
//!
//! **Pool policy.** Each thread keeps up to [`WARM_STACKS`] released stacks (and at most
//! [`WARM_BYTES`] of them) warm for reuse, most recent first. Beyond that, or when the thread
//! exits, a released stack's memory is given back with `madvise(MADV_DONTNEED)` and its slot goes
//! to the process-wide free list (cold: the next user starts from zeroed pages).

use crate::error::Error;
use crate::tools;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Usable stack size when the caller asks for none (bytes).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest usable stack size accepted (bytes).
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest usable stack size accepted (bytes).
pub const MAX_STACK_SIZE: usize = 1024 * 1024 * 1024;
/// Protected bytes below every stack. Larger than a page, so a frame of a few KiB that skips
/// over the first guard page still lands in the guard.
pub const GUARD_BYTES: usize = 16 * 1024;

/// Released stacks a thread keeps warm (their pages stay resident) for reuse.
pub const WARM_STACKS: usize = 64;
/// At most this many bytes of warm stacks per thread.
pub const WARM_BYTES: usize = 16 * 1024 * 1024;

/// Virtual size an arena aims for (one mapping; untouched pages cost nothing).
const ARENA_BYTES: usize = 1 << 30;
/// Bytes of the canary at the bottom of an unguarded stack.
pub(crate) const CANARY_WORDS: usize = 8;
const CANARY: u64 = 0x6e55_7a0c_c0a1_57ac;

/// `madvise` advice that installs guard regions without splitting the mapping (Linux 6.13).
const MADV_GUARD_INSTALL: libc::c_int = 102;

pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

/// Rounds a requested usable size up to whole pages, after checking it against the limits.
/// `0` means the default.
pub(crate) fn usable_size(requested: usize) -> Result<usize, Error> {
    let size = if requested == 0 { DEFAULT_STACK_SIZE } else { requested };
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size) {
        return Err(Error::Invalid);
    }
    let page = page_size();
    Ok(size.div_ceil(page) * page)
}

fn guard_size() -> usize {
    GUARD_BYTES.div_ceil(page_size()) * page_size()
}

/// How a slot is protected against overflow (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardTier {
    /// A kernel guard region (`MADV_GUARD_INSTALL`): faults at once, costs no mapping.
    Kernel,
    /// A `PROT_NONE` guard page range: faults at once, costs mappings.
    Page,
    /// A canary checked at every switch out: detects after the fact.
    Canary,
}

/// One slot of an arena: a guard region followed by the usable stack. Plain data; the slot
/// itself is immortal.
#[derive(Clone, Copy)]
struct Slot {
    /// Low end of the slot (the guard starts here).
    base: NonNull<u8>,
    usable: usize,
    tier: GuardTier,
}

// SAFETY: a slot is an address range of an immortal mapping; whoever holds the Slot value owns it.
unsafe impl Send for Slot {}

/// A stack in use, owned by one coroutine. Dropping it releases the slot (cold, see module docs).
pub(crate) struct Stack {
    slot: Slot,
}

impl Stack {
    /// High (exclusive) end: where the stack starts growing down from.
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: guard + usable is the slot's length.
        unsafe { self.slot.base.as_ptr().add(guard_size() + self.slot.usable) }
    }

    /// Low end of the usable part (just above the guard).
    pub(crate) fn bottom(&self) -> *mut u8 {
        // SAFETY: the guard is within the slot.
        unsafe { self.slot.base.as_ptr().add(guard_size()) }
    }

    pub(crate) fn usable(&self) -> usize {
        self.slot.usable
    }

    pub(crate) fn tier(&self) -> GuardTier {
        self.slot.tier
    }

    /// The canary to check at every switch out (unguarded stacks only).
    pub(crate) fn canary(&self) -> *const u64 {
        match self.slot.tier {
            GuardTier::Canary => self.bottom().cast(),
            _ => core::ptr::null(),
        }
    }

    /// Whether `addr` falls in this stack's guard region, or so little below it that it can only
    /// be an overflow of this stack.
    pub(crate) fn guard_contains(&self, addr: usize) -> bool {
        let low = self.slot.base.as_ptr() as usize;
        self.slot.tier != GuardTier::Canary && addr >= low.saturating_sub(page_size()) && addr < low + guard_size()
    }

    /// Whether every word of an unguarded stack's canary is intact (true for guarded stacks).
    pub(crate) fn canary_fully_intact(&self) -> bool {
        let words = self.canary();
        // SAFETY: a canary of a live stack is CANARY_WORDS readable words.
        words.is_null() || (0..CANARY_WORDS).all(|i| unsafe { words.add(i).read_volatile() } == CANARY)
    }

    /// Writes the canary of an unguarded stack (on every new use of the slot).
    fn arm_canary(&self) {
        if self.slot.tier == GuardTier::Canary {
            let words = self.bottom().cast::<u64>();
            for i in 0..CANARY_WORDS {
                // SAFETY: the lowest usable bytes of a slot we own.
                unsafe { words.add(i).write(CANARY) };
            }
        }
    }
}

/// Whether the canary at `canary` (see [`Stack::canary`]) is intact.
///
/// # Safety
/// `canary` comes from [`Stack::canary`] of a live stack.
#[inline]
pub(crate) unsafe fn canary_intact(canary: *const u64) -> bool {
    // SAFETY: per the contract. The hot path checks the canary's highest word: a stack grows
    // down, so an overflow reaches that word first. A frame that skips it is still caught by the
    // full check when the stack is released (`Stack::canary_fully_intact`).
    unsafe { canary.add(CANARY_WORDS - 1).read_volatile() == CANARY }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A coroutine that died or was released: its stack memory goes back to the system.
        // SAFETY: the usable range lies in the slot we own; nothing runs on it any more.
        unsafe { libc::madvise(self.bottom().cast(), self.slot.usable, libc::MADV_DONTNEED) };
        ARENAS.lock().unwrap_or_else(|p| p.into_inner()).release(self.slot);
    }
}

/// A thread's warm stacks, reused most recently released first.
#[derive(Default)]
pub(crate) struct StackPool {
    warm: Vec<Stack>,
    warm_bytes: usize,
}

impl StackPool {
    /// A stack of exactly `usable` bytes: warm from this thread if one fits, else a slot from
    /// the process's free list or a new one carved from an arena.
    pub(crate) fn take(&mut self, usable: usize) -> Result<Stack, Error> {
        if let Some(i) = self.warm.iter().rposition(|s| s.slot.usable == usable) {
            let stack = self.warm.swap_remove(i);
            self.warm_bytes -= usable;
            stack.arm_canary();
            return Ok(stack);
        }
        let slot = ARENAS.lock().unwrap_or_else(|p| p.into_inner()).acquire(usable)?;
        let stack = Stack { slot };
        stack.arm_canary();
        Ok(stack)
    }

    /// Keeps `stack` warm, or releases it (cold) when the pool is full.
    pub(crate) fn give(&mut self, stack: Stack) {
        if self.warm.len() < WARM_STACKS && self.warm_bytes + stack.usable() <= WARM_BYTES {
            self.warm_bytes += stack.usable();
            self.warm.push(stack);
        }
    }
}

/// The process's arenas: where new slots are carved, and released slots wait, per usable size
/// (a program uses few sizes, so plain lists).
struct Arenas {
    free: Vec<(usize, Vec<Slot>)>,
    /// The arena currently being carved, per usable size: (size, next free address, slots left).
    carving: Vec<(usize, usize, usize)>,
}

static ARENAS: Mutex<Arenas> = Mutex::new(Arenas { free: Vec::new(), carving: Vec::new() });

impl Arenas {
    fn acquire(&mut self, usable: usize) -> Result<Slot, Error> {
        if let Some(slot) = self.free.iter_mut().find(|(size, _)| *size == usable).and_then(|(_, list)| list.pop()) {
            return Ok(slot);
        }
        let slot_bytes = usable + guard_size();
        let carving = self.carving.iter().position(|c| c.0 == usable);
        let (next, left) = match carving.map(|i| self.carving[i]) {
            Some((_, next, left)) if left > 0 => (next, left),
            _ => {
                // A whole arena if the address space allows it; under a limit (RLIMIT_AS), ever
                // smaller ones, down to a single slot.
                let mut count = (ARENA_BYTES / slot_bytes).max(1);
                loop {
                    let len = count.checked_mul(slot_bytes).ok_or(Error::NoMemory)?;
                    // SAFETY: an anonymous private mapping at an address of the kernel's choosing
                    // has no preconditions; failure is reported as MAP_FAILED.
                    let base = unsafe {
                        libc::mmap(
                            core::ptr::null_mut(),
                            len,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                            -1,
                            0,
                        )
                    };
                    if base != libc::MAP_FAILED {
                        break (base as usize, count);
                    }
                    if count == 1 {
                        return Err(Error::NoMemory);
                    }
                    count /= 2;
                }
            }
        };
        match carving {
            Some(i) => self.carving[i] = (usable, next + slot_bytes, left - 1),
            None => self.carving.push((usable, next + slot_bytes, left - 1)),
        }
        let base = NonNull::new(next as *mut u8).ok_or(Error::NoMemory)?;
        let tier = protect(base.as_ptr());
        // SAFETY: the usable range lies inside the slot just carved.
        let (low, high) = unsafe { (base.as_ptr().add(guard_size()), base.as_ptr().add(slot_bytes)) };
        // Slots are immortal, so they stay registered with valgrind for good.
        tools::valgrind_stack_register(low, high);
        Ok(Slot { base, usable, tier })
    }

    fn release(&mut self, slot: Slot) {
        match self.free.iter_mut().find(|(size, _)| *size == slot.usable) {
            Some((_, list)) => list.push(slot),
            None => self.free.push((slot.usable, vec![slot])),
        }
    }
}

/// Guard pages made with mprotect so far (each costs two mappings).
static PAGE_GUARDS: AtomicUsize = AtomicUsize::new(0);
/// Set once `MADV_GUARD_INSTALL` has failed: this kernel (or tool, e.g. valgrind) lacks it.
static NO_KERNEL_GUARDS: AtomicBool = AtomicBool::new(false);

/// The best tier a new slot may get: `CORO_STACK_GUARD=page|canary` lowers it (for tests and for
/// measuring the tiers); unset or `kernel` means the best available.
fn tier_ceiling() -> GuardTier {
    static CEILING: OnceLock<GuardTier> = OnceLock::new();
    *CEILING.get_or_init(|| match std::env::var("CORO_STACK_GUARD").as_deref() {
        Ok("page") => GuardTier::Page,
        Ok("canary") => GuardTier::Canary,
        _ => GuardTier::Kernel,
    })
}

/// Protects the guard range of a new slot at `base` with the best tier available.
fn protect(base: *mut u8) -> GuardTier {
    let len = guard_size();
    let ceiling = tier_ceiling();
    if ceiling == GuardTier::Kernel && !NO_KERNEL_GUARDS.load(Ordering::Relaxed) {
        // SAFETY: the range is the slot's own guard, inside our mapping.
        if unsafe { libc::madvise(base.cast(), len, MADV_GUARD_INSTALL) } == 0 {
            return GuardTier::Kernel;
        }
        NO_KERNEL_GUARDS.store(true, Ordering::Relaxed);
    }
    if ceiling != GuardTier::Canary && PAGE_GUARDS.load(Ordering::Relaxed) < page_guard_budget() {
        // SAFETY: as above.
        if unsafe { libc::mprotect(base.cast(), len, libc::PROT_NONE) } == 0 {
            PAGE_GUARDS.fetch_add(1, Ordering::Relaxed);
            return GuardTier::Page;
        }
    }
    GuardTier::Canary
}

/// How many mprotect guards the process may make: each costs two mappings; keep a quarter of
/// `vm.max_map_count` (and what is already mapped) for everything else. `CORO_PAGE_GUARDS`
/// overrides it.
fn page_guard_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        if let Some(n) = std::env::var("CORO_PAGE_GUARDS").ok().and_then(|v| v.parse().ok()) {
            return n;
        }
        let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(65_530);
        let used = std::fs::read_to_string("/proc/self/maps").map(|s| s.lines().count()).unwrap_or(1_000);
        (max * 3 / 4).saturating_sub(used) / 2
    })
}
