//! aarch64 AAPCS64: the assembly lives in `aarch64.s` (also assembled by the C harness).
core::arch::global_asm!(include_str!("aarch64.s"));
