/* Context switch for x86_64, System V ABI.
 *
 * Shared verbatim by the Rust crate (global_asm!, AT&T syntax) and the C switch harness in
 * tests/arch/, so the harness tests exactly the code that ships. Keep it free of C preprocessor
 * directives and of braces (Rust's asm templates treat braces as placeholders).
 *
 * Saved frame, at the suspended stack pointer sp (low to high):
 *   sp+0   MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes padding
 *   sp+8   r15
 *   sp+16  r14
 *   sp+24  r13
 *   sp+32  r12
 *   sp+40  rbx
 *   sp+48  rbp
 *   sp+56  return address
 * A fresh stack gets the same frame from coro_arch_init_stack, with the return address pointing
 * into coro_arch_trampoline (one byte past its start, see there), rbx = data and r12 = entry.
 * After the switch has popped that frame, rsp = (aligned top) - 80 (the link word, see
 * coro_arch_trampoline), 16-byte aligned, so the call in the trampoline enters `entry` with the
 * alignment the ABI requires.
 */
    .text

/* uintptr_t coro_arch_switch(void **save_sp, void *to_sp, uintptr_t value)
 * Saves the caller's callee-saved state on its own stack, stores that stack pointer in *save_sp,
 * loads to_sp and resumes the context saved there, which sees `value` as this function's result.
 */
    .globl coro_arch_switch
    .hidden coro_arch_switch
    .type coro_arch_switch,@function
    .p2align 4
coro_arch_switch:
    .cfi_startproc
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)

    movq %rsp, (%rdi)
    /* From here on the frame belongs to the context being resumed; it has the same layout, so
     * the CFI above describes it too. */
    movq %rsi, %rsp

    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    /* Return by jump: `ret` would consult the return stack buffer, which always predicts the
     * caller of this call on the *other* stack and so always mispredicts. */
    popq %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
    movq %rdx, %rax
    jmpq *%rcx
    .cfi_endproc
    .size coro_arch_switch, .-coro_arch_switch

/* First code a fresh stack runs: calls entry(data, value) with the value delivered by the switch
 * that started it. The entry never returns (it finishes with a switch away). */
    .globl coro_arch_trampoline
    .hidden coro_arch_trampoline
    .type coro_arch_trampoline,@function
    .p2align 4
coro_arch_trampoline:
    .cfi_startproc
    /* The caller of this frame, for unwinders (gdb, backtraces, profilers), is the context that
     * resumed the coroutine. This frame's rsp is top-80, the stack's link word: it holds the
     * address L of the word where that context saved its stack pointer S. The frame at S is
     * coro_arch_switch's, so CFA = S + 64 and the registers sit just below it, as in the switch.
     *   CFA = *(*rsp) + 64      (DW_CFA_def_cfa_expression: breg7 0; deref; deref; plus_uconst 64)
     * A fresh stack's link points at itself, so S = top-80, CFA = top-16, and every saved slot,
     * the return address included, reads the zeroed words above the link: a return address of 0
     * ends every unwinder's walk. No branches in the expression: valgrind's CFI reader has none. */
    .cfi_escape 0x0f, 0x06, 0x77, 0x00, 0x06, 0x06, 0x23, 0x40
    .cfi_offset %rip, -8
    .cfi_offset %rbp, -16
    .cfi_offset %rbx, -24
    .cfi_offset %r12, -32
    .cfi_offset %r13, -40
    .cfi_offset %r14, -48
    .cfi_offset %r15, -56
    /* Never executed: a fresh frame's return address is .Lcoro_trampoline_go, one byte in.
     * Unwinders look a return address up at address - 1; without this byte, a debugger or
     * profiler stopping in the second half of the switch that starts a fresh coroutine would look
     * up the alignment padding before this function, find no FDE, and show garbage frames. */
    nop
.Lcoro_trampoline_go:
    movq %rbx, %rdi
    movq %rax, %rsi
    callq *%r12
    ud2
    .cfi_endproc
    .size coro_arch_trampoline, .-coro_arch_trampoline

/* void *coro_arch_init_stack(void *top, void (*entry)(void *data, uintptr_t value), void *data)
 * Writes the first frame at the top of a fresh stack and returns the stack pointer to pass to
 * coro_arch_switch. The 80 bytes above the frame are reserved: top-80 is the link word the
 * trampoline's CFI reads (see there), initially pointing at itself; the rest stays zero. */
    .globl coro_arch_init_stack
    .hidden coro_arch_init_stack
    .type coro_arch_init_stack,@function
    .p2align 4
coro_arch_init_stack:
    .cfi_startproc
    andq $-16, %rdi
    leaq -144(%rdi), %rax
    /* A new coroutine starts with the creator's floating-point control state. */
    stmxcsr (%rax)
    fnstcw 4(%rax)
    movw $0, 6(%rax)
    movq $0, 8(%rax)
    movq $0, 16(%rax)
    movq $0, 24(%rax)
    movq %rsi, 32(%rax)
    movq %rdx, 40(%rax)
    movq $0, 48(%rax)
    leaq .Lcoro_trampoline_go(%rip), %rcx
    movq %rcx, 56(%rax)
    /* The 80 reserved bytes at the top: the link word (pointing at itself) and zeros. */
    leaq 64(%rax), %rcx
    movq %rcx, 64(%rax)
    movq $0, 72(%rax)
    movq $0, 80(%rax)
    movq $0, 88(%rax)
    movq $0, 96(%rax)
    movq $0, 104(%rax)
    movq $0, 112(%rax)
    movq $0, 120(%rax)
    movq $0, 128(%rax)
    movq $0, 136(%rax)
    ret
    .cfi_endproc
    .size coro_arch_init_stack, .-coro_arch_init_stack

    .section .note.GNU-stack,"",%progbits
    .text
