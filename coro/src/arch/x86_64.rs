//! x86_64 System V: the assembly lives in `x86_64.s` (also assembled by the C harness).
core::arch::global_asm!(include_str!("x86_64.s"), options(att_syntax));
