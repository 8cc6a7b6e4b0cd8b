//! The `greenlet` type: greenlet 3's object layout and semantics over the coro engine.
//!
//! # Layout
//! Instances are exactly greenlet 3's `PyGreenlet` (`greenlet.h`): `PyObject_HEAD`, the weak
//! reference list, the instance dict and one pointer to the implementation — 40 bytes on 64-bit,
//! `tp_weaklistoffset` 16, `tp_dictoffset` 24 — so C and Cython code compiled against
//! greenlet.h can subclass the type and add fields after it. pyo3's `#[pyclass]` puts its own
//! header and borrow flag in the instance, so the type is built here with raw ffi as a static
//! type (as greenlet's is), and everything lives behind the `pimpl` pointer: a [`Greenlet`].
//!
//! # Switching
//! A switch stores what it carries (arguments or an exception, [`Payload`]) and a strong
//! reference to its target in the thread's [`Transfer`](crate::thread::Transfer) slot, saves the interpreter state of the
//! current greenlet (`pystate.c`) and calls the engine's switch. The side that resumes restores
//! its interpreter state, takes the transfer, and makes itself current. No Python code runs
//! between the store and the take, so one slot per thread suffices.
//!
//! Greenlets start lazily: the engine coroutine is only created by the first switch into a
//! greenlet, on the thread of its parent chain (an unstarted greenlet belongs to no thread yet,
//! as in greenlet). Every engine coroutine's engine parent is the thread's root coroutine; a
//! finishing greenlet applies greenlet's parent rule itself (skip dead parents, start an
//! unstarted one, pass errors on when a parent cannot be switched to) and sets its engine parent
//! to the greenlet it chose just before its entry returns.
//!
//! # Files
//! - `layout`: the instance layout ([`layout::PyGreenlet`]), the implementation block behind it
//!   ([`Greenlet`], [`Payload`]) and the module-wide objects ([`layout::Globals`]).
//! - `lifecycle`: creation (`__new__`, `__init__`, a thread's main greenlet), GC traverse and
//!   clear, deallocation (killing a suspended greenlet, abandoning a dead thread's stacks).
//! - `switch`: switching, starting, the parent rule, the trace function, a uthread's entry.
//! - `pytype`: the Python type: methods, attributes, and the type objects (`greenlet`,
//!   `UnswitchableGreenlet`).
//!
//! The module-level functions (`getcurrent`, `settrace`, `gettrace`) are in the crate root.

mod layout;
mod lifecycle;
mod pytype;
mod switch;

pub use layout::{globals, is_greenlet, raise, Greenlet, Payload, DEFAULT_STACK_SIZE, STACK_SIZE};
pub use lifecycle::{murder_in_place, new_main};
pub use pytype::{green_setparent, init, init_unswitchable, switch_cfunction, switch_impl, throw_impl};
