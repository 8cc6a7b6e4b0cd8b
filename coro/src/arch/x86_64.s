/* Context switch for x86_64, System V ABI.
 *
 * Shared verbatim by the Rust crate (global_asm!, AT&T syntax) and the C switch harness in
 * tests/arch/, so the harness tests exactly the code that ships. Keep it free of C preprocessor
 * directives and of braces (Rust's asm templates treat braces as placeholders).
 *
 * One primitive, coro_arch_enter, does every switch. The runtime's bookkeeping runs in two hooks
 * that it calls with balanced call/ret pairs: `begin` on the leaving stack decides where to go,
 * `end` on the arriving stack finishes the switch and computes what the resumed call returns.
 * The resumed call then returns to its caller by an indirect jump: no `ret` whose prediction the
 * stack switch would spoil, and a C API function built on it (`coro_switch` jumps straight here)
 * adds no frame of its own.
 *
 * Saved frame, at the suspended stack pointer sp (low to high), 80 bytes:
 *   sp+0   padding (keeps sp 16-byte aligned)
 *   sp+8   end hook of the suspended call
 *   sp+16  MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes padding
 *   sp+24  r15
 *   sp+32  r14
 *   sp+40  r13
 *   sp+48  r12
 *   sp+56  rbx
 *   sp+64  rbp
 *   sp+72  return address
 * The frame ends at the CFA (sp+80). A fresh stack gets the same frame from coro_arch_init_stack,
 * with the end hook `first_end`, the return address pointing into coro_arch_trampoline (one byte
 * past its start, see there), rbx = data and r12 = entry. Once that frame is popped,
 * rsp = (aligned top) - 96: the link word (see coro_arch_trampoline), 16-byte aligned, so the call
 * in the trampoline enters `entry` with the alignment the ABI requires.
 */
    .text

/* ret coro_arch_enter(a, b, c, begin, end)
 *   (sp, word) begin(a, b, c, void *sp);    (two words: the stack to continue on, and a word)
 *   ret end(void *ctx);                     (ret: two words, rax:rdx)
 * Saves the caller's frame (with `end` in it), calls begin(a, b, c, sp) on the caller's stack, and
 * continues on the stack begin returns (the caller's own sp when nothing is to switch): there it
 * restores the floating-point control state, calls that frame's end hook with begin's word as
 * its context, pops the frame and jumps to its return address with end's result in rax:rdx.
 * Fast path: when begin sets bit 0 of the returned sp, no end hook runs and the result is
 * (0, word): begin has already done everything the end hook would.
 */
    .globl coro_arch_enter
    .hidden coro_arch_enter
    .type coro_arch_enter,@function
    .p2align 4
coro_arch_enter:
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
    subq $24, %rsp
    .cfi_adjust_cfa_offset 24
    stmxcsr 16(%rsp)
    fnstcw 20(%rsp)
    movq %r8, 8(%rsp)
    /* begin(a, b, c, sp): the arguments are already in rdi, rsi, rdx. rbx (saved above) keeps
     * our frame's address across the call, to compare the floating-point control state below. */
    movq %rsp, %rbx
    movq %rcx, %rax
    movq %rsp, %rcx
    callq *%rax
    /* rax = the stack to continue on, with bit 0 set for the fast path: then rdx is the value
     * itself and no end hook is needed. Otherwise rdx is the end hook's context. */
    movl %eax, %r8d
    andq $-16, %rax
    /* From here on the frame belongs to the context being resumed (or still to ours when begin
     * chose not to switch); it has the same layout, so the CFI above describes it too. */
    movq %rax, %rsp
    /* The floating-point control state is per context, but loading it is slow: only when the
     * leaving frame's (the current state) and the arriving frame's control bits differ. MXCSR's
     * exception flags (bits 0-5) are sticky status, not control: they stay per thread, like
     * FPSR on aarch64. */
    movl 16(%rbx), %eax
    xorl 16(%rsp), %eax
    testl $0xffc0, %eax
    jz 1f
    /* Load the arriving control bits with the live flags: (arriving & ~0x3f) | (live & 0x3f),
     * staged in the arriving frame's padding word. */
    movl 16(%rsp), %eax
    andl $-64, %eax
    movl 16(%rbx), %ecx
    andl $63, %ecx
    orl %ecx, %eax
    movl %eax, (%rsp)
    ldmxcsr (%rsp)
