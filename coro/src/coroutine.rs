//! The safe Rust API.
//!
//! ```
//! use coro::{Coroutine, State};
//!
//! // A generator written as a plain loop: it hands each value to whoever resumed it.
//! let main = Coroutine::current();
//! let counter = Coroutine::new(move |limit| {
//!     for i in 0..limit {
//!         main.switch(i).unwrap();
//!     }
//!     limit * 100 // the return value goes to the parent (here: main)
//! })
//! .unwrap();
//!
//! assert_eq!(counter.switch(3), Ok(0)); // lazy start: the first value is `limit`
//! assert_eq!(counter.switch(0), Ok(1));
//! assert_eq!(counter.switch(0), Ok(2));
//! assert_eq!(counter.switch(0), Ok(300));
//! assert_eq!(counter.state(), State::Dead);
//! ```

use crate::engine::block::{Block, Entry, State};
use crate::engine::switch::{self, ForcedUnwind, Received, Spawn};
use crate::engine::thread::Signal;
use crate::Error;
use core::fmt;
use core::marker::PhantomData;
use std::ffi::CString;
use std::ptr::NonNull;

/// A handle to a coroutine: cheap to clone, and the coroutine lives while any handle (or a child
/// whose parent it is) does.
///
/// Handles are neither `Send` nor `Sync`: a coroutine belongs to the OS thread that created it.
/// (Once that thread has exited and its teardown is complete, its coroutines are orphans that the
/// engine lets any thread release; a runtime that keeps handles of an exited thread may drop them
/// from another thread then, one thread at a time.)
///
/// Dropping the last handle of a SUSPENDED coroutine unwinds it first: its pending
/// [`Coroutine::switch`] panics with a private payload that runs its destructors and is caught at
/// its root, and control comes back to the code that dropped the handle.
pub struct Coroutine {
    block: NonNull<Block>,
    _not_send: PhantomData<*mut ()>,
}

/// Options for a new coroutine.
#[derive(Debug, Clone)]
pub struct Builder {
    stack_size: usize,
    name: Option<String>,
    unwind_on_drop: bool,
    copying: Option<bool>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder { stack_size: 0, name: None, unwind_on_drop: true, copying: None }
    }
}

impl Builder {
    /// Default options: [`crate::DEFAULT_STACK_SIZE`], no name.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Usable stack size in bytes, rounded up to whole pages; between [`crate::MIN_STACK_SIZE`]
    /// and [`crate::MAX_STACK_SIZE`] (checked by [`Builder::spawn`]).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// A name shown in diagnostics such as the stack overflow message.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Whether dropping the last handle of the coroutine while it is SUSPENDED unwinds it (the
    /// default). Runtimes whose coroutines hold foreign frames that must not be unwound by a Rust
    /// panic (a language interpreter's C frames) turn this off and finish their coroutines
    /// themselves; a SUSPENDED coroutine dropped without unwinding is leaked (its stack and
    /// control block are never reused), since nothing can resume it any more.
    pub fn unwind_on_drop(mut self, unwind: bool) -> Builder {
        self.unwind_on_drop = unwind;
        self
    }

    /// Copying mode: the coroutine runs on a stack shared with the thread's other copying
    /// coroutines of the same stack size, and only the part of it in use is kept (on the heap)
    /// while it is switched out. Denser, slower to switch between two copying coroutines.
    /// Pointers into its stack (to its locals) are invalid while it is switched out; see
    /// `docs/stacks.md`. Unset: the thread's default ([`Coroutine::set_copying_default`]).
    pub fn copying(mut self, copying: bool) -> Builder {
        self.copying = Some(copying);
        self
    }

    /// Creates a NEW coroutine that will run `entry` when first switched to. `entry` receives the
    /// first switch's value; its return value goes to the parent (the current coroutine, unless
    /// changed with [`Coroutine::set_parent`]).
    ///
    /// Errors: [`Error::Invalid`] (bad stack size, or a name with a NUL byte),
    /// [`Error::NoMemory`].
    pub fn spawn<F>(self, entry: F) -> Result<Coroutine, Error>
    where
        F: FnOnce(usize) -> usize + 'static,
    {
        let name = match self.name {
            Some(n) => Some(CString::new(n).map_err(|_| Error::Invalid)?),
            None => None,
        };
        let block = switch::create(Spawn {
            entry: Entry::Rust(Box::new(entry)),
            stack_size: self.stack_size,
            name,
            userdata: core::ptr::null_mut(),
            unwind_on_drop: self.unwind_on_drop,
            copying: self.copying,
        })?;
        // SAFETY: `create` hands us the one reference of a fresh, non-null block.
        Ok(unsafe { Coroutine::adopt(block) })
    }
}

