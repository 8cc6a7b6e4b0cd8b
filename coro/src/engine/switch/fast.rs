//! The switch fast path, in assembly, one arm per CPU: the body of `coro_switch` and of the Rust
//! shell's `enter_rust`.
//!
//! It takes a plain value to a SUSPENDED coroutine of this thread whose frames are in place, from
//! a running coroutine that leaves nothing behind to check or tidy up. One compare decides most of
//! it: the arriving block's key (`Block::resume_key`) equals `handle ^ ctx.fast_mark` only if the
//! handle's generation is current, the block belongs to this thread, is SUSPENDED (so not the
//! running one), is resident in copying mode, and no sanitizer is watching (`fast_mark` is 0
//! then, which no key matches). The leaving side must be RUNNING (not a finishing coroutine),
//! guarded (no canary to check), still referenced, with no finished coroutine to bury.
//!
//! The hot fields of `Block` and `ThreadCtx` are read at offsets the compiler supplies
//! (`offset_of!`, as `const` operands), and nothing but scratch registers is touched until the
//! decision is made. If any check fails it jumps, with the arguments untouched, into
//! `coro_arch_enter` with the shell's hooks: the checked path (`hooks.rs`), which returns every
//! status as before. If all pass it performs the whole switch itself: it pushes the frame
//! `coro_arch_enter` pushes (same layout, the shell's end hook in it, so any later resume, fast or
//! checked, pops it the same way); it writes the leaving block's received slot, saved stack
//! pointer, state and key, the arriving block's state and key, the thread's current coroutine,
//! the arriving stack's link word and the resumed caller's `*received` (what `depart` and
//! `depart_tail` would write); it moves to the arriving frame, restores the floating-point control
//! state only where it differs, and returns into the resumed call with `(0, value)`, as the arch
//! fast bit does.
//!
//! The thread word is read with the TLS descriptor sequence (see `arch::thread_word`), with the
//! stack aligned for the descriptor call.

/// The naked body of `coro_switch(to, value, received)`: `to` is a C handle.
macro_rules! c_switch_body {
    () => {
        $crate::engine::switch::fast::switch_body!(
            begin = $crate::engine::switch::begin_c,
            end = $crate::engine::switch::end_c,
            x86_64: prologue = [], handle = "rdi", value = "rsi", own_received = "rdx",
            aarch64: prologue = [], after_tls = [], handle = "x9", value = "x10", own_received = "x2"
        )
    };
}
pub(crate) use c_switch_body;

/// The naked body of the Rust shell's `enter_rust(to, signal, value)`: `to` is a block (its handle
/// is computed from its generation), only a plain value (`signal` 0) takes the fast path, and the
/// caller has no received slot (it takes the value from the result).
macro_rules! rust_switch_body {
    () => {
        $crate::engine::switch::fast::switch_body!(
            begin = $crate::engine::switch::hooks::begin_rust,
            end = $crate::engine::switch::hooks::end_rust,
            x86_64: prologue = [
                "test rsi, rsi",
                "jnz 9f",
                "mov r11d, dword ptr [rdi + {gen}]",
                "and r11d, {tag_mask}",
                "or r11, rdi",
            ],
            handle = "r11", value = "rdx", own_received = "0",
            aarch64: prologue = ["cbnz x1, 9f"],
            after_tls = [
                "ldr w17, [x9, #{gen}]",
                "and x17, x17, #{tag_mask}",
                "orr x17, x17, x9",
            ],
            handle = "x17", value = "x2", own_received = "xzr"
        )
    };
}
pub(crate) use rust_switch_body;

