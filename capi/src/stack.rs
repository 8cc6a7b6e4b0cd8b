//! Where coroutines run: stacks with a guard region, and a per-thread free list that reuses them.
//!
//! A stack is one anonymous mapping: `GUARD_BYTES` of inaccessible pages at the low end (stacks grow
//! down, so an overflow walks into them and faults) and the usable part above. The mapping is made
//! with `MAP_NORESERVE`, so only the pages a coroutine actually touches cost memory.

use crate::error::Error;
use crate::tools;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// Usable stack size when the caller asks for none (bytes).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest usable stack size accepted (bytes).
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest usable stack size accepted (bytes).
pub const MAX_STACK_SIZE: usize = 1024 * 1024 * 1024;
/// Inaccessible bytes below every stack. Larger than a page, so a frame of a few KiB that skips
/// over the first guard page still lands in the guard.
pub const GUARD_BYTES: usize = 16 * 1024;

/// Free stacks a thread keeps for reuse; more are unmapped at once.
const POOL_CAPACITY: usize = 64;

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

/// One mapped stack. Unmapped on drop.
pub(crate) struct Stack {
    /// Low end of the mapping (the guard starts here).
    base: NonNull<u8>,
    /// Usable bytes above the guard.
    usable: usize,
    /// Guard bytes at the low end.
    guard: usize,
    valgrind_id: usize,
}

impl Stack {
    /// Maps a new stack of `usable` bytes (already page-rounded) plus its guard.
    pub(crate) fn map(usable: usize) -> Result<Stack, Error> {
        let guard = GUARD_BYTES.div_ceil(page_size()) * page_size();
        let len = usable.checked_add(guard).ok_or(Error::NoMemory)?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing has no
        // preconditions; failure is reported as MAP_FAILED.
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
        if base == libc::MAP_FAILED {
            return Err(Error::NoMemory);
        }
        // SAFETY: `base..base+guard` lies inside the mapping just made.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
            // SAFETY: unmapping exactly the mapping made above.
            unsafe { libc::munmap(base, len) };
            return Err(Error::NoMemory);
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or(Error::NoMemory)?;
        // SAFETY: `guard` and `len` are within the mapping.
        let (low, high) = unsafe { (base.as_ptr().add(guard), base.as_ptr().add(len)) };
        let valgrind_id = tools::valgrind_stack_register(low, high);
        Ok(Stack { base, usable, guard, valgrind_id })
    }

    /// High (exclusive) end: where the stack starts growing down from.
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: guard + usable is the mapping's length.
        unsafe { self.base.as_ptr().add(self.guard + self.usable) }
    }

    /// Low end of the usable part (just above the guard).
    pub(crate) fn bottom(&self) -> *mut u8 {
        // SAFETY: guard is within the mapping.
        unsafe { self.base.as_ptr().add(self.guard) }
    }

    pub(crate) fn usable(&self) -> usize {
        self.usable
    }

    /// Whether `addr` falls in this stack's guard region, or so little below it that it can only
    /// be an overflow of this stack.
    pub(crate) fn guard_contains(&self, addr: usize) -> bool {
        let low = self.base.as_ptr() as usize;
        addr >= low.saturating_sub(page_size()) && addr < low + self.guard
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        tools::valgrind_stack_deregister(self.valgrind_id);
        // SAFETY: unmapping exactly the mapping this Stack owns; nothing runs on it any more
        // (callers only drop stacks of NEW or DEAD coroutines).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.guard + self.usable) };
    }
}

/// A thread's free stacks, reused warm (most recently freed first).
#[derive(Default)]
pub(crate) struct StackPool {
    free: Vec<Stack>,
}

impl StackPool {
    /// A stack of exactly `usable` bytes, from the free list when one fits.
    pub(crate) fn take(&mut self, usable: usize) -> Result<Stack, Error> {
        match self.free.iter().rposition(|s| s.usable == usable) {
            Some(i) => Ok(self.free.swap_remove(i)),
            None => Stack::map(usable),
        }
    }

    /// Keeps `stack` for reuse, or unmaps it when the pool is full.
    pub(crate) fn give(&mut self, stack: Stack) {
        if self.free.len() < POOL_CAPACITY {
            self.free.push(stack);
        }
    }
}