impl Coroutine {
    /// Wraps a block whose reference the caller transfers to the handle.
    ///
    /// # Safety
    /// `block` is non-null, live, owned by this thread, and the caller gives up one reference.
    unsafe fn adopt(block: *mut Block) -> Coroutine {
        // SAFETY: non-null per the contract.
        Coroutine { block: unsafe { NonNull::new_unchecked(block) }, _not_send: PhantomData }
    }

    /// A new handle to a block of this thread (adds a reference).
    fn share(block: *mut Block) -> Coroutine {
        // SAFETY: callers pass live blocks of this thread.
        unsafe {
            switch::add_ref(block);
            Coroutine::adopt(block)
        }
    }

    /// Creates a NEW coroutine with default options; see [`Builder::spawn`].
    pub fn new<F>(entry: F) -> Result<Coroutine, Error>
    where
        F: FnOnce(usize) -> usize + 'static,
    {
        Builder::new().spawn(entry)
    }

    /// Options for a new coroutine.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The coroutine running now on this thread (its main coroutine when no other runs).
    ///
    /// # Panics
    /// If the thread's state cannot be allocated (out of memory).
    pub fn current() -> Coroutine {
        Coroutine::share(switch::current().expect("coro: cannot allocate this thread's state"))
    }

    /// This thread's main coroutine.
    ///
    /// # Panics
    /// If the thread's state cannot be allocated (out of memory).
    pub fn main() -> Coroutine {
        Coroutine::share(switch::main().expect("coro: cannot allocate this thread's state"))
    }

    fn raw(&self) -> *mut Block {
        self.block.as_ptr()
    }

    fn block(&self) -> &Block {
        // SAFETY: the handle holds a reference, so the block is live; it is !Send, so we are on
        // the owning thread.
        unsafe { self.block.as_ref() }
    }

    /// Suspends the current coroutine and resumes this one with `value`. Returns the value that
    /// the next switch back into the caller carries.
    ///
    /// Errors: [`Error::Dead`]; [`Error::Killed`] when the caller is resumed by a kill.
    /// Switching to the current coroutine returns `Ok(value)` at once.
    ///
    /// # Panics
    /// Resumes the panic of a coroutine that panicked and passed control to the caller (its
    /// parent chain led here).
    #[inline]
    pub fn switch(&self, value: usize) -> Result<usize, Error> {
        // SAFETY: a live block (see `block`).
        deliver(unsafe { switch::switch(self.raw(), Signal::Value, value) }?)
    }

    /// Kills this coroutine: a SUSPENDED one is resumed and its pending switch returns
    /// [`Error::Killed`] with `reason`, and the caller is suspended as by a switch; a NEW one
    /// finishes without running (returns `Ok(reason)`); killing the current coroutine returns
    /// `Err(Killed)` at once. Errors: [`Error::Dead`].
    pub fn kill(&self, reason: usize) -> Result<usize, Error> {
        // SAFETY: a live block.
        deliver(unsafe { switch::kill(self.raw(), reason) }?)
    }

    /// Where the coroutine is in its life.
    pub fn state(&self) -> State {
        self.block().state()
    }

    /// For the engine's own tests: whether the switch fast path's key of this coroutine says what
    /// its state says (non-zero exactly while it is SUSPENDED with its frames in place). Not API.
    #[doc(hidden)]
    pub fn fast_key_is_consistent(&self) -> bool {
        let b = self.raw();
        let stored = self.block().resume_key.get();
        // SAFETY: a live block of this thread; recomputing the key only rewrites the same field.
        unsafe { Block::refresh_resume_key(b) };
        let computed = self.block().resume_key.get();
        self.block().resume_key.set(stored);
        stored == computed
    }

    /// Whether it has finished.
    pub fn is_dead(&self) -> bool {
        self.state() == State::Dead
    }

    /// Whether this is a thread's main coroutine.
    pub fn is_main(&self) -> bool {
        self.block().is_main()
    }

    /// The coroutine its return value goes to; `None` for a main coroutine.
    pub fn parent(&self) -> Option<Coroutine> {
        let p = self.block().parent.get();
        (!p.is_null()).then(|| Coroutine::share(p))
    }