/// The shared assembly; `handle`, `value` and `own_received` name where each shell's arguments
/// are (or, for `own_received`, what the leaving coroutine's received slot gets), `prologue` what
/// the shell does first (it may only use scratch registers and branch to `9f`; on aarch64 it runs
/// once the arguments are saved), `after_tls` (aarch64) what it does once the thread word is read
/// (the descriptor call may clobber x16 and x17).
macro_rules! switch_body {
    (begin = $begin:path, end = $end:path,
     x86_64: prologue = [$($xp:literal),* $(,)?], handle = $xh:literal, value = $xv:literal, own_received = $xr:literal,
     aarch64: prologue = [$($ap:literal),* $(,)?], after_tls = [$($at:literal),* $(,)?], handle = $ah:literal, value = $av:literal, own_received = $ar:literal) => {
        #[cfg(target_arch = "x86_64")]
        $crate::engine::switch::fast::with_operands!($begin, $end, [
            $($xp,)*
            // ctx = the thread word (TLS descriptor; clobbers rax only).
            "sub rsp, 8",
            "lea rax, [rip + coro_thread_word@TLSDESC]",
            "call qword ptr [rax + coro_thread_word@TLSCALL]",
            "add rsp, 8",
            "mov rax, qword ptr fs:[rax]",
            "test rax, rax",
            "jz 9f",
            // to = the handle's block; its key against handle ^ fast_mark.
            "mov r8, rdi",
            "and r8, -128",
            "jz 9f",
            "mov r9, qword ptr [rax + {ctx_fast_mark}]",
            concat!("xor r9, ", $xh),
            "cmp r9, qword ptr [r8 + {key}]",
            "jne 9f",
            // from = current: RUNNING, no canary, referenced; nothing dying.
            "mov r10, qword ptr [rax + {ctx_current}]",
            "cmp byte ptr [r10 + {state}], {running}",
            "jne 9f",
            "cmp qword ptr [r10 + {canary}], 0",
            "jne 9f",
            "cmp dword ptr [r10 + {refs}], 0",
            "je 9f",
            "cmp qword ptr [rax + {ctx_dying}], 0",
            "jne 9f",
            // Committed: the frame of coro_arch_enter, with the C end hook in it.
            "push rbp",
            "push rbx",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "sub rsp, 24",
            "stmxcsr dword ptr [rsp + 16]",
            "fnstcw word ptr [rsp + 20]",
            "lea r11, [rip + {end}]",
            "mov qword ptr [rsp + 8], r11",
            // from: its received slot, saved sp, SUSPENDED, key = its handle ^ fast_mark.
            concat!("mov qword ptr [r10 + {received}], ", $xr),
            "mov qword ptr [r10 + {saved_sp}], rsp",
            "mov byte ptr [r10 + {state}], {suspended}",
            "mov r11d, dword ptr [r10 + {gen}]",
            "and r11d, {tag_mask}",
            "or r11, r10",
            "xor r11, qword ptr [rax + {ctx_fast_mark}]",
            "mov qword ptr [r10 + {key}], r11",
            // to: RUNNING, key 0, the current coroutine; its link word and *received.
            "mov byte ptr [r8 + {state}], {running}",
            "mov qword ptr [r8 + {key}], 0",
            "mov qword ptr [rax + {ctx_current}], r8",
            "mov r11, qword ptr [r8 + {link_slot}]",
            "test r11, r11",
            "jz 2f",
            "lea rcx, [r10 + {saved_sp}]",
            "mov qword ptr [r11], rcx",
            "2:",
            "mov r11, qword ptr [r8 + {received}]",
            "test r11, r11",
            "jz 3f",
            concat!("mov qword ptr [r11], ", $xv),
            "3:",
            // Onto the arriving frame; the FP control state only where it differs (as in
            // coro_arch_enter: MXCSR's flag bits stay the live ones).
            "mov rcx, rsp",
            "mov rsp, qword ptr [r8 + {saved_sp}]",
            "mov eax, dword ptr [rcx + 16]",
            "xor eax, dword ptr [rsp + 16]",
            "test eax, 0xffc0",
            "jz 4f",
            "mov eax, dword ptr [rsp + 16]",
            "and eax, -64",
            "mov r9d, dword ptr [rcx + 16]",
            "and r9d, 63",
            "or eax, r9d",
            "mov dword ptr [rsp], eax",
            "ldmxcsr dword ptr [rsp]",
            "4:",
            "movzx eax, word ptr [rcx + 20]",
            "cmp ax, word ptr [rsp + 20]",
            "je 5f",
            "fldcw word ptr [rsp + 20]",
            "5:",
            // The resumed call returns (0, value).
            concat!("mov rdx, ", $xv),
            "xor eax, eax",
            "add rsp, 24",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbx",
            "pop rbp",
            "pop rcx",
            "jmp rcx",
            // The checked path, arguments untouched.
            "9:",
            "lea rcx, [rip + {begin}]",
            "lea r8, [rip + {end}]",
            "jmp {enter}",
        ]);
        #[cfg(target_arch = "aarch64")]
        $crate::engine::switch::fast::with_operands!($begin, $end, [
            // The descriptor sequence uses x0, x1 and x30: keep the arguments and the return
            // address in scratch registers first.
            "mov x9, x0",
            "mov x10, x1",
            "mov x11, x30",
            $($ap,)*
            "adrp x0, :tlsdesc:coro_thread_word",
            "ldr x1, [x0, #:tlsdesc_lo12:coro_thread_word]",
            "add x0, x0, #:tlsdesc_lo12:coro_thread_word",
            ".tlsdesccall coro_thread_word",
            "blr x1",
            "mrs x1, tpidr_el0",
            "ldr x12, [x1, x0]",
            "mov x30, x11",
            $($at,)*
            "cbz x12, 9f",
            // to = the handle's block; its key against handle ^ fast_mark.
            "and x13, x9, #0xffffffffffffff80",
            "cbz x13, 9f",
            "ldr x14, [x12, #{ctx_fast_mark}]",
            concat!("eor x14, x14, ", $ah),
            "ldr x15, [x13, #{key}]",
            "cmp x14, x15",
            "b.ne 9f",
            // from = current: RUNNING, no canary, referenced; nothing dying.
            "ldr x14, [x12, #{ctx_current}]",
            "ldrb w15, [x14, #{state}]",
            "cmp w15, #{running}",
            "b.ne 9f",
            "ldr x15, [x14, #{canary}]",
            "cbnz x15, 9f",
            "ldr w15, [x14, #{refs}]",
            "cbz w15, 9f",
            "ldr x15, [x12, #{ctx_dying}]",
            "cbnz x15, 9f",
            // Committed: the frame of coro_arch_enter, with the C end hook in it.
            "sub sp, sp, #192",
            "stp x29, x30, [sp, #176]",
            "stp x27, x28, [sp, #160]",
            "stp x25, x26, [sp, #144]",
            "stp x23, x24, [sp, #128]",
            "stp x21, x22, [sp, #112]",
            "stp x19, x20, [sp, #96]",
            "stp d14, d15, [sp, #80]",
            "stp d12, d13, [sp, #64]",
            "stp d10, d11, [sp, #48]",
            "stp d8, d9, [sp, #32]",
            "mrs x15, fpcr",
            "adrp x16, {end}",
            "add x16, x16, :lo12:{end}",
            "stp x16, xzr, [sp]",
            "stp x15, xzr, [sp, #16]",
            // from: its received slot, saved sp, SUSPENDED, key = its handle ^ fast_mark.
            concat!("str ", $ar, ", [x14, #{received}]"),
            "mov x16, sp",
            "str x16, [x14, #{saved_sp}]",
            "mov w16, #{suspended}",
            "strb w16, [x14, #{state}]",
            "ldr w16, [x14, #{gen}]",
            "and x16, x16, #{tag_mask}",
            "orr x16, x16, x14",
            "ldr x17, [x12, #{ctx_fast_mark}]",
            "eor x16, x16, x17",
            "str x16, [x14, #{key}]",
            // to: RUNNING, key 0, the current coroutine; its link word and *received.
            "mov w16, #{running}",
            "strb w16, [x13, #{state}]",
            "str xzr, [x13, #{key}]",
            "str x13, [x12, #{ctx_current}]",
            "ldr x16, [x13, #{link_slot}]",
            "cbz x16, 2f",
            "add x17, x14, #{saved_sp}",
            "str x17, [x16]",
            "2:",
            "ldr x16, [x13, #{received}]",
            "cbz x16, 3f",
            concat!("str ", $av, ", [x16]"),
            "3:",
            // Onto the arriving frame; FPCR only if it differs (as in coro_arch_enter).
            "ldr x16, [x13, #{saved_sp}]",
            "mov sp, x16",
            "ldr x16, [sp, #16]",
            "cmp x15, x16",
            "b.eq 4f",
            "msr fpcr, x16",
            "4:",
            "ldp d8, d9, [sp, #32]",
            "ldp d10, d11, [sp, #48]",
            "ldp d12, d13, [sp, #64]",
            "ldp d14, d15, [sp, #80]",
            "ldp x19, x20, [sp, #96]",
            "ldp x21, x22, [sp, #112]",
            "ldp x23, x24, [sp, #128]",
            "ldp x25, x26, [sp, #144]",
            "ldp x27, x28, [sp, #160]",
            "ldp x29, x30, [sp, #176]",
            "add sp, sp, #192",
            // The resumed call returns (0, value).
            "mov x0, #0",
            concat!("mov x1, ", $av),
            "ret",
            // The checked path, arguments restored.
            "9:",
            "mov x0, x9",
            "mov x1, x10",
            "adrp x3, {begin}",
            "add x3, x3, :lo12:{begin}",
            "adrp x4, {end}",
            "add x4, x4, :lo12:{end}",
            "b {enter}",
        ]);
    };
}
pub(crate) use switch_body;

