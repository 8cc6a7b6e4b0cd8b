//! Stackful coroutines for C, Rust and language runtimes: heap-allocated, switched in
//! nanoseconds, one OS thread, greenlet-style symmetric switching.
//!
//! - [`Coroutine`] is the safe Rust API (see its module docs for an example).
//! - The `coro_*` functions form the stable C ABI declared in `include/coro.h`.
//! - `docs/semantics.md` in the repository is the contract both follow: lazy start, values in
//!   both directions, the parent rule, kill, per-thread main coroutines, and errors.
//!
//! How the source is laid out (docs/architecture.md has the picture and the rules):
//!
//! - the bottom: `arch` (the context switch per CPU, knowing nothing above it), `stack`
//!   (guarded, pooled stacks), `tools` (valgrind, ASan and TSan hooks) and `error` (the
//!   [`Error`] type and the one table of status codes and messages);
//! - `engine`: control blocks, per-thread state and switching, which all use each other and
//!   so live in one folder (see its module docs);
//! - the two shells on top, `coroutine` (the safe Rust API) and `ffi` (the C ABI, with the
//!   crate's only panic boundary towards C). Nothing outside this crate sees more than they
//!   and the re-exports below.
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
