/* Context switch for aarch64, AAPCS64.
 *
 * Shared verbatim by the Rust crate (global_asm!, LLVM assembler) and the C switch harness in
 * tests/arch/ (GNU as), so the harness tests exactly the code that ships. Keep it free of C
 * preprocessor directives and of braces (Rust's asm templates treat braces as placeholders).
 *
 * One primitive, coro_arch_enter, does every switch; see x86_64.s for the design (begin hook on
 * the leaving stack, end hook on the arriving one, both called with balanced bl/ret pairs).
 *
 * Saved frame, at the suspended stack pointer sp (low to high), 192 bytes, 16-byte aligned:
 *   sp+0    end hook of the suspended call, 8 bytes padding
 *   sp+16   FPCR, 8 bytes padding
 *   sp+32   d8,  d9
 *   sp+48   d10, d11
 *   sp+64   d12, d13
 *   sp+80   d14, d15
 *   sp+96   x19, x20
 *   sp+112  x21, x22
 *   sp+128  x23, x24
 *   sp+144  x25, x26
 *   sp+160  x27, x28
 *   sp+176  x29 (fp), x30 (lr = where the resumed call returns)
 * The frame ends at the CFA (sp+192). A fresh stack gets the same frame from coro_arch_init_stack,
 * with the end hook `first_end`, x30 pointing into coro_arch_trampoline (one instruction past its
 * start, see there), x19 = data, x20 = entry, x29 = 0, every other register 0 and FPCR = the
 * creator's FPCR. Once that frame is popped, sp = (aligned top) - 208, the link word (see
 * coro_arch_trampoline).
 *
 * Only the low 64 bits of v8-v15 are callee-saved in AAPCS64, so d8-d15 is the whole FP state
 * apart from FPCR; FPSR (sticky status flags) is deliberately not per context.
 * `hint #34` is `bti c` (a NOP on cores without BTI); returns use `ret`, which BTI never checks,
 * so a switch into coro_arch_trampoline needs no landing pad.
 */
    .text

/* ret coro_arch_enter(a, b, c, begin, end)
 *   (sp, word) begin(a, b, c, void *sp);    (two words: the stack to continue on, and a word)
 *   ret end(void *ctx);                     (ret: two words, x0:x1)
 * Saves the caller's frame (with `end` in it), calls begin(a, b, c, sp) on the caller's stack, and
 * continues on the stack begin returns (the caller's own sp when nothing is to switch): there it
 * restores FPCR if it differs, calls that frame's end hook with begin's word as its context,
 * pops the frame and returns to that frame's caller with end's result in x0:x1.
 * Fast path: when begin sets bit 0 of the returned sp, no end hook runs and the result is
 * (0, word): begin has already done everything the end hook would.
 */
    .globl coro_arch_enter
    .hidden coro_arch_enter
    .type coro_arch_enter,%function
    .p2align 4
