//! The context switch, one file per CPU.
//!
//! Each architecture provides the same three routines, written in assembly (`<arch>.s`) and shared
//! verbatim with the C harness in `tests/arch/`, so the harness tests exactly what ships:
//!
//! - `coro_arch_init_stack(top, entry, data) -> sp`: writes a first frame at the top of a fresh stack;
//!   the first switch to `sp` calls `entry(data, value)` on that stack.
//! - `coro_arch_switch(&save_sp, to_sp, value) -> value'`: saves the callee-saved registers and the
//!   floating-point control state on the current stack, stores the stack pointer in `save_sp`, and
//!   resumes the context saved at `to_sp`, whose pending switch returns `value`.
//! - `coro_arch_trampoline`: the first code of a fresh stack (internal to the assembly).
//!
//! The routines never allocate and touch nothing but registers and the two stacks.
//!
//! Unwinding across coroutines: a word near the top of every stack (see [`link_slot`]) holds the
//! address where the context that last resumed the coroutine saved its stack pointer. The
//! trampoline's CFI follows it, so gdb's `bt` and other unwinders walk from inside a coroutine
//! into the coroutine that resumed it. The core keeps it current on every switch.

#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
mod aarch64;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("coro supports x86_64 and aarch64; add capi/src/arch/<cpu>.s and <cpu>.rs to port it");

/// The function a fresh stack starts in. It must never return: it ends with a switch away.
pub(crate) type StackEntry = unsafe extern "C" fn(data: *mut u8, value: usize) -> !;

extern "C" {
    fn coro_arch_switch(save_sp: *mut *mut u8, to_sp: *mut u8, value: usize) -> usize;
    fn coro_arch_init_stack(top: *mut u8, entry: StackEntry, data: *mut u8) -> *mut u8;
}

/// The link word of a stack whose (exclusive) high end is `top`; see the module docs.
pub(crate) fn link_slot(top: *mut u8) -> *mut *mut *mut u8 {
    (((top as usize) & !15) - LINK_OFFSET) as *mut *mut *mut u8
}

/// Distance of the link word below the (aligned) top of a stack, as laid out by `init_stack`.
#[cfg(target_arch = "x86_64")]
const LINK_OFFSET: usize = 80;
#[cfg(target_arch = "aarch64")]
const LINK_OFFSET: usize = 192;

/// Prepares a fresh stack so that the first [`switch`] to the returned stack pointer calls
/// `entry(data, value)` on it.
///
/// # Safety
/// `top` must be the (exclusive) high end of a writable stack of at least 256 bytes that nothing
/// else uses. `entry` must never return.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: StackEntry, data: *mut u8) -> *mut u8 {
    // SAFETY: the caller guarantees `top` heads a writable, unused stack.
    unsafe { coro_arch_init_stack(top, entry, data) }
}

/// Suspends the running context, storing its stack pointer in `*save_sp`, and resumes the one
/// saved at `to_sp`. Returns, when something later switches back to `*save_sp`, the value that
/// switch carried.
///
/// # Safety
/// `to_sp` must be a stack pointer produced by [`init_stack`] or stored by an earlier `switch`
/// and not resumed since (each saved context is resumed at most once). `save_sp` must stay valid
/// until the context is resumed. Both stacks must belong to the calling OS thread's coroutines.
#[inline(always)]
pub(crate) unsafe fn switch(save_sp: *mut *mut u8, to_sp: *mut u8, value: usize) -> usize {
    // SAFETY: forwarded from the caller's contract.
    unsafe { coro_arch_switch(save_sp, to_sp, value) }
}
