//! The context switch, one file per CPU.
//!
//! Each architecture provides the same routines, written in assembly (`<arch>.s`) and shared
//! verbatim with the C harness in `tests/arch/`, so the harness tests exactly what ships:
//!
//! - `coro_arch_enter(a, b, c, begin, end)`: every switch. Saves the callee-saved registers, the
//!   floating-point control state and `end` on the current stack, calls `begin(a, b, c, sp)` there,
//!   continues on the stack pointer `begin` returns, calls the `end` hook saved in *that* frame
//!   with `begin`'s context word, pops the frame and returns to that frame's caller with `end`'s
//!   result. Both hooks are called with balanced call/return pairs; the final return is an
//!   indirect jump (x86_64), so no return prediction is spoiled by the stack switch. When `begin`
//!   has done all the work (the common case), it marks the stack pointer with [`FAST`] and the
//!   resumed call returns `(0, word)` without any end hook.
//! - `coro_arch_init_stack(top, entry, data, first_end) -> sp`: writes a first frame at the top of a
//!   fresh stack, so that the first switch to `sp` calls `first_end(ctx)` (unless fast) and then
//!   `entry(data, value)` with the second word of the result.
//! - `coro_arch_trampoline`: the first code of a fresh stack (internal to the assembly).
//!
//! The routines never allocate and touch nothing but registers and the two stacks.
//!
//! Unwinding across coroutines: a word near the top of every stack (see [`link_slot`]) holds the
//! address where the context that last resumed the coroutine saved its stack pointer. The
//! trampoline's CFI follows it, so gdb's `bt` and other unwinders walk from inside a coroutine
//! into the coroutine that resumed it. The core keeps it current on every switch.
//!
//! Porting to another CPU: add `<cpu>.s` (the routines above) and `<cpu>.rs` (which assembles
//! it, and reads the thread word through a TLS descriptor); in this file, the `mod <cpu>` line and
//! `thread_word`, the `naked_asm!` arm of `enter_with_hooks!` and
//! `LINK_OFFSET`; in `tools.rs`, valgrind's client-request sequence for that CPU; and the CPU's arm of
//! `coro_switch`'s assembly fast path in `engine/switch/fast.rs` (which must push this file's frame). The
//! `rep movsq` path of `engine/switch/copying.rs` is an optional x86_64 speed-up (other CPUs use
//! the loop); the C harness in `tests/arch/` needs the CPU's register checks to test the new
//! assembly.

/// The body of a naked `extern "C"` function of three arguments that hands them to
/// `coro_arch_enter` with the given begin and end hooks (a tail jump: no frame of its own).
macro_rules! enter_with_hooks {
    ($begin:path, $end:path) => {
        #[cfg(target_arch = "x86_64")]
        core::arch::naked_asm!(
            "lea rcx, [rip + {begin}]",
            "lea r8, [rip + {end}]",
            "jmp {enter}",
            begin = sym $begin,
            end = sym $end,
            enter = sym $crate::arch::coro_arch_enter,
        );
        #[cfg(target_arch = "aarch64")]
        core::arch::naked_asm!(
            "adrp x3, {begin}",
            "add x3, x3, :lo12:{begin}",
            "adrp x4, {end}",
            "add x4, x4, :lo12:{end}",
            "b {enter}",
            begin = sym $begin,
            end = sym $end,
            enter = sym $crate::arch::coro_arch_enter,
        );
    };
}
pub(crate) use enter_with_hooks;

#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
mod aarch64;

// The thread word (see `thread_word`): one pointer of static TLS, defined here rather than by
// `thread_local!` so that the switch reads it with a TLS descriptor (`<cpu>.rs`), whatever the
// library is linked into. The linker relaxes a descriptor to a constant offset when the engine is
// linked into an executable (`libcoro.a`); in a shared library (`libcoro.so`, the Python
// extension) it is an indirect call to a two-instruction resolver instead of `__tls_get_addr`,
// which would clobber every caller-saved register. (`%` type prefixes: both CPUs' assemblers
// accept them.)
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",%nobits",
    ".p2align 3",
    ".globl coro_thread_word",
    ".hidden coro_thread_word",
    ".type coro_thread_word,%object",
    ".size coro_thread_word,8",
    "coro_thread_word:",
    ".zero 8",
    ".popsection",
);