1:
    movzwl 20(%rbx), %eax
    cmpw 20(%rsp), %ax
    je 2f
    fldcw 20(%rsp)
2:
    /* Fast path: the result is (0, value), already in place but for rax. */
    xorl %eax, %eax
    testb $1, %r8b
    jnz 3f
    movq %rdx, %rdi
    callq *8(%rsp)
3:
    addq $24, %rsp
    .cfi_adjust_cfa_offset -24
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
    popq %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
    jmpq *%rcx
    .cfi_endproc
    .size coro_arch_enter, .-coro_arch_enter

/* First code a fresh stack runs, with the value that started it in rdx (the second word of the
 * result, from first_end or the fast path): calls entry(data, value). The entry never returns (it
 * finishes with a switch). */
    .globl coro_arch_trampoline
    .hidden coro_arch_trampoline
    .type coro_arch_trampoline,@function
    .p2align 4
coro_arch_trampoline:
    .cfi_startproc
    /* The caller of this frame, for unwinders (gdb, backtraces, profilers), is the context that
     * resumed the coroutine. This frame's rsp is top-96, the stack's link word: it holds the
     * address L of the word where that context saved its stack pointer S. The frame at S is
     * coro_arch_enter's, so CFA = S + 80 and the registers sit just below it, as in the switch.
     *   CFA = *(*rsp) + 80      (DW_CFA_def_cfa_expression: breg7 0; deref; deref; plus_uconst 80)
     * A fresh stack's link points at itself, so S = top-96, CFA = top-16, and every saved slot,
     * the return address included, reads the zeroed words above the link: a return address of 0
     * ends every unwinder's walk. No branches in the expression: valgrind's CFI reader has none. */
    .cfi_escape 0x0f, 0x06, 0x77, 0x00, 0x06, 0x06, 0x23, 0x50
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
    movq %rdx, %rsi
    callq *%r12
    ud2
    .cfi_endproc
    .size coro_arch_trampoline, .-coro_arch_trampoline

/* void *coro_arch_init_stack(void *top, void (*entry)(void *data, uintptr_t value), void *data,
 *                            uintptr_t (*first_end)(void *ctx))
 * Writes the first frame at the top of a fresh stack and returns the stack pointer that begin
 * hooks return to switch to it. The first switch calls first_end(ctx) there (unless it takes the
 * fast path), whose second result word is the value entry receives. The 96 bytes above the frame are reserved: top-96 is the link word
 * the trampoline's CFI reads (initially pointing at itself); the rest stays zero. */
    .globl coro_arch_init_stack
    .hidden coro_arch_init_stack
    .type coro_arch_init_stack,@function
    .p2align 4
coro_arch_init_stack:
    .cfi_startproc
    andq $-16, %rdi
    leaq -176(%rdi), %rax
    movq $0, (%rax)
    movq %rcx, 8(%rax)
    /* A new coroutine starts with the creator's floating-point control state. */
    stmxcsr 16(%rax)
    fnstcw 20(%rax)
    movw $0, 22(%rax)
    movq $0, 24(%rax)
    movq $0, 32(%rax)
    movq $0, 40(%rax)
    movq %rsi, 48(%rax)
    movq %rdx, 56(%rax)
    movq $0, 64(%rax)
    leaq .Lcoro_trampoline_go(%rip), %rcx
    movq %rcx, 72(%rax)
    /* The 96 reserved bytes at the top: the link word (pointing at itself) and zeros. */
    leaq 80(%rax), %rcx
    movq %rcx, 80(%rax)
    movq $0, 88(%rax)
    movq $0, 96(%rax)
    movq $0, 104(%rax)
    movq $0, 112(%rax)
    movq $0, 120(%rax)
    movq $0, 128(%rax)
    movq $0, 136(%rax)
    movq $0, 144(%rax)
    movq $0, 152(%rax)
    movq $0, 160(%rax)
    movq $0, 168(%rax)
    ret
    .cfi_endproc
    .size coro_arch_init_stack, .-coro_arch_init_stack

    .section .note.GNU-stack,"",%progbits
    .text
