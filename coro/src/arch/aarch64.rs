//! aarch64 AAPCS64: the assembly lives in `aarch64.s` (also assembled by the C harness), plus the
//! thread word below.
core::arch::global_asm!(include_str!("aarch64.s"));

// The thread word (see `arch::thread_word`), as on x86_64: static TLS read through a TLS
// descriptor, which clobbers only x0, x1 and the link register and which the linker relaxes in
// an executable.
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl coro_thread_word",
    ".hidden coro_thread_word",
    ".type coro_thread_word,%object",
    ".size coro_thread_word,8",
    "coro_thread_word:",
    ".zero 8",
    ".popsection",
);

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
