//! x86_64 System V: the assembly lives in `x86_64.s` (also assembled by the C harness), plus the
//! thread word below.
core::arch::global_asm!(include_str!("x86_64.s"), options(att_syntax));

// The thread word (see `arch::thread_word`): one pointer of static TLS, defined here rather than
// by `thread_local!` so that the switch reads it with a TLS descriptor, whatever the library is
// linked into. A descriptor call clobbers only rax, and the linker relaxes it to a constant offset
// when the engine is linked into an executable (`libcoro.a`); in a shared library
// (`libcoro.so`, the Python extension) it is an indirect call to a two-instruction resolver
// instead of `__tls_get_addr`, which would clobber every caller-saved register.
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl coro_thread_word",
    ".hidden coro_thread_word",
    ".type coro_thread_word,@object",
    ".size coro_thread_word,8",
    "coro_thread_word:",
    ".zero 8",
    ".popsection",
);

/// The address of this thread's word.
#[inline(always)]
pub(super) fn thread_word() -> *mut usize {
    let offset: usize;
    // SAFETY: the general-dynamic TLS descriptor sequence for `coro_thread_word` (the exact form
    // the linker relaxes); the descriptor call preserves every register but rax and the flags,
    // and it may use the stack (no `nostack`).
    unsafe {
        core::arch::asm!(
            "lea rax, [rip + coro_thread_word@TLSDESC]",
            "call qword ptr [rax + coro_thread_word@TLSCALL]",
            out("rax") offset,
        );
    }
    let base: usize;
    // SAFETY: fs:0 holds the thread pointer itself on x86_64 Linux (TLS variant II).
    unsafe { core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) base, options(nostack, readonly, preserves_flags)) };
    base.wrapping_add(offset) as *mut usize
}