/// `naked_asm!` with the template lines given and the operands every arm uses: the hooks, the
/// checked path's entry, and the offsets and constants of the hot fields, named once for both
/// CPUs.
macro_rules! with_operands {
    ($begin:path, $end:path, [$($template:tt)*]) => {
        core::arch::naked_asm!(
            $($template)*
            begin = sym $begin,
            end = sym $end,
            enter = sym $crate::arch::coro_arch_enter,
            ctx_fast_mark = const core::mem::offset_of!($crate::engine::thread::ThreadCtx, fast_mark),
            ctx_current = const core::mem::offset_of!($crate::engine::thread::ThreadCtx, current),
            ctx_dying = const core::mem::offset_of!($crate::engine::thread::ThreadCtx, dying),
            key = const core::mem::offset_of!($crate::engine::block::Block, resume_key),
            state = const $crate::engine::block::Block::STATE_OFFSET,
            gen = const core::mem::offset_of!($crate::engine::block::Block, gen),
            canary = const core::mem::offset_of!($crate::engine::block::Block, canary),
            refs = const core::mem::offset_of!($crate::engine::block::Block, refs),
            received = const core::mem::offset_of!($crate::engine::block::Block, received),
            saved_sp = const core::mem::offset_of!($crate::engine::block::Block, saved_sp),
            link_slot = const core::mem::offset_of!($crate::engine::block::Block, link_slot),
            running = const $crate::engine::block::State::Running as u8,
            suspended = const $crate::engine::block::State::Suspended as u8,
            tag_mask = const $crate::engine::block::Block::TAG_MASK,
        )
    };
}
pub(crate) use with_operands;
