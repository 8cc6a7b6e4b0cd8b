//! aarch64 AAPCS64: the assembly lives in `aarch64.s` (also assembled by the C harness), plus the
//! read of the thread word (defined in `arch/mod.rs`).
core::arch::global_asm!(include_str!("aarch64.s"));

// The thread word is defined once for both CPUs in `arch/mod.rs`; this is how aarch64 reads it,
// through a TLS descriptor, which clobbers only x0, x1 and the link register and which the
// linker relaxes in an executable.
/// The address of this thread's word.
#[inline(always)]
pub(super) fn thread_word() -> *mut usize {
    let addr: usize;
    // SAFETY: the TLS descriptor sequence for `coro_thread_word` (the exact form the linker
    // relaxes); the descriptor call preserves every register but x0, x1 and x30.
    unsafe {
        core::arch::asm!(
            "adrp x0, :tlsdesc:coro_thread_word",
            "ldr x1, [x0, #:tlsdesc_lo12:coro_thread_word]",
            "add x0, x0, #:tlsdesc_lo12:coro_thread_word",
            ".tlsdesccall coro_thread_word",
            "blr x1",
            "mrs x1, tpidr_el0",
            "add x0, x1, x0",
            out("x0") addr,
            out("x1") _,
            out("x30") _,
        );
    }
    addr as *mut usize
}