/// This thread's word of static TLS (null-initialised), where the engine keeps its per-thread
/// state's address. It is read on every switch, so each CPU reads it with a TLS descriptor
/// (`<cpu>.rs`): cheap in an executable and in a shared library alike, and clobbering almost no
/// registers, so the switch's fast path stays free of register saves.
#[inline(always)]
pub(crate) fn thread_word() -> *mut usize {
    #[cfg(target_arch = "x86_64")]
    return x86_64::thread_word();
    #[cfg(target_arch = "aarch64")]
    return aarch64::thread_word();
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("coro supports x86_64 and aarch64; to port it, see \"Porting\" in coro/src/arch/mod.rs");

/// The function a fresh stack starts in. It must never return: it ends with a switch away.
pub(crate) type StackEntry = unsafe extern "C" fn(data: *mut u8, value: usize) -> !;

/// What a begin hook returns: the stack pointer to continue on (the caller's own to not switch)
/// and a context word handed to the end hook there. Two words: returned in registers.
/// With [`FAST`] set in `sp`, no end hook runs and the resumed call returns `(0, ctx)`.
#[repr(C)]
pub(crate) struct Departure {
    pub sp: *mut u8,
    pub ctx: *mut u8,
}

/// Bit of [`Departure::sp`] that selects the fast path (stack pointers are 16-byte aligned).
pub(crate) const FAST: usize = 1;

/// Runs on the leaving stack with the saved frame's stack pointer (`sp`).
pub(crate) type BeginHook = unsafe extern "C" fn(a: usize, b: usize, c: usize, sp: *mut u8) -> Departure;

/// The end hook of a fresh stack: the second word of its result is the value the entry receives.
pub(crate) type FirstEnd = unsafe extern "C" fn(ctx: *mut u8) -> Arrival;

extern "C" {
    /// Declared here with the two-word result the Rust side uses; `ffi::coro_switch` jumps to
    /// the same routine with a one-word result.
    pub(crate) fn coro_arch_enter(
        a: usize,
        b: usize,
        c: usize,
        begin: BeginHook,
        end: unsafe extern "C" fn(ctx: *mut u8) -> Arrival,
    ) -> Arrival;
    fn coro_arch_init_stack(top: *mut u8, entry: StackEntry, data: *mut u8, first_end: FirstEnd) -> *mut u8;
}

/// What the Rust side's end hook returns (two words: returned in registers).
#[repr(C)]
pub(crate) struct Arrival {
    pub signal: usize,
    pub value: usize,
}

/// The link word of a stack whose (exclusive) high end is `top`; see the module docs.
pub(crate) fn link_slot(top: *mut u8) -> *mut *mut *mut u8 {
    (((top as usize) & !15) - LINK_OFFSET) as *mut *mut *mut u8
}

/// Distance of the link word below the (aligned) top of a stack, as laid out by `init_stack`.
#[cfg(target_arch = "x86_64")]
const LINK_OFFSET: usize = 96;
#[cfg(target_arch = "aarch64")]
const LINK_OFFSET: usize = 208;

/// Prepares a fresh stack so that the first switch to the returned stack pointer calls
/// `first_end(ctx)` and then `entry(data, value)` on it, `value` being what `first_end` returned.
///
/// # Safety
/// `top` must be the (exclusive) high end of a writable stack of at least 512 bytes that nothing
/// else uses. `entry` must never return.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: StackEntry, data: *mut u8, first_end: FirstEnd) -> *mut u8 {
    // SAFETY: the caller guarantees `top` heads a writable, unused stack.
    unsafe { coro_arch_init_stack(top, entry, data, first_end) }
}