coro_arch_enter:
    .cfi_startproc
    hint #34
    sub sp, sp, #192
    .cfi_def_cfa_offset 192
    stp x29, x30, [sp, #176]
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    stp x27, x28, [sp, #160]
    .cfi_offset x27, -32
    .cfi_offset x28, -24
    stp x25, x26, [sp, #144]
    .cfi_offset x25, -48
    .cfi_offset x26, -40
    stp x23, x24, [sp, #128]
    .cfi_offset x23, -64
    .cfi_offset x24, -56
    stp x21, x22, [sp, #112]
    .cfi_offset x21, -80
    .cfi_offset x22, -72
    stp x19, x20, [sp, #96]
    .cfi_offset x19, -96
    .cfi_offset x20, -88
    stp d14, d15, [sp, #80]
    .cfi_offset d14, -112
    .cfi_offset d15, -104
    stp d12, d13, [sp, #64]
    .cfi_offset d12, -128
    .cfi_offset d13, -120
    stp d10, d11, [sp, #48]
    .cfi_offset d10, -144
    .cfi_offset d11, -136
    stp d8, d9, [sp, #32]
    .cfi_offset d8, -160
    .cfi_offset d9, -152
    mrs x9, fpcr
    stp x4, xzr, [sp]
    stp x9, xzr, [sp, #16]
    /* begin(a, b, c, sp): the arguments are already in x0, x1, x2. */
    mov x9, x3
    mov x3, sp
    blr x9
    /* x0 = the stack to continue on, with bit 0 set for the fast path: then x1 is the value
     * itself and no end hook is needed. Otherwise x1 is the end hook's context. */
    and x10, x0, #0xfffffffffffffff0
    /* From here on the frame belongs to the context being resumed (or still to ours when begin
     * chose not to switch); it has the same layout, so the CFI above describes it too. */
    mov sp, x10
    /* Writing FPCR can be slow (self-synchronising on some cores): only do it on a change. */
    ldr x10, [sp, #16]
    mrs x9, fpcr
    cmp x9, x10
    b.eq 1f
    msr fpcr, x10
1:
    tbnz x0, #0, 2f
    ldr x9, [sp]
    mov x0, x1
    blr x9
    b 3f
2:
    /* Fast path: the result is (0, value); x1 already holds the value. */
    mov x0, #0
3:
    ldp d8, d9, [sp, #32]
    ldp d10, d11, [sp, #48]
    ldp d12, d13, [sp, #64]
    ldp d14, d15, [sp, #80]
    ldp x19, x20, [sp, #96]
    ldp x21, x22, [sp, #112]
    ldp x23, x24, [sp, #128]
    ldp x25, x26, [sp, #144]
    ldp x27, x28, [sp, #160]
    ldp x29, x30, [sp, #176]
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    add sp, sp, #192
    .cfi_def_cfa_offset 0
    ret
    .cfi_endproc
    .size coro_arch_enter, .-coro_arch_enter

/* First code a fresh stack runs, with the value that started it in x1 (the second word of the
 * result, from first_end or the fast path): calls entry(data, value). The entry never returns (it
 * finishes with a switch). */
    .globl coro_arch_trampoline
    .hidden coro_arch_trampoline
    .type coro_arch_trampoline,%function
    .p2align 4
coro_arch_trampoline:
    .cfi_startproc
    /* The caller of this frame, for unwinders (gdb, backtraces, profilers), is the context that
     * resumed the coroutine. This frame's sp is top-208, the stack's link word: it holds the
     * address L of the word where that context saved its stack pointer S. The frame at S is
     * coro_arch_enter's, so CFA = S + 192 and the registers sit where the switch saved them.
     *   CFA = *(*sp) + 192      (DW_CFA_def_cfa_expression: breg31 0; deref; deref; plus_uconst 192)
     * A fresh stack's link points at itself, so S = top-208, CFA = top-16, and every saved slot,
     * x30 included, reads the zeroed words above the link: a return address of 0 ends every
     * unwinder's walk (x29 is 0 too). No branches in the expression: valgrind's CFI reader has
     * none. */
    .cfi_escape 0x0f, 0x07, 0x8f, 0x00, 0x06, 0x06, 0x23, 0xc0, 0x01
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    .cfi_offset x27, -32
    .cfi_offset x28, -24
    .cfi_offset x25, -48
    .cfi_offset x26, -40
    .cfi_offset x23, -64
    .cfi_offset x24, -56
    .cfi_offset x21, -80
    .cfi_offset x22, -72
    .cfi_offset x19, -96
    .cfi_offset x20, -88
    .cfi_offset d14, -112
    .cfi_offset d15, -104
    .cfi_offset d12, -128
    .cfi_offset d13, -120
    .cfi_offset d10, -144
    .cfi_offset d11, -136
    .cfi_offset d8, -160
    .cfi_offset d9, -152
    /* Never executed: a fresh frame's x30 is .Lcoro_trampoline_go, one instruction in.
     * Unwinders look a return address up at address - 1; without this instruction, a debugger or
     * profiler stopping in the second half of the switch that starts a fresh coroutine would look
     * up the alignment padding before this function, find no FDE, and show garbage frames. */
    nop
.Lcoro_trampoline_go:
    mov x0, x19
    blr x20
    brk #0
    .cfi_endproc
    .size coro_arch_trampoline, .-coro_arch_trampoline

/* void *coro_arch_init_stack(void *top, void (*entry)(void *data, uintptr_t value), void *data,
 *                            uintptr_t (*first_end)(void *ctx))
 * Writes the first frame at the top of a fresh stack and returns the stack pointer that begin
 * hooks return to switch to it. The first switch calls first_end(ctx) there (unless it takes the
 * fast path), whose second result word is the value entry receives. The 208 bytes above the frame are reserved: top-208 is the link word
 * the trampoline's CFI reads (initially pointing at itself); the rest stays zero. */
    .globl coro_arch_init_stack
    .hidden coro_arch_init_stack
    .type coro_arch_init_stack,%function
    .p2align 4
coro_arch_init_stack:
    .cfi_startproc
    hint #34
    and x9, x0, #0xfffffffffffffff0
    sub x0, x9, #400
    /* A new coroutine starts with the creator's floating-point control state. */
    mrs x10, fpcr
    adrp x11, .Lcoro_trampoline_go
    add x11, x11, :lo12:.Lcoro_trampoline_go
    stp x3, xzr, [x0]
    stp x10, xzr, [x0, #16]
    stp xzr, xzr, [x0, #32]
    stp xzr, xzr, [x0, #48]
    stp xzr, xzr, [x0, #64]
    stp xzr, xzr, [x0, #80]
    stp x2, x1, [x0, #96]
    stp xzr, xzr, [x0, #112]
    stp xzr, xzr, [x0, #128]
    stp xzr, xzr, [x0, #144]
    stp xzr, xzr, [x0, #160]
    stp xzr, x11, [x0, #176]
    /* The 208 reserved bytes at the top: the link word (pointing at itself) and zeros. */
    add x12, x0, #192
    stp x12, xzr, [x0, #192]
    stp xzr, xzr, [x0, #208]
    stp xzr, xzr, [x0, #224]
    stp xzr, xzr, [x0, #240]
    stp xzr, xzr, [x0, #256]
    stp xzr, xzr, [x0, #272]
    stp xzr, xzr, [x0, #288]
    stp xzr, xzr, [x0, #304]
    stp xzr, xzr, [x0, #320]
    stp xzr, xzr, [x0, #336]
    stp xzr, xzr, [x0, #352]
    stp xzr, xzr, [x0, #368]
    stp xzr, xzr, [x0, #384]
    ret
    .cfi_endproc
    .size coro_arch_init_stack, .-coro_arch_init_stack

    .section .note.GNU-stack,"",%progbits
    .text