    /// Changes the parent. Errors: [`Error::Cycle`] if this coroutine would become its own
    /// ancestor, [`Error::Main`] for a main coroutine.
    pub fn set_parent(&self, parent: &Coroutine) -> Result<(), Error> {
        // SAFETY: both handles hold live blocks of this thread.
        unsafe { switch::set_parent(self.raw(), parent.raw()) }
    }

    /// Abandons this SUSPENDED coroutine: it becomes DEAD without running again and its stack
    /// is released as it is; nothing on it is unwound, so whatever its frames own is leaked. For
    /// runtimes that must give up on a coroutine that cannot be finished (an interpreter shutting
    /// down, or a coroutine that refuses to die). A NEW one becomes DEAD unrun.
    /// Errors: [`Error::Busy`] (running), [`Error::Dead`], [`Error::Main`].
    pub fn abandon(&self) -> Result<(), Error> {
        // SAFETY: a live block of this thread; the leak is this method's documented contract.
        unsafe { switch::abandon(self.raw()) }
    }

    /// Bytes of its stack a SUSPENDED coroutine is using (0 in other states and for mains).
    pub fn stack_in_use(&self) -> usize {
        // SAFETY: a live block of this thread.
        unsafe { switch::stack_in_use(self.raw()) }
    }

    /// How this coroutine's stack is protected against overflow (`None` for a main coroutine or
    /// once the stack is released); see [`GuardTier`].
    pub fn stack_guard(&self) -> Option<crate::GuardTier> {
        // SAFETY: a live block of this thread.
        unsafe {
            let b = self.block();
            match &*b.stack.get() {
                Some(s) => Some(s.tier()),
                None if !b.shared.get().is_null() => Some((*b.shared.get()).stack.tier()),
                None => None,
            }
        }
    }

    /// Whether this coroutine runs in copying mode (on its thread's shared stack).
    pub fn is_copying(&self) -> bool {
        !self.block().shared.get().is_null()
    }

    /// Sets whether coroutines this thread creates from now on without choosing a mode
    /// ([`Builder::copying`]) run in copying mode. Off by default.
    pub fn set_copying_default(copying: bool) -> Result<(), Error> {
        crate::engine::switch::set_copying_default(copying)
    }

    /// The process-unique id (never reused).
    pub fn id(&self) -> u64 {
        self.block().id.get()
    }

    /// The name given at creation or by [`Coroutine::set_name`].
    pub fn name(&self) -> Option<String> {
        // SAFETY: names are only replaced on this thread, never while borrowed.
        unsafe { (*self.block().name.get()).as_ref().map(|n| n.to_string_lossy().into_owned()) }
    }

    /// Sets (or with `None` clears) the name. Errors: [`Error::Invalid`] for a NUL byte.
    pub fn set_name(&self, name: Option<&str>) -> Result<(), Error> {
        let name = match name {
            Some(n) => Some(CString::new(n).map_err(|_| Error::Invalid)?),
            None => None,
        };
        // SAFETY: as in `name`.
        unsafe { *self.block().name.get() = name };
        Ok(())
    }
}

/// Turns what a resumed switch received into the API's result.
#[inline]
fn deliver(received: Received) -> Result<usize, Error> {
    match received.signal {
        Signal::Value => Ok(received.value),
        Signal::Killed => Err(Error::Killed { reason: received.value }),
        Signal::Panic => match switch::take_panic() {
            Some(payload) => std::panic::resume_unwind(payload),
            None => Err(Error::Panicked),
        },
        Signal::Unwind => std::panic::resume_unwind(Box::new(ForcedUnwind)),
        Signal::Refused => unreachable!("only the C ABI's switch refuses in its begin hook"),
    }
}

impl Clone for Coroutine {
    fn clone(&self) -> Coroutine {
        Coroutine::share(self.raw())
    }
}

impl Drop for Coroutine {
    fn drop(&mut self) {
        // SAFETY: the handle owns one reference to a live block of this thread.
        unsafe { switch::release_ref(self.raw()) }
    }
}

impl PartialEq for Coroutine {
    fn eq(&self, other: &Coroutine) -> bool {
        self.block == other.block
    }
}

impl Eq for Coroutine {}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("state", &self.state())
            .field("main", &self.is_main())
            .finish()
    }
}
