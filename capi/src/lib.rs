//! Stackful coroutines for C, Rust and language runtimes: heap-allocated, switched in
//! nanoseconds, one OS thread, greenlet-style symmetric switching.
//!
//! - [`Coroutine`] is the safe Rust API (see its module docs for an example).
//! - The `coro_*` functions form the stable C ABI declared in `include/coro.h`.
//! - `docs/semantics.md` in the repository is the contract both follow: lazy start, values in
//!   both directions, the parent rule, kill, per-thread main coroutines, and errors.
//!
//! Layers, each knowing only the one below: `arch` (the context switch per CPU), `stack`
//! (guarded, pooled stacks), `switch` (lifecycle and reference counting over `block` and
//! `thread`), and the two shells `coroutine` (Rust) and `ffi` (C).
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod coroutine;
mod engine;
mod error;
pub mod ffi;
mod stack;
mod tools;

pub use coroutine::{Builder, Coroutine};
pub use engine::block::State;
pub use error::Error;
/// The README's examples, compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use stack::{GuardTier, DEFAULT_STACK_SIZE, GUARD_BYTES, MAX_STACK_SIZE, MIN_STACK_SIZE, WARM_BYTES, WARM_STACKS};
