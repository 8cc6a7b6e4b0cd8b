//! The engine: coroutines as control blocks, per-thread state, and switching between them. Its
//! modules use each other freely (a switch reads and writes blocks and thread state; a thread's
//! state owns its blocks and copying stacks; overflow reports read both), so they live in one
//! folder rather than pretending to be layers. Below it are `arch` (the context switch),
//! `stack` (stacks and their pool), `tools` (sanitizer and debugger hooks) and `error`; above
//! it the two shells, `coroutine` (Rust) and `ffi` (C), which use `block`, `thread` and `switch`.
//!
//! - [`block`]: the control block of a coroutine, its slab, and C handles with generations.
//! - [`thread`]: a thread's state (its main coroutine, current coroutine, pool, what a switch
//!   carries) and the teardown at thread exit.
//! - [`switch`]: switching, kill, the parent rule, the lifetime of blocks (`switch/lifetime.rs`),
//!   both shells' assembly fast path (`switch/fast.rs`) and their `coro_arch_enter` hooks
//!   (`switch/hooks.rs`), and copying mode
//!   (`switch/copying.rs`), which is part of every switch into a copying coroutine.
//! - `overflow`: the report when a stack guard or canary catches an overflow.

pub(crate) mod block;
mod overflow;
pub(crate) mod switch;
pub(crate) mod thread;
