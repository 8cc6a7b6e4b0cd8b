//! x86_64 System V: the assembly lives in `x86_64.s` (also assembled by the C harness), plus the
//! read of the thread word (defined in `arch/mod.rs`).
core::arch::global_asm!(include_str!("x86_64.s"), options(att_syntax));

// The thread word is defined once for both CPUs in `arch/mod.rs`; this is how x86_64 reads it.
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
